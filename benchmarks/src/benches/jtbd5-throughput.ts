import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
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
import { bullmqNoopDrain, bullmqOpenLoop } from '../queue/bullmq-contender.js';
import { CompletionCounter, variationPct } from '../queue/completion-counter.js';
import { ensureRedisServer, REDIS_DURABILITY, RedisServer } from '../queue/redis-server.js';

// JTBD 5 of the SLO spec: throughput under concurrency. Handlers take 100 ms, up to
// 1000 run at once, arrivals are open-loop (a fixed schedule whatever the queue does)
// and every wait runs from the arrival's *intended* time, so a stall shows up as wait
// instead of thinning the load. Completions are counted in 5 s windows.

const HANDLER_MS = 100;
const WINDOW_MS = 5000;
/** Windows of the per-window P99 wait, by intended arrival (the soak's 30 s samples). */
const WAIT_WINDOW_MS = 30_000;
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
  /** P99 wait of each WAIT_WINDOW_MS window of intended arrivals (0 for a window with none). */
  readonly windowWaitP99: readonly number[];
  /** Windows of `windowWaitP99` with no waits at all. */
  readonly emptyWaitWindows: number;
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
  const wait = new LatencyHistogram();
  const windowWaits: LatencyHistogram[] = [];
  const lastWindow = Math.max(0, Math.ceil((profile.phases[0] as Phase).durationMs / WAIT_WINDOW_MS) - 1);
  let start = Number.POSITIVE_INFINITY;
  const completions = new CompletionCounter(WINDOW_MS);
  let completed = 0;
  let dead = 0;
  const dbPath = join(ctx.scratchDir, `${profile.name}.db`);
  const queue: Queue = await openQueue({
    path: dbPath,
    concurrency: profile.concurrency,
    types: {
      work: {
        timeoutMs: 30_000,
        // The intended arrival travels in the payload (same process, same clock): the
        // generator keeps nothing per waiting operation but its enqueue's promise.
        handler: async (payload: { t: number }) => {
          const waited = performance.now() - payload.t;
          wait.record(waited);
          // The generator starts a moment after `start`: its last arrivals belong to the last window.
          const k = Math.min(lastWindow, Math.max(0, Math.floor((payload.t - start) / WAIT_WINDOW_MS)));
          windowWaits[k] ??= new LatencyHistogram();
          windowWaits[k].record(waited);
          await sleep(HANDLER_MS);
        },
      },
    },
  });
  queue.onEvent((event) => {
    if (event.kind === 'completed') {
      completed++;
      completions.record(performance.now());
    } else if (event.kind === 'dead') dead++;
  });
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  // Backlog: arrived and not yet started (ready, plus claimed and waiting for a slot).
  const sample = sampler(() => {
    const s = queue.stats();
    return s.ready + s.leased - s.inFlight;
  });
  start = performance.now();
  // An arrival is done for the generator once its enqueue is acknowledged (durable); a
  // refused enqueue counts as an error. Completions and dead operations come as events.
  const { issued, errors } = await runPhases(
    profile.phases,
    (intendedAt) => queue.enqueue('work', { t: intendedAt }),
    ctx,
    profile.name,
  );
  // Then every accepted operation must end (bounded: what has not is counted as failed).
  const until = performance.now() + 300_000;
  while (completed + dead < issued - errors && performance.now() < until) await sleep(20);
  const unfinished = Math.max(0, issued - errors - completed - dead);
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
    windowWaitP99: Array.from(windowWaits, (h) => (h === undefined ? 0 : h.summary().p99)),
    emptyWaitWindows: Array.from(windowWaits, (h) => h === undefined || h.count === 0).filter(Boolean).length,
    maxBacklog,
    failureRatePct: issued === 0 ? 0 : ((errors + dead + unfinished) / issued) * 100,
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

/**
 * BullMQ on a local Redis (`appendfsync always`), side by side on the same workload: the
 * open loop at 5,000/s and 9,000/s and the no-op drain, with the measured ratios. Skipped,
 * with a note saying why, when redis-server cannot be installed or started.
 */
