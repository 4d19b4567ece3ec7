// The processes of the end-to-end benchmarks: the reference app exactly as a user starts
// it (its CLI's `start`), and the bare Fastify echo server as a baseline, each in its own
// Node process on loopback, driven over kept-alive HTTP connections by undici.
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const TSX = createRequire(import.meta.url).resolve('tsx');
/** The app's bin, run on plain Node as users run it (it loads its TypeScript sources itself). */
const APP_BIN = fileURLToPath(new URL('../../../apps/daemon/bin/unrdf-daemon.mjs', import.meta.url));
const ECHO = fileURLToPath(new URL('./echo-server.ts', import.meta.url));

export interface ServerProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Stops the process (SIGTERM, then SIGKILL after 10 s) and waits for it. */
  stop(): Promise<void>;
  /** The tail of its stderr (for error messages). */
  stderr(): string;
}

/** Starts `script` with `args`; a `.ts` script runs through tsx with the workspace's source condition. */
function startProcess(
  script: string,
  args: readonly string[],
  urlPattern: RegExp,
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  const loader = script.endsWith('.ts') ? ['--conditions=@unrdf/source', '--import', TSX] : [];
  const child = spawn(process.execPath, [...nodeArgs, ...loader, script, ...args], {
    // stdin is a pipe the echo server watches; the app ignores it. stdout carries the
    // app's JSON logs: drained, not kept, unless UNRDF_BENCH_APP_STDOUT names a file to
    // append it to (e.g. with --trace-gc-nvp among the node arguments).
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // If the benchmark dies (a thrown error, Ctrl-C), its servers go with it: none is left orphaned.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let out = '';
  let err = '';
  const tee = process.env.UNRDF_BENCH_APP_STDOUT;
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    if (tee) appendFileSync(tee, c);
    if (out.length < 64 * 1024) out += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err = (err + c).slice(-8192);
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within 60 s: ${err.slice(-1000)}`));
    }, 60_000);
    const check = () => {
      const m = urlPattern.exec(out) ?? urlPattern.exec(err);
      if (m?.[1] === undefined) return;
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      resolve({ url: m[1], child, stop, stderr: () => err });
    };
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}) before listening: ${err.slice(-1000)}`));
    });
  });
}

export interface AppProcess extends ServerProcess {
  /** The admin token the app generated on first start. */
  readonly token: string;
  readonly dataDir: string;
}

/** The app's thread layout in this run, for the reports: the default unless UNRDF_BENCH_HTTP_THREADS says. */
export const APP_LAYOUT_NOTE = `App layout: --http-threads ${process.env.UNRDF_BENCH_HTTP_THREADS ?? '1 (default: the HTTP API on a thread of its own)'}${
  process.env.UNRDF_BENCH_HTTP_THREADS === undefined ? '' : ' (set by UNRDF_BENCH_HTTP_THREADS)'
}.`;

/**
 * Starts the reference app (`unrdf-daemon start`) on a fresh data directory, on a free
 * loopback port. `nodeArgs` go to Node itself (e.g. `--cpu-prof` for a profile).
 */
export async function startApp(
  dataDir: string,
  extraArgs: readonly string[] = [],
  nodeArgs: readonly string[] = [],
): Promise<AppProcess> {
  const server = await startProcess(
    APP_BIN,
    // The per-token rate limit stays on (its cost is measured) but far above the offered load.
    [
      'start',
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      'warn',
      '--rate-limit',
      '100000000',
      // A/B runs of the app's thread layout (see apps/daemon --http-threads).
      ...(process.env.UNRDF_BENCH_HTTP_THREADS === undefined
        ? []
        : ['--http-threads', process.env.UNRDF_BENCH_HTTP_THREADS]),
      ...extraArgs,
    ],
    /(http:\/\/127\.0\.0\.1:\d+)/,
    nodeArgs,
  );
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  return { ...server, token, dataDir };
}

/** Starts the bare Fastify echo server (the baseline); with `durableFile`, its POSTs are fsynced to that SQLite file first. */
export function startEcho(options: { readonly durableFile?: string } = {}): Promise<ServerProcess> {
  return startProcess(
    ECHO,
    options.durableFile === undefined ? [] : ['--durable', options.durableFile],
    /listening (http:\/\/\S+)/,
  );
}

/**
 * CPU time (user + system) a process has used so far, in ms (Linux /proc; 10 ms ticks):
 * all its threads, or only thread `tid` (the main thread's tid is the pid).
 */
export function processCpuMs(pid: number, tid?: number): number {
  const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of proc(5).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A reading of each thread of a process, keyed `name/tid` (Linux /proc). */
function perThread(pid: number, read: (tid: number) => number | undefined): Map<string, number> {
  const threads = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const value = read(Number(tid));
      if (value !== undefined) threads.set(`${name}/${tid}`, value);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return threads;
}

/** CPU time (ms) of each thread of a process so far, keyed `name/tid` (Linux /proc). */
export const threadCpuMs = (pid: number): Map<string, number> => perThread(pid, (tid) => processCpuMs(pid, tid));

/** {@link runDelayMs} of each thread of a process so far, keyed `name/tid`. */
export const threadRunDelayMs = (pid: number): Map<string, number> => perThread(pid, (tid) => runDelayMs(pid, tid));

/**
 * How long (ms) a thread has so far been runnable but waiting for a core: the second field
 * of Linux's `/proc/<pid>/task/<tid>/schedstat` ("time spent waiting on a runqueue",
 * Documentation/scheduler/sched-stats.rst). Undefined where the kernel keeps no such count.
 */
export function runDelayMs(pid: number, tid: number = pid): number | undefined {
  try {
    const [onCpu, waiting] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return onCpu === undefined || waiting === undefined || onCpu === 0 ? undefined : waiting / 1e6;
  } catch {
    return undefined;
  }
}

/** A kept-alive connection pool to a server. */
export function poolFor(url: string, connections = 64): Pool {
  return new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
}

/** One JSON request; rejects on a status other than `expect`. */
export async function requestJson<T>(
  pool: Pool,
  method: 'GET' | 'POST',
  path: string,
  options: { readonly token?: string; readonly body?: unknown; readonly expect?: number | readonly number[] } = {},
): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await pool.request({
    method,
    path,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.body.text();
  const expected = options.expect ?? (method === 'POST' ? 202 : 200);
  if (typeof expected === 'number' ? response.statusCode !== expected : !expected.includes(response.statusCode)) {
    throw new Error(`${method} ${path}: HTTP ${response.statusCode} (expected ${expected}): ${text.slice(0, 300)}`);
  }
  return JSON.parse(text) as T;
}

/** Warms a fresh echo server and the client pool (JIT, connections) so the baseline measures steady state. */
export async function warmEcho(pool: Pool, requests = 2000): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < requests) {
      const i = next++;
      if (i % 2 === 0) await requestJson(pool, 'POST', '/v1/operations', { body: { type: 'sleep' }, expect: 202 });
      else await requestJson(pool, 'GET', `/v1/operations/w${i}/receipt`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}
