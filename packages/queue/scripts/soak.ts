// A long run of the queue under open-loop load that samples, per interval, what could
// make it slow down over minutes or hours: heap, RSS, GC pauses, event-loop delay, CPU
// per operation, time inside transactions and checkpoints, the store's file sizes and
// the number of rows kept. Not a test and not the benchmark (benchmarks/src/benches/jtbd5-throughput.ts).
//
//   pnpm --filter @unrdf/queue soak [options]
//   node --conditions=@unrdf/source --import tsx packages/queue/scripts/soak.ts [options]
//
//   --src DIR           the queue's source directory (default ../src): compare two copies
//   --rate N            arrivals per second (default 9000)
//   --handler-ms N      handler time; 0 = no-op handlers (default 100)
//   --concurrency N     (default 1000)
//   --minutes N         how long arrivals keep coming (default 5; hours work: memory and
//                       disk stay bounded if the queue's do, this script keeps O(1) per interval)
//   --sample-s N        seconds per sample line (default 60)
//   --retention-s N     queue retentionMs in seconds (default: the queue's default, 7 days)
//   --maintenance-s N   queue maintenanceIntervalMs in seconds (default: the queue's, 60 s)
//   --dir DIR           where the store lives (default: a fresh temporary directory, removed after)
//   --out FILE          also write the samples and a summary as JSON
//
// SOAK_TRACE_STALLS=1 prints each event-loop stall over 50 ms (length, and when it ended)
// on stderr, to match stalls against what runs periodically.
//
// Run node with --expose-gc (`pnpm soak` does) to also get `liveHeapMb`: the heap right
// after a full GC at each sample (what is really retained; `heapMb` includes garbage not
// yet collected). That GC pauses the process once per sample.
//
// Each sample is one JSON line on stdout; the last line is a summary with the first-to-last
// trend of every figure (so a soak that runs for hours reports its trend, not one number).
import fs, { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    src: { type: 'string', default: new URL('../src', import.meta.url).pathname },
    rate: { type: 'string', default: '9000' },
    'handler-ms': { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '1000' },
    minutes: { type: 'string', default: '5' },
    'sample-s': { type: 'string', default: '60' },
    'retention-s': { type: 'string' },
    'maintenance-s': { type: 'string' },
    dir: { type: 'string' },
    out: { type: 'string' },
  },
});
const rate = Number(args.rate);
const handlerMs = Number(args['handler-ms']);
const durationMs = Number(args.minutes) * 60_000;
const sampleMs = Number(args['sample-s']) * 1000;
if (![rate, handlerMs, durationMs, sampleMs].every((n) => Number.isFinite(n) && n >= 0) || rate <= 0) {
  console.error('usage: soak.ts [--rate N] [--handler-ms N] [--minutes N] [--sample-s N] ...');
  process.exit(2);
}

/** Latency buckets: 0.1 ms up to 100 ms, then 10 ms up to 120 s (constant memory). */
class Buckets {
  readonly #fine = new Uint32Array(1000);
  readonly #coarse = new Uint32Array(12_000);
  count = 0;
  max = 0;

  record(ms: number): void {
    const v = Math.max(0, ms);
    this.count++;
    if (v > this.max) this.max = v;
    if (v < 100) {
      const i = Math.floor(v * 10);
      this.#fine[i] = (this.#fine[i] as number) + 1;
    } else {
      const i = Math.min(11_999, Math.floor(v / 10));
      this.#coarse[i] = (this.#coarse[i] as number) + 1;
    }
  }

