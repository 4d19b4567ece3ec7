import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createDaemon, type Daemon, InvalidInputError } from '@unrdf/daemon';
import { z } from 'zod';
import { type AdminToken, ensureAdminToken, openTokenStore } from './auth/tokens.js';
import { builtinHandlers } from './handlers/builtins.js';
import { DEFAULT_HTTP_THREADS, DEFAULT_RATE_LIMIT } from './http/defaults.js';
import { spawnHttpFront } from './http/front.js';
import { startHttpServer } from './http/server.js';
import { createEntityStore, type EntityStore } from './rdf/index.js';
import { createTelemetry, type Telemetry } from './telemetry.js';

/** The entity store's file inside the data directory. */
/** The stand-alone entity store of earlier versions, copied into the daemon's store at start. */
export const ENTITY_STORE_FILE = 'entities.db';
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8787;
/** How long `close()` lets running handlers finish by default. */
export const DEFAULT_DRAIN_MS = 10_000;

const LogLevelSchema = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

const AppOptionsSchema = z.strictObject({
  /** Store, keys, tokens, logs (created if missing). */
  dataDir: z.string().min(1),
  host: z.string().min(1).optional(),
  /** 0 lets the OS pick a free port (the bound one is in `url`). */
  port: z.number().int().min(0).max(65_535).optional(),
  nodeId: z.string().min(1).optional(),
  /** Extra handler modules (paths or file URLs exporting `handlers`). */
  handlerModules: z.array(z.string().min(1)).optional(),
  logLevel: LogLevelSchema.optional(),
  /** Also write every log record (JSON line) to stdout. */
  echoLogs: z.boolean().optional(),
  /** Handlers running at once, all types together. */
  concurrency: z.number().int().min(1).max(100_000).optional(),
  /** Requests per minute per API token (default DEFAULT_RATE_LIMIT.max); 0 turns the limit off. */
  rateLimitPerMinute: z.number().int().min(0).max(1_000_000_000).optional(),
  /**
   * 1 (default with two or more cores): the HTTP API runs on a worker thread of its own,
   * the daemon on the main thread; 0 (default on one core): both on the main thread.
   */
  httpThreads: z.number().int().min(0).max(1).optional(),
});
export type AppOptions = z.input<typeof AppOptionsSchema>;

/** A running app. Disposable: `await using app = await startApp(…)`. */
export interface App extends AsyncDisposable {
  readonly daemon: Daemon;
  /** Where the HTTP API listens, e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  readonly dataDir: string;
  /** `<dataDir>/admin.token` (0600); `token` only when the file is still there. */
  readonly adminToken: AdminToken;
  /** The ledger's current verifier key file (0644): what offline verifiers need. */
  readonly verifierKeyPath: string;
  /** Graceful: stops HTTP, drains the daemon for drainMs, closes telemetry. */
  close(options?: { readonly drainMs?: number }): Promise<void>;
}

/**
 * Starts the reference daemon: OpenTelemetry metrics, the daemon with the RDF entity
 * handlers (create/update/delete/batch; the entities live in the daemon's store), the synthetic `sleep`
 * handler and any handler modules, the admin token, and the HTTP API.
 * @throws {InvalidInputError} bad options; {@link DataDirLockedError} when another daemon holds dataDir;
 *   whatever the HTTP server throws when it cannot listen (everything started is closed again).
 * @example
 * await using app = await startApp({ dataDir: './.unrdf', port: 0 });
 * console.log(app.url, app.adminToken.path, app.verifierKeyPath);
 */
export async function startApp(options: AppOptions): Promise<App> {
  const parsed = AppOptionsSchema.safeParse(options);
  if (!parsed.success) throw InvalidInputError.fromZod('app options', parsed.error);
  const o = parsed.data;
  const dataDir = resolve(o.dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });

  const cleanups: (() => unknown)[] = [];
  const unwind = async () => {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // Keep closing the rest; the first error is the one being reported.
      }
    }
  };

  try {
    const telemetry: Telemetry = createTelemetry({
      ...(o.nodeId === undefined ? {} : { instanceId: o.nodeId }),
    });
    cleanups.push(() => telemetry.shutdown());
    // The entities live in the daemon's store (daemon.db); an entities.db of an earlier version is copied in.
    const store: EntityStore = createEntityStore({ importFrom: join(dataDir, ENTITY_STORE_FILE) });
    const builtins = builtinHandlers(store);
    const daemon = createDaemon({
      dataDir,
      ...(o.nodeId === undefined ? {} : { nodeId: o.nodeId }),
      handlers: builtins,
      extensions: [store.extension],
      ...(o.handlerModules === undefined ? {} : { handlerModules: o.handlerModules }),
      ...(o.concurrency === undefined ? {} : { concurrency: o.concurrency }),
      diagnostics: {
        ...(o.logLevel === undefined ? {} : { logLevel: o.logLevel }),
        ...(o.echoLogs === true ? { echo: process.stdout } : {}),
      },
      meter: telemetry.meter,
    });
    const limits = {
      host: o.host ?? DEFAULT_HOST,
      port: o.port ?? DEFAULT_PORT,
      ...(o.rateLimitPerMinute === undefined
        ? {}
        : {
            rateLimit:
              o.rateLimitPerMinute === 0
                ? (false as const)
                : { max: o.rateLimitPerMinute, timeWindowMs: DEFAULT_RATE_LIMIT.timeWindowMs },
          }),
    };
    // The front's thread loads its modules (most of its start-up) while this one starts the daemon.
    const front =
      (o.httpThreads ?? DEFAULT_HTTP_THREADS) === 0
        ? undefined
        : spawnHttpFront({ dataDir, nodeId: daemon.nodeId, ...limits });
    if (front !== undefined) cleanups.push(() => front.abort());
    // Starting takes the data directory's lock: a second daemon here fails before touching anything else.
    await daemon.start();
    cleanups.push(() => daemon.close({ drainMs: 0 }));
    const tokens = openTokenStore(dataDir);
    const adminToken = ensureAdminToken(dataDir, tokens);
    const http =
      front === undefined
        ? await startHttpServer({ daemon, tokens, telemetry, ...limits })
        : await front.listen({
            daemon,
            telemetry,
            // The front checks and digests these itself: the built-ins no handler module replaced.
            frontTypes: Object.keys(builtins).filter((type) => daemon.definitionOf(type) === builtins[type]),
          });
    cleanups.push(() => http.close());
    daemon.logger.logger.info(
      { url: http.url, adminTokenPath: adminToken.path, verifierKeyPath: daemon.verifierKeyPath },
      'listening',
    );

    let closing: Promise<void> | undefined;
    const close = (closeOptions: { readonly drainMs?: number } = {}) => {
      closing ??= (async () => {
        cleanups.length = 0;
        const errors: unknown[] = [];
        const step = async (fn: () => unknown) => {
          try {
            await fn();
          } catch (error) {
            errors.push(error);
          }
        };
        // Order: no new requests, then let running handlers finish and the store close.
        await step(() => http.close());
        await step(() => daemon.close({ drainMs: closeOptions.drainMs ?? DEFAULT_DRAIN_MS }));
        await step(() => telemetry.shutdown());
        if (errors.length > 0) throw new AggregateError(errors, 'the app did not close cleanly');
      })();
      return closing;
    };
    return {
      daemon,
      url: http.url,
      dataDir,
      adminToken,
      verifierKeyPath: daemon.verifierKeyPath,
      close,
      [Symbol.asyncDispose]: () => close(),
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
