import type { DatabaseSync } from 'node:sqlite';

export const SCHEMA_VERSION = 1;

// STRICT tables: SQLite enforces the declared column types instead of coercing
// (https://sqlite.org/stricttables.html). One row per operation; JSON stays text.
const DDL = `
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS operations (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'completed', 'dead', 'cancelled')),
  payload TEXT NOT NULL,
  priority INTEGER NOT NULL,
  group_key TEXT,
  idempotency_key TEXT,
  run_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL CHECK (max_attempts >= 1),
  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  token INTEGER NOT NULL DEFAULT 0 CHECK (token >= 0),
  epoch INTEGER,
  started_at INTEGER,
  finished_at INTEGER,
  result TEXT,
  error TEXT,
  schedule TEXT
) STRICT;

-- Idempotency keys are unique per type for as long as the operation is kept (retention).
CREATE UNIQUE INDEX IF NOT EXISTS operations_idempotency
  ON operations (type, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- Retention deletes the oldest final operations first.
CREATE INDEX IF NOT EXISTS operations_finished
  ON operations (finished_at, seq) WHERE finished_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS paused_types (
  type TEXT PRIMARY KEY
) STRICT;

CREATE TABLE IF NOT EXISTS schedules (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  cron TEXT NOT NULL,
  timezone TEXT,
  payload TEXT NOT NULL,
  priority INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  next_run_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
`;

/**
 * How SQLite itself syncs: `full` fsyncs the WAL inside every COMMIT; `off` leaves the
 * commits' fsync to the caller (SQLite's NORMAL in WAL mode: no sync at COMMIT, but the
 * syncs that keep the file sound: at checkpoints, and of the WAL header when the WAL
 * starts over).
 */
export type Synchronous = 'full' | 'off';

/** Pragmas for a single-writer store, then the schema (idempotent). */
export function initialiseStore(db: DatabaseSync, synchronous: Synchronous, autoCheckpoint: boolean): void {
  // WAL: readers never block the writer. synchronous=FULL fsyncs the WAL on every commit,
  // so a committed transaction survives power loss (https://sqlite.org/pragma.html#pragma_synchronous).
  // OFF is only for callers that fsync the WAL themselves before acknowledging (see commit-path.ts).
  db.exec('PRAGMA journal_mode = WAL');
  // NORMAL rather than OFF for `off`: OFF would also skip syncing the new WAL header when
  // the WAL starts over after a checkpoint, and after a power cut new frames written over
  // old ones under the old header could bring old pages back (https://sqlite.org/src/info/ff5be73dee).
  db.exec(`PRAGMA synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  // 0 disables automatic checkpoints: with synchronous=OFF a checkpoint would not fsync the
  // database before the WAL restarts, so the caller runs them itself under FULL.
  db.exec(`PRAGMA wal_autocheckpoint = ${autoCheckpoint ? 1000 : 0}`);
  // A 64 MiB page cache keeps the hot part of the table and its indexes in memory.
  db.exec('PRAGMA cache_size = -65536');
  db.exec('PRAGMA busy_timeout = 5000');
  // After a checkpoint, truncate the WAL back to at most 64 MiB so disk use stays bounded.
  db.exec('PRAGMA journal_size_limit = 67108864');
  db.exec('PRAGMA foreign_keys = OFF');
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(DDL);
    const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
      | { value: number }
      | undefined;
    if (row === undefined) {
      db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', ?), ('epoch', 0)").run(SCHEMA_VERSION);
    } else if (row.value > SCHEMA_VERSION) {
      throw new Error(
        `The queue store has schema version ${row.value}, newer than this @unrdf/queue (${SCHEMA_VERSION}); upgrade the package.`,
      );
    }
    db.exec('COMMIT');
  } catch (error) {
    db.exec('ROLLBACK');
    throw error;
  }
}

/** The operation columns under the names of `OperationRow`. */
export const OPERATION_COLUMNS = `seq, id, type, state, payload, priority, group_key AS groupKey,
  idempotency_key AS idempotencyKey, run_at AS runAt, created_at AS createdAt, max_attempts AS maxAttempts,
  attempts, token, epoch, started_at AS startedAt, finished_at AS finishedAt, result, error, schedule`;
