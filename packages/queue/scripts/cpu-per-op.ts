// CPU cost per operation of the queue, for comparing changes on a shared machine:
// wall-clock rates move with the load of other processes, CPU time per operation much
// less. Not a test and not the benchmark (that is benchmarks/src/benches/jtbd5-throughput.ts).
//
//   node --conditions=@unrdf/source --import tsx packages/queue/scripts/cpu-per-op.ts [srcDir] [noop|open] [n] [rate] [groupCommitWindowMs]
//
// `srcDir` (default ../src) lets two copies of the source be compared in one session.
// `noop`: enqueue, claim, complete with no-op handlers, at most 5,000 outstanding.
// `open`: `rate` (default 9,000) arrivals/s for n/rate s with 100 ms handlers (the benchmark's
// extreme profile); also prints the queue wait from the intended arrival (P50/P99/max, ms).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const [
  srcArg = new URL('../src', import.meta.url).pathname,
  mode = 'noop',
  nArg = '60000',
  rateArg = '9000',
  windowArg = '0',
] = process.argv.slice(2);
const total = Number(nArg);
const rate = Number(rateArg);
const waits: number[] = [];
let t0 = 0;
const { openQueue } = (await import(join(resolve(srcArg), 'index.ts'))) as typeof import('../src/index.js');
const dir = mkdtempSync(join(tmpdir(), 'queue-cpu-'));
let completed = 0;
let wake: (() => void) | undefined;
const queue = await openQueue({
  path: join(dir, 'q.db'),
  concurrency: 1000,
  groupCommitWindowMs: Number(windowArg),
  types: {
    noop: { handler: () => null },
    work: {
      handler: (i: number) => {
        waits.push(performance.now() - (t0 + (i * 1000) / rate));
        return sleep(100);
      },
      timeoutMs: 30_000,
    },
  },
});
queue.onEvent((event) => {
  if (event.kind !== 'completed') return;
  completed++;
  if (wake && (completed === total || completed % 500 === 0)) {
    wake();
    wake = undefined;
  }
});
const cpu0 = process.cpuUsage();
t0 = performance.now();
if (mode === 'noop') {
  for (let i = 0; i < total; i++) {
    while (i - completed >= 5000) await new Promise<void>((r) => (wake = r));
    void queue.enqueue('noop', i);
    if (i % 256 === 0) await new Promise<void>((r) => setImmediate(r));
  }
} else {
  for (let i = 0; i < total; ) {
    const due = Math.floor(((performance.now() - t0) * rate) / 1000);
    for (; i < Math.min(due, total); i++) void queue.enqueue('work', i);
    await sleep(1);
  }
}
while (completed < total) await new Promise<void>((r) => (wake = r));
const elapsed = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await queue.close();
rmSync(dir, { recursive: true, force: true });
const us = (cpu.user + cpu.system) / total;
console.log(
  JSON.stringify({
    src: srcArg,
    windowMs: Number(windowArg),
    mode,
    total,
    opsPerSec: Math.round((total * 1000) / elapsed),
    cpuUsPerOp: Number(us.toFixed(1)),
    userUsPerOp: Number((cpu.user / total).toFixed(1)),
    sysUsPerOp: Number((cpu.system / total).toFixed(1)),
    ...(mode === 'open' ? waitPercentiles() : {}),
  }),
);

function waitPercentiles() {
  const sorted = waits.sort((a, b) => a - b);
  const at = (q: number) =>
    Number((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(1));
  return { rate, waitP50: at(0.5), waitP99: at(0.99), waitMax: at(1 - 1e-9) };
}
