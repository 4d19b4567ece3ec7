// Where the app's CPU goes per operation, end to end: starts the reference app with
// `--cpu-prof`, drives the jtbd1-e2e workload (POST ?wait: one round trip to the durable
// receipt) or the jtbd5-e2e one (`--flow post`: POST only, 202 once durable) at a fixed rate,
// prints the app's CPU time per operation (from /proc) and the profile's self time
// grouped by package and by function. Not a benchmark (no targets): a tool to find
// what to cut.
//
//   node --conditions=@unrdf/source --import tsx benchmarks/src/daemon/profile-e2e.ts \
//     [--rate 1000] [--seconds 10] [--type mixed|create|sleep] [--sleep-ms 0] [--flow wait|post] [--no-profile] [--http-threads 0|1] [--slow-log]
//     [--connections 64] [--node-arg=--import=./preload.mjs ...] [--keep-profiles]
//
// UNRDF_BENCH_APP_STDOUT=file keeps the app's stdout (e.g. --node-arg=--trace-gc-nvp).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openLoop } from '../harness/open-loop.js';
import { poolFor, processCpuMs, runDelayMs, startApp, threadCpuMs, threadRunDelayMs } from './processes.js';
import { awaitReceipt, operationFor, RDF_TYPES, type RdfType, seedsFor, submit, submitAndWait } from './workload.js';

/** Idle and total jiffies of all CPUs (/proc/stat). */
const machineIdle = (): { idle: number; total: number } => {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
};

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    type: { type: 'string', default: 'mixed' },
    'sleep-ms': { type: 'string', default: '0' },
    flow: { type: 'string', default: 'wait' },
    'no-profile': { type: 'boolean', default: false },
    'slow-log': { type: 'boolean', default: false },
    'keep-profiles': { type: 'boolean', default: false },
    'http-threads': { type: 'string', default: '1' },
    connections: { type: 'string', default: '64' },
    'node-arg': { type: 'string', multiple: true, default: [] },
  },
});
const rate = Number(args.rate);
const seconds = Number(args.seconds);

const scratch = mkdtempSync(join(tmpdir(), 'unrdf-profile-'));
const profDir = join(scratch, 'prof');
const app = await startApp(
  join(scratch, 'app'),
  ['--http-threads', args['http-threads']],
  [...(args['no-profile'] ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`]), ...args['node-arg']],
);
const pool = poolFor(app.url, Number(args.connections));
const pid = app.child.pid as number;
const typeOf = (i: number): RdfType | 'sleep' =>
  args.type === 'mixed' ? (RDF_TYPES[i % RDF_TYPES.length] as RdfType) : (args.type as RdfType | 'sleep');
const opFor = (i: number, run: string) =>
  typeOf(i) === 'sleep'
    ? { type: 'sleep', subject: `urn:x:${i % 1000}`, input: { ms: Number(args['sleep-ms']) } }
    : operationFor(typeOf(i) as RdfType, i, run);
try {
  const total = rate * seconds;
  for (const run of ['warm', 'm']) {
    const count = run === 'warm' ? Math.min(total, 2000) : total;
    for (let i = 0; i < count; i += 64) {
      await Promise.all(
        Array.from({ length: Math.min(64, count - i) }, async (_, k) => {
          const type = typeOf(i + k);
          const s = type === 'sleep' ? undefined : seedsFor(type, i + k, run);
          if (s) await awaitReceipt(pool, app.token, (await submit(pool, app.token, s)).id);
        }),
      );
    }
    const slow: [number, number][] = [];
    // The load generator's own stalls count in its latencies: report them beside.
    const clientLoop = monitorEventLoopDelay({ resolution: 1 });
    clientLoop.enable();
    const before = processCpuMs(pid);
    const mainBefore = processCpuMs(pid, pid);
    const threadsBefore = threadCpuMs(pid);
    const waitsBefore = threadRunDelayMs(pid);
    const clientWaitBefore = runDelayMs(process.pid);
    const startedAt = performance.now();
    const clientBefore = process.cpuUsage();
    const idleBefore = machineIdle();
    const result = await openLoop({
      ratePerSec: run === 'warm' ? 500 : rate,
      durationMs: run === 'warm' ? (count / 500) * 1000 : seconds * 1000,
      fire: async (_at, i) => {
        const due = Date.now();
        if (args.flow === 'post') await submit(pool, app.token, opFor(i, run));
        else await submitAndWait(pool, app.token, opFor(i, run));
        const took = Date.now() - due;
        if (took > 10) slow.push([due, took]);
      },
    });
    clientLoop.disable();
    const used = processCpuMs(pid) - before;
    const mainUsed = processCpuMs(pid, pid) - mainBefore;
    const client = process.cpuUsage(clientBefore);
    const threads = [...threadCpuMs(pid)]
      .map(([name, ms]) => [name, ms - (threadsBefore.get(name) ?? 0)] as const)
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1]);
    const wallMs = performance.now() - startedAt;
    const clientWaitAfter = runDelayMs(process.pid);
    const waits = [...threadRunDelayMs(pid)]
      .map(([name, ms]) => [name, ms - (waitsBefore.get(name) ?? 0)] as const)
      .filter(([, ms]) => ms >= 1)
      .sort((a, b) => b[1] - a[1]);
    const idle = machineIdle();
    const idleShare = (idle.idle - idleBefore.idle) / (idle.total - idleBefore.total);
    const s = result.latency.summary();
    if (args['slow-log']) {
      // Operations over 10 ms, grouped by the 100 ms window they were due in (wall clock).
      const windows = new Map<number, { n: number; max: number }>();
      for (const [due, took] of slow) {
        const w = windows.get(Math.floor(due / 100)) ?? { n: 0, max: 0 };
        w.n++;
        w.max = Math.max(w.max, took);
        windows.set(Math.floor(due / 100), w);
      }
      for (const [w, v] of windows) console.log(`  slow window ${w * 100}: ${v.n} ops over 10 ms, max ${v.max} ms`);
    }
    console.log(
      `${run}: ${result.issued} ops (${result.errors} errors) at ${run === 'warm' ? 500 : rate}/s: app CPU ${used} ms = ` +
        `${((used * 1000) / result.issued).toFixed(0)} µs/op (main thread ${((mainUsed * 1000) / result.issued).toFixed(0)}); latency P50 ${s.p50.toFixed(2)} P99 ${s.p99.toFixed(2)} ms, ${((100 * slow.length) / result.issued).toFixed(2)} % over 10 ms; ` +
        `load generator ${((client.user + client.system) / result.issued).toFixed(0)} µs/op; machine idle ${(idleShare * 100).toFixed(0)} %`,
    );
    console.log(
      `  load generator's event-loop delay: P99 ${(clientLoop.percentile(99) / 1e6).toFixed(2)}, P99.9 ${(clientLoop.percentile(99.9) / 1e6).toFixed(2)}, max ${(clientLoop.max / 1e6).toFixed(2)} ms`,
    );
    console.log(
      `  app threads (µs/op): ${threads.map(([name, ms]) => `${name} ${((ms * 1000) / result.issued).toFixed(0)}`).join(', ')}`,
    );
    // Runnable but without a core (schedstat's run delay), as a share of the window.
    const pct = (ms: number) => `${((100 * ms) / wallMs).toFixed(1)} %`;
    if (clientWaitBefore !== undefined && clientWaitAfter !== undefined)
      console.log(
        `  waiting for a core: load generator ${pct(clientWaitAfter - clientWaitBefore)}; app ${waits.map(([name, ms]) => `${name} ${pct(ms)}`).join(', ')}`,
      );
  }
} finally {
  await pool.close();
  await app.stop();
}

