/**
 * Measures the RDF entity store's write path before and after group commit, in one run on one
 * disk: APPLIES applies (creates, then updates of the same subjects) issued TURN per event-loop
 * turn, as HTTP handlers issue them under load.
 *
 * - before: the store's previous path, replayed statement for statement: one
 *   `BEGIN IMMEDIATE … COMMIT` per apply under synchronous=FULL, so every apply fsyncs the WAL
 *   on the event loop.
 * - after: `openEntityStore` (one transaction per turn, the WAL fdatasynced on the thread pool).
 *
 * Prints applies/s, apply latency (issue to resolve) and event-loop blocking (the longest
 * stretch the loop could not run anything else, and the delay histogram's P99), and writes
 * nothing else. Run: `node --conditions=@unrdf/source --import tsx scripts/entity-store-group-commit.ts`
 * (from apps/daemon; optional arguments: applies, per turn, paced rate per second).
 * Runs twice: a burst (the next turn at once) and paced at PACED_RATE applies/s.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import { countLines, entityDigest, toHex } from '../src/rdf/canonical.js';
import { type ApplyRequest, openEntityStore } from '../src/rdf/entity-store.js';

const APPLIES = Number(process.argv[2] ?? 2000);
const TURN = Number(process.argv[3] ?? 50);
const SUBJECTS = Math.ceil(APPLIES / 2);
/** Unmeasured applies first (other subjects and ids), so neither side is timed while the JIT warms up. */
const WARMUP = 500;
/** The second round offers applies at this rate (the end-to-end benchmark's 1,000 operations/s). */
const PACED_RATE = Number(process.argv[4] ?? 1000);

const request = (i: number, prefix = ''): ApplyRequest => {
  const subject = `https://example.org/bench/${prefix}${i % SUBJECTS}`;
  const nquads = `<${subject}> <https://schema.org/name> "value ${i}" .\n<${subject}> <https://schema.org/position> "${i}" .\n`;
  return {
    operationId: `${prefix}op-${i}`,
    token: 1,
    changes: [{ type: i < SUBJECTS ? 'create' : 'update', subject, nquads }],
  };
};

interface Figures {
  readonly appliesPerSecond: number;
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** The longest time between two turns of the issuing loop (it runs every turn it can). */
  readonly longestBlockMs: number;
  readonly loopDelayP99Ms: number;
  readonly transactions: number;
}

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

/** Issues TURN applies per turn with `apply`, and measures until every one resolved. */
async function measure(
  apply: (r: ApplyRequest) => Promise<unknown>,
  transactions: () => number,
  ratePerSecond: number,
): Promise<Figures> {
  for (let i = 0; i < WARMUP; i += TURN) {
    await Promise.all(Array.from({ length: TURN }, (_, k) => apply(request(i + k, 'warmup-'))));
  }
  const transactionsBefore = transactions();
  const latencies: number[] = [];
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let longestBlockMs = 0;
  let lastTick = performance.now();
  // A heartbeat on every turn: the gap between two beats is how long the loop was held.
  let beating = true;
  const beat = () => {
    const now = performance.now();
    longestBlockMs = Math.max(longestBlockMs, now - lastTick);
    lastTick = now;
    if (beating) setImmediate(beat);
  };
  setImmediate(beat);
  const started = performance.now();
  const all: Promise<unknown>[] = [];
  for (let issued = 0; issued < APPLIES; issued += TURN) {
    for (let i = issued; i < Math.min(APPLIES, issued + TURN); i++) {
      const at = performance.now();
      all.push(apply(request(i)).then(() => latencies.push(performance.now() - at)));
    }
    // Paced: the next turn when the offered rate says so (the e2e benchmark offers 1,000/s).
    const due = ratePerSecond > 0 ? started + ((issued + TURN) / ratePerSecond) * 1000 - performance.now() : 0;
    await new Promise((resolve) => (due > 0 ? setTimeout(resolve, due) : setImmediate(resolve)));
  }
  await Promise.all(all);
  const elapsed = performance.now() - started;
  beating = false;
  histogram.disable();
  latencies.sort((a, b) => a - b);
  return {
    appliesPerSecond: Math.round(APPLIES / (elapsed / 1000)),
    latencyP50Ms: percentile(latencies, 50),
    latencyP99Ms: percentile(latencies, 99),
    longestBlockMs,
    loopDelayP99Ms: histogram.percentile(99) / 1e6,
    transactions: transactions() - transactionsBefore,
  };
}

