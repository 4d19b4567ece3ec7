import { join } from 'node:path';
import type { Pool } from 'undici';
import {
  APP_LAYOUT_NOTE,
  type AppProcess,
  poolFor,
  processCpuMs,
  requestJson,
  runDelayMs,
  type ServerProcess,
  startApp,
  startEcho,
  warmEcho,
} from '../daemon/processes.js';
import {
  awaitReceipt,
  operationFor,
  RDF_TYPES,
  type RdfType,
  type Submission,
  seedsFor,
  submit,
  submitAndWait,
} from '../daemon/workload.js';
import type { BenchContext, Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram, type LatencySummary } from '../harness/histogram.js';
import { cpuSpeedProbeMs } from '../harness/machine.js';
import { openLoop } from '../harness/open-loop.js';
import type { MetricInput } from '../harness/report.js';

// JTBD 1 end to end: from a client's POST /v1/operations to the moment the client holds
// the answer that the operation is final with a durable receipt, through the real app
// process on loopback, per operation type,
// at 100 and 1,000 operations per second (open loop: latency runs from each arrival's
// intended time). The client takes one round trip (POST ?wait) and, for comparison, two
// (POST, then GET ?wait). The baseline is the same requests against a bare Fastify server.

const SPEC = { p50: 5, p95: 15, p99: 45, p999: 100 } as const;
const GOAL_P99_AT_1000 = 10;
/** Rates between the spec's two, measured once each to show where P99 leaves the goal. */
const MID_RATES = [250, 500] as const;
/** SLO-SPEC.md, JTBD 1, "Performance Targets by Operation Type" (ms). */
const SPEC_BY_TYPE: Record<RdfType, { p50: number; p99: number }> = {
  create: { p50: 3, p99: 40 },
  update: { p50: 5, p99: 45 },
  delete: { p50: 4, p99: 42 },
  batch: { p50: 8, p99: 55 },
};

interface RateResult {
  readonly all: LatencyHistogram;
  readonly byType: Map<RdfType, LatencyHistogram>;
  readonly errors: number;
  readonly issued: number;
  readonly receiptHashes: Set<string>;
  /** The app process's CPU time per operation in the measured window (µs). */
  readonly cpuUsPerOp: number;
  /**
   * Share of the window (%) the daemon's thread (the app's main thread) and the load
   * generator's thread were runnable but waiting for a core; undefined without schedstat.
   */
  readonly appWaitPct?: number | undefined;
  readonly clientWaitPct?: number | undefined;
}

/** A thread's run delay over a window, as a share of the window's wall time (%). */
const waitShare = (before: number | undefined, after: number | undefined, wallMs: number) =>
  before === undefined || after === undefined ? undefined : (100 * (after - before)) / Math.max(1, wallMs);

/** Creates the entities a run's updates and deletes act on (not measured). */
async function seed(pool: Pool, token: string, run: string, count: number, ctx: BenchContext): Promise<void> {
  const seeds: Submission[] = [];
  for (let i = 0; i < count; i++) {
    const s = seedsFor(RDF_TYPES[i % RDF_TYPES.length] as RdfType, i, run);
    if (s) seeds.push(s);
  }
  let next = 0;
  const worker = async () => {
    while (next < seeds.length) {
      const op = seeds[next++];
      if (op === undefined) break;
      const { id } = await submit(pool, token, op);
      await awaitReceipt(pool, token, id);
    }
  };
  ctx.progress.update(0, seeds.length, `seeding ${run}`);
  await Promise.all(Array.from({ length: 32 }, worker));
}

/** How the client gets to "final, receipt durable": one POST ?wait, or a POST then a GET ?wait. */
type Flow = 'one' | 'two';

