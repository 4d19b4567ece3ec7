import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { LatencyHistogram } from '../harness/histogram.js';

export interface CommitRate {
  /** One-row transactions per second, each fsynced before the next begins. */
  readonly perSecond: number;
  readonly latency: LatencyHistogram;
}

/**
 * The floor under every durable write on this machine: sequential one-row
 * transactions on SQLite in WAL mode with synchronous=FULL (an fsync per commit).
 */
export function sqliteDurableCommitRate(dir: string, durationMs: number): CommitRate {
  const db = new DatabaseSync(join(dir, 'baseline-commit.db'));
  try {
    db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;');
    db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB NOT NULL) STRICT');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const payload = new Uint8Array(256);
    const latency = new LatencyHistogram();
    const start = performance.now();
    let count = 0;
    let elapsed = 0;
    while (elapsed < durationMs) {
      const t0 = performance.now();
      db.exec('BEGIN IMMEDIATE');
      insert.run(payload);
      db.exec('COMMIT');
      const t1 = performance.now();
      latency.record(t1 - t0);
      count++;
      elapsed = t1 - start;
    }
    return { perSecond: (count * 1000) / elapsed, latency };
  } finally {
    db.close();
  }
}
