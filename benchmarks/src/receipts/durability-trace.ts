// Traces the jtbd1-receipts durability A/B sub-run: fresh ledgers, --count receipts at
// --rate/s, modes alternating round by round; records each append's latency and, on the
// ledger's own connection, how long every BEGIN/COMMIT/checkpoint statement and every
// fdatasync of the WAL took, then prints, for the slowest appends, what the ledger was
// doing in the milliseconds before they resolved.
//
//   cd benchmarks && npx tsx --conditions=@unrdf/source src/receipts/durability-trace.ts \
//     [--rounds 2] [--count 5000] [--rate 1000] [--mode fsync-after-commit] [--dir /tmp/receipts-trace]
import fs, { mkdirSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { generateNoteKey } from '@unrdf/receipts';
import type { openLedger as OpenLedger } from '@unrdf/receipts/ledger';
import { LatencyHistogram } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';
import { rotatingSingleBody } from './bodies.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    count: { type: 'string', default: '5000' },
    rate: { type: 'string', default: '1000' },
    mode: { type: 'string', multiple: true, default: [] },
    dir: { type: 'string', default: '/tmp/receipts-trace' },
    worst: { type: 'string', default: '12' },
    slow: { type: 'string', default: '4' },
    /** Appends this many receipts at --rate/s to another ledger first, kept open (the bench's per-type phase). */
    warm: { type: 'string', default: '0' },
  },
});
const modes = (values.mode.length > 0 ? values.mode : ['fsync-in-commit', 'fsync-after-commit']) as (
  | 'fsync-after-commit'
  | 'fsync-in-commit'
)[];
const ORIGIN = 'bench.unrdf.example/ledger';
const signerKey = generateNoteKey(ORIGIN).signerKey;
const dir = join(values.dir, `trace-${process.pid}`);
mkdirSync(dir, { recursive: true });
const body = rotatingSingleBody;

interface Event {
  readonly what: string;
  readonly start: number;
  readonly ms: number;
}
let events: Event[] = [];
const timed = <T>(what: string, f: () => T): T => {
  const start = performance.now();
  try {
    return f();
  } finally {
    events.push({ what, start, ms: performance.now() - start });
  }
};
// Every statement the ledger's connection runs through exec() (BEGIN, COMMIT, pragmas).
const exec = DatabaseSync.prototype.exec;
DatabaseSync.prototype.exec = function (this: DatabaseSync, sql: string) {
  const what = sql.length > 40 ? `${sql.slice(0, 40)}…` : sql;
  return timed(`exec ${what}`, () => exec.call(this, sql));
};
// Requests to a checkpointer thread, and GC pauses.
const postMessage = Worker.prototype.postMessage;
Worker.prototype.postMessage = function (this: Worker, message: unknown, ...rest: unknown[]) {
  if (message === 'checkpoint') {
    const start = performance.now();
    this.once('message', () => events.push({ what: 'worker checkpoint', start, ms: performance.now() - start }));
  }
  return (postMessage as (...a: unknown[]) => void).call(this, message, ...rest);
};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) events.push({ what: 'gc', start: e.startTime, ms: e.duration });
}).observe({ entryTypes: ['gc'] });
// The ledger's fdatasyncs, through node:fs's own exports (patched before it is loaded).
const { fdatasync, fdatasyncSync } = fs;
fs.fdatasyncSync = (fd) => timed('fdatasync inline', () => fdatasyncSync(fd));
fs.fdatasync = ((fd: number, cb: (e: NodeJS.ErrnoException | null) => void) => {
  const start = performance.now();
  fdatasync(fd, (e) => {
    events.push({ what: 'fdatasync pool', start, ms: performance.now() - start });
    cb(e);
  });
}) as typeof fs.fdatasync;
syncBuiltinESMExports();
const { openLedger } = (await import('@unrdf/receipts/ledger')) as { openLedger: typeof OpenLedger };