  /** How many recorded values are above `ms` (at bucket resolution). */
  over(ms: number): number {
    let n = 0;
    if (ms < 100) for (let i = Math.floor(ms * 10) + 1; i < this.#fine.length; i++) n += this.#fine[i] as number;
    for (let i = Math.max(10, Math.floor(ms / 10) + 1); i < this.#coarse.length; i++) n += this.#coarse[i] as number;
    return n;
  }

  percentile(q: number): number {
    if (this.count === 0) return 0;
    let rank = Math.ceil(q * this.count);
    for (let i = 0; i < this.#fine.length; i++) {
      rank -= this.#fine[i] as number;
      if (rank <= 0) return (i + 1) / 10;
    }
    for (let i = 10; i < this.#coarse.length; i++) {
      rank -= this.#coarse[i] as number;
      if (rank <= 0) return (i + 1) * 10;
    }
    return this.max;
  }
}

// Time inside transactions (BEGIN IMMEDIATE … COMMIT) and checkpoints on this thread:
// wrap the connection's methods (diagnostics only; the worker thread is not counted).
const timing = { txCount: 0, txMs: 0, txMaxMs: 0, ckptCount: 0, ckptMs: 0, ckptMaxMs: 0 };
let txStart = 0;
const exec = DatabaseSync.prototype.exec;
DatabaseSync.prototype.exec = function (this: DatabaseSync, sql: string) {
  if (sql === 'BEGIN IMMEDIATE') txStart = performance.now();
  const out = exec.call(this, sql);
  if (sql === 'COMMIT' && txStart > 0) {
    const ms = performance.now() - txStart;
    timing.txCount++;
    timing.txMs += ms;
    timing.txMaxMs = Math.max(timing.txMaxMs, ms);
    txStart = 0;
  }
  return out;
};
const prepare = DatabaseSync.prototype.prepare;
DatabaseSync.prototype.prepare = function (this: DatabaseSync, sql: string) {
  const statement: StatementSync = prepare.call(this, sql);
  if (!sql.startsWith('PRAGMA wal_checkpoint')) return statement;
  const get = statement.get.bind(statement);
  statement.get = (...params: never[]) => {
    const t = performance.now();
    try {
      return get(...params);
    } finally {
      const ms = performance.now() - t;
      timing.ckptCount++;
      timing.ckptMs += ms;
      timing.ckptMaxMs = Math.max(timing.ckptMaxMs, ms);
    }
  };
  return statement;
};

// WAL fsyncs (the commit path's fdatasync on the thread pool): how many, how long.
const syncs = { count: 0, ms: 0 };
const fdatasync = fs.fdatasync;
fs.fdatasync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
  const t = performance.now();
  fdatasync(fd, (error) => {
    syncs.count++;
    syncs.ms += performance.now() - t;
    callback(error);
  });
}) as typeof fs.fdatasync;
syncBuiltinESMExports();

const gc = { count: 0, ms: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gc.count++;
    gc.ms += entry.duration;
    gc.maxMs = Math.max(gc.maxMs, entry.duration);
  }
}).observe({ entryTypes: ['gc'] });

const { openQueue } = (await import(join(resolve(args.src), 'index.ts'))) as typeof import('../src/index.js');
const ownDir = args.dir === undefined;
const dir = args.dir ?? mkdtempSync(join(tmpdir(), 'queue-soak-'));
const path = join(dir, 'soak.db');

let t0 = 0;
let waits = new Buckets();
let completed = 0;
let failed = 0;
const queue = await openQueue({
  path,
  concurrency: Number(args.concurrency),
  ...(args['retention-s'] === undefined ? {} : { retentionMs: Number(args['retention-s']) * 1000 }),
  ...(args['maintenance-s'] === undefined ? {} : { maintenanceIntervalMs: Number(args['maintenance-s']) * 1000 }),
  types: {
    work: {
      timeoutMs: 60_000,
      handler: (i: number) => {
        waits.record(performance.now() - (t0 + (i * 1000) / rate));
        return handlerMs > 0 ? sleep(handlerMs) : null;
      },
    },
  },
});
queue.onEvent((event) => {
  if (event.kind === 'completed') completed++;
  else if (event.kind === 'dead') failed++;
});

