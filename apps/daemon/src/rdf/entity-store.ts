import { closeSync, fdatasync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { InvalidInputError } from '@unrdf/daemon';
import { startWalCheckpointer, type WalCheckpointer } from '@unrdf/receipts/ledger';
import { z } from 'zod';
import { countLines, entityDigest, toHex } from './canonical.js';
import {
  EntityExistsError,
  EntityNotFoundError,
  EntityStoreClosedError,
  EntityStoreSyncError,
  StaleTokenError,
} from './errors.js';

/** One entity as stored. */
export interface StoredEntity {
  readonly subject: string;
  /** RDFC-1.0 canonical N-Quads of its description. */
  readonly nquads: string;
  readonly triples: number;
  /** 1 at the first create; +1 at every later create, update or delete (a re-created entity continues). */
  readonly version: number;
  /** Hex SHA-256 of `nquads` (the outputDigest of the change that wrote it). */
  readonly sha256: string;
  readonly lastOperationId: string;
  readonly lastOperationToken: number;
}

/** One change to one entity; `nquads` must already be canonical (see canonicalDescription). */
export type EntityChange =
  | { readonly type: 'create' | 'update'; readonly subject: string; readonly nquads: string }
  | { readonly type: 'delete'; readonly subject: string };

/** What one change did. */
export interface ChangeOutcome {
  readonly type: 'create' | 'update' | 'delete';
  readonly subject: string;
  /** The entity's version after the change (a delete bumps it too). */
  readonly version: number;
  /** Triples after the change (0 after delete). */
  readonly triples: number;
  /** Hex SHA-256 of the canonical N-Quads after the change; null after delete. */
  readonly sha256: string | null;
}

/** What `apply` did: the outcome of each change, in order. */
export interface ApplyResult {
  /** True when the operation had already been applied and its stored outcome was returned. */
  readonly replayed: boolean;
  readonly outcomes: readonly ChangeOutcome[];
}

/** An operation's changes: applied all together or not at all. */
export interface ApplyRequest {
  /** The queue operation's id: applying one id twice returns the first outcome. */
  readonly operationId: string;
  /** The attempt's fencing token: lower than the one that applied the operation is refused. */
  readonly token: number;
  readonly changes: readonly EntityChange[];
}

/** Counters of the store's write path since it was opened. */
export interface EntityStoreStats {
  /** Transactions committed: one per event-loop turn in which `apply` was called (group commit). */
  readonly transactions: number;
  /** WAL fdatasyncs that returned successfully. */
  readonly syncs: number;
  /** WAL checkpoints that moved every frame into the database (the next write starts the WAL over). */
  readonly checkpoints: number;
}

/** An open entity store. */
export interface EntityStore extends AsyncDisposable {
  readonly path: string;
  /**
   * The entity, or undefined when it does not exist (never created, or deleted). Reads see every
   * committed apply, including one whose sync is still running (its promise not yet resolved).
   * @throws {EntityStoreClosedError} after close.
   * @throws {EntityStoreSyncError} after a failed sync.
   */
  get(subject: string): StoredEntity | undefined;
  /**
   * Applies every change of the request atomically, or none, and resolves once that is durable.
   * Applies requested in one event-loop turn share one transaction and one WAL fdatasync (group
   * commit), each inside its own SAVEPOINT, so one that fails rolls back only itself.
   * @throws {EntityExistsError} create of an existing entity.
   * @throws {EntityNotFoundError} update or delete of a missing one.
   * @throws {StaleTokenError} the operation was applied by an attempt with a higher token.
   * @throws {EntityStoreSyncError} the WAL sync failed (final: every later call is refused too);
   *   the apply may or may not have persisted, and a retry with the same operation id is safe.
   * @throws {EntityStoreClosedError} after close.
   */
  apply(request: ApplyRequest): Promise<ApplyResult>;
  /**
   * Forgets the outcomes of operations applied before `appliedBefore` (epoch ms); returns how many.
   * Only prune operations the queue can no longer retry (final, or older than its retention):
   * a retry of a forgotten operation would be applied again. The deletion becomes durable with
   * the next apply's sync or at close (losing it in a power cut only keeps outcomes longer).
   */
  pruneOperations(appliedBefore: number): number;
  /** Transaction and sync counters (for tests and metrics). */
  stats(): EntityStoreStats;
  /** Commits what was requested, waits until it is synced (or the sync failed), then closes. */
  close(): Promise<void>;
}

const EntityStoreOptionsSchema = z.strictObject({
  /** SQLite file (created with its directory if missing). */
  path: z.string().min(1),
  /** Wall clock (epoch ms) for `applied_at`; injected by tests. */
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
  /** Flush at once when this many applies wait (bounds one transaction); default 1024. */
  maxBatch: z.number().int().positive().optional(),
  /** `fs.fdatasync` of the WAL; injected by tests to make a sync fail. */
  fdatasync: z.custom<FdatasyncFn>((v) => typeof v === 'function').optional(),
  /** Checkpoint the WAL after this many transactions (default 500, about 4-8 MiB of WAL). */
  checkpointEveryTransactions: z.number().int().positive().optional(),
});
export type EntityStoreOptions = z.input<typeof EntityStoreOptionsSchema>;

/** The shape of `fs.fdatasync`. */
type FdatasyncFn = (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => void;

const DEFAULT_MAX_BATCH = 1024;
/** About SQLite's own automatic checkpoint size (1,000 pages): an entity transaction writes a few pages. */
const DEFAULT_CHECKPOINT_EVERY_TRANSACTIONS = 500;
/** fdatasyncs in flight at once: libuv's thread pool has 4 threads, shared with all fs work. */
const MAX_SYNCS_IN_FLIGHT = 2;
/** One SAVEPOINT name, reused: each is released before the next is opened. */
const SAVEPOINT = 'rdf_apply';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rdf_entity (
  subject TEXT PRIMARY KEY,
  nquads TEXT NOT NULL,
  triples INTEGER NOT NULL,
  version INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  last_op_id TEXT NOT NULL,
  last_op_token INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS rdf_operation (
  op_id TEXT PRIMARY KEY,
  token INTEGER NOT NULL,
  outcomes TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS rdf_operation_applied_at ON rdf_operation (applied_at);
`;

interface EntityRow {
  subject: string;
  nquads: string;
  triples: number;
  version: number;
  deleted: number;
  last_op_id: string;
  last_op_token: number;
}

/** One apply waiting for its transaction, then for the sync that makes it durable. */
interface Waiter {
  readonly request: ApplyRequest;
  readonly resolve: (result: ApplyResult) => void;
  readonly reject: (error: unknown) => void;
  /** Set at flush: what the apply did inside the transaction. */
  outcome?: { readonly ok: true; readonly result: ApplyResult } | { readonly ok: false; readonly error: unknown };
}

/** A committed transaction whose applies wait for a sync; `seq` counts commits from 1. */
interface Committed {
  readonly seq: number;
  readonly waiters: readonly Waiter[];
}

/**
 * Opens (or creates) the SQLite store of RDF entities: one row per entity holding its canonical
 * N-Quads, version and the last operation (id + fencing token) applied to it.
 *
 * Durability follows the queue's group-commit path and the receipt ledger (packages/queue
 * `createGroupCommitPath`, packages/receipts `openLedger`, fsync-after-commit) in a small
 * version of its own:
 * - group commit (DeWitt et al. 1984): every apply requested during one event-loop turn runs in
 *   one `BEGIN IMMEDIATE … COMMIT`, each inside a SAVEPOINT so a refused apply rolls back only
 *   itself and rejects only its own promise;
 * - WAL with `synchronous=NORMAL`: COMMIT does not wait for the disk; the store then fdatasyncs
 *   the WAL on the libuv thread pool, so the event loop never does, and resolves (or rejects) the
 *   turn's applies only once that returned.
 * - checkpoints off the event loop: SQLite's automatic checkpoint would copy the WAL and sync the
 *   database inside a COMMIT, on the event loop (up to 5.4 ms, about once a second at 1,000
 *   operations/s: jtbd1-e2e's P99 was about 20 % lower without them). Instead, every
 *   `checkpointEveryTransactions` a worker thread (`startWalCheckpointer` of @unrdf/receipts)
 *   copies the WAL under synchronous=FULL (WAL synced before, database after), then the few frames
 *   committed meanwhile are checkpointed here, under FULL too, so the next write starts the WAL
 *   over (https://sqlite.org/wal.html#ckpt).
 * - a failed fdatasync is final (PostgreSQL's "fsyncgate", 2018: after a failed fsync the kernel
 *   may have dropped the dirty pages, and a second fsync reports success): every apply waiting for
 *   it, and every later call, is refused with {@link EntityStoreSyncError}; restart the process.
 * @throws {InvalidInputError} bad options.
 * @example
 * await using store = openEntityStore({ path: 'data/entities.db' });
 * await store.apply({ operationId: 'op-1', token: 1, changes: [{ type: 'create', subject, nquads }] });
 */
export function openEntityStore(options: EntityStoreOptions): EntityStore {
  const parsed = EntityStoreOptionsSchema.safeParse(options);
  if (!parsed.success) throw InvalidInputError.fromZod('entity store options', parsed.error);
  const path = resolve(parsed.data.path);
  const clock = parsed.data.clock ?? Date.now;
  const maxBatch = parsed.data.maxBatch ?? DEFAULT_MAX_BATCH;
  const syncFile: FdatasyncFn = parsed.data.fdatasync ?? fdatasync;
  const checkpointEvery = parsed.data.checkpointEveryTransactions ?? DEFAULT_CHECKPOINT_EVERY_TRANSACTIONS;
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  let walFd: number | undefined;
  try {
    db.exec('PRAGMA busy_timeout = 5000;');
    const mode = (db.prepare('PRAGMA journal_mode = WAL').get() as { journal_mode: string } | undefined)?.journal_mode;
    if (mode !== 'wal') throw new Error(`The entity store needs WAL mode; ${path} runs "${mode}".`);
    // NORMAL, not OFF: the WAL header is synced when the WAL starts over. No automatic
    // checkpoints: they would run inside a COMMIT on the event loop (see checkpoint below).
    db.exec('PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;');
    db.exec(SCHEMA);
    // 'a' creates the WAL if SQLite has not yet (SQLite opens the same file); the descriptor is
    // only ever fdatasynced. The directory is synced once so the WAL's name survives a power cut.
    walFd = openSync(`${path}-wal`, 'a');
    const dirFd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  } catch (error) {
    if (walFd !== undefined) closeSync(walFd);
    db.close();
    throw error;
  }
  const selectEntity = db.prepare('SELECT * FROM rdf_entity WHERE subject = ?');
  const upsertEntity = db.prepare(
    `INSERT INTO rdf_entity (subject, nquads, triples, version, deleted, last_op_id, last_op_token)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (subject) DO UPDATE SET nquads = excluded.nquads, triples = excluded.triples,
       version = excluded.version, deleted = excluded.deleted, last_op_id = excluded.last_op_id,
       last_op_token = excluded.last_op_token`,
  );
  const selectOperation = db.prepare('SELECT token, outcomes FROM rdf_operation WHERE op_id = ?');
  const insertOperation = db.prepare(
    'INSERT INTO rdf_operation (op_id, token, outcomes, applied_at) VALUES (?, ?, ?, ?)',
  );
  const walCheckpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
  const raiseOperationToken = db.prepare('UPDATE rdf_operation SET token = ? WHERE op_id = ? AND token < ?');
  const deleteOperations = db.prepare('DELETE FROM rdf_operation WHERE applied_at < ?');

  let open = true;
  let closing: Promise<void> | undefined;
  /** The failed sync's error, once one failed: from then on every call is refused with it. */
  let failure: EntityStoreSyncError | undefined;
  let queued: Waiter[] = [];
  let scheduled: NodeJS.Immediate | undefined;
  let awaitingSync: Committed[] = [];
  let committedSeq = 0;
  let lastSyncStartedFor = 0;
  let syncsInFlight = 0;
  let transactions = 0;
  let syncs = 0;
  let checkpoints = 0;
  /** `transactions` when the WAL was last moved into the database entirely. */
  let checkpointedAt = 0;
  let checkpointing = false;
  let checkpointer: WalCheckpointer | undefined;
  let onIdle: (() => void)[] = [];

  const live = () => {
    if (failure !== undefined) throw failure;
    if (!open) throw new EntityStoreClosedError();
  };
  const row = (subject: string) => selectEntity.get(subject) as EntityRow | undefined;

  const applyChanges = (request: ApplyRequest): ApplyResult => {
    const previous = selectOperation.get(request.operationId) as { token: number; outcomes: string } | undefined;
    if (previous !== undefined) {
      // A retry after a crash between this write and the queue's completion: same outcome, no second write.
      if (request.token < previous.token) throw new StaleTokenError(request.operationId, request.token, previous.token);
      raiseOperationToken.run(request.token, request.operationId, request.token);
      return { replayed: true, outcomes: JSON.parse(previous.outcomes) as ChangeOutcome[] };
    }
    const outcomes: ChangeOutcome[] = [];
    const batched = request.changes.length > 1;
    request.changes.forEach((change, index) => {
      const at = batched ? index : undefined;
      const current = row(change.subject);
      const exists = current !== undefined && current.deleted === 0;
      if (change.type === 'create' && exists) throw new EntityExistsError(change.subject, at);
      if (change.type !== 'create' && !exists) throw new EntityNotFoundError(change.subject, at);
      const version = (current?.version ?? 0) + 1;
      if (change.type === 'delete') {
        upsertEntity.run(change.subject, '', 0, version, 1, request.operationId, request.token);
        outcomes.push({ type: 'delete', subject: change.subject, version, triples: 0, sha256: null });
        return;
      }
      const triples = countLines(change.nquads);
      upsertEntity.run(change.subject, change.nquads, triples, version, 0, request.operationId, request.token);
      outcomes.push({
        type: change.type,
        subject: change.subject,
        version,
        triples,
        sha256: toHex(entityDigest(change.nquads)),
      });
    });
    insertOperation.run(request.operationId, request.token, JSON.stringify(outcomes), clock());
    return { replayed: false, outcomes };
  };

  const settle = (waiter: Waiter): void => {
    const outcome = waiter.outcome;
    if (outcome === undefined) waiter.reject(new Error('no outcome for apply'));
    else if (outcome.ok) waiter.resolve(outcome.result);
    else waiter.reject(outcome.error);
  };

  const idle = () => syncsInFlight === 0 && (awaitingSync.length === 0 || failure !== undefined);
  const notifyIdle = (): void => {
    if (!idle()) return;
    const callbacks = onIdle;
    onIdle = [];
    for (const callback of callbacks) callback();
  };

  // An fdatasync makes durable every transaction committed before it started. Up to
  // MAX_SYNCS_IN_FLIGHT run at once, so a transaction committed during a slow sync need not wait
  // for it to end before its own starts; whichever returns releases everything it covers, in
  // commit order (as the queue's group-commit path does).
  const startSync = (): void => {
    if (walFd === undefined || failure !== undefined || syncsInFlight >= MAX_SYNCS_IN_FLIGHT) return;
    const covers = committedSeq;
    if (awaitingSync.length === 0 || lastSyncStartedFor >= covers) return;
    lastSyncStartedFor = covers;
    syncsInFlight++;
    syncFile(walFd, (error) => {
      syncsInFlight--;
      if (failure === undefined) {
        if (error) {
          failure = new EntityStoreSyncError({ cause: error });
          const lost = awaitingSync;
          awaitingSync = [];
          for (const committed of lost) for (const waiter of committed.waiters) waiter.reject(failure);
        } else {
          syncs++;
          let released = 0;
          while (released < awaitingSync.length && (awaitingSync[released] as Committed).seq <= covers) {
            for (const waiter of (awaitingSync[released] as Committed).waiters) settle(waiter);
            released++;
          }
          if (released > 0) awaitingSync = awaitingSync.slice(released);
          if (transactions - checkpointedAt >= checkpointEvery) checkpoint();
        }
      }
      startSync();
      notifyIdle();
    });
  };

  // The remainder, on the event loop between transactions: what was committed while the worker
  // copied. Under FULL, so the WAL is synced before and the database after the copy.
  const catchUp = (): void => {
    checkpointing = false;
    if (!open || failure !== undefined || db.isTransaction) return;
    db.exec('PRAGMA synchronous = FULL;');
    try {
      const done = walCheckpoint.get() as { busy: number; log: number; checkpointed: number };
      if (done.busy === 0 && done.checkpointed === done.log) {
        checkpoints++;
        checkpointedAt = transactions;
      }
    } catch {
      // A reader can hold the WAL; the next checkpoint catches up.
    } finally {
      db.exec('PRAGMA synchronous = NORMAL;');
    }
  };
  const checkpoint = (): void => {
    if (checkpointing || !open) return;
    checkpointing = true;
    try {
      checkpointer ??= startWalCheckpointer(path);
    } catch {
      // No worker: the event loop checkpoints it all, on a later turn than this sync's applies.
      setImmediate(catchUp);
      return;
    }
    void checkpointer.checkpoint().then(catchUp);
  };

  const flush = (): void => {
    if (scheduled !== undefined) {
      clearImmediate(scheduled);
      scheduled = undefined;
    }
    if (queued.length === 0) return;
    const waiters = queued;
    queued = [];
    if (failure !== undefined) {
      for (const waiter of waiters) waiter.reject(failure);
      return;
    }
    // node:sqlite is synchronous: nothing else runs on this connection between BEGIN and COMMIT.
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const waiter of waiters) {
        db.exec(`SAVEPOINT ${SAVEPOINT}`);
        try {
          waiter.outcome = { ok: true, result: applyChanges(waiter.request) };
          db.exec(`RELEASE ${SAVEPOINT}`);
        } catch (error) {
          // https://sqlite.org/lang_savepoint.html: ROLLBACK TO undoes this apply only and keeps
          // the savepoint (and the transaction) open; RELEASE then removes it.
          db.exec(`ROLLBACK TO ${SAVEPOINT}; RELEASE ${SAVEPOINT}`);
          waiter.outcome = { ok: false, error };
        }
      }
      db.exec('COMMIT');
    } catch (error) {
      // BEGIN, a savepoint or COMMIT itself failed (disk full, I/O error): nothing was committed.
      if (db.isTransaction) db.exec('ROLLBACK');
      for (const waiter of waiters) waiter.reject(error);
      return;
    }
    transactions++;
    awaitingSync.push({ seq: ++committedSeq, waiters });
    startSync();
  };

  const close = (): Promise<void> => {
    closing ??= (async () => {
      // Commit what was requested before close, then refuse more.
      flush();
      open = false;
      while (!idle()) {
        await new Promise<void>((resolveIdle) => {
          onIdle.push(resolveIdle);
          startSync();
        });
      }
      if (walFd !== undefined) closeSync(walFd);
      walFd = undefined;
      // The worker's connection first, so that this one is the last: closing the last connection
      // checkpoints, and under NORMAL syncs the WAL and the database.
      await checkpointer?.close();
      db.close();
    })();
    return closing;
  };

  return Object.freeze({
    path,
    get(subject: string): StoredEntity | undefined {
      live();
      const r = row(subject);
      if (r === undefined || r.deleted !== 0) return undefined;
      return Object.freeze({
        subject: r.subject,
        nquads: r.nquads,
        triples: r.triples,
        version: r.version,
        sha256: toHex(entityDigest(r.nquads)),
        lastOperationId: r.last_op_id,
        lastOperationToken: r.last_op_token,
      });
    },
    apply(request: ApplyRequest): Promise<ApplyResult> {
      try {
        live();
      } catch (error) {
        return Promise.reject(error);
      }
      if (request.changes.length === 0) return Promise.reject(new RangeError('apply needs at least one change'));
      return new Promise<ApplyResult>((resolveApply, rejectApply) => {
        queued.push({ request, resolve: resolveApply, reject: rejectApply });
        if (queued.length >= maxBatch) flush();
        else scheduled ??= setImmediate(flush);
      });
    },
    pruneOperations(appliedBefore: number): number {
      live();
      // Between transactions: flush runs synchronously and leaves none open.
      return Number(deleteOperations.run(appliedBefore).changes);
    },
    stats(): EntityStoreStats {
      return { transactions, syncs, checkpoints };
    },
    close,
    async [Symbol.asyncDispose]() {
      await close();
    },
  });
}
