import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';
import { APP_LAYOUT_NOTE, poolFor, requestJson, startApp, startEcho, warmEcho } from '../daemon/processes.js';
import { ensureWrk, runSleepLoad } from '../daemon/wrk.js';
import type { Benchmark } from '../harness/benchmark.js';
import { cpuSpeedProbeMs } from '../harness/machine.js';
import { openLoop } from '../harness/open-loop.js';

// JTBD 5 end to end: the spec's load profile through the app's HTTP API. wrk (C) POSTs
// `sleep` operations (100 ms handlers) at 5 % over the target rate (sleep-load.lua: an
// offer of exactly the target would make "sustains at least the target" a coin toss of
// the client's own shortfall); the app runs
// up to 1,000 at once. Without wrk (no apt-get here) the Node client does it instead. Completions are read from the app's own Prometheus counters once a
// second; the sustained rate is taken after the first fifth of the run (ramp-up), and
// the queue wait P99 from the app's own queue-wait metric (`unrdf_queue_wait`, read as
// `queue_wait` in its diagnostics: an HDR histogram of handler start - due time, the
// spec's start - enqueue wait). The goal is about 5,000/s: when the client offered less
// than 99 % of it, neither the sustained rate nor the queue wait can show it met.

const HANDLER_MS = 100;
const TARGET_PER_SEC = 5000;
/** What the client offers: 5 % over the target, so that sustaining the target is what is measured. */
const OFFER_PER_SEC = 5250;
const SPEC = { throughput: 33, waitP99Ms: 500, failurePct: 0.5, variationPct: 5 } as const;
const GOAL = { throughput: 5000, waitP99Ms: 50 } as const;
const SUBJECTS = 1000;
/** Below this share of TARGET_PER_SEC offered, the run cannot show the 5,000/s goals. */
const MIN_OFFERED_SHARE = 0.99;
const CONNECTIONS = 256;

/** What one load run offered and how it was answered. */
interface Offered {
  /** Requests answered, whatever their status, plus those that failed. */
  readonly offered: number;
  /** 202s. */
  readonly accepted: number;
  /** Other statuses and transport errors. */
  readonly errors: number;
  readonly acceptP99Ms: number;
}

/** The load: wrk when there is one, else the Node open-loop client over `pool`. */
async function offer(
  wrk: boolean,
  pool: Pool,
  url: string,
  token: string | undefined,
  durationMs: number,
  onTick?: (done: number, total: number) => void,
): Promise<Offered> {
  if (wrk) {
    const r = await runSleepLoad({
      url,
      token,
      ratePerSec: OFFER_PER_SEC,
      durationMs,
      handlerMs: HANDLER_MS,
      subjects: SUBJECTS,
      connections: CONNECTIONS,
    });
    const transport = r.connect + r.read + r.write + r.timeout;
    return {
      offered: r.requests + transport,
      accepted: r.requests - r.non202,
      errors: r.non202 + transport,
      acceptP99Ms: r.p99Us / 1000,
    };
  }
  const load = await openLoop({
    ratePerSec: OFFER_PER_SEC,
    durationMs,
    fire: (_t, i) =>
      requestJson(pool, 'POST', '/v1/operations', {
        ...(token === undefined ? {} : { token }),
        body: { type: 'sleep', subject: `urn:unrdf:bench:s${i % SUBJECTS}`, input: { ms: HANDLER_MS } },
      }),
    ...(onTick === undefined ? {} : { onTick }),
  });
  return {
    offered: load.issued,
    accepted: load.completed,
    errors: load.errors,
    acceptP99Ms: load.latency.summary().p99,
  };
}

interface Sample {
  readonly atMs: number;
  readonly success: number;
  readonly failure: number;
  /** Operations the app enqueued (committed), whether or not the client heard its 202. */
  readonly enqueued: number;
}

/**
 * Successful completions per second in consecutive windows of `windowMs` from `fromMs` to
 * `toMs`, each between the first samples taken at or after its ends (samples come about
 * once a second, so a window is measured over its own span give or take one sample gap).
 */
function windowRates(samples: readonly Sample[], fromMs: number, toMs: number, windowMs: number): number[] {
  const at = (t: number) => samples.find((s) => s.atMs >= t);
  const rates: number[] = [];
  for (let start = fromMs; start + windowMs <= toMs; start += windowMs) {
    const a = at(start);
    const b = at(start + windowMs);
    if (a === undefined || b === undefined || b.atMs <= a.atMs) break;
    rates.push(((b.success - a.success) * 1000) / (b.atMs - a.atMs));
  }
  return rates;
}

