import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ensureAptCommand } from '../harness/apt-command.js';

/** The jtbd5-e2e load script (see its header). */
const SLEEP_LOAD = fileURLToPath(new URL('./sleep-load.lua', import.meta.url));

/** wrk (C, epoll), installed from Debian's `wrk` package when missing. */
export function ensureWrk(timeoutMs = 120_000): ReturnType<typeof ensureAptCommand> {
  return ensureAptCommand('wrk', 'wrk', timeoutMs);
}

const WrkResult = z.object({
  /** Responses received (any status). */
  requests: z.number().int().nonnegative(),
  durationUs: z.number().int().positive(),
  /** Responses other than 202. */
  non202: z.number().int().nonnegative(),
  connect: z.number().int().nonnegative(),
  read: z.number().int().nonnegative(),
  write: z.number().int().nonnegative(),
  status: z.number().int().nonnegative(),
  timeout: z.number().int().nonnegative(),
  /** Latency from when wrk wrote the request (not from its slot: see sleep-load.lua). */
  p50Us: z.number().nonnegative(),
  p99Us: z.number().nonnegative(),
  maxUs: z.number().nonnegative(),
});
export type WrkResult = z.infer<typeof WrkResult>;

export interface SleepLoadOptions {
  readonly url: string;
  readonly ratePerSec: number;
  readonly durationMs: number;
  /** Bearer token; undefined sends none. */
  readonly token?: string | undefined;
  readonly handlerMs: number;
  readonly subjects: number;
  readonly connections: number;
}

/**
 * POSTs `sleep` operations at a fixed rate from wrk, one thread. On the two cores the app
 * runs on, wrk takes about half the CPU per request of the Node client (59-64 µs against
 * 114-149 µs, side by side against the bare Fastify server at 5,000/s on a slow VM).
 */
export function runSleepLoad(options: SleepLoadOptions): Promise<WrkResult> {
  const args = [
    '-t1',
    `-c${options.connections}`,
    `-d${Math.round(options.durationMs / 1000)}s`,
    '--timeout',
    '30s',
    '-s',
    SLEEP_LOAD,
    options.url,
    '--',
    String(options.ratePerSec),
    options.token ?? '-',
    String(options.handlerMs),
    String(options.subjects),
  ];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: options.durationMs + 60_000, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`wrk failed: ${(stderr || error.message).trim().slice(-500)}`));
      const line = stdout.split('\n').find((l) => l.startsWith('WRK_RESULT '));
      if (line === undefined) return reject(new Error(`wrk printed no result: ${stdout.slice(-500)}`));
      resolve(WrkResult.parse(JSON.parse(line.slice('WRK_RESULT '.length))));
    });
  });
}
