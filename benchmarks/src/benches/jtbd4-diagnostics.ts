import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, createServer, request } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  collectDiagnosticReport,
  createLogCollector,
  LatencyHistogram as HdrLatency,
  httpDiagnosticNode,
  type NodeSnapshot,
} from '@unrdf/diagnostics';
import type { Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';

const NODE_IDS = ['n1', 'n2', 'n3'];
const OPS_PER_SEC = 100;
const HISTORY_MS = 5 * 60_000;
const NODE_SCRIPT = fileURLToPath(new URL('../diagnostics/bench-node.ts', import.meta.url));
const TSX = createRequire(import.meta.url).resolve('tsx');

/** GET over a kept-alive loopback connection; resolves with status and body. */
function get(base: string, path: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface NodeProc {
  readonly id: string;
  readonly child: ChildProcess;
  readonly url: string;
  readonly history: number;
  output(): string;
}

/** Starts one benchmark node process and waits (bounded) until it listens. */
function startNode(id: string, scratchDir: string, loadMs: number): Promise<NodeProc> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@unrdf/source',
      '--import',
      TSX,
      NODE_SCRIPT,
      id,
      scratchDir,
      String(OPS_PER_SEC / NODE_IDS.length),
      String(loadMs),
      NODE_IDS.join(','),
    ],
    // stdin is a pipe the node watches: if this process dies, the node exits too.
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${id} did not start in 60 s: ${err.slice(-500)}`)), 60_000);
    const check = () => {
      const m = /listening (\S+) history=(\d+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve({ id, child, url: m[1], history: Number(m[2]), output: () => out });
      }
    };
    child.stdout?.on('data', check);
    child.on('exit', (code) => reject(new Error(`node ${id} exited (${code}): ${err.slice(-500)}`)));
  });
}

async function stopNode(node: NodeProc): Promise<void> {
  if (node.child.exitCode !== null) return;
  const exited = new Promise((r) => node.child.once('exit', r));
  node.child.kill('SIGTERM');
  const timer = setTimeout(() => node.child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * JTBD 4 of the SLO spec: 3 diagnostics nodes (own processes, loopback HTTP) under
 * 100 ops/s, each with 5 minutes of log history: health check latency, metrics
 * query, full 3-node report, 5-minute log aggregation, completeness, HDR accuracy.
 */
export const benchmark: Benchmark = {
  name: 'jtbd4-diagnostics',
  description:
    '3 node processes at 100 ops/s over loopback HTTP: health check, metrics query, full report, 5-min log aggregation, completeness, HDR accuracy',
  async run({ quick, progress, scratchDir, log: say }) {
    const healthMs = quick ? 6_000 : 30_000;
    const reportRuns = quick ? 5 : 20;
    const loadMs = healthMs + (quick ? 25_000 : 90_000);
    const steps = 5;
    progress.update(0, steps, 'starting 3 node processes with 5 minutes of log history');
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const nodes: NodeProc[] = [];
    try {
      nodes.push(...(await Promise.all(NODE_IDS.map((id) => startNode(id, scratchDir, loadMs)))));
      const loadStarted = performance.now();
      const clients = nodes.map((n) => httpDiagnosticNode({ id: n.id, url: n.url }));

      // Health checks under load, as a prober sends them: open loop, 50/s, round robin,
      // /readyz?verbose (storage, raft, queue) from cached state. The baseline runs at the
      // same time and rate under the same contention: a bare loopback HTTP echo server.
      progress.update(1, steps, 'health checks under load, with the HTTP echo baseline');
      const healthFailures = new Map<string, number>();
      const echo = createServer((_, res) => res.end('ok'));
      await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
      const echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`;
      // Unmeasured warm-up of all three paths: the nodes have just written 5 minutes of
      // history (their first segment flush) and nothing is JIT-compiled yet.
      await openLoop({
        ratePerSec: 150,
        durationMs: 1500,
        fire: async (_, i) => {
          const node = nodes[i % nodes.length];
          if (!node) return;
          const path = ['/readyz?verbose', '/bench/echo', '/'][Math.floor(i / nodes.length) % 3];
          await get(path === '/' ? echoUrl : node.url, path ?? '/', agent);
        },
      });
      // The nodes' own record of answering health checks (handler and socket write, without
      // the network and client), read before and after the measured phase: the difference
      // holds the measured checks only, not the warm-up's cold starts.
      const healthHandlerTimes = () =>
        Promise.all(
          clients.map(async (c) => {
            const snapshot = (await c.fetchSnapshot(
              { sinceWallMs: Date.now() + 60_000, limit: 1 },
              AbortSignal.timeout(10_000),
            )) as NodeSnapshot;
            const encoded = snapshot.metrics.indicators.health_check?.lifetime;
            return encoded ? HdrLatency.decode(encoded) : new HdrLatency();
          }),
        );
      const handlerBefore = await healthHandlerTimes();
      // Beside the open-loop latency (from the intended send time), each side also
      // records how late the generator actually sent (its own timer wake-ups) and the
      // round trip from the actual send: the decomposition of the end-to-end figure.
      const healthLateness = new LatencyHistogram();
      const healthRoundTrip = new LatencyHistogram();
      const echoRoundTrip = new LatencyHistogram();
      // A second floor: a bare response from the node processes themselves (same server,
      // event loop and load as the health check; only our handler is missing).
      const nodeEchoRoundTrip = new LatencyHistogram();
      const [health, echoRun, nodeEchoRun] = await Promise.all([
        openLoop({
          ratePerSec: 50,
          durationMs: healthMs,
          fire: async (intendedAt, i) => {
            const node = nodes[i % nodes.length];
            if (!node) return;
            const sent = performance.now();
            healthLateness.record(sent - intendedAt);
            const { status, body } = await get(node.url, '/readyz?verbose', agent);
            healthRoundTrip.record(performance.now() - sent);
            if (status !== 200) {
              const failed = body.split('\n').filter((l) => l.startsWith('[-]'));
              for (const f of failed) healthFailures.set(f, (healthFailures.get(f) ?? 0) + 1);
              throw new Error(`readyz ${status}`);
            }
          },
        }),
        openLoop({
          ratePerSec: 50,
          durationMs: healthMs,
          fire: async () => {
            const sent = performance.now();
            await get(echoUrl, '/', agent);
            echoRoundTrip.record(performance.now() - sent);
          },
        }),
        openLoop({
          ratePerSec: 50,
          durationMs: healthMs,
          fire: async (_, i) => {
            const node = nodes[i % nodes.length];
            if (!node) return;
            const sent = performance.now();
            await get(node.url, '/bench/echo', agent);
            nodeEchoRoundTrip.record(performance.now() - sent);
          },
        }),
      ]);
      const handlerAfter = await healthHandlerTimes();
      const serverHealth = new HdrLatency();
      handlerAfter.forEach((h, i) => {
        const before = handlerBefore[i];
        if (before) h.subtract(before);
        serverHealth.merge(h);
      });
      const echoLatency = echoRun.latency;
      echo.closeAllConnections();
      echo.close();

      // One report and aggregation before measuring, so JIT warm-up is not counted.
      progress.update(2, steps, 'warm-up report');
      await collectDiagnosticReport({ nodes: clients, timeoutMs: 10_000, logWindowMs: HISTORY_MS });

      // Reports and aggregations at steady state, one after another, the load still running.
      const metricsQuery = new LatencyHistogram();
      // CPU of this (aggregating) process per metrics query, its GC threads included, and
      // the main thread's garbage-collection pauses within each query.
      const metricsQueryCpu = new LatencyHistogram();
      const metricsQueryGc = new LatencyHistogram();
      const gcPauses: { start: number; duration: number }[] = [];
      const gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, duration: e.duration });
      });
      gcObserver.observe({ entryTypes: ['gc'] });
      const fullReport = new LatencyHistogram();
      const logAggregation = new LatencyHistogram();
      let completeness = 100;
      let aggregatedRecords = 0;
      let reportSummary = '';
      for (let run = 0; run < reportRuns; run++) {
        progress.update(3, steps, `reports ${run + 1}/${reportRuns}`);
        let t0 = performance.now();
        const cpu0 = process.cpuUsage();
        await collectDiagnosticReport({ nodes: clients, timeoutMs: 10_000, logWindowMs: 1, minLogRecordsPerNode: 0 });
        metricsQuery.record(performance.now() - t0);
        const cpu = process.cpuUsage(cpu0);
        metricsQueryCpu.record((cpu.user + cpu.system) / 1000);
        const t1 = performance.now();
        // GC entries are delivered asynchronously: wait a turn so this query's are in.
        await new Promise((r) => setImmediate(r));
        metricsQueryGc.record(
          gcPauses.filter((g) => g.start >= t0 && g.start < t1).reduce((sum, g) => sum + g.duration, 0),
        );

        t0 = performance.now();
        const report = await collectDiagnosticReport({ nodes: clients, timeoutMs: 10_000, logWindowMs: HISTORY_MS });
        fullReport.record(performance.now() - t0);
        reportSummary = `${report.status} (${report.reasons.join('; ') || 'no problems'}), ${report.logs.totalRecords} log records`;

        t0 = performance.now();
        const collector = createLogCollector({
          nodes: clients,
          timeoutMs: 10_000,
          sinceWallMs: Date.now() - HISTORY_MS,
          pageLimit: 100_000,
        });
        await collector.poll();
        const view = collector.view();
        logAggregation.record(performance.now() - t0);
        // Completeness: every node's seqs from the first in the window to the newest it
        // reported are each in the merged view exactly once.
        const keys = new Set(view.records.map((r) => `${r.node}:${r.seq}`));
        let expected = 0;
        let found = 0;
        for (const c of view.completeness) {
          if (c.firstSeq === null || c.nodeLastSeq === null) continue;
          for (let seq = c.firstSeq; seq <= c.nodeLastSeq; seq++) {
            expected++;
            if (keys.has(`${c.nodeId}:${seq}`)) found++;
          }
        }
        const duplicates = view.records.length - keys.size;
        const pct = expected === 0 || duplicates > 0 ? 0 : (100 * found) / expected;
        completeness = Math.min(completeness, pct);
        aggregatedRecords = view.records.length;
      }

      gcObserver.disconnect();

      // Wait for the load to finish, then check accuracy: merged-HDR cluster percentiles
      // against the exact percentiles of every operation's duration (same rank rule).
      progress.update(4, steps, 'waiting for the load to end; accuracy');
      const remaining = loadMs - (performance.now() - loadStarted) + 2000;
      const deadline = performance.now() + Math.max(0, remaining) + 10_000;
      while (!nodes.every((n) => /load done/.test(n.output())) && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
      const final = await collectDiagnosticReport({
        nodes: clients,
        timeoutMs: 10_000,
        logWindowMs: 1,
        minLogRecordsPerNode: 0,
      });
      const merged = final.metrics.operation?.lifetimeMs;
      // The nodes' own time per metrics snapshot (request in to last byte out), and
      // their CPU meanwhile: the small answers are the metrics queries (and this last one).
      const nodeTimes = (
        await Promise.all(
          nodes.map(
            async (n) =>
              JSON.parse((await get(n.url, '/bench/snapshot-times', agent)).body) as {
                ms: number;
                bytes: number;
                cpuMs: number;
              }[],
          ),
        )
      ).flat();
      const nodeQueryTime = new LatencyHistogram();
      const nodeQueryCpu = new LatencyHistogram();
      for (const t of nodeTimes) {
        if (t.bytes > 1_000_000) continue;
        nodeQueryTime.record(t.ms);
        nodeQueryCpu.record(t.cpuMs);
      }
      const exact = (
        await Promise.all(
          nodes.map(async (n) => JSON.parse((await get(n.url, '/bench/durations', agent)).body) as number[]),
        )
      )
        .flat()
        .sort((a, b) => a - b);
      const exactAt = (p: number) => exact[Math.max(0, Math.ceil((p / 100) * exact.length) - 1)] ?? 0;
      const relativeErrors = [
        [merged?.p50, exactAt(50)],
        [merged?.p95, exactAt(95)],
        [merged?.p99, exactAt(99)],
      ].map(([got, want]) => (want ? Math.abs((got ?? 0) - want) / want : 1));
      const accuracy = 100 * (1 - Math.max(...relativeErrors));
      const loadLines = nodes.map((n) => /load done (.*)/.exec(n.output())?.[1] ?? 'unfinished');
      const completed = loadLines.reduce((s, l) => s + Number(/completed=(\d+)/.exec(l)?.[1] ?? 0), 0);
      const elapsed = Math.max(...loadLines.map((l) => Number(/elapsedMs=(\d+)/.exec(l)?.[1] ?? loadMs)));
      say(`last report: ${reportSummary}`);
      say(`load: ${loadLines.join(' | ')}`);
      progress.update(steps, steps, 'done');

      const h = health.latency.summary();
      const e = echoLatency.summary();
      return {
        metrics: {
          health_check_p50: { value: h.p50, unit: 'ms', better: 'lower', specTarget: 50 },
          health_check_p99: { value: h.p99, unit: 'ms', better: 'lower', specTarget: 50, goal: 2 },
          health_check_server_p99: {
            value: serverHealth.count > 0 ? serverHealth.percentile(99) : Number.NaN,
            unit: 'ms',
            better: 'lower',
            specTarget: 50,
            goal: 2,
          },
          health_check_errors: { value: health.errors, unit: 'count', better: 'lower', goal: 0 },
          metrics_query_p50: { value: metricsQuery.percentile(50), unit: 'ms', better: 'lower', specTarget: 3000 },
          metrics_query_p99: {
            value: metricsQuery.percentile(99),
            unit: 'ms',
            better: 'lower',
            specTarget: 3000,
            goal: 50,
          },
          full_report_p50: { value: fullReport.percentile(50), unit: 'ms', better: 'lower', specTarget: 30_000 },
          full_report_p99: {
            value: fullReport.percentile(99),
            unit: 'ms',
            better: 'lower',
            specTarget: 30_000,
            goal: 1000,
          },
          log_aggregation_5min_p50: {
            value: logAggregation.percentile(50),
            unit: 'ms',
            better: 'lower',
            specTarget: 45_000,
          },
          log_aggregation_5min_p99: {
            value: logAggregation.percentile(99),
            unit: 'ms',
            better: 'lower',
            specTarget: 45_000,
            goal: 1000,
          },
          log_completeness: { value: completeness, unit: '%', better: 'higher', specTarget: 100, goal: 100 },
          percentile_accuracy: { value: accuracy, unit: '%', better: 'higher', specTarget: 99.9, goal: 99 },
          load_achieved: { value: completed / (elapsed / 1000), unit: 'ops/s', better: 'higher' },
        },
        baselines: {
          http_echo_p50: {
            value: e.p50,
            unit: 'ms',
            note: 'bare node:http echo on loopback, 50/s open loop, same time as the health checks',
          },
          http_echo_p99: {
            value: e.p99,
            unit: 'ms',
            note: 'the floor under any health check over HTTP on this machine now',
          },
          node_echo_p99: {
            value: nodeEchoRun.latency.percentile(99),
            unit: 'ms',
            note: 'bare response from the node processes (same server and load, no health handler), 50/s open loop',
          },
          node_echo_round_trip_p99: {
            value: nodeEchoRoundTrip.percentile(99),
            unit: 'ms',
            note: 'the same from the actual send',
          },
          health_send_lateness_p99: {
            value: healthLateness.percentile(99),
            unit: 'ms',
            note: "how late the generator's timers sent a health check (part of health_check_p99)",
          },
          health_round_trip_p99: {
            value: healthRoundTrip.percentile(99),
            unit: 'ms',
            note: 'health check from the actual send to the answer, without the lateness',
          },
          http_echo_round_trip_p99: {
            value: echoRoundTrip.percentile(99),
            unit: 'ms',
            note: 'the echo the same way: the round-trip floor',
          },
          metrics_query_cpu_p99: {
            value: metricsQueryCpu.percentile(99),
            unit: 'ms',
            note: 'CPU of the aggregating process per metrics query (GC threads included)',
          },
          metrics_query_gc_pause_p99: {
            value: metricsQueryGc.percentile(99),
            unit: 'ms',
            note: "this process' garbage-collection pauses within one metrics query (from the work before it)",
          },
          metrics_query_node_p99: {
            value: nodeQueryTime.percentile(99),
            unit: 'ms',
            note: "a node's time per metrics snapshot, request in to last byte out (any node)",
          },
          metrics_query_node_cpu_p99: {
            value: nodeQueryCpu.percentile(99),
            unit: 'ms',
            note: "a node's process CPU over that time (its load and GC threads included)",
          },
        },
        notes: [
          `3 node processes over loopback HTTP, ${OPS_PER_SEC} ops/s in total for ${loadMs / 1000} s, 2 log records per op, 5 minutes of history per node`,
          `each report merges ~${aggregatedRecords} log records; last report: ${reportSummary}`,
          'metrics query = the full report without its log snapshot (health, resources, consensus, merged HDR metrics, SLOs) from all 3 nodes',
          `accuracy = 100 x (1 - max relative error of merged-HDR p50/p95/p99 vs the exact values of ${exact.length} operations)`,
          "health checks run before the reports (a prober is not the process building reports); both under the same load, after 1.5 s of unmeasured health and echo requests (JIT, the nodes' first segment flush)",
          ...[...healthFailures].map(([line, n]) => `readyz failed ${n}x: ${line}`),
          'one warm-up report precedes the measured ones (JIT); reports, metrics queries and aggregations then alternate',
        ],
      };
    } finally {
      agent.destroy();
      await Promise.all(nodes.map(stopNode));
    }
  },
};