/** The store's previous apply: its statements, one synchronous FULL transaction per apply. */
async function before(path: string, ratePerSecond: number): Promise<Figures> {
  await openEntityStore({ path }).close(); // creates the same schema
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
  const selectOperation = db.prepare('SELECT token, outcomes FROM rdf_operation WHERE op_id = ?');
  const selectEntity = db.prepare('SELECT * FROM rdf_entity WHERE subject = ?');
  const upsertEntity = db.prepare(
    `INSERT INTO rdf_entity (subject, nquads, triples, version, deleted, last_op_id, last_op_token)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (subject) DO UPDATE SET nquads = excluded.nquads, triples = excluded.triples,
       version = excluded.version, deleted = excluded.deleted, last_op_id = excluded.last_op_id,
       last_op_token = excluded.last_op_token`,
  );
  const insertOperation = db.prepare(
    'INSERT INTO rdf_operation (op_id, token, outcomes, applied_at) VALUES (?, ?, ?, ?)',
  );
  let transactions = 0;
  const applySync = (r: ApplyRequest) => {
    db.exec('BEGIN IMMEDIATE');
    selectOperation.get(r.operationId);
    const outcomes = r.changes.map((change) => {
      const current = selectEntity.get(change.subject) as { version: number } | undefined;
      const version = (current?.version ?? 0) + 1;
      const nquads = change.type === 'delete' ? '' : change.nquads;
      const triples = countLines(nquads);
      upsertEntity.run(change.subject, nquads, triples, version, 0, r.operationId, r.token);
      return { type: change.type, subject: change.subject, version, triples, sha256: toHex(entityDigest(nquads)) };
    });
    insertOperation.run(r.operationId, r.token, JSON.stringify(outcomes), Date.now());
    db.exec('COMMIT');
    transactions++;
    return { replayed: false, outcomes };
  };
  try {
    // The old handler awaited nothing but ran apply synchronously inside its async function.
    return await measure(
      async (r) => applySync(r),
      () => transactions,
      ratePerSecond,
    );
  } finally {
    db.close();
  }
}

async function after(path: string, ratePerSecond: number): Promise<Figures> {
  await using store = openEntityStore({ path });
  return await measure(
    (r) => store.apply(r),
    () => store.stats().transactions,
    ratePerSecond,
  );
}

const dir = await mkdtemp(join(tmpdir(), 'unrdf-entity-bench-'));
try {
  const round = (n: number) => String(Math.round(n * 100) / 100);
  console.log(`${APPLIES} applies, ${TURN} per event-loop turn, on ${dir}`);
  console.log(
    'path    offered     applies/s  latency P50 ms  latency P99 ms  longest block ms  loop delay P99 ms  transactions',
  );
  for (const rate of [0, PACED_RATE]) {
    const offered = rate === 0 ? 'burst' : `${rate}/s`;
    const figures = {
      before: await before(join(dir, `before-${offered.replace('/', '-')}.db`), rate),
      after: await after(join(dir, `after-${offered.replace('/', '-')}.db`), rate),
    };
    for (const [name, f] of Object.entries(figures)) {
      console.log(
        `${name.padEnd(7)} ${offered.padEnd(7)} ${String(f.appliesPerSecond).padStart(13)}  ${round(f.latencyP50Ms).padStart(14)}  ${round(f.latencyP99Ms).padStart(14)}  ${round(f.longestBlockMs).padStart(16)}  ${round(f.loopDelayP99Ms).padStart(17)}  ${String(f.transactions).padStart(12)}`,
      );
    }
    console.log(
      `        ${offered.padEnd(7)} after/before: applies/s x${round(figures.after.appliesPerSecond / figures.before.appliesPerSecond)}, longest block x${round(figures.after.longestBlockMs / figures.before.longestBlockMs)}, latency P99 x${round(figures.after.latencyP99Ms / figures.before.latencyP99Ms)}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