async function measureRate(
  app: AppProcess,
  pool: Pool,
  ratePerSec: number,
  durationMs: number,
  run: string,
  flow: Flow,
  ctx: BenchContext,
): Promise<RateResult> {
  const count = Math.floor((ratePerSec * durationMs) / 1000);
  await seed(pool, app.token, run, count, ctx);
  const byType = new Map(RDF_TYPES.map((t) => [t, new LatencyHistogram()]));
  const receiptHashes = new Set<string>();
  const pid = app.child.pid as number;
  const cpuBefore = processCpuMs(pid);
  const appWaitBefore = runDelayMs(pid);
  const clientWaitBefore = runDelayMs(process.pid);
  const startedAt = performance.now();
  const result = await openLoop({
    ratePerSec,
    durationMs,
    fire: async (intendedAt, i) => {
      const type = RDF_TYPES[i % RDF_TYPES.length] as RdfType;
      const op = operationFor(type, i, run);
      const view = (
        flow === 'one'
          ? await submitAndWait(pool, app.token, op)
          : await awaitReceipt(pool, app.token, (await submit(pool, app.token, op)).id)
      ) as { receipt: { receiptHash?: string } };
      byType.get(type)?.record(performance.now() - intendedAt);
      if (view.receipt.receiptHash) receiptHashes.add(view.receipt.receiptHash);
    },
    onTick: (done, total) => ctx.progress.update(done, total, `${run}: ${ratePerSec}/s`),
  });
  const cpuUsPerOp = ((processCpuMs(pid) - cpuBefore) * 1000) / Math.max(1, result.issued);
  const wallMs = performance.now() - startedAt;
  return {
    all: result.latency,
    byType,
    errors: result.errors,
    issued: result.issued,
    receiptHashes,
    cpuUsPerOp,
    appWaitPct: waitShare(appWaitBefore, runDelayMs(pid), wallMs),
    clientWaitPct: waitShare(clientWaitBefore, runDelayMs(process.pid), wallMs),
  };
}

/** The same requests against a bare Fastify server: one POST, or a POST and a GET. */
async function echoBaseline(
  echo: ServerProcess,
  ratePerSec: number,
  durationMs: number,
  flow: Flow,
  ctx: BenchContext,
) {
  const pool = poolFor(echo.url);
  try {
    await warmEcho(pool);
    const result = await openLoop({
      ratePerSec,
      durationMs,
      fire: async () => {
        const { id } = await requestJson<{ id: string }>(pool, 'POST', '/v1/operations', {
          body: operationFor('create', 0, 'echo'),
          expect: 202,
        });
        if (flow === 'two') await requestJson(pool, 'GET', `/v1/operations/${id}?wait=30000`);
      },
      onTick: (done, total) => ctx.progress.update(done, total, `echo baseline (${flow}) ${ratePerSec}/s`),
    });
    return result.latency.summary();
  } finally {
    await pool.close();
  }
}

