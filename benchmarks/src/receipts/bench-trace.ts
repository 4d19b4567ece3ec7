// Runs the jtbd1-receipts benchmark itself (quick or full) with the ledger's work traced
// from outside: every statement its connections run through exec(), every fdatasync of
// the WAL, every request to a checkpointer thread, every GC pause and the event loop's
// stalls, grouped by the benchmark's phase (its progress label). With --until PHASE it stops
// when that phase starts (no figures then).
//
//   cd benchmarks && npx tsx --conditions=@unrdf/source src/receipts/bench-trace.ts [--full] [--until offline]
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { LatencyHistogram } from '../harness/histogram.js';

const { values } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    until: { type: 'string', default: '' },
  },
});

interface Event {
  readonly what: string;
  readonly start: number;
  readonly ms: number;
}
const phases = new Map<string, { events: Event[]; stall: ReturnType<typeof monitorEventLoopDelay>; t0: number }>();
let phase = 'baselines';
const current = () => {
  let p = phases.get(phase);
  if (!p) {
    const stall = monitorEventLoopDelay({ resolution: 1 });
    stall.enable();
    p = { events: [], stall, t0: performance.now() };
    phases.set(phase, p);
  }
  return p;
};
/** Phases whose events are not kept (millions of batches): the throughput and verification runs. */
const untraced = /^(sustained|proof|offline|tamper)/;
const push = (what: string, start: number) => {
  if (!untraced.test(phase)) current().events.push({ what, start, ms: performance.now() - start });
};

const exec = DatabaseSync.prototype.exec;
DatabaseSync.prototype.exec = function (this: DatabaseSync, sql: string) {
  const start = performance.now();
  try {
    return exec.call(this, sql);
  } finally {
    push(`exec ${sql.replace(/\s+/g, ' ').slice(0, 32)}`, start);
  }
};
const { fdatasync, fdatasyncSync } = fs;
fs.fdatasyncSync = (fd) => {
  const start = performance.now();
  try {
    fdatasyncSync(fd);
  } finally {
    push('fdatasync inline', start);
  }
};
fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
  const start = performance.now();
  fdatasync(fd, (e) => {
    push('fdatasync pool', start);
    cb(e);
  });
}) as typeof fs.fdatasync;
syncBuiltinESMExports();
const postMessage = Worker.prototype.postMessage;
Worker.prototype.postMessage = function (this: Worker, message: unknown, ...rest: unknown[]) {
  if (message === 'checkpoint') {
    const start = performance.now();
    this.once('message', () => push('worker checkpoint', start));
  }
  return (postMessage as (...a: unknown[]) => void).call(this, message, ...rest);
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
    if (!untraced.test(phase)) current().events.push({ what: `gc kind ${kind}`, start: e.startTime, ms: e.duration });
  }
}).observe({ entryTypes: ['gc'] });

const { benchmark } = await import('../benches/jtbd1-receipts.js');
const scratchDir = await mkdtemp(join(tmpdir(), 'unrdf-bench-trace-'));
class Stop extends Error {}
const load0 = loadavg()[0] ?? 0;
try {
  const outcome = await benchmark.run({
    quick: !values.full,
    scratchDir,
    log: (m) => process.stderr.write(`${m}\n`),
    progress: {
      update(_done, _total, status) {
        const label = status ?? phase;
        if (values.until !== '' && label.startsWith(values.until)) throw new Stop();
        phase = label;
      },
      end() {},
    },
  });
  for (const [k, m] of Object.entries(outcome.metrics)) process.stdout.write(`${k} ${m.value?.toFixed(3) ?? 'n/a'}\n`);
  for (const [k, m] of Object.entries(outcome.baselines ?? {}))
    process.stdout.write(`${k} ${m.value?.toFixed(3) ?? 'n/a'}\n`);
} catch (error) {
  if (!(error instanceof Stop)) throw error;
} finally {
  await rm(scratchDir, { recursive: true, force: true });
}
for (const [name, p] of phases) {
  p.stall.disable();
  const kinds = new Map<string, Event[]>();
  for (const e of p.events) {
    const list = kinds.get(e.what);
    if (list) list.push(e);
    else kinds.set(e.what, [e]);
  }
  process.stdout.write(
    `\n== ${name}: loop stall P99 ${(p.stall.percentile(99) / 1e6).toFixed(1)} max ${(p.stall.max / 1e6).toFixed(1)} ms\n`,
  );
  for (const [what, list] of [...kinds].sort(
    (a, b) => b[1].reduce((s, e) => s + e.ms, 0) - a[1].reduce((s, e) => s + e.ms, 0),
  )) {
    const h = new LatencyHistogram();
    for (const e of list) h.record(e.ms);
    const x = h.summary();
    if (list.length < 3 && x.max < 1) continue;
    process.stdout.write(
      `   ${what.padEnd(40)} n ${String(list.length).padStart(6)} P50 ${x.p50.toFixed(2)} P99 ${x.p99.toFixed(2)} max ${x.max.toFixed(2)} total ${list.reduce((a, e) => a + e.ms, 0).toFixed(0)} ms; >3 ms: ${list.filter((e) => e.ms > 3).length}\n`,
    );
  }
}
process.stdout.write(`load average ${load0.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}\n`);