async function bullmqSideBySide(args: {
  ctx: BenchContext;
  quick: boolean;
  noopTotal: number;
  ours: ReadonlyMap<number, { completions: number; waitP99: number }>;
  oursNoop: number | undefined;
  baselines: Record<string, Baseline>;
  notes: string[];
}): Promise<void> {
  const { ctx, quick, noopTotal, ours, oursNoop, baselines, notes } = args;
  ctx.log('BullMQ on Redis, side by side (installing redis-server if missing)');
  const installed = await ensureRedisServer();
  if (!installed.ok) {
    ctx.log(`BullMQ skipped: ${installed.reason}`);
    notes.push(`BullMQ on Redis was NOT measured in this run (redis-server unavailable: ${installed.reason}).`);
    return;
  }
  let redis: RedisServer;
  try {
    redis = await RedisServer.start();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    ctx.log(`BullMQ skipped: ${reason}`);
    notes.push(`BullMQ on Redis was NOT measured in this run (redis-server did not start: ${reason}).`);
    return;
  }
  const label = `BullMQ 6.7 on Redis ${redis.version} (${REDIS_DURABILITY})`;
  const progress = (done: number, total: number, what: string) => ctx.progress.update(done, total, what);
  const ratios: string[] = [];
  const bullLoads: string[] = [];
  try {
    for (const rate of [5000, 9000]) {
      const loadBefore = loadavg()[0] ?? 0;
      const b = await bullmqOpenLoop(redis, {
        ratePerSec: rate,
        durationMs: quick ? 5000 : 60_000,
        concurrency: 1000,
        handlerMs: HANDLER_MS,
        windowMs: WINDOW_MS,
        progress,
      });
      bullLoads.push(`${rate}/s ${loadBefore.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}`);
      ctx.log(
        `BullMQ ${rate}/s: ${Math.round(b.completionsPerSec)}/s, wait p50 ${b.wait.p50} p99 ${b.wait.p99} p99.9 ${b.wait.p999} ms, waiting max ${b.maxBacklog}, failures ${b.failureRatePct.toFixed(2)}%`,
      );
      const at = `${label}, ${rate.toLocaleString('en-US')} arrivals/s`;
      baselines[`bullmq_${rate}_completions`] = { value: b.completionsPerSec, unit: 'op/s', note: at };
      baselines[`bullmq_${rate}_wait_p50`] = { value: b.wait.p50, unit: 'ms', note: at };
      baselines[`bullmq_${rate}_wait_p99`] = { value: b.wait.p99, unit: 'ms', note: at };
      baselines[`bullmq_${rate}_failure_rate`] = { value: b.failureRatePct, unit: '%', note: at };
      const mine = ours.get(rate);
      if (mine !== undefined) {
        const waitRatio = b.wait.p99 / Math.max(mine.waitP99, 0.001);
        baselines[`bullmq_${rate}_wait_p99_ratio`] = {
          value: waitRatio,
          unit: 'x',
          note: `BullMQ's P99 wait / ours at ${rate.toLocaleString('en-US')}/s (same run; >1: ours is shorter)`,
        };
        ratios.push(
          `${rate.toLocaleString('en-US')}/s: completions ${Math.round(mine.completions)} vs ${Math.round(b.completionsPerSec)}/s, P99 wait ${mine.waitP99} vs ${b.wait.p99} ms (${waitRatio.toFixed(1)}x shorter)`,
        );
      }
    }
    const bNoop = await bullmqNoopDrain(redis, noopTotal, progress);
    ctx.log(`BullMQ no-op drain: ${Math.round(bNoop)}/s`);
    baselines.bullmq_noop_throughput = { value: bNoop, unit: 'op/s', note: `${label}, no-op jobs` };
    if (oursNoop !== undefined) {
      baselines.bullmq_noop_ratio = {
        value: oursNoop / bNoop,
        unit: 'x',
        note: "our durable no-op drain / BullMQ's (same run; issue goal about 2x)",
      };
      ratios.push(`no-op drain ${Math.round(oursNoop)} vs ${Math.round(bNoop)}/s (${(oursNoop / bNoop).toFixed(2)}x)`);
    }
    ctx.log(`ours vs BullMQ (both durable per acknowledged write): ${ratios.join('; ')}`);
    notes.push(
      `Measured side by side: ${label}, one Queue and one Worker (concurrency 1000) in this process, completed jobs removed at once; its completions/s run from its first completion to its last (including the drain of what it fell behind on). Ours vs BullMQ: ${ratios.join('; ')}. Load average (1 min) at the start → end of each BullMQ rate: ${bullLoads.join('; ')}.`,
    );
  } finally {
    await redis.stop();
  }
}

