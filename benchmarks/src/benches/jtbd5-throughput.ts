import { statSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { openQueue, type Queue } from '@unrdf/queue';
import PQueue from 'p-queue';
import { sqliteDurableCommitRate } from '../baselines/durable-commit.js';
import type { BenchContext, Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';
import type { Baseline, MetricInput } from '../harness/report.js';

// JTBD 5 of the SLO spec: throughput under concurrency. Handlers take 100 ms, up to
// 1000 run at once, arrivals are open-loop (a fixed schedule whatever the queue does)
// and every wait runs from the arrival's *intended* time, so a stall shows up as wait
// instead of thinning the load. Completions are counted in 5 s windows.

const HANDLER_MS = 100;
const WINDOW_MS = 5000;
const SPEC = { throughput: 33, waitP99: 500, variation: 5, depth: 500, failureRate: 0.5 } as const;

interface Phase {
  readonly ratePerSec: number;
  readonly durationMs: number;
}

interface Profile {
  readonly name: string;
  readonly concurrency: number;
  readonly phases: readonly Phase[];
  /** Our goals from the issue (null: only the spec's target applies). */
  readonly goals: { readonly waitP99: number | null; readonly completions: number | null };
}

interface ProfileResult {
  readonly arrivalsPerSec: number;
  readonly completionsPerSec: number;
  readonly variationPct: number | null;
  readonly windows: number;
  readonly wait: LatencyHistogram;
  readonly maxBacklog: number;
  readonly failureRatePct: number;
  readonly eventLoopP99: number;
  readonly rssMaxMb: number;
  readonly recoveryMs: number | null;
  /** WAL size at the end of the run (checkpoints keep it bounded). */
  readonly walMb: number;
}

function profiles(quick: boolean): Profile[] {
  const s = (full: number, short: number) => (quick ? short : full) * 1000;
  return [
    // Spec concurrency levels, arrivals at 90% of each level's Little's-law limit.
    {
      name: 'light',
      concurrency: 10,
      phases: [{ ratePerSec: 90, durationMs: s(60, 5) }],
      goals: { waitP99: 50, completions: 90 },
    },
    {
      name: 'normal',
      concurrency: 100,
      phases: [{ ratePerSec: 900, durationMs: s(60, 5) }],
      goals: { waitP99: 50, completions: 900 },
    },
    // The issue's two rates at concurrency 1000 (limit 10,000/s).
    {
      name: 'heavy',
      concurrency: 1000,
      phases: [{ ratePerSec: 5000, durationMs: s(60, 5) }],
      goals: { waitP99: 20, completions: 5000 },
    },
    {
      name: 'extreme',
      concurrency: 1000,
      phases: [{ ratePerSec: 9000, durationMs: s(60, 5) }],
      goals: { waitP99: 50, completions: 9000 },
    },
    {
      name: 'stress',
      concurrency: 1000,
      phases: [{ ratePerSec: 9000, durationMs: s(300, 10) }],
      goals: { waitP99: 50, completions: 9000 },
    },
    // Overload past the limit (12,000/s > 10,000/s) builds a backlog, then light load: how fast it drains.
    {
      name: 'recovery',
      concurrency: 1000,
      phases: [
        { ratePerSec: 12_000, durationMs: s(60, 3) },
        { ratePerSec: 1000, durationMs: s(120, 3) },
      ],
      goals: { waitP99: null, completions: null },
    },
  ];
}

/**
 * Completion times at millisecond resolution, counted from the first completion: 4 bytes
 * per millisecond of run instead of 8 per completion (a 5-minute run at 9,000/s would
 * otherwise keep 2.7 million timestamps, and a soak hours of them).
 */
class CompletionCounter {
  #counts = new Uint32Array(60_000);
  #first: number | undefined;
  #last = 0;

  record(t: number): void {
    this.#first ??= t;
    this.#last = t;
    const ms = Math.floor(t - this.#first);
    if (ms >= this.#counts.length) {
      const grown = new Uint32Array(Math.max(ms + 1, this.#counts.length * 2));
      grown.set(this.#counts);
      this.#counts = grown;
    }
    this.#counts[ms] = (this.#counts[ms] as number) + 1;
  }

  /**
   * Completions per 5 s window, the windows starting at the first completion (steady
   * state: one handler time after the first arrival). A run shorter than a window gives
   * one window as long as the span of completions.
   */
  windowRates(durationMs: number): number[] {
    const first = this.#first;
    if (first === undefined) return [0];
    const span = this.#last - first;
    const windowMs = Math.max(1, Math.min(WINDOW_MS, durationMs, span));
    const count = Math.max(1, Math.floor(Math.min(durationMs, span) / windowMs));
    const rates = new Array<number>(count).fill(0);
    for (let ms = 0; ms < this.#counts.length; ms++) {
      const n = this.#counts[ms] as number;
      if (n === 0) continue;
      // The end of the last window is inclusive (it may be the last completion itself).
      let k = Math.floor(ms / windowMs);
      if (k === count && ms <= count * windowMs) k = count - 1;
      if (k >= 0 && k < count) rates[k] = (rates[k] as number) + n;
    }
    return rates.map((n) => (n * 1000) / windowMs);
  }
}

function variationPct(rates: readonly number[]): number | null {
  if (rates.length < 2) return null;
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const sd = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length);
  return mean === 0 ? null : (sd / mean) * 100;
}

/** Samples backlog and RSS every 50 ms. */
function sampler(backlog: () => number) {
  let maxBacklog = 0;
  let rss = 0;
  const samples: { t: number; backlog: number }[] = [];
  const timer = setInterval(() => {
    const b = backlog();
    maxBacklog = Math.max(maxBacklog, b);
    rss = Math.max(rss, process.memoryUsage.rss());
    samples.push({ t: performance.now(), backlog: b });
  }, 50);
  return {
    stop: () => {
      clearInterval(timer);
      return { maxBacklog, rssMaxMb: rss / 2 ** 20, samples };
    },
  };
}

/** Runs phases back to back (each an open loop), the later ones starting on schedule. */
async function runPhases(
  phases: readonly Phase[],
  fire: (intendedAt: number) => Promise<unknown>,
  ctx: BenchContext,
  label: string,
) {
  let offset = 0;
  const runs = phases.map((phase) => {
    const at = offset;
    offset += phase.durationMs;
    return sleep(at).then(() =>
      openLoop({
        ratePerSec: phase.ratePerSec,
        durationMs: phase.durationMs,
        fire,
        onTick: (issued, total) => ctx.progress.update(issued, total, `${label} ${phase.ratePerSec}/s`),
      }),
    );
  });
  const results = await Promise.all(runs);
  return {
    issued: results.reduce((a, r) => a + r.issued, 0),
    errors: results.reduce((a, r) => a + r.errors, 0),
  };
}

async function runDurable(profile: Profile, ctx: BenchContext): Promise<ProfileResult> {
  const intended = new Map<number, number>();
  const wait = new LatencyHistogram();
  const waiters = new Map<string, (ok: boolean) => void>();
  const completions = new CompletionCounter();
  let dead = 0;
  let seq = 0;
  const dbPath = join(ctx.scratchDir, `${profile.name}.db`);
  const queue: Queue = await openQueue({
    path: dbPath,
    concurrency: profile.concurrency,
    types: {
      work: {
        timeoutMs: 30_000,
        handler: async (payload: { i: number }) => {
          wait.record(performance.now() - (intended.get(payload.i) ?? performance.now()));
          intended.delete(payload.i);
          await sleep(HANDLER_MS);
        },
      },
    },
  });
  // Events are emitted as soon as a batch is durable, which can be before the
  // enqueue's own promise continuation runs: remember outcomes nobody waits for yet.
  const early = new Map<string, boolean>();
  queue.onEvent((event) => {
    if (event.kind === 'completed' || event.kind === 'dead') {
      if (event.kind === 'completed') completions.record(performance.now());
      else dead++;
      const waiter = waiters.get(event.id);
      if (waiter) {
        waiters.delete(event.id);
        waiter(event.kind === 'completed');
      } else early.set(event.id, event.kind === 'completed');
    }
  });
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  // Backlog: arrived and not yet started (ready, plus claimed and waiting for a slot).
  const sample = sampler(() => {
    const s = queue.stats();
    return s.ready + s.leased - s.inFlight;
  });
  const start = performance.now();
  const { issued, errors } = await runPhases(
    profile.phases,
    async (intendedAt) => {
      const i = seq++;
      intended.set(i, intendedAt);
      const op = await queue.enqueue('work', { i });
      const known = early.get(op.id);
      early.delete(op.id);
      const ok = known ?? (await new Promise<boolean>((resolve) => waiters.set(op.id, resolve)));
      if (!ok) throw new Error('dead');
    },
    ctx,
    profile.name,
  );
  const { maxBacklog, rssMaxMb, samples } = sample.stop();
  eld.disable();
  const walMb = fileMb(`${dbPath}-wal`);
  await queue.close({ drainMs: 1000 });
  const first = profile.phases[0] as Phase;
  const rates = completions.windowRates(first.durationMs);
  // Recovery: from the end of the first phase until the backlog is back to zero.
  let recoveryMs: number | null = null;
  if (profile.phases.length > 1) {
    const overloadEnd = start + first.durationMs;
    const drained = samples.find((s) => s.t >= overloadEnd && s.backlog === 0);
    recoveryMs = drained === undefined ? Number.POSITIVE_INFINITY : drained.t - overloadEnd;
  }
  return {
    arrivalsPerSec: first.ratePerSec,
    completionsPerSec: rates.reduce((a, b) => a + b, 0) / rates.length,
    variationPct: variationPct(rates),
    windows: rates.length,
    wait,
    maxBacklog,
    failureRatePct: issued === 0 ? 0 : ((errors + dead) / issued) * 100,
    eventLoopP99: eld.percentile(99) / 1e6,
    rssMaxMb,
    recoveryMs,
    walMb,
  };
}

function fileMb(path: string): number {
  try {
    return statSync(path).size / 2 ** 20;
  } catch {
    return 0;
  }
}

/** The in-memory ceiling on the same workload: p-queue, nothing persisted. */
async function runPQueue(ratePerSec: number, durationMs: number, ctx: BenchContext) {
  const queue = new PQueue({ concurrency: 1000 });
  const wait = new LatencyHistogram();
  await openLoop({
    ratePerSec,
    durationMs,
    fire: (intendedAt) =>
      queue.add(async () => {
        wait.record(performance.now() - intendedAt);
        await sleep(HANDLER_MS);
      }),
    onTick: (issued, total) => ctx.progress.update(issued, total, `p-queue ${ratePerSec}/s`),
  });
  return wait;
}

/**
 * Drains as fast as possible: enqueue, claim, complete, all durable, with no-op handlers.
 * Also the CPU time per operation (process.cpuUsage: every thread of the process), which
 * moves much less than the rate when other processes share the machine.
 */
async function noopThroughput(total: number, ctx: BenchContext): Promise<{ rate: number; cpuUsPerOp: number }> {
  let completed = 0;
  let wake: (() => void) | undefined;
  const queue = await openQueue({
    path: join(ctx.scratchDir, 'noop.db'),
    concurrency: 1000,
    types: { noop: { handler: () => null } },
  });
  queue.onEvent((event) => {
    if (event.kind !== 'completed') return;
    completed++;
    if (wake && (completed === total || completed % 1000 === 0)) {
      wake();
      wake = undefined;
    }
  });
  const start = performance.now();
  const cpu = process.cpuUsage();
  const window = 5000;
  for (let i = 0; i < total; i++) {
    // Keep a bounded number outstanding, as a producer with backpressure would.
    while (i - completed >= window) await new Promise<void>((resolve) => (wake = resolve));
    void queue.enqueue('noop', i);
    if (i % 256 === 0) {
      ctx.progress.update(completed, total, 'no-op drain');
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  while (completed < total) await new Promise<void>((resolve) => (wake = resolve));
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpu);
  await queue.close();
  return { rate: (total * 1000) / elapsed, cpuUsPerOp: (used.user + used.system) / total };
}

async function pqueueNoop(total: number): Promise<number> {
  const queue = new PQueue({ concurrency: 1000 });
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    void queue.add(() => null);
    if (i % 256 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await queue.onIdle();
  return (total * 1000) / (performance.now() - start);
}

export const benchmark: Benchmark = {
  name: 'jtbd5-throughput',
  description:
    'durable queue under open-loop load (100 ms handlers, concurrency 1000, 5 s windows, waits from intended arrival); p-queue and Little-law baselines',
  async run(ctx) {
    const { quick, log } = ctx;
    const metrics: Record<string, MetricInput> = {};
    const notes: string[] = [];
    let rssMax = 0;
    let walMax = 0;
    for (const profile of profiles(quick)) {
      log(
        `profile ${profile.name}: concurrency ${profile.concurrency}, ${profile.phases.map((p) => `${p.ratePerSec}/s for ${p.durationMs / 1000} s`).join(' then ')}`,
      );
      const r = await runDurable(profile, ctx);
      const w = r.wait.summary();
      const p = profile.name;
      rssMax = Math.max(rssMax, r.rssMaxMb);
      walMax = Math.max(walMax, r.walMb);
      log(
        `${p}: ${Math.round(r.completionsPerSec)}/s over ${r.windows} window(s), wait p50 ${w.p50} p99 ${w.p99} p99.9 ${w.p999} ms, backlog max ${r.maxBacklog}, RSS max ${Math.round(r.rssMaxMb)} MiB`,
      );
      if (r.recoveryMs === null) {
        metrics[`${p}_completions`] = {
          value: r.completionsPerSec,
          unit: 'op/s',
          better: 'higher',
          specTarget: SPEC.throughput,
          // Keeping up: completions cannot exceed arrivals, so the issue's ">= arrival rate"
          // is judged with 1% allowed for where the window's edges fall.
          goal: profile.goals.completions === null ? null : profile.goals.completions * 0.99,
        };
      } else {
        metrics[`${p}_overload_completions`] = {
          value: r.completionsPerSec,
          unit: 'op/s',
          better: 'higher',
          specTarget: SPEC.throughput,
        };
        metrics[`${p}_drain_time`] = { value: r.recoveryMs, unit: 'ms', better: 'lower' };
      }
      if (r.variationPct !== null) {
        metrics[`${p}_variation`] = {
          value: r.variationPct,
          unit: '%',
          better: 'lower',
          specTarget: SPEC.variation,
          goal: 2,
        };
      }
      metrics[`${p}_wait_p50`] = { value: w.p50, unit: 'ms', better: 'lower' };
      metrics[`${p}_wait_p99`] = {
        value: w.p99,
        unit: 'ms',
        better: 'lower',
        ...(r.recoveryMs === null ? { specTarget: SPEC.waitP99, goal: profile.goals.waitP99 } : {}),
      };
      metrics[`${p}_wait_p999`] = { value: w.p999, unit: 'ms', better: 'lower' };
      metrics[`${p}_max_backlog`] = {
        value: r.maxBacklog,
        unit: 'op',
        better: 'lower',
        ...(r.recoveryMs === null ? { specTarget: SPEC.depth } : {}),
      };
      metrics[`${p}_failure_rate`] = {
        value: r.failureRatePct,
        unit: '%',
        better: 'lower',
        specTarget: SPEC.failureRate,
        goal: 0,
      };
      metrics[`${p}_event_loop_p99`] = { value: r.eventLoopP99, unit: 'ms', better: 'lower' };
      // Per profile: a backlog (recovery's overload builds one on purpose) holds memory
      // for every operation waiting, in the queue and in this load generator.
      metrics[`${p}_rss_max`] = { value: r.rssMaxMb, unit: 'MiB', better: 'lower' };
    }
    metrics.rss_max = { value: rssMax, unit: 'MiB', better: 'lower' };
    metrics.wal_size_max = { value: walMax, unit: 'MiB', better: 'lower' };

    log('no-op handlers: durable drain');
    const noopTotal = quick ? 60_000 : 300_000;
    const noop = await noopThroughput(noopTotal, ctx);
    metrics.noop_durable_throughput = { value: noop.rate, unit: 'op/s', better: 'higher', goal: 25_000 };
    metrics.noop_cpu_per_op = { value: noop.cpuUsPerOp, unit: 'µs', better: 'lower' };

    log('baselines: p-queue (in memory) on the same workload, fsynced commit rate');
    const pq = (await runPQueue(9000, quick ? 5000 : 60_000, ctx)).summary();
    const pqNoop = await pqueueNoop(noopTotal);
    const commits = sqliteDurableCommitRate(ctx.scratchDir, quick ? 1000 : 5000);
    const baselines: Record<string, Baseline> = {
      littles_law_limit: {
        value: 1000 / (HANDLER_MS / 1000),
        unit: 'op/s',
        note: 'concurrency / handler time = 1000 / 0.1 s: no queue can complete more',
      },
      pqueue_9000_wait_p99: { value: pq.p99, unit: 'ms', note: 'p-queue 10, in memory, NOT DURABLE, 9,000 arrivals/s' },
      pqueue_9000_wait_p50: { value: pq.p50, unit: 'ms', note: 'p-queue 10, in memory, NOT DURABLE, 9,000 arrivals/s' },
      pqueue_noop_throughput: { value: pqNoop, unit: 'op/s', note: 'p-queue 10, in memory, NOT DURABLE, no-op tasks' },
      sqlite_fsynced_commits: {
        value: commits.perSecond,
        unit: 'commit/s',
        note: 'sequential one-row transactions, WAL + synchronous=FULL: the durable floor without group commit',
      },
    };
    notes.push(
      'Durability: @unrdf/queue figures are durable (SQLite WAL; enqueue acknowledged only once its commit is fsynced, the fsync off the event loop; checkpoints under synchronous=FULL); p-queue is in memory and not durable.',
      'Quoted, not measured here (issue #4, same kind of machine): BullMQ on Redis 7 with appendfsync always waits P99 330-470 ms at 5,000 arrivals/s, completes only 8,000-8,600/s with P99 waits of 1-5 s at 9,000/s, and drains 10,000-14,000 no-op jobs/s.',
      "Profiles: light/normal run the spec concurrency levels (10, 100) at 90% of their Little-law limit; heavy/extreme/stress run concurrency 1000 at the issue's 5,000 and 9,000 arrivals/s; recovery overloads at 12,000/s (above the 10,000/s limit) and then drops to 1,000/s.",
      `Completions are counted in ${WINDOW_MS / 1000} s windows from the first completion (a quick run has one window); variation = stdev/mean of window rates, shown only with 2+ windows.`,
      'The machine is shared: the p-queue and fsync baselines of the same run show how loaded it was (idle: p-queue P99 about 1.5 ms at 9,000/s, 17,500 fsynced commits/s).',
      'Generator, queue and handlers share one Node process and event loop (embedded use).',
      'Completion goals are the arrival rates less 1% for window edges (completions cannot exceed arrivals).',
    );
    return { metrics, baselines, notes };
  },
};
