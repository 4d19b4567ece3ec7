import { statSync } from 'node:fs';
import { DaemonError, DataDirLockedError, InvalidInputError } from '@unrdf/daemon';
import { type App, startApp } from '../app.js';
import { TokenStoreError } from '../auth/tokens.js';
import { failure, usageError } from './errors.js';
import type { CliIo } from './program.js';

/** What `start` was asked for, defaults resolved. */
export interface StartRequest {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly nodeId: string | undefined;
  readonly handlerModules: readonly string[] | undefined;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  readonly drainMs: number;
  readonly concurrency: number;
  /** Requests per minute per API token; 0 turns the limit off. */
  readonly rateLimitPerMinute: number;
  /** 1: the HTTP API on a thread of its own; 0: on the daemon's thread. */
  readonly httpThreads: number;
}

/**
 * The same signal again this soon after the first is one Ctrl-C delivered twice (the
 * terminal signals the whole process group, and `pnpm run` may forward it too): ignore it.
 */
const DUPLICATE_SIGNAL_MS = 1_000;

const quote = (s: string) => (/^[A-Za-z0-9_./:@%+=-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`);

/** The permission bits of `path` (e.g. 0o600), or undefined when it cannot be read. */
function modeOf(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o777;
  } catch {
    return undefined;
  }
}

function banner(app: App): string {
  const token = app.adminToken;
  const mode = token.token === undefined ? undefined : modeOf(token.path);
  const tokenLine =
    token.token === undefined
      ? `${token.path} is gone; the admin token still works if you kept it`
      : `${token.path} (mode 0${(mode ?? 0o600).toString(8)}${token.created ? ', created now' : ''})`;
  // It is written 0600; a file others can read lets them act as admin.
  const exposed =
    mode !== undefined && (mode & 0o077) !== 0
      ? [`  WARNING: others can read the admin token (mode 0${mode.toString(8)}); chmod 600 ${quote(token.path)}`]
      : [];
  const tokenFile = quote(token.path);
  const dataDir = quote(app.dataDir);
  return [
    '',
    `unrdf daemon ${app.daemon.nodeId} is running (ledger "${app.daemon.origin}")`,
    `  URL:           ${app.url}`,
    `  data dir:      ${app.dataDir}`,
    `  admin token:   ${tokenLine}`,
    ...exposed,
    `  verifier key:  ${app.verifierKeyPath} (mode 0644: give it to whoever verifies receipts)`,
    '',
    'Submit an operation with curl:',
    `  curl -sS -X POST ${app.url}/v1/operations \\`,
    `    -H "authorization: Bearer $(cat ${tokenFile})" -H 'content-type: application/json' \\`,
    `    -d '{"type":"sleep","subject":"urn:example:1","input":{"ms":10}}'`,
    'or with the CLI, then fetch the receipt and verify it offline:',
    `  unrdf-daemon submit --url ${app.url} --data-dir ${dataDir} --type sleep --subject urn:example:1 --input '{"ms":10}' --wait`,
    `  unrdf-daemon receipt <id> --url ${app.url} --data-dir ${dataDir} --out receipt.json`,
    `  unrdf-daemon verify receipt.json --key ${quote(app.verifierKeyPath)}`,
    '',
    'Logs (JSON lines) follow on stdout. Ctrl-C or SIGTERM stops gracefully; a second signal stops at once.',
    '',
  ].join('\n');
}

/**
 * Runs `start`: the app until SIGINT/SIGTERM, then a graceful close (a second signal
 * exits at once with code 1).
 * @throws {CliError} exit 1 when the data directory is locked or the port taken; 2 for bad options.
 */
export async function runStart(request: StartRequest, io: CliIo): Promise<void> {
  // One handler from before the start on: a first signal while the app starts (recovery
  // can take a while) is kept and acted on once it has started, a graceful close rather
  // than the default death mid-start; a second, different one (or the same after a second)
  // exits at once.
  let first: { readonly signal: NodeJS.Signals; readonly at: number } | undefined;
  let shutDown: (() => void) | undefined; // set once started
  const onSignal = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (first !== undefined) {
      if (signal === first.signal && now - first.at < DUPLICATE_SIGNAL_MS) return;
      io.stderr.write(`\n${signal} again: exiting now without draining\n`);
      process.exit(1);
    }
    first = { signal, at: now };
    if (shutDown === undefined) io.stderr.write(`\n${signal}: shutting down once started\n`);
    else shutDown();
  };
  const stopListening = () => {
    for (const s of ['SIGINT', 'SIGTERM'] as const) process.off(s, onSignal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let app: App;
  try {
    app = await startApp({
      dataDir: request.dataDir,
      host: request.host,
      port: request.port,
      ...(request.nodeId === undefined ? {} : { nodeId: request.nodeId }),
      ...(request.handlerModules === undefined ? {} : { handlerModules: [...request.handlerModules] }),
      logLevel: request.logLevel,
      echoLogs: true,
      concurrency: request.concurrency,
      rateLimitPerMinute: request.rateLimitPerMinute,
      httpThreads: request.httpThreads,
    });
  } catch (error) {
    stopListening();
    if (error instanceof DataDirLockedError) {
      throw failure(
        `${error.message}\n(another unrdf daemon, pid ${error.pid}, runs on this data directory; one daemon per data directory)`,
        { cause: error },
      );
    }
    if (error instanceof InvalidInputError) throw usageError(error.message.split('\n')[0] ?? 'bad input', error.issues);
    if (error instanceof DaemonError || error instanceof TokenStoreError)
      throw failure(error.message, { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw failure(`cannot listen on ${request.host}:${request.port} (${code}); pick another --port or --host`, {
        cause: error,
      });
    }
    throw error;
  }
  io.stderr.write(banner(app));

  await new Promise<void>((resolveStopped, rejectStopped) => {
    shutDown = () => {
      io.stderr.write(
        `\n${first?.signal}: shutting down (draining running operations for up to ${request.drainMs} ms)\n`,
      );
      app.close({ drainMs: request.drainMs }).then(
        () => {
          stopListening();
          io.stderr.write('stopped\n');
          resolveStopped();
        },
        (error: unknown) => rejectStopped(error),
      );
    };
    if (first !== undefined) shutDown();
  });
}
