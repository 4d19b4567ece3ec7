import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** One minute of one indicator's SLI counts, as stored. */
export interface StoredMinute {
  readonly indicator: string;
  readonly minute: number;
  readonly total: number;
  readonly failures: number;
  readonly thresholdsMs: number[];
  readonly good: number[];
}

/**
 * Per-minute SLI counts in SQLite, so a restart does not reset the 30-day window and
 * its error budget. Not the durable contract of the daemon (a crash may lose the
 * current minute): WAL with synchronous=NORMAL.
 */
export interface SliStore {
  load(sinceMinute: number): StoredMinute[];
  save(rows: readonly StoredMinute[], pruneThroughMinute: number): void;
  close(): void;
}

export function openSliStore(path: string): SliStore {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS sli_minute (
      indicator TEXT NOT NULL,
      minute INTEGER NOT NULL,
      total INTEGER NOT NULL,
      failures INTEGER NOT NULL,
      thresholds_ms TEXT NOT NULL,
      good TEXT NOT NULL,
      PRIMARY KEY (indicator, minute)
    ) WITHOUT ROWID;
  `);
  const select = db.prepare(
    'SELECT indicator, minute, total, failures, thresholds_ms, good FROM sli_minute WHERE minute > ? ORDER BY minute',
  );
  const upsert = db.prepare(`
    INSERT INTO sli_minute (indicator, minute, total, failures, thresholds_ms, good) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (indicator, minute) DO UPDATE SET
      total = excluded.total, failures = excluded.failures, thresholds_ms = excluded.thresholds_ms, good = excluded.good
  `);
  const prune = db.prepare('DELETE FROM sli_minute WHERE minute <= ?');
  let open = true;
  return {
    load(sinceMinute) {
      return select.all(sinceMinute).flatMap((row) => {
        try {
          const thresholdsMs = JSON.parse(String(row.thresholds_ms)) as number[];
          const good = JSON.parse(String(row.good)) as number[];
          if (!Array.isArray(thresholdsMs) || !Array.isArray(good)) return [];
          return [
            {
              indicator: String(row.indicator),
              minute: Number(row.minute),
              total: Number(row.total),
              failures: Number(row.failures),
              thresholdsMs,
              good,
            },
          ];
        } catch {
          return []; // a damaged row costs one minute of history, not the whole store
        }
      });
    },
    save(rows, pruneThroughMinute) {
      if (!open) return;
      db.exec('BEGIN');
      try {
        for (const r of rows) {
          upsert.run(
            r.indicator,
            r.minute,
            r.total,
            r.failures,
            JSON.stringify(r.thresholdsMs),
            JSON.stringify(r.good),
          );
        }
        prune.run(pruneThroughMinute);
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    close() {
      if (!open) return;
      open = false;
      db.close();
    },
  };
}
