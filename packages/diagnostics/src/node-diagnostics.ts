import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Health, HealthResponse } from './health.js';
import { encodeHlc } from './hlc.js';
import type { DiagnosticNode } from './http-node.js';
import { issueLines, parseOptions } from './internal/parse.js';
import type { NodeLogger } from './logger.js';
import type { Metrics } from './metrics.js';
import { DIAGNOSTICS_PATHS } from './paths.js';
import { createResourceSampler, type ResourceSampler } from './resources.js';
import { type ConsensusView, NODE_SNAPSHOT_SCHEMA, type NodeSnapshot, type SnapshotRequest } from './snapshot.js';

const NodeDiagnosticsOptionsSchema = z.object({
  nodeId: z.string().min(1),
  version: z.string().default('0.0.0'),
  logger: z.custom<NodeLogger>((v) => typeof v === 'object' && v !== null && 'readRaw' in v),
  health: z.custom<Health>((v) => typeof v === 'object' && v !== null && 'readyz' in v),
  metrics: z.custom<Metrics>((v) => typeof v === 'object' && v !== null && 'snapshot' in v),
  /** The consensus module's view; null/omitted for a single node without Raft. */
  consensus: z.custom<() => ConsensusView | null>((v) => typeof v === 'function').optional(),
  /** Directory whose filesystem is reported (free/total bytes). */
  dataDir: z.string().optional(),
  resources: z.custom<ResourceSampler>((v) => typeof v === 'object' && v !== null && 'sample' in v).optional(),
});
export type NodeDiagnosticsOptions = z.input<typeof NodeDiagnosticsOptionsSchema>;

/** A health endpoint's answer: the HTTP status and the text/plain body. */
export interface HealthAnswer {
  readonly status: number;
  readonly body: string;
}

/** The node side of diagnostics: assembles this node's snapshot and serves it, and livez/readyz, over HTTP. */
export interface NodeDiagnostics extends AsyncDisposable {
  readonly nodeId: string;
  snapshot(request?: SnapshotRequest): Promise<NodeSnapshot>;
  /** The snapshot as JSON text; log records are spliced in as written, not re-encoded. */
  snapshotJson(request?: SnapshotRequest): Promise<string>;
  /**
   * Answers GET /livez, /readyz (with ?verbose, ?exclude) and /diagnostics/snapshot
   * (?afterSeq, ?sinceWallMs, ?atLeast, ?limit, ?logsOnly); returns false for any other path so
   * the app can route it. Bad query parameters get a 400 with `path: message` lines.
   */
  handle(request: IncomingMessage, response: ServerResponse): boolean;
  /**
   * The answer to a health request target (`/livez` or `/readyz`, with its query), for
   * a server that writes responses itself (an HTTP front on another thread); undefined
   * for any other path.
   */
  healthAnswer(target: string): HealthAnswer | undefined;
  close(): Promise<void>;
}

const numberParam = z.coerce.number();
const QuerySchema = z.object({
  afterSeq: numberParam.pipe(z.number().int().nonnegative()).optional(),
  sinceWallMs: numberParam.pipe(z.number()).optional(),
  limit: numberParam.pipe(z.number().int().positive().max(1_000_000)).optional(),
  atLeast: numberParam.pipe(z.number().int().positive().max(1_000_000)).optional(),
  logsOnly: z.enum(['1', 'true', '0', 'false']).optional(),
});

/**
 * Creates the node side of diagnostics over this node's logger, health, metrics
 * and consensus view.
 * @throws InvalidOptionsError on bad options.
 * @example
 * const node = createNodeDiagnostics({ nodeId: 'n1', logger, health, metrics });
 * http.createServer((req, res) => node.handle(req, res) || app(req, res));
 */