const load0 = loadavg()[0] ?? 0;
const count = Number(values.count);
const warmLedger = await openLedger({ path: join(dir, 'warm.db'), origin: ORIGIN, signers: [{ signer: signerKey }] });
if (Number(values.warm) > 0) {
  const r = await openLoop({
    ratePerSec: Number(values.rate),
    durationMs: (Number(values.warm) * 1000) / Number(values.rate),
    fire: (_at, i) => warmLedger.append(body(i)),
  });
  const s = r.latency.summary();
  process.stdout.write(`warm-up: ${r.completed} receipts, P50 ${s.p50.toFixed(2)} P99 ${s.p99.toFixed(2)} ms\n`);
}
for (let round = 0; round < Number(values.rounds); round++) {
  for (const durability of modes) {
    events = [];
    const ledger = await openLedger({
      path: join(dir, `r${round}-${durability}.db`),
      origin: ORIGIN,
      signers: [{ signer: signerKey }],
      durability,
    });
    const done: { at: number; ms: number }[] = [];
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const result = await openLoop({
      ratePerSec: Number(values.rate),
      durationMs: (count * 1000) / Number(values.rate),
      fire: async (intendedAt, i) => {
        await ledger.append(body(i));
        const at = performance.now();
        done.push({ at, ms: at - intendedAt });
      },
    });
    delay.disable();
    await ledger.close();
    const s = result.latency.summary();
    const summary = (prefix: string) => {
      const h = new LatencyHistogram();
      const list = events.filter((e) => e.what.startsWith(prefix));
      for (const e of list) h.record(e.ms);
      const x = h.summary();
      return `${prefix}: n ${list.length} P50 ${x.p50.toFixed(2)} P99 ${x.p99.toFixed(2)} max ${x.max.toFixed(2)} total ${list.reduce((a, e) => a + e.ms, 0).toFixed(0)} ms`;
    };
    process.stdout.write(
      `\n== round ${round} ${durability}: P50 ${s.p50.toFixed(2)} P99 ${s.p99.toFixed(2)} P99.9 ${s.p999.toFixed(2)} max ${s.max.toFixed(2)} ms; loop stall max ${(delay.max / 1e6).toFixed(1)} ms\n`,
    );
    for (const p of [
      'exec COMMIT',
      'exec BEGIN',
      'exec PRAGMA wal_checkpoint',
      'fdatasync inline',
      'fdatasync pool',
      'worker checkpoint',
      'gc',
    ]) {
      process.stdout.write(`   ${summary(p)}\n`);
    }
    // What the slow appends (over --slow ms) overlapped: each kind of event, while it ran.
    const slow = done.filter((d) => d.ms > Number(values.slow));
    const overlaps = (d: { at: number; ms: number }, e: Event, minMs: number) =>
      e.ms >= minMs && e.start < d.at && e.start + e.ms > d.at - d.ms;
    const kinds = [...new Set(events.map((e) => e.what))];
    const shares = kinds.map((k) => {
      const n = slow.filter((d) => events.some((e) => e.what === k && overlaps(d, e, 0.5))).length;
      return `${k} ${n}`;
    });
    const bare = slow.filter((d) => !events.some((e) => overlaps(d, e, 0.5))).length;
    process.stdout.write(
      `   ${slow.length} appends over ${values.slow} ms; overlapping an event >= 0.5 ms: ${shares.join(', ')}; none: ${bare}\n`,
    );
    const worst = [...done].sort((a, b) => b.ms - a.ms).slice(0, Number(values.worst));
    const t0 = done[0]?.at ?? 0;
    for (const w of worst.sort((a, b) => a.at - b.at)) {
      const window = events.filter((e) => overlaps(w, e, 0.3));
      process.stdout.write(
        `   append resolved at ${(w.at - t0).toFixed(1)} took ${w.ms.toFixed(2)}: ${window.map((e) => `${e.what} ${e.ms.toFixed(2)} @${(e.start - t0).toFixed(1)}`).join('; ')}\n`,
      );
    }
  }
}
await warmLedger.close();
process.stdout.write(`load average ${load0.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}\n`);
rmSync(dir, { recursive: true, force: true });
