import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import { LatencyHistogram, type LatencySummary } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';
import { CompletionCounter, variationPct } from './completion-counter.js';
import type { RedisServer } from './redis-server.js';

/**
 * BullMQ (the queue a user would pick instead, on Redis) on the workload of
 * `jtbd5-throughput`: one Queue and one Worker in this process, like the embedded queue,
 * against a local Redis (see redis-server.ts for its durability). Completed jobs are
 * removed at once (less work for Redis than BullMQ's default of keeping them).
 */

export interface BullmqLoad {
  readonly ratePerSec: number;
  readonly durationMs: number;
  readonly concurrency: number;
  readonly handlerMs: number;
  readonly windowMs: number;
  readonly progress?: (done: number, total: number, label: string) => void;
}

export interface BullmqLoadResult {
  /** Completions per second from its first completion to its last. */
  readonly completionsPerSec: number;
  readonly variationPct: number | null;
  readonly windows: number;
  readonly wait: LatencySummary;
  /** Waiting in Redis (arrived, not yet taken by the worker), sampled every 250 ms. */
  readonly maxBacklog: number;
  /** Adds refused, jobs failed, and jobs not finished 60 s after the last arrival, in % of arrivals. */
  readonly failureRatePct: number;
}

let runs = 0;

function connectionOf(redis: RedisServer) {
  return { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
}

/**
 * Open-loop arrivals (`queue.add` on schedule whatever BullMQ does); the wait runs from
 * each arrival's intended time (carried in the job's data: same process, same clock) to
 * the start of its processor.
 */
export async function bullmqOpenLoop(redis: RedisServer, load: BullmqLoad): Promise<BullmqLoadResult> {
  const name = `jtbd5-load-${++runs}`;
  const connection = connectionOf(redis);
  const queue = new Queue(name, { connection, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
  const wait = new LatencyHistogram();
  const completions = new CompletionCounter(load.windowMs);
  let done = 0;
  let failed = 0;
  const worker = new Worker<{ t: number }>(
    name,
    async (job) => {
      wait.record(performance.now() - job.data.t);
      await sleep(load.handlerMs);
    },
    { connection, concurrency: load.concurrency },
  );
  let firstCompletion: number | undefined;
  let lastCompletion: number | undefined;
  worker.on('completed', () => {
    done++;
    const now = performance.now();
    firstCompletion ??= now;
    lastCompletion = now;
    completions.record(now);
  });
  worker.on('failed', () => {
    failed++;
  });
  worker.on('error', () => undefined);
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    let maxBacklog = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxBacklog = Math.max(maxBacklog, await queue.getWaitingCount().catch(() => 0));
        await sleep(250);
      }
    })();
    const label = `BullMQ ${load.ratePerSec}/s`;
    const { issued, errors } = await openLoop({
      ratePerSec: load.ratePerSec,
      durationMs: load.durationMs,
      fire: (intendedAt) => queue.add('work', { t: intendedAt }),
      onTick: (n, total) => load.progress?.(n, total, label),
    });
    const until = performance.now() + 60_000;
    while (done + failed < issued - errors && performance.now() < until) await sleep(20);
    sampling = false;
    await sampler;
    const rates = completions.windowRates(load.durationMs);
    const unfinished = Math.max(0, issued - errors - done - failed);
    // Completions over the span from the first to the last: its rate while it had work.
    // (The windows start at the first completion; a contender that falls behind can
    // complete a few and then stall for a whole window, which its mean would hide.)
    const spanMs = (lastCompletion ?? 0) - (firstCompletion ?? 0);
    return {
      completionsPerSec: spanMs > 0 ? ((done - 1) * 1000) / spanMs : 0,
      variationPct: variationPct(rates),
      windows: rates.length,
      wait: wait.summary(),
      maxBacklog,
      failureRatePct: issued === 0 ? 0 : ((errors + failed + unfinished) / issued) * 100,
    };
  } finally {
    await worker.close(true).catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}

/**
 * The no-op drain: `total` jobs added one by one with at most `window` outstanding (a
 * producer with backpressure, as in the embedded queue's drain), no-op processors, timed
 * from the first add to the last completion.
 */
export async function bullmqNoopDrain(
  redis: RedisServer,
  total: number,
  progress?: (done: number, total: number, label: string) => void,
): Promise<number> {
  const name = `jtbd5-noop-${++runs}`;
  const connection = connectionOf(redis);
  const queue = new Queue(name, { connection, defaultJobOptions: { removeOnComplete: true, removeOnFail: true } });
  let completed = 0;
  let wake: (() => void) | undefined;
  const worker = new Worker(name, async () => null, { connection, concurrency: 1000 });
  const settle = () => {
    completed++;
    if (wake && (completed === total || completed % 1000 === 0)) {
      wake();
      wake = undefined;
    }
  };
  worker.on('completed', settle);
  worker.on('failed', settle);
  worker.on('error', () => undefined);
  try {
    await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
    const window = 5000;
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      while (i - completed >= window) await new Promise<void>((resolve) => (wake = resolve));
      void queue.add('noop', i).catch(settle);
      if (i % 256 === 0) {
        progress?.(completed, total, 'BullMQ no-op drain');
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    while (completed < total) await new Promise<void>((resolve) => (wake = resolve));
    return (total * 1000) / (performance.now() - start);
  } finally {
    await worker.close(true).catch(() => undefined);
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close().catch(() => undefined);
  }
}