export function createNodeDiagnostics(options: NodeDiagnosticsOptions): NodeDiagnostics {
  const opts = parseOptions(NodeDiagnosticsOptionsSchema, options, 'node diagnostics options');
  const ownSampler = opts.resources === undefined;
  const sampler = opts.resources ?? createResourceSampler(opts.dataDir === undefined ? {} : { diskPath: opts.dataDir });
  const health = (response: HealthResponse) => ({ ok: response.ok, checks: [...response.checks] });

  // Everything but the logs, which are spliced in by snapshotJson.
  const envelope = async (request: SnapshotRequest) => {
    const page = await opts.logger.readRaw({
      ...(request.afterSeq === undefined ? {} : { afterSeq: request.afterSeq }),
      ...(request.sinceWallMs === undefined ? {} : { sinceWallMs: request.sinceWallMs }),
      ...(request.limit === undefined ? {} : { limit: request.limit }),
      ...(request.atLeast === undefined ? {} : { atLeast: request.atLeast }),
    });
    const logsMeta = { lastSeq: page.lastSeq, oldestAvailableSeq: page.oldestAvailableSeq, truncated: page.truncated };
    if (request.logsOnly) return { head: { schema: NODE_SNAPSHOT_SCHEMA, nodeId: opts.nodeId }, page, logsMeta };
    const head = {
      schema: NODE_SNAPSHOT_SCHEMA,
      nodeId: opts.nodeId,
      version: opts.version,
      hlc: encodeHlc(opts.logger.hlc.now()),
      wallMs: Date.now(),
      health: { livez: health(opts.health.livez()), readyz: health(opts.health.readyz()) },
      metrics: opts.metrics.snapshot(),
      resources: await sampler.sample(),
      consensus: opts.consensus?.() ?? null,
    };
    return { head, page, logsMeta };
  };

  const snapshotJson = async (request: SnapshotRequest = {}) => {
    const { head, page, logsMeta } = await envelope(request);
    const headJson = JSON.stringify(head);
    const logsJson = `{"records":[${page.lines.join(',')}],${JSON.stringify(logsMeta).slice(1)}`;
    return `${headJson.slice(0, -1)},"logs":${logsJson}}`;
  };

  const sendText = (response: ServerResponse, status: number, body: string) => {
    response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    response.end(body);
  };

  const close = async () => {
    if (ownSampler) sampler.close();
  };

  // The health paths are matched on the raw target: a full URL parse per check cost
  // more than the check itself (it serves cached state).
  const healthAnswer = (target: string): HealthAnswer | undefined => {
    const queryAt = target.indexOf('?');
    const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
    const endpoint =
      pathname === DIAGNOSTICS_PATHS.livez ? 'livez' : pathname === DIAGNOSTICS_PATHS.readyz ? 'readyz' : undefined;
    if (endpoint === undefined) return undefined;
    const started = performance.now();
    const answer = opts.health[endpoint](queryAt === -1 ? undefined : new URLSearchParams(target.slice(queryAt + 1)));
    opts.metrics.observe('health_check', { durationMs: performance.now() - started, ok: answer.ok, endpoint });
    return { status: answer.httpStatus, body: `${answer.body}\n` };
  };

  return {
    nodeId: opts.nodeId,
    async snapshot(request = {}) {
      return JSON.parse(await snapshotJson(request)) as NodeSnapshot;
    },
    snapshotJson,
    healthAnswer,
    handle(request, response) {
      const target = request.url ?? '/';
      const health = healthAnswer(target);
      if (health !== undefined) {
        sendText(response, health.status, health.body);
        return true;
      }
      const queryAt = target.indexOf('?');
      const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
      if (pathname !== DIAGNOSTICS_PATHS.snapshot) return false;
      const url = new URL(target, 'http://localhost');
      if (request.method !== 'GET') {
        sendText(response, 405, 'method not allowed: use GET\n');
        return true;
      }
      const parsed = QuerySchema.safeParse(Object.fromEntries(url.searchParams));
      if (!parsed.success) {
        sendText(response, 400, `${issueLines(parsed.error).join('\n')}\n`);
        return true;
      }
      const q = parsed.data;
      const snapshotRequest: SnapshotRequest = {
        ...(q.afterSeq === undefined ? {} : { afterSeq: q.afterSeq }),
        ...(q.sinceWallMs === undefined ? {} : { sinceWallMs: q.sinceWallMs }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
        ...(q.atLeast === undefined ? {} : { atLeast: q.atLeast }),
        logsOnly: q.logsOnly === '1' || q.logsOnly === 'true',
      };
      snapshotJson(snapshotRequest).then(
        (body) => {
          response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          response.end(body);
        },
        (error: unknown) => {
          sendText(response, 500, `snapshot failed: ${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
      return true;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * A DiagnosticNode that asks a NodeDiagnostics in this process (a single-node daemon,
 * or the aggregating node itself) without HTTP.
 */
export function localDiagnosticNode(node: NodeDiagnostics): DiagnosticNode {
  return { id: node.nodeId, fetchSnapshot: (request) => node.snapshot(request) };
}