/** Sums `unrdf_operations_total` by outcome, and the queue's enqueued transitions, from the Prometheus exposition. */
async function sampleCompletions(pool: Pool, token: string): Promise<Sample> {
  const response = await pool.request({
    method: 'GET',
    path: '/metrics',
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`GET /metrics: HTTP ${response.statusCode}: ${text.slice(0, 200)}`);
  let success = 0;
  let failure = 0;
  let enqueued = 0;
  for (const line of text.split('\n')) {
    const value = () => Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('unrdf_queue_transitions_total{') && line.includes('transition="enqueued"'))
      enqueued += value();
    if (!line.startsWith('unrdf_operations_total{')) continue;
    if (line.includes('outcome="success"')) success += value();
    else if (line.includes('outcome="failure"')) failure += value();
  }
  return { atMs: performance.now(), success, failure, enqueued };
}

export const benchmark: Benchmark = {
  name: 'jtbd5-e2e',
  description:
    'JTBD 5 end to end: sleep(100 ms) operations through HTTP, 5,250/s offered against the 5,000/s goal, concurrency 1000',
  async run(ctx) {
    const durationMs = ctx.quick ? 8000 : 60_000;
    const wrk = await ensureWrk();
    const app = await startApp(join(ctx.scratchDir, 'app')); // the app runs up to 1000 handlers at once by default
    const echo = await startEcho();
    const pool = poolFor(app.url, 128);
    // Samples go over their own connection, never queued behind the load's POSTs.
    const samplePool = poolFor(app.url, 1);
    const echoPool = poolFor(echo.url, 128);
    try {
      // Warm-up, not measured. Over many subjects, as the load: operations on one subject run
      // one after another, and 500 of them would still be finishing during the measurement.
      await openLoop({
        ratePerSec: 500,
        durationMs: 1000,
        fire: (_t, i) =>
          requestJson(pool, 'POST', '/v1/operations', {
            token: app.token,
            body: { type: 'sleep', subject: `urn:unrdf:bench:warm${i % SUBJECTS}`, input: { ms: HANDLER_MS } },
          }),
      });
      await sleep(500);
      // The machine's speed before and after the load (it drifts on a shared VM; see the note).
      const probeBefore = cpuSpeedProbeMs();
      const before = await sampleCompletions(samplePool, app.token);
      const samples: Sample[] = [before];
      let sampling = true;
      const label = `sleep(${HANDLER_MS} ms) at ${OFFER_PER_SEC}/s`;
      const started = performance.now();
      const sampler = (async () => {
        while (sampling) {
          await sleep(1000);
          samples.push(await sampleCompletions(samplePool, app.token));
          if (wrk.ok) ctx.progress.update(Math.min(performance.now() - started, durationMs), durationMs, label);
        }
      })();
      const load = await offer(wrk.ok, pool, app.url, app.token, durationMs, (d, total) =>
        ctx.progress.update(d, total, label),
      );
      // Drain: wait (bounded) until every operation the app enqueued finished. wrk does not
      // count the requests still unanswered when it stops; the app counts them all, and
      // those still in flight are enqueued after wrk stopped, so each sample counts afresh.
      const drainDeadline = performance.now() + 120_000;
      const enqueuedSince = (s: Sample) => s.enqueued - before.enqueued;
      const finishedSince = (s: Sample) => s.success + s.failure - (before.success + before.failure);
      let last = await sampleCompletions(samplePool, app.token);
      samples.push(last);
      while (finishedSince(last) < enqueuedSince(last)) {
        if (performance.now() > drainDeadline) break;
        await sleep(250);
        last = await sampleCompletions(samplePool, app.token);
        samples.push(last);
      }
      const accepted = enqueuedSince(last);
      sampling = false;
      await sampler;
      const probeAfter = cpuSpeedProbeMs();
      const finishedAt = last.atMs;
      const done = finishedSince(last);
      const failures = last.failure - before.failure + load.errors;
      // Sustained: completions per second after the first fifth of the load, up to its end.
      const loadEnd = started + durationMs;
      const from = samples.find((s) => s.atMs >= started + durationMs / 5) ?? before;
      const to = [...samples].reverse().find((s) => s.atMs <= loadEnd && s.atMs > from.atMs) ?? last;
      const sustained = to.atMs > from.atMs ? ((to.success - from.success) * 1000) / (to.atMs - from.atMs) : 0;
      // The spec's method (SLO-SPEC JTBD 5): completions per fixed window, their mean and
      // variation (stdev / mean), over the same span as `sustained`.
      const windows = windowRates(samples, from.atMs, loadEnd, ctx.quick ? 2000 : 5000);
      const windowMean = windows.reduce((a, b) => a + b, 0) / Math.max(1, windows.length);
      const windowStdev = Math.sqrt(
        windows.reduce((a, b) => a + (b - windowMean) ** 2, 0) / Math.max(1, windows.length),
      );
      const report = await requestJson<{ metrics: Record<string, { lifetimeMs: { p99: number; count: number } }> }>(
        pool,
        'GET',
        '/v1/diagnostics?format=json',
        { token: app.token },
      );
      const wait = report.metrics.queue_wait?.lifetimeMs;
      const offeredPerSec = (load.offered * 1000) / durationMs;
      const underOffered =
        offeredPerSec < MIN_OFFERED_SHARE * TARGET_PER_SEC
          ? `offered ${Math.round(offeredPerSec).toLocaleString('en-US')}/s, under ${MIN_OFFERED_SHARE * 100} % of the ${TARGET_PER_SEC.toLocaleString('en-US')}/s target: the run did not put the target load on the app`
          : undefined;

      await warmEcho(echoPool);
      const echoMs = Math.min(durationMs, 8000);
      const echoLoad = await offer(wrk.ok, echoPool, echo.url, undefined, echoMs, (d, total) =>
        ctx.progress.update(d, total, 'echo baseline'),
      );
      return {
        metrics: {
          // What the client offered, printed right above the sustained rate and its 5,000/s
          // goal (information: the rows that need the full offer cannot pass without it).
          offered_ops_per_sec: { value: offeredPerSec, unit: 'op/s', better: 'higher' },
          sustained_ops_per_sec: {
            value: sustained,
            unit: 'op/s',
            better: 'higher',
            specTarget: SPEC.throughput,
            goal: GOAL.throughput,
            cannotPass: underOffered,
          },
          window_min_ops_per_sec: {
            value: windows.length === 0 ? null : Math.min(...windows),
            unit: 'op/s',
            better: 'higher',
            samples: windows.length,
          },
          throughput_variation_pct: {
            value: windows.length < 2 ? null : (100 * windowStdev) / windowMean,
            unit: '%',
            better: 'lower',
            specTarget: SPEC.variationPct,
            samples: windows.length,
          },
          overall_ops_per_sec: {
            value: (done * 1000) / Math.max(1, finishedAt - started),
            unit: 'op/s',
            better: 'higher',
          },
          queue_wait_p99_ms: {
            value: wait?.p99 ?? null,
            unit: 'ms',
            better: 'lower',
            specTarget: SPEC.waitP99Ms,
            goal: GOAL.waitP99Ms,
            samples: wait?.count ?? 0,
            // A short wait at a lighter load than the goal's says nothing about the goal.
            cannotPass: underOffered,
          },
          failures: { value: failures, unit: 'count', better: 'lower', goal: 0 },
          failure_pct: {
            value: load.offered === 0 ? 100 : (100 * failures) / load.offered,
            unit: '%',
            better: 'lower',
            specTarget: SPEC.failurePct,
          },
          unfinished_after_drain: { value: accepted - done, unit: 'count', better: 'lower', goal: 0 },
          accept_p99_ms: { value: load.acceptP99Ms, unit: 'ms', better: 'lower' },
          accept_p99_vs_echo: {
            value: load.acceptP99Ms / Math.max(echoLoad.acceptP99Ms, 0.001),
            unit: 'x',
            better: 'lower',
          },
        },
        baselines: {
          echo_post_p99_ms: {
            value: echoLoad.acceptP99Ms,
            unit: 'ms',
            note: `bare Fastify POST at ${OFFER_PER_SEC}/s, same client`,
          },
          echo_accepted_per_sec: {
            value: (echoLoad.accepted * 1000) / echoMs,
            unit: 'op/s',
            note: 'what a bare HTTP server keeps up with here',
          },
        },
        notes: [
          `${load.offered} operations answered over ${durationMs / 1000} s (${load.accepted} with a 202, ${load.errors} errors); the app enqueued ${accepted} and finished ${done}.`,
          `Offered ${Math.round(offeredPerSec).toLocaleString('en-US')} op/s (the client's schedule: ${OFFER_PER_SEC.toLocaleString('en-US')}/s, 5 % over the target) against the ${TARGET_PER_SEC.toLocaleString('en-US')} op/s target${underOffered === undefined ? '.' : `: under ${MIN_OFFERED_SHARE * 100} % of it, so sustained_ops_per_sec and queue_wait_p99_ms are judged FAIL whatever their values (the app was not given the target load, so a lower rate or a short wait says nothing about the goal).`}`,
          `Queue wait: the app's unrdf_queue_wait metric (queue_wait in /v1/diagnostics), handler start minus due time (the spec's start - enqueue wait), over ${wait?.count ?? 0} operations (lifetime of the app, warm-up included).`,
          `Completions per ${ctx.quick ? 2 : 5} s window after the ramp-up (op/s): ${windows.map((w) => w.toFixed(0)).join(', ')}.`,
          wrk.ok
            ? `Client: wrk, one thread, ${CONNECTIONS} connections (sleep-load.lua); it shares the 2 cores with the app. Accept latency is from when wrk wrote each request.`
            : `Client: the Node open-loop client (wrk unavailable: ${wrk.reason}); it shares the 2 cores with the app and takes about twice wrk's CPU per request.`,
          `Machine speed before and after the load (a fixed integer loop; lower is faster, about 40 ms when the VM is calm): ${probeBefore.toFixed(1)} and ${probeAfter.toFixed(1)} ms.`,
          APP_LAYOUT_NOTE,
        ],
      };
    } finally {
      await Promise.all([pool.close(), samplePool.close(), echoPool.close()]);
      await Promise.all([app.stop(), echo.stop()]);
    }
  },
};
