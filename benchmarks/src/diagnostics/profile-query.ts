// Profiling aid for jtbd4-diagnostics (not a benchmark): starts the three bench nodes,
// then runs metrics queries (the report without its log snapshot), optionally
// alternated with full reports, and prints where the time goes: per node answer
// time (network + node), client-side validation/merge, and the total.
// Usage: tsx --conditions=@unrdf/source src/diagnostics/profile-query.ts <scratchDir> [queries] [--with-reports] [--cpu-prof-nodes]
// Run this process itself under `node --cpu-prof` to profile the aggregator side.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { collectDiagnosticReport, httpDiagnosticNode } from '@unrdf/diagnostics';
import { LatencyHistogram } from '../harness/histogram.js';

const [scratchArg, queriesArg, ...flags] = process.argv.slice(2);
if (!scratchArg) throw new Error('usage: profile-query <scratchDir> [queries] [--with-reports] [--cpu-prof-nodes]');
const scratchDir: string = scratchArg;
const queries = Number(queriesArg ?? 50);
const withReports = flags.includes('--with-reports');
const profNodes = flags.includes('--cpu-prof-nodes');
const NODE_IDS = ['n1', 'n2', 'n3'];
const NODE_SCRIPT = fileURLToPath(new URL('./bench-node.ts', import.meta.url));
const TSX = createRequire(import.meta.url).resolve('tsx');
mkdirSync(scratchDir, { recursive: true });

function start(id: string): Promise<{ child: ChildProcess; url: string }> {
  const prof = profNodes ? ['--cpu-prof', `--cpu-prof-dir=${scratchDir}/prof-${id}`] : [];
  const child = spawn(
    process.execPath,
    [
      ...prof,
      '--conditions=@unrdf/source',
      '--import',
      TSX,
      NODE_SCRIPT,
      id,
      scratchDir,
      '33',
      '600000',
      NODE_IDS.join(','),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${id} did not start`)), 60_000);
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const m = /listening (\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
  });
}

const nodes = await Promise.all(NODE_IDS.map(start));
const clients = nodes.map((n, i) => httpDiagnosticNode({ id: NODE_IDS[i] ?? '', url: n.url }));
await collectDiagnosticReport({ nodes: clients, timeoutMs: 10_000 });
const total = new LatencyHistogram();
const perNode = new LatencyHistogram();
const merge = new LatencyHistogram();
for (let i = 0; i < queries; i++) {
  if (withReports) await collectDiagnosticReport({ nodes: clients, timeoutMs: 10_000 });
  else await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const report = await collectDiagnosticReport({
    nodes: clients,
    timeoutMs: 10_000,
    logWindowMs: 1,
    minLogRecordsPerNode: 0,
  });
  const ms = performance.now() - t0;
  total.record(ms);
  const slowest = Math.max(...report.nodes.map((n) => n.latencyMs));
  perNode.record(slowest);
  merge.record(ms - slowest);
  if (i < 3 || ms > 40) {
    const cpu = process.cpuUsage(cpu0);
    console.log(
      `query ${i}: ${ms.toFixed(1)} ms, nodes ${report.nodes.map((n) => n.latencyMs.toFixed(1)).join('/')} ms, client cpu ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms`,
    );
  }
}
const fmt = (h: LatencyHistogram) =>
  `p50 ${h.percentile(50).toFixed(1)} p99 ${h.percentile(99).toFixed(1)} max ${h.percentile(100).toFixed(1)}`;
console.log(`total       ${fmt(total)}`);
console.log(`slowest node ${fmt(perNode)}`);
console.log(`after nodes ${fmt(merge)}`);
for (const [i, n] of nodes.entries()) {
  const times = (await (await fetch(`${n.url}/bench/snapshot-times`)).json()) as {
    ms: number;
    bytes: number;
    cpuMs: number;
  }[];
  const small = times.filter((t) => t.bytes < 200_000);
  const wall = new LatencyHistogram();
  const cpu = new LatencyHistogram();
  for (const t of small) {
    wall.record(t.ms);
    cpu.record(t.cpuMs);
  }
  const bytes = small.reduce((s, t) => s + t.bytes, 0) / Math.max(1, small.length);
  console.log(
    `${NODE_IDS[i]} server: ${small.length} metrics snapshots, wall ${fmt(wall)}, cpu ${fmt(cpu)}, ~${Math.round(bytes)} bytes`,
  );
}
for (const n of nodes) n.child.kill('SIGTERM');
await Promise.all(nodes.map((n) => new Promise((r) => n.child.once('exit', r))));
