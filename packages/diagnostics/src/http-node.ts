import { Agent, type ClientRequest, request as httpRequest, type IncomingMessage } from 'node:http';
import { z } from 'zod';
import { NodeQueryError } from './errors.js';
import { parseOptions } from './internal/parse.js';
import { DIAGNOSTICS_PATHS } from './paths.js';
import type { SnapshotRequest } from './snapshot.js';

/**
 * A cluster member as the aggregator sees it. The daemon implements it over HTTP
 * (`httpDiagnosticNode`); anything else (in-process, another transport) works too.
 */
export interface DiagnosticNode {
  readonly id: string;
  /**
   * This node's snapshot as untrusted JSON (the aggregator validates it).
   * Must stop when `signal` aborts.
   * @throws NodeQueryError when unreachable, too large, not JSON or not a 200.
   */
  fetchSnapshot(request: SnapshotRequest, signal: AbortSignal): Promise<unknown>;
}

const HttpNodeOptionsSchema = z.object({
  id: z.string().min(1),
  /** Base URL of the node's diagnostics HTTP server, e.g. http://127.0.0.1:7001. */
  url: z.url({ protocol: /^http$/ }),
  /** A response larger than this is cut off and reported (bounded memory). */
  maxBytes: z.number().int().positive().optional(),
});
export type HttpNodeOptions = z.input<typeof HttpNodeOptionsSchema>;

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * A DiagnosticNode over HTTP/1.1 (node:http): GET /diagnostics/snapshot, reading at
 * most `maxBytes`, aborted by the caller's signal (a hung node costs a timeout, no more).
 * @throws InvalidOptionsError on bad options.
 * @example
 * const nodes = peers.map((p) => httpDiagnosticNode({ id: p.id, url: p.diagnosticsUrl }));
 */
export function httpDiagnosticNode(options: HttpNodeOptions): DiagnosticNode {
  const opts = parseOptions(HttpNodeOptionsSchema, options, 'HTTP diagnostic node options');
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  // Kept-alive connections: a report or a poll then costs no TCP handshake and no
  // accept on the node. Idle sockets are unref'd by the agent (they keep no process
  // alive) and retired before the server's Keep-Alive timeout.
  const agent = new Agent({ keepAlive: true });
  return {
    id: opts.id,
    fetchSnapshot(snapshotRequest, signal) {
      const url = new URL(DIAGNOSTICS_PATHS.snapshot, opts.url);
      for (const [key, value] of Object.entries(snapshotRequest)) {
        if (value !== undefined) url.searchParams.set(key, String(value));
      }
      return new Promise<unknown>((resolve, reject) => {
        const fail = (reason: NodeQueryError['reason'], detail: string, cause?: unknown) =>
          reject(new NodeQueryError(opts.id, reason, detail, cause === undefined ? undefined : { cause }));
        if (signal.aborted) {
          fail('timeout', 'aborted before the request was sent');
          return;
        }
        const send = (attempt: number) => {
          const req = httpRequest(url, { method: 'GET', headers: { accept: 'application/json' }, agent });
          const onAbort = () => {
            req.destroy();
            fail('timeout', 'no complete answer before the deadline');
          };
          signal.addEventListener('abort', onAbort, { once: true });
          const done = () => signal.removeEventListener('abort', onAbort);
          let answered = false;
          req.on('error', (error: NodeJS.ErrnoException) => {
            done();
            // A kept-alive socket the node closed as we reused it: the GET never reached
            // it, so it is safe to send once more on a fresh connection (Node's docs on
            // request.reusedSocket).
            if (!answered && req.reusedSocket && attempt === 0 && !signal.aborted) {
              if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
                send(1);
                return;
              }
            }
            fail('unreachable', error.message, error);
          });
          req.on('response', (res) => {
            answered = true;
            handleResponse(req, res, done);
          });
          req.end();
        };
        const handleResponse = (req: ClientRequest, res: IncomingMessage, done: () => void) => {
          const declared = Number(res.headers['content-length'] ?? Number.NaN);
          if (declared > maxBytes) {
            done();
            req.destroy();
            fail('too_large', `content-length ${declared} > limit ${maxBytes} bytes`);
            return;
          }
          const chunks: Buffer[] = [];
          let received = 0;
          res.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > maxBytes) {
              done();
              req.destroy();
              fail('too_large', `more than ${maxBytes} bytes`);
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            done();
            if (received > maxBytes) return;
            const body = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode !== 200) {
              fail('http_error', `HTTP ${res.statusCode}: ${body.slice(0, 200)}`);
              return;
            }
            try {
              resolve(JSON.parse(body));
            } catch (error) {
              fail('invalid', `not JSON: ${body.slice(0, 80)}`, error);
            }
          });
          res.on('error', (error) => {
            done();
            fail('unreachable', error.message, error);
          });
          // A node that dies mid-answer: the body never completes (settling twice is a no-op).
          res.on('close', () => {
            if (res.complete) return;
            done();
            fail('unreachable', 'connection closed before the answer was complete');
          });
        };
        send(0);
      });
    },
  };
}
