import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { z } from 'zod';
import type { ClusterConfig, ConfiguredSnapshot, Entry, HardState, NodeId, Snapshot } from './types.js';

const SqliteStorageOptionsSchema = z.object({
  /** Database file (created if missing). */
  path: z.string().min(1),
});

/** Options of {@link openSqliteStorage}. */
export type SqliteStorageOptions = z.input<typeof SqliteStorageOptionsSchema>;

/** What a node finds on disk when it starts. */
export interface StoredState {
  readonly hardState: HardState;
  /** Every log entry after the snapshot, in index order. */
  readonly entries: Entry[];
  readonly snapshot: Snapshot | undefined;
}

/** The writes of one Ready (see `Ready`): both land in one fsynced transaction. */
export interface StorageWrite {
  readonly hardState?: HardState | undefined;
  /** Replaces the log from `entries[0].index` on (a follower's conflicting suffix goes). */
  readonly entries?: readonly Entry[];
  /**
   * A snapshot received from the leader: it replaces the whole log (written before
   * `entries`). Its membership is required: the log that recorded it is gone.
   */
  readonly snapshot?: ConfiguredSnapshot | undefined;
}

/**
 * Raft's stable storage on SQLite: hard state (term, vote, commit) and the log, in WAL mode
 * with `synchronous=FULL`, so {@link SqliteStorage.save} returns only once the write is on
 * disk. Raft Figure 2: "updated on stable storage before responding to RPCs"; the host
 * sends a Ready's messages only after `save` returns.
 */
