// The CPU cost of one metrics query (the report without its log snapshot), without
// the network and without the machine's other load: a node's snapshotJson, and the
// aggregator's parse, validation, histogram merge and SLO evaluation of 3 answers.
// In one process, so the figures compare across library versions on a busy machine.
// Usage: tsx --conditions=@unrdf/source src/diagnostics/query-cpu.ts [path/to/diagnostics/src/index.ts]
import type * as Diagnostics from '@unrdf/diagnostics';

const lib: typeof Diagnostics = process.argv[2] ? await import(process.argv[2]) : await import('@unrdf/diagnostics');
const NODE_IDS = ['n1', 'n2', 'n3'];
const nodes = NODE_IDS.map((id) => {
  const log = lib.createNodeLogger({ nodeId: id, ringSize: 100_000 });
  for (let i = 0; i < 20_000; i++) log.logger.info({ op: `${id}-${i}` }, 'operation completed');
  const metrics = lib.createMetrics();
  // About what each bench node holds: 3,000 operations, receipts, queue waits, health checks.
  for (let i = 0; i < 3000; i++) {
    const ms = 2 + Math.random() ** 3 * 15;
    metrics.recordOperation({ id: `${id}-${i}`, type: 'create', ok: true, durationMs: ms, queueWaitMs: ms / 3 });
    metrics.observe('receipt', { durationMs: ms / 2, ok: true });
    if (i % 3 === 0) {
      metrics.observe('health_check', { durationMs: 0.05 + Math.random() * 0.3, ok: true, endpoint: 'readyz' });
    }
  }
  const health = lib.createHealth({ checks: [lib.pingCheck()] });
  const diagnostics = lib.createNodeDiagnostics({ nodeId: id, logger: log, health, metrics, dataDir: '/tmp' });
  return { id, metrics, diagnostics };
});
// No log records: what the metrics query asks for.
const request = { sinceWallMs: Date.now() + 60_000, limit: 100_000 };

async function time(label: string, calls: number, call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 30; i++) await call();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await call();
  const cpu = process.cpuUsage(cpu0);
  const perCall = (cpu.user + cpu.system) / 1000 / calls;
  console.log(
    `${label}: ${perCall.toFixed(2)} ms CPU, ${((performance.now() - t0) / calls).toFixed(2)} ms wall per call`,
  );
}

// Under load every indicator changes between two queries: one new event each.
const touch = () => {
  for (const n of nodes) {
    n.metrics.recordOperation({ id: 'x', type: 'create', ok: true, durationMs: 3, queueWaitMs: 1 });
    n.metrics.observe('receipt', { durationMs: 1, ok: true });
    n.metrics.observe('health_check', { durationMs: 0.1, ok: true, endpoint: 'readyz' });
  }
};
const first = nodes[0];
if (!first) throw new Error('no nodes');
await time('node: snapshotJson', 300, async () => {
  touch();
  return first.diagnostics.snapshotJson(request);
});
const bodies = await Promise.all(nodes.map((n) => n.diagnostics.snapshotJson(request)));
console.log(`answer: ${bodies.map((b) => b.length).join('/')} bytes`);
const clients = nodes.map((n, i) => ({ id: n.id, fetchSnapshot: async () => JSON.parse(bodies[i] ?? '') as unknown }));
await time('aggregator: parse, validate, merge, SLOs of 3 answers', 300, () =>
  lib.collectDiagnosticReport({ nodes: clients, timeoutMs: 10_000, logWindowMs: 1, minLogRecordsPerNode: 0 }),
);
process.exit(0);
