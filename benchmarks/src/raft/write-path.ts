import { readFileSync } from 'node:fs';
import { LatencyHistogram } from '../harness/histogram.js';

/** One client's writes: resolves once the write is acknowledged (committed, applied). */
export type Put = (key: string, value: string) => Promise<void>;

export interface WritePathResult {
  readonly sequential: LatencyHistogram;
  readonly sequentialRate: number;
  readonly inflight: LatencyHistogram;
  readonly inflightRate: number;
  /** CPU ms (user + system) the server processes spent per 1,000 writes, or NaN off Linux. */
  readonly sequentialCpuPer1000: number;
  readonly inflightCpuPer1000: number;
}

/**
 * CPU time (user + system, ms) the processes used so far, from /proc (Linux): unlike
 * latency, the cost per write barely moves when other work shares the machine.
 */
export function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      return Number.NaN;
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

const VALUE = 'x'.repeat(256);

/**
 * The write-path workload of issue 5: 256-byte values, first one client writing
 * sequentially for `sequentialMs` (after 50 warm-up writes), then 64 clients each with
 * one write in flight for `inflightMs`. `client(name)` makes one client's `Put`.
 */
export async function measureWritePath(
  client: (name: string) => Put,
  options: { readonly sequentialMs: number; readonly inflightMs: number; readonly pids?: readonly number[] },
): Promise<WritePathResult> {
  const pids = options.pids ?? [];
  const single = client('sequential');
  for (let i = 0; i < 50; i++) await single(`w${i % 16}`, VALUE);
  const sequential = new LatencyHistogram();
  let count = 0;
  const cpu0 = cpuMs(pids);
  const t0 = performance.now();
  const seqDeadline = t0 + options.sequentialMs;
  while (performance.now() < seqDeadline) {
    const s = performance.now();
    await single(`s${count % 16}`, VALUE);
    sequential.record(performance.now() - s);
    count++;
  }
  const sequentialRate = (count * 1000) / (performance.now() - t0);
  const cpu1 = cpuMs(pids);
  const inflight = new LatencyHistogram();
  let done = 0;
  const f0 = performance.now();
  const deadline = f0 + options.inflightMs;
  await Promise.all(
    Array.from({ length: 64 }, async (_, c) => {
      const put = client(`inflight-${c}`);
      for (let i = 0; performance.now() < deadline; i++) {
        const s = performance.now();
        await put(`f${c}-${i % 8}`, VALUE);
        inflight.record(performance.now() - s);
        done++;
      }
    }),
  );
  const inflightRate = (done * 1000) / (performance.now() - f0);
  const cpu2 = cpuMs(pids);
  return {
    sequential,
    sequentialRate,
    inflight,
    inflightRate,
    sequentialCpuPer1000: ((cpu1 - cpu0) * 1000) / Math.max(1, count),
    inflightCpuPer1000: ((cpu2 - cpu1) * 1000) / Math.max(1, done),
  };
}
