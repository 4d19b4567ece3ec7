// The HTTP API on its own worker thread. The main thread keeps the daemon (queue, ledger,
// handlers) and answers the front's calls over a MessagePort; the front spends the
// HTTP work (sockets, parsing, routing, tokens, zod, JSON) on the machine's other core.
// Measured: benchmarks/src/daemon/profile-e2e.ts (--http-threads 0|1) and jtbd1-e2e.
import { MessageChannel, Worker } from 'node:worker_threads';
import type { Daemon } from '@unrdf/daemon';
import type { Telemetry } from '../telemetry.js';
import { localDaemonPort, serveDaemonPort } from './daemon-port.js';
import type { HttpServerOptions } from './server.js';

/** What the front's thread starts from (structured-cloned). */
export interface FrontWorkerData {
  readonly dataDir: string;
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
  readonly bodyLimitBytes?: number;
  readonly rateLimit?: HttpServerOptions['rateLimit'];
  readonly healthTimeoutMs?: number;
  readonly version?: string;
}

/** What the main thread tells the front's thread: listen, now that the daemon runs; close. */
export type FrontCommand =
  | {
      readonly type: 'listen';
      /**
       * Built-in types (handlers/builtins.ts) whose submissions the front checks and digests
       * itself; list only those the daemon registered with exactly those definitions.
       */
      readonly frontTypes: readonly string[];
    }
  | { readonly type: 'close' };

/** What the front's thread tells the main thread. */
export type FrontMessage =
  | { readonly type: 'listening'; readonly url: string; readonly port: number }
  | { readonly type: 'failed'; readonly name: string; readonly message: string; readonly code?: string }
  | { readonly type: 'closed' };

/** Options of {@link spawnHttpFront}. */
export interface FrontSpawnOptions extends Omit<FrontWorkerData, 'host' | 'port'> {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8787; 0 picks a free port. */
  readonly port?: number;
}

/** Options of {@link startHttpFront}. */
export interface HttpFrontOptions extends Omit<FrontSpawnOptions, 'nodeId'> {
  readonly daemon: Daemon;
  readonly telemetry: Telemetry;
  readonly frontTypes?: readonly string[];
}

/** A listening HTTP front. */
export interface HttpFront extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  /** Stops accepting, ends long polls, waits for requests in flight, stops the thread. */
  close(): Promise<void>;
}

/** A front's thread that loads its modules while the daemon starts, and listens when told. */
export interface PendingHttpFront {
  /**
   * Serves `daemon` (started) to the thread and has it listen.
   * @throws what the server threw when it could not listen (with its `code`, e.g. EADDRINUSE),
   *   or why the thread ended before; the thread is stopped then.
   */
  listen(options: {
    readonly daemon: Daemon;
    readonly telemetry: Telemetry;
    readonly frontTypes?: readonly string[];
  }): Promise<HttpFront>;
  /** Stops the thread (after `listen` failed, or instead of it: the daemon did not start). */
  abort(): Promise<void>;
}

/** How long close() waits for the front to finish its requests before stopping the thread. */
const CLOSE_TIMEOUT_MS = 15_000;

const WORKER_ENTRY = new URL('../../bin/http-front-worker.mjs', import.meta.url);

/**
 * Starts the HTTP API's worker thread: it loads its modules (most of its start-up) while
 * this thread goes on, e.g. starting the daemon, and listens once `listen()` hands it the
 * daemon. Once it listens, a crash of the front's thread is rethrown here (as an uncaught
 * exception): a daemon nobody can reach must not look alive.
 * @example
 * const pending = spawnHttpFront({ dataDir, nodeId: daemon.nodeId, port: 0 });
 * await daemon.start();
 * await using front = await pending.listen({ daemon, telemetry });
 */
export function spawnHttpFront(options: FrontSpawnOptions): PendingHttpFront {
  const { port1, port2 } = new MessageChannel();
  const data: FrontWorkerData = {
    dataDir: options.dataDir,
    nodeId: options.nodeId,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8787,
    ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit }),
    ...(options.healthTimeoutMs === undefined ? {} : { healthTimeoutMs: options.healthTimeoutMs }),
    ...(options.version === undefined ? {} : { version: options.version }),
  };
  const worker = new Worker(WORKER_ENTRY, { workerData: { ...data, channel: port2 }, transferList: [port2] });
  let stopServing: (() => void) | undefined;
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopServing?.();
      port1.close();
      await worker.terminate();
    })();
    return stopped;
  };
  // Listened for from the start, so a thread that fails while loading is not missed.
  const listening = new Promise<{ url: string; port: number }>((resolve, reject) => {
    const onMessage = (message: FrontMessage) => {
      if (message.type === 'listening') resolve({ url: message.url, port: message.port });
      else if (message.type === 'failed') {
        const error = new Error(message.message) as NodeJS.ErrnoException;
        error.name = message.name;
        if (message.code !== undefined) error.code = message.code;
        reject(error);
      }
    };
    worker.on('message', onMessage);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the HTTP front's thread exited (${code}) before listening`)));
  });
  // Awaited by listen(); until then a failure waits there instead of going unhandled.
  listening.catch(() => undefined);

  const listen: PendingHttpFront['listen'] = async ({ daemon, telemetry, frontTypes = [] }) => {
    let address: { url: string; port: number };
    try {
      if (stopped !== undefined) throw new Error("the HTTP front's thread was stopped before listening");
      stopServing = serveDaemonPort(port1, localDaemonPort(daemon, telemetry));
      worker.postMessage({ type: 'listen', frontTypes: [...frontTypes] } satisfies FrontCommand);
      address = await listening;
    } catch (error) {
      await stop();
      throw error;
    }
    return serving(worker, address, stop);
  };
  return { listen, abort: stop };
}

/**
 * Starts the HTTP API on a worker thread over `daemon` (running on this thread): {@link
 * spawnHttpFront}, then `listen`.
 * @throws what the server threw when it could not listen (with its `code`, e.g. EADDRINUSE).
 * @example
 * await using front = await startHttpFront({ daemon, telemetry, dataDir, port: 0 });
 */
export function startHttpFront(options: HttpFrontOptions): Promise<HttpFront> {
  const { daemon, telemetry, frontTypes, ...spawn } = options;
  return spawnHttpFront({ ...spawn, nodeId: daemon.nodeId }).listen({
    daemon,
    telemetry,
    ...(frontTypes === undefined ? {} : { frontTypes }),
  });
}

/** The listening front: rethrows a crash of its thread, and closes it on request. */
function serving(worker: Worker, address: { url: string; port: number }, stop: () => Promise<void>): HttpFront {
  let closing = false;
  // The start-up listeners are done; from here on the thread only answers 'closed'.
  worker.removeAllListeners('message');
  worker.removeAllListeners('error');
  worker.removeAllListeners('exit');
  const crash = (error: unknown) => {
    if (closing) return;
    process.nextTick(() => {
      throw error;
    });
  };
  worker.on('error', crash);
  worker.on('exit', (code) => crash(new Error(`the HTTP front's thread exited unexpectedly (${code})`)));

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        worker.on('message', (message: FrontMessage) => {
          if (message.type === 'closed') done();
        });
        worker.once('exit', done);
        worker.postMessage({ type: 'close' } satisfies FrontCommand);
      });
      await stop();
    })();
    return closed;
  };
  return { ...address, close, [Symbol.asyncDispose]: close };
}