export const benchmark: Benchmark = {
  name: 'jtbd5-throughput',
  description:
    'durable queue under open-loop load (100 ms handlers, concurrency 1000, 5 s windows, waits from intended arrival); p-queue and Little-law baselines',
  async run(ctx) {
    const { quick, log } = ctx;
    // JTBD5_PARTS=stress,baselines (a comma list of profile names, noop, baselines, bullmq)
    // runs only those parts, e.g. the full-length stress profile alone; unset: everything.
    const parts = process.env.JTBD5_PARTS?.split(',')
      .map((part) => part.trim())
      .filter(Boolean);
    const wanted = (part: string) => parts === undefined || parts.length === 0 || parts.includes(part);
    const metrics: Record<string, MetricInput> = {};
    const notes: string[] = [];
    let rssMax = 0;
    let walMax = 0;
    let profilesRun = 0;
    /** Ours at the rates BullMQ also runs: completions/s and P99 wait. */
    const ours = new Map<number, { completions: number; waitP99: number }>();
    const loads: string[] = [];
    for (const profile of profiles(quick)) {
      if (!wanted(profile.name)) continue;
      log(
        `profile ${profile.name}: concurrency ${profile.concurrency}, ${profile.phases.map((p) => `${p.ratePerSec}/s for ${p.durationMs / 1000} s`).join(' then ')}`,
      );
      const loadBefore = loadavg()[0] ?? 0;
      const r = await runDurable(profile, ctx);
      profilesRun++;
      // The machine is shared: the 1-minute load average around each profile (2 cores).
      loads.push(`${profile.name} ${loadBefore.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}`);
      const w = r.wait.summary();
      const p = profile.name;
      rssMax = Math.max(rssMax, r.rssMaxMb);
      if ((profile.name === 'heavy' || profile.name === 'extreme') && r.recoveryMs === null)
        ours.set(r.arrivalsPerSec, { completions: r.completionsPerSec, waitP99: w.p99 });
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
        // +Infinity when the backlog never got back to zero: written as null, judged FAIL.
        metrics[`${p}_drain_time`] = { value: r.recoveryMs, unit: 'ms', better: 'lower' };
        if (!Number.isFinite(r.recoveryMs))
          notes.push(`${p}: the backlog never got back to zero after the overload (no drain time).`);
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
      // The sample counts go with the waits: a percentile of no waits reads 0 and must not pass.
      metrics[`${p}_wait_p50`] = { value: w.p50, unit: 'ms', better: 'lower', samples: w.count };
      metrics[`${p}_wait_p99`] = {
        value: w.p99,
        unit: 'ms',
        better: 'lower',
        samples: w.count,
        ...(r.recoveryMs === null ? { specTarget: SPEC.waitP99, goal: profile.goals.waitP99 } : {}),
      };
      if (r.windowWaitP99.length > 1 && r.recoveryMs === null) {
        metrics[`${p}_wait_p99_worst_${WAIT_WINDOW_MS / 1000}s`] = {
          value: Math.max(...r.windowWaitP99),
          unit: 'ms',
          better: 'lower',
          samples: w.count,
          ...(r.emptyWaitWindows > 0
            ? { cannotPass: `${r.emptyWaitWindows} ${WAIT_WINDOW_MS / 1000} s window(s) had no waits` }
            : {}),
          specTarget: SPEC.waitP99,
          goal: profile.goals.waitP99,
        };
        log(
          `${p}: P99 wait per ${WAIT_WINDOW_MS / 1000} s window: ${r.windowWaitP99.map((v) => v.toFixed(1)).join(', ')} ms`,
        );
      }
      metrics[`${p}_wait_p999`] = { value: w.p999, unit: 'ms', better: 'lower', samples: w.count };
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
    // Only when a profile ran: a partial run without one would print 0 MiB.
    if (profilesRun > 0) {
      metrics.rss_max = { value: rssMax, unit: 'MiB', better: 'lower' };
      metrics.wal_size_max = { value: walMax, unit: 'MiB', better: 'lower' };
    }
    if (parts !== undefined && parts.length > 0)
      notes.push(
        `parts: ${parts.join(', ')} (JTBD5_PARTS): a partial run; rss_max and wal_size_max cover the profiles above only${profilesRun === 0 ? ' (none ran, so they are not shown)' : ''}.`,
      );

    const noopTotal = quick ? 60_000 : 300_000;
    let noopRate: number | undefined;
    if (wanted('noop')) {
      log('no-op handlers: durable drain');
      const noop = await noopThroughput(noopTotal, ctx);
      noopRate = noop.rate;
      metrics.noop_durable_throughput = { value: noop.rate, unit: 'op/s', better: 'higher', goal: 25_000 };
      metrics.noop_cpu_per_op = { value: noop.cpuUsPerOp, unit: 'µs', better: 'lower' };
    }

    const baselines: Record<string, Baseline> = {
      littles_law_limit: {
        value: 1000 / (HANDLER_MS / 1000),
        unit: 'op/s',
        note: 'concurrency / handler time = 1000 / 0.1 s: no queue can complete more',
      },
    };
    if (wanted('baselines')) {
      log('baselines: p-queue (in memory) on the same workload, fsynced commit rate');
      const pq = (await runPQueue(9000, quick ? 5000 : 60_000, ctx)).summary();
      const pqNoop = await pqueueNoop(noopTotal);
      const commits = sqliteDurableCommitRate(ctx.scratchDir, quick ? 1000 : 5000);
      Object.assign(baselines, {
        pqueue_9000_wait_p99: {
          value: pq.p99,
          unit: 'ms',
          note: 'p-queue 10, in memory, NOT DURABLE, 9,000 arrivals/s',
        },
        pqueue_9000_wait_p50: {
          value: pq.p50,
          unit: 'ms',
          note: 'p-queue 10, in memory, NOT DURABLE, 9,000 arrivals/s',
        },
        pqueue_noop_throughput: {
          value: pqNoop,
          unit: 'op/s',
          note: 'p-queue 10, in memory, NOT DURABLE, no-op tasks',
        },
        sqlite_fsynced_commits: {
          value: commits.perSecond,
          unit: 'commit/s',
          note: 'sequential one-row transactions, WAL + synchronous=FULL: the durable floor without group commit',
        },
      });
    }
    if (loads.length > 0)
      notes.push(`Load average (1 min, 2 cores) at the start → end of each profile: ${loads.join('; ')}.`);
    if (wanted('bullmq')) await bullmqSideBySide({ ctx, quick, noopTotal, ours, oursNoop: noopRate, baselines, notes });
    notes.push(
      'Durability: @unrdf/queue figures are durable (SQLite WAL; enqueue acknowledged only once its commit is fsynced, the fsync off the event loop; checkpoints under synchronous=FULL); p-queue is in memory and not durable.',
      'Quoted in issue #4 (same kind of machine, for comparison with the bullmq_* baselines measured above): BullMQ on Redis 7 with appendfsync always waits P99 330-470 ms at 5,000 arrivals/s, completes only 8,000-8,600/s with P99 waits of 1-5 s at 9,000/s, and drains 10,000-14,000 no-op jobs/s.',
      "Profiles: light/normal run the spec concurrency levels (10, 100) at 90% of their Little-law limit; heavy/extreme/stress run concurrency 1000 at the issue's 5,000 and 9,000 arrivals/s; recovery overloads at 12,000/s (above the 10,000/s limit) and then drops to 1,000/s.",
      `Completions are counted in ${WINDOW_MS / 1000} s windows from the first completion (a quick run has one window); variation = stdev/mean of window rates, shown only with 2+ windows.`,
      'The machine is shared: the p-queue and fsync baselines of the same run show how loaded it was (idle: p-queue P99 about 1.5 ms at 9,000/s, 17,500 fsynced commits/s).',
      'Generator, queue and handlers share one Node process and event loop (embedded use).',
      'Completion goals are the arrival rates less 1% for window edges (completions cannot exceed arrivals).',
    );
    return { metrics, baselines, notes };
  },
};