export class SqliteStorage implements Disposable {
  private readonly db: DatabaseSync;
  private readonly putHardState: StatementSync;
  private readonly deleteFrom: StatementSync;
  private readonly insertEntry: StatementSync;
  private readonly putSnapshot: StatementSync;
  private readonly deleteUpTo: StatementSync;
  private closed = false;
  private syncing = true;

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    // WAL + FULL: every COMMIT fsyncs the WAL before returning (https://sqlite.org/pragma.html#pragma_synchronous).
    this.db.exec('PRAGMA journal_mode = WAL');
    this.db.exec('PRAGMA synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS raft_hard_state (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        term INTEGER NOT NULL,
        voted_for TEXT,
        commit_index INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE IF NOT EXISTS raft_log (
        log_index INTEGER PRIMARY KEY,
        term INTEGER NOT NULL,
        data BLOB NOT NULL,
        -- 1: a membership entry (Entry.kind 'config')
        kind INTEGER NOT NULL DEFAULT 0
      ) STRICT;
      CREATE TABLE IF NOT EXISTS raft_snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        snapshot_index INTEGER NOT NULL,
        term INTEGER NOT NULL,
        data BLOB NOT NULL,
        -- JSON ClusterConfig in force at snapshot_index (NULL only in rows written before it was
        -- recorded: the initial peers)
        config TEXT
      ) STRICT;
    `);
    this.putSnapshot = this.db.prepare(
      `INSERT INTO raft_snapshot (id, snapshot_index, term, data, config) VALUES (0, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET snapshot_index = excluded.snapshot_index, term = excluded.term,
         data = excluded.data, config = excluded.config`,
    );
    this.deleteUpTo = this.db.prepare('DELETE FROM raft_log WHERE log_index <= ?');
    this.putHardState = this.db.prepare(
      `INSERT INTO raft_hard_state (id, term, voted_for, commit_index) VALUES (0, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET term = excluded.term, voted_for = excluded.voted_for, commit_index = excluded.commit_index`,
    );
    this.deleteFrom = this.db.prepare('DELETE FROM raft_log WHERE log_index >= ?');
    this.insertEntry = this.db.prepare('INSERT INTO raft_log (log_index, term, data, kind) VALUES (?, ?, ?, ?)');
  }

  /** Reads everything a restarting node needs. */
  load(): StoredState {
    const row = this.db.prepare('SELECT term, voted_for, commit_index FROM raft_hard_state WHERE id = 0').get() as
      | { term: number; voted_for: string | null; commit_index: number }
      | undefined;
    const hardState: HardState = row
      ? { term: row.term, votedFor: (row.voted_for ?? undefined) as NodeId | undefined, commit: row.commit_index }
      : { term: 0, votedFor: undefined, commit: 0 };
    const rows = this.db.prepare('SELECT log_index, term, data, kind FROM raft_log ORDER BY log_index').all() as {
      log_index: number;
      term: number;
      data: Uint8Array;
      kind: number;
    }[];
    const snap = this.db.prepare('SELECT snapshot_index, term, data, config FROM raft_snapshot WHERE id = 0').get() as
      | { snapshot_index: number; term: number; data: Uint8Array; config: string | null }
      | undefined;
    const snapshot: Snapshot | undefined = snap
      ? {
          index: snap.snapshot_index,
          term: snap.term,
          data: new Uint8Array(snap.data),
          ...(snap.config === null ? {} : { config: JSON.parse(snap.config) as ClusterConfig }),
        }
      : undefined;
    const entries = rows
      .map(
        (r): Entry =>
          r.kind === 1
            ? { index: r.log_index, term: r.term, data: new Uint8Array(r.data), kind: 'config' }
            : { index: r.log_index, term: r.term, data: new Uint8Array(r.data) },
      )
      .filter((e) => snapshot === undefined || e.index > snapshot.index);
    return { hardState, entries, snapshot };
  }

  /**
   * Writes one Ready's hard state and entries atomically. With `sync` (the Ready's
   * `mustSync`: a new term, vote or entries) the commit fsyncs before returning; without
   * it (only the commit index moved, which a restart can re-learn) the WAL frame is
   * written but not fsynced, like etcd skipping the sync for a commit-only HardState. A
   * later synced commit fsyncs the WAL up to and including it, so order is kept.
   */
  save(write: StorageWrite, options: { readonly sync?: boolean } = {}): void {
    const entries = write.entries ?? [];
    if (write.hardState === undefined && entries.length === 0 && write.snapshot === undefined) return;
    const sync = options.sync ?? true;
    if (sync !== this.syncing) {
      this.db.exec(sync ? 'PRAGMA synchronous = FULL' : 'PRAGMA synchronous = NORMAL');
      this.syncing = sync;
    }
    this.db.exec('BEGIN IMMEDIATE');
    try {
      if (write.snapshot !== undefined) {
        // Raft §7: a snapshot from the leader replaces the whole log.
        const snap = write.snapshot;
        this.putSnapshot.run(snap.index, snap.term, snap.data, JSON.stringify(snap.config));
        this.deleteFrom.run(0);
      }
      const first = entries[0];
      if (first !== undefined) {
        this.deleteFrom.run(first.index);
        for (const entry of entries)
          this.insertEntry.run(entry.index, entry.term, entry.data, entry.kind === 'config' ? 1 : 0);
      }
      if (write.hardState !== undefined) {
        const hs = write.hardState;
        this.putHardState.run(hs.term, hs.votedFor ?? null, hs.commit);
      }
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * Stores a snapshot the node took itself and drops the log entries it covers, in one
   * fsynced transaction (log compaction, Raft §7). The snapshot must carry the membership
   * in force at its index (`RaftCore.compact` returns it so): the config entries it covers
   * are deleted, and without it a restart would fall back to the initial members.
   */
  compact(snapshot: ConfiguredSnapshot): void {
    if (!this.syncing) {
      this.db.exec('PRAGMA synchronous = FULL');
      this.syncing = true;
    }
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.putSnapshot.run(snapshot.index, snapshot.term, snapshot.data, JSON.stringify(snapshot.config));
      this.deleteUpTo.run(snapshot.index);
      this.db.exec('COMMIT');
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens (or creates) the SQLite store of one Raft node.
 * @throws {z.ZodError} on invalid options; SQLite errors if the file cannot be opened.
 * @example
 * using storage = openSqliteStorage({ path: '/var/lib/unrdf/raft.db' });
 * const core = createRaftCore({ id, peers, random, initial: storage.load() });
 */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  const { path } = SqliteStorageOptionsSchema.parse(options);
  return new SqliteStorage(path);
}