/** Several measured windows of one rate as one result (histograms merged, CPU weighted by operations). */
function mergeResults(results: readonly RateResult[]): RateResult {
  const all = new LatencyHistogram();
  const byType = new Map(RDF_TYPES.map((t) => [t, new LatencyHistogram()]));
  const receiptHashes = new Set<string>();
  let errors = 0;
  let issued = 0;
  let cpuUs = 0;
  for (const r of results) {
    all.merge(r.all);
    for (const [type, h] of r.byType) byType.get(type)?.merge(h);
    for (const hash of r.receiptHashes) receiptHashes.add(hash);
    errors += r.errors;
    issued += r.issued;
    cpuUs += r.cpuUsPerOp * r.issued;
  }
  return { all, byType, errors, issued, receiptHashes, cpuUsPerOp: cpuUs / Math.max(1, issued) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const fmt = (values: readonly number[]) => values.map((v) => v.toFixed(1)).join(', ');

export const benchmark: Benchmark = {
  name: 'jtbd1-e2e',
  description: 'JTBD 1 end to end: submit → durable receipt through the app over HTTP, per type, at 100 and 1,000/s',
  async run(ctx) {
    const durations = ctx.quick
      ? { slow: 3000, mid: 2000, fast: 4000, echo: 2000 }
      : { slow: 20_000, mid: 10_000, fast: 10_000, echo: 5000 };
    // The 1,000/s goal is read over several windows, each followed by a bare-Fastify window:
    // on this shared machine the speed drifts by minutes, so one window alone can be far
    // off the next, and each app window has its baseline measured right after it.
    const windows = ctx.quick ? 1 : 3;
    const echo = await startEcho();
    const durableEcho = await startEcho({ durableFile: join(ctx.scratchDir, 'durable-echo.db') });
    const app = await startApp(join(ctx.scratchDir, 'app'));
    const pool = poolFor(app.url);
    try {
      // Warm-up (JIT, SQLite page cache, connection pool), not measured.
      await measureRate(app, pool, 200, 1000, 'warm', 'one', ctx);
      const slow = await measureRate(app, pool, 100, durations.slow, 'r100', 'one', ctx);
      // Where the tail leaves 10 ms: the same flow at rates between (information only).
      const mid: RateResult[] = [];
      for (const rate of MID_RATES) mid.push(await measureRate(app, pool, rate, durations.mid, `r${rate}`, 'one', ctx));
      const fastWindows: RateResult[] = [];
      const echoWindows: LatencySummary[] = [];
      const durableWindows: LatencySummary[] = [];
      const probeMs: number[] = [];
      for (let w = 0; w < windows; w++) {
        probeMs.push(cpuSpeedProbeMs());
        fastWindows.push(await measureRate(app, pool, 1000, durations.fast, `r1000w${w}`, 'one', ctx));
        echoWindows.push(await echoBaseline(echo, 1000, durations.echo, 'one', ctx));
        durableWindows.push(await echoBaseline(durableEcho, 1000, durations.echo, 'one', ctx));
      }
      const fast = mergeResults(fastWindows);
      const twoTrips = await measureRate(app, pool, 1000, durations.fast, 'r1000two', 'two', ctx);
      const echoTwo = await echoBaseline(echo, 1000, durations.fast, 'two', ctx);
      const windowP99 = fastWindows.map((r) => r.all.summary().p99);
      const windowCounts = fastWindows.map((r) => r.all.count);
      const echoP99 = echoWindows.map((e) => e.p99);
      const durableP99 = durableWindows.map((e) => e.p99);
      const ratios = windowP99.map((p99, i) => p99 / Math.max(echoP99[i] ?? 0, 0.001));
      const s = slow.all.summary();
      const f = fast.all.summary();
      const t = twoTrips.all.summary();
      const issued = slow.issued + fast.issued + twoTrips.issued;
      const failed = slow.errors + fast.errors + twoTrips.errors;
      // Latency figures carry their sample counts: a percentile of nothing reads 0 and must not pass.
      const ms = (value: number, samples: number) => ({ value, unit: 'ms', better: 'lower' as const, samples });
      const metrics: Record<string, MetricInput> = {
        p50_ms_at_100: { ...ms(s.p50, s.count), specTarget: SPEC.p50 },
        p99_ms_at_100: { ...ms(s.p99, s.count), specTarget: SPEC.p99 },
        p50_ms_at_1000: { ...ms(f.p50, f.count), specTarget: SPEC.p50 },
        p95_ms_at_1000: { ...ms(f.p95, f.count), specTarget: SPEC.p95 },
        p99_ms_at_1000: { ...ms(f.p99, f.count), specTarget: SPEC.p99, goal: GOAL_P99_AT_1000 },
        p999_ms_at_1000: { ...ms(f.p999, f.count), specTarget: SPEC.p999 },
        p50_ms_at_1000_post_then_get: { ...ms(t.p50, t.count), specTarget: SPEC.p50 },
        p99_ms_at_1000_post_then_get: { ...ms(t.p99, t.count), specTarget: SPEC.p99 },
        app_cpu_us_per_op_at_100: { value: slow.cpuUsPerOp, unit: 'µs', better: 'lower' },
        app_cpu_us_per_op_at_1000: { value: fast.cpuUsPerOp, unit: 'µs', better: 'lower' },
        app_cpu_us_per_op_at_1000_post_then_get: { value: twoTrips.cpuUsPerOp, unit: 'µs', better: 'lower' },
        success_rate_pct: {
          value: issued === 0 ? 0 : (100 * (issued - failed)) / issued,
          unit: '%',
          better: 'higher',
          specTarget: 99.95,
        },
        receipt_hash_collisions: {
          value: issued - failed - (slow.receiptHashes.size + fast.receiptHashes.size + twoTrips.receiptHashes.size),
          unit: 'count',
          better: 'lower',
          specTarget: 0,
        },
        // Information only: the best of several windows is a selected figure, and judging
        // it would let one lucky window pass a goal the run as a whole did not meet.
        p99_ms_at_1000_best_window: {
          ...ms(Math.min(...windowP99), Math.min(...windowCounts)),
        },
        p99_ms_at_1000_worst_window: {
          ...ms(Math.max(...windowP99), Math.min(...windowCounts)),
          goal: GOAL_P99_AT_1000,
        },
        p99_vs_echo_at_1000: { value: median(ratios), unit: 'x', better: 'lower' },
      };
      MID_RATES.forEach((rate, i) => {
        const m = (mid[i] as RateResult).all.summary();
        metrics[`p99_ms_at_${rate}`] = ms(m.p99, m.count);
      });
      const appWait = fastWindows.map((r) => r.appWaitPct).filter((v) => v !== undefined);
      const clientWait = fastWindows.map((r) => r.clientWaitPct).filter((v) => v !== undefined);
      if (appWait.length > 0)
        metrics.daemon_thread_wait_pct_at_1000 = { value: median(appWait), unit: '%', better: 'lower' };
      if (clientWait.length > 0)
        metrics.client_thread_wait_pct_at_1000 = { value: median(clientWait), unit: '%', better: 'lower' };
      for (const type of RDF_TYPES) {
        const t = (fast.byType.get(type) as LatencyHistogram).summary();
        const spec = SPEC_BY_TYPE[type];
        metrics[`${type}_p50_ms_at_1000`] = { ...ms(t.p50, t.count), specTarget: spec.p50 };
        metrics[`${type}_p99_ms_at_1000`] = { ...ms(t.p99, t.count), specTarget: spec.p99, goal: GOAL_P99_AT_1000 };
      }
      return {
        metrics,
        baselines: {
          echo_p50_ms_at_1000: {
            value: median(echoWindows.map((e) => e.p50)),
            unit: 'ms',
            note: 'bare Fastify POST, same client and rate (median of the windows)',
          },
          echo_p99_ms_at_1000: {
            value: median(echoP99),
            unit: 'ms',
            note: 'bare Fastify POST, same client and rate (median of the windows)',
          },
          durable_echo_p99_ms_at_1000: {
            value: median(durableP99),
            unit: 'ms',
            note: 'bare Fastify POST answered after its fsynced SQLite COMMIT (one per event-loop turn), same client and rate (median of the windows): the floor of a durable acknowledgement here',
          },
          echo_p99_ms_at_1000_post_then_get: {
            value: echoTwo.p99,
            unit: 'ms',
            note: 'bare Fastify POST + GET, same client and rate',
          },
        },
        notes: [
          `${slow.issued} operations at 100/s and ${fast.issued} + ${twoTrips.issued} at 1,000/s, a quarter of each type; a batch has 10 creates.`,
          `At 1,000/s (one trip): ${windows} window${windows === 1 ? '' : 's'} of ${durations.fast / 1000} s, each followed by ${durations.echo / 1000} s of the bare Fastify baseline. P99 per window: ${fmt(windowP99)} ms; baseline P99 after each: ${fmt(echoP99)} ms, and with an fsynced SQLite COMMIT before each answer (durable echo): ${fmt(durableP99)} ms; app/baseline: ${ratios.map((r) => r.toFixed(1)).join(', ')}x. The p99_ms_at_1000 row is over all windows together; the best window is information only (not judged), the worst is judged.`,
          `Machine speed before each window (a fixed integer loop; lower is faster, it drifts on a shared VM): ${fmt(probeMs)} ms.`,
          `P99 by rate, one trip: ${[slow, ...mid, fast].map((r, i) => `${[100, ...MID_RATES, 1000][i]}/s ${r.all.summary().p99.toFixed(1)} ms`).join(', ')} (${durations.mid / 1000} s at each rate between).`,
          appWait.length === 0
            ? 'Run delay: this kernel keeps no schedstat, not measured.'
            : `Run delay at 1,000/s (share of each window a thread was runnable but waited for a core, /proc/<pid>/task/<tid>/schedstat): the daemon's thread ${fmt(appWait)} %, the load generator's ${fmt(clientWait)} %.`,
          'Latency: from the intended arrival to the client holding "final, receipt durable": one POST ?wait (200 with the final view and receipt), or, in the post_then_get rows, a POST (202) then a GET ?wait.',
          'app_cpu_us_per_op: the app process CPU time (user + system, /proc) over the measured window divided by operations; 1,000 µs per operation at 1,000/s is a whole core.',
          APP_LAYOUT_NOTE,
        ],
      };
    } finally {
      await pool.close();
      await Promise.all([app.stop(), echo.stop(), durableEcho.stop()]);
    }
  },
};