// A second, read-only connection for the store's sizes (cheap reads: no table scan).
const reader = new DatabaseSync(path, { readOnly: true });
const pages = reader.prepare(
  'SELECT page_count * page_size AS bytes, freelist_count * page_size AS free FROM pragma_page_count(), pragma_page_size(), pragma_freelist_count()',
);
// Two subqueries: SQLite answers a lone min() or max() from the index's end, but a query
// with both scans the whole table (hundreds of milliseconds on the event loop at millions
// of rows: that stall, once per sample, was most of the soak's P99 wait).
const seqSpan = reader.prepare(
  'SELECT (SELECT min(seq) FROM operations) AS lo, (SELECT max(seq) FROM operations) AS hi',
);
const fileMb = (file: string) => {
  try {
    return statSync(file).size / 2 ** 20;
  } catch {
    return 0;
  }
};

const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();
// Stalls of the event loop: a 5 ms interval that fires more than 50 ms late (how many, their
// longest, and the time they add up to: arrivals during a stall wait at least that long).
const stalls = { count: 0, ms: 0, maxMs: 0 };
let lastTick = performance.now();
const stallTimer = setInterval(() => {
  const now = performance.now();
  const late = now - lastTick - 5;
  lastTick = now;
  if (late > 50) {
    stalls.count++;
    stalls.ms += late;
    stalls.maxMs = Math.max(stalls.maxMs, late);
    if (process.env.SOAK_TRACE_STALLS)
      console.error(`stall ${Math.round(late)} ms ending at ${((now - t0) / 1000).toFixed(2)} s`);
  }
}, 5);
stallTimer.unref();
const samples: Record<string, number>[] = [];
let last = {
  t: 0,
  completed: 0,
  issued: 0,
  cpu: process.cpuUsage(),
  timing: { ...timing },
  gc: { ...gc },
  syncs: { ...syncs },
};
let issued = 0;
let enqueueErrors = 0;

function sample(now: number): void {
  const sampleStart = performance.now();
  const cpu = process.cpuUsage(last.cpu);
  const done = completed - last.completed;
  const seconds = (now - last.t) / 1000;
  const mem = process.memoryUsage();
  // A full GC (only with --expose-gc), to tell what is retained from garbage not yet collected.
  const collect = (globalThis as { gc?: () => void }).gc;
  let liveHeapMb = Number.NaN;
  if (collect) {
    collect();
    liveHeapMb = process.memoryUsage().heapUsed / 2 ** 20;
  }
  const s = queue.stats();
  const span = seqSpan.get() as { lo: number | null; hi: number | null };
  const db = pages.get() as { bytes: number; free: number };
  const row: Record<string, number> = {
    minute: Number((now / 60_000).toFixed(2)),
    arrivalsPerSec: Math.round((issued - last.issued) / seconds),
    completionsPerSec: Math.round(done / seconds),
    backlog: s.ready + s.leased - s.inFlight,
    waitP50: waits.percentile(0.5),
    waitP99: waits.percentile(0.99),
    waitMax: Number(waits.max.toFixed(1)),
    cpuUsPerOp: done === 0 ? 0 : Number(((cpu.user + cpu.system) / done).toFixed(1)),
    // The machine's 1-minute load average (2 cores here): other processes take CPU from this one.
    load1: Number((loadavg()[0] ?? 0).toFixed(2)),
    cpuPct: Number((((cpu.user + cpu.system) / 1000 / (now - last.t)) * 100).toFixed(1)),
    heapMb: Number((mem.heapUsed / 2 ** 20).toFixed(1)),
    heapTotalMb: Number((mem.heapTotal / 2 ** 20).toFixed(1)),
    liveHeapMb: Number(liveHeapMb.toFixed(1)),
    rssMb: Number((mem.rss / 2 ** 20).toFixed(1)),
    externalMb: Number((mem.external / 2 ** 20).toFixed(1)),
    gcPct: Number((((gc.ms - last.gc.ms) / (now - last.t)) * 100).toFixed(2)),
    gcMaxMs: Number(gc.maxMs.toFixed(1)),
    eldP99: Number((eld.percentile(99) / 1e6).toFixed(1)),
    eldMax: Number((eld.max / 1e6).toFixed(1)),
    stalls: stalls.count,
    stallMs: Math.round(stalls.ms),
    stallMaxMs: Math.round(stalls.maxMs),
    waitOver50Pct: Number(((waits.over(50) / Math.max(1, waits.count)) * 100).toFixed(2)),
    txPerSec: Math.round((timing.txCount - last.timing.txCount) / seconds),
    txUsPerOp: done === 0 ? 0 : Number((((timing.txMs - last.timing.txMs) * 1000) / done).toFixed(1)),
    txMaxMs: Number(timing.txMaxMs.toFixed(1)),
    syncsPerSec: Math.round((syncs.count - last.syncs.count) / seconds),
    syncMs: Number(((syncs.ms - last.syncs.ms) / Math.max(1, syncs.count - last.syncs.count)).toFixed(2)),
    ckpts: timing.ckptCount - last.timing.ckptCount,
    ckptMaxMs: Number(timing.ckptMaxMs.toFixed(1)),
    dbMb: Number((db.bytes / 2 ** 20).toFixed(1)),
    freeMb: Number((db.free / 2 ** 20).toFixed(1)),
    walMb: Number(fileMb(`${path}-wal`).toFixed(1)),
    rows: span.lo === null || span.hi === null ? 0 : span.hi - span.lo + 1,
    failed,
    enqueueErrors,
  };
  row.sampleMs = Number((performance.now() - sampleStart).toFixed(1));
  samples.push(row);
  console.log(JSON.stringify(row));
  waits = new Buckets();
  eld.reset();
  stalls.count = 0;
  stalls.ms = 0;
  stalls.maxMs = 0;
  gc.maxMs = 0;
  timing.txMaxMs = 0;
  timing.ckptMaxMs = 0;
  last = {
    t: now,
    completed,
    issued,
    cpu: process.cpuUsage(),
    timing: { ...timing },
    gc: { ...gc },
    syncs: { ...syncs },
  };
}