if (!args['no-profile']) {
  // One profile per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile (0: main).
  const files = readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => ({ f, thread: Number(f.split('.').at(-3)) }))
    .sort((a, b) => a.thread - b.thread);
  if (files.length === 0) throw new Error('no profile written');
  for (const { f: file, thread } of files) reportProfile(file, thread);
}

function reportProfile(file: string, thread: number): void {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }
  const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as {
    nodes: Node[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  prof.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  });
  const group = (url: string) => {
    const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (m) return m[1] as string;
    const p = /\/(packages|apps)\/([^/]+)\/src\/(.+)$/.exec(url);
    if (p) return `${p[2]}/${p[3]}`;
    return url.startsWith('node:') ? url : url === '' ? '(native/gc/idle)' : url.replace(/^.*\//, '');
  };
  const byGroup = new Map<string, number>();
  const byFn = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const n = byId.get(id) as Node;
    const name = n.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') continue;
    total += us;
    const g = group(n.callFrame.url);
    byGroup.set(g, (byGroup.get(g) ?? 0) + us);
    const key = `${name} ${g}:${n.callFrame.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const top = (m: Map<string, number>, k: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(
        ([key, us]) =>
          `  ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`,
      )
      .join('\n');
  console.log(
    `\nthread ${thread}${thread === 0 ? ' (main)' : ''}: ${(total / 1000).toFixed(0)} ms busy (whole process life)\nby package/file:\n${top(byGroup, 30)}`,
  );
  console.log(`by function:\n${top(byFn, 40)}`);
  // Who calls the hot native work (hashing, SQLite, writes): self time charged to the
  // nearest caller in our own code (packages/ or apps/).
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ours = (id: number): string => {
    for (let p = parent.get(id); p !== undefined; p = parent.get(p)) {
      const f = (byId.get(p) as Node).callFrame;
      if (/\/(packages|apps)\/[^/]+\/src\//.test(f.url))
        return `${f.functionName || '(anonymous)'} ${group(f.url)}:${f.lineNumber + 1}`;
    }
    return '(none of ours)';
  };
  const byCaller = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id) as Node;
    const g = group(n.callFrame.url);
    if (!/^(node:|\(native)/.test(g) || n.callFrame.functionName === '(idle)') continue;
    const key = `${n.callFrame.functionName} <- ${ours(id)}`;
    byCaller.set(key, (byCaller.get(key) ?? 0) + us);
  }
  console.log(`node/native self time by our nearest caller:\n${top(byCaller, 40)}`);
}
if (args['keep-profiles']) console.log(`profiles kept in ${profDir}`);
else rmSync(scratch, { recursive: true, force: true });