console.error(
  `soak: ${rate}/s, ${handlerMs} ms handlers, concurrency ${args.concurrency}, ${args.minutes} min, store ${path}`,
);
t0 = performance.now();
let nextSample = sampleMs;
const total = Math.floor((rate * durationMs) / 1000);
while (issued < total) {
  const elapsed = performance.now() - t0;
  const due = Math.min(total, Math.floor((elapsed * rate) / 1000));
  for (; issued < due; issued++)
    queue.enqueue('work', issued).catch(() => {
      enqueueErrors++;
    });
  if (elapsed >= nextSample) {
    sample(elapsed);
    nextSample += sampleMs;
  }
  await sleep(1);
}
// Let the last arrivals finish (bounded), then one final sample.
const drainUntil = performance.now() + 30_000;
while (completed + failed < total && performance.now() < drainUntil) await sleep(50);
sample(performance.now() - t0);
eld.disable();
clearInterval(stallTimer);
reader.close();
await queue.close({ drainMs: 1000 });

// The trend: first full interval against the last full one, and the extremes.
const full = samples.slice(0, -1).length >= 2 ? samples.slice(0, -1) : samples;
const first = full[0] ?? {};
const lastRow = full[full.length - 1] ?? {};
const keys = [
  'liveHeapMb',
  'completionsPerSec',
  'waitP99',
  'cpuUsPerOp',
  'heapMb',
  'rssMb',
  'dbMb',
  'walMb',
  'rows',
  'eldP99',
  'txUsPerOp',
];
const summary = {
  rate,
  handlerMs,
  minutes: Number(args.minutes),
  samples: samples.length,
  completed,
  failed,
  enqueueErrors,
  trend: Object.fromEntries(
    keys.map((k) => [k, { first: first[k], last: lastRow[k], max: Math.max(...full.map((r) => r[k] ?? 0)) }]),
  ),
};
console.log(JSON.stringify({ summary }));
if (args.out) writeFileSync(args.out, `${JSON.stringify({ samples, summary }, null, 2)}\n`);
if (ownDir) rmSync(dir, { recursive: true, force: true });
