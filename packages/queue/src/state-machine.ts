import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  type ClaimedOperation,
  Command,
  type CommandKind,
  type CommandOf,
  type CommandResult,
  type OperationRow,
  type OperationState,
  type Rejection,
  type ResultOf,
  type Transition,
} from './commands.js';
import { initialiseStore, OPERATION_COLUMNS, type Synchronous } from './internal/schema.js';

/** What an extension sees of one applied command, inside its transaction. */
export interface ApplyContext {
  /** The store's connection, inside the open transaction: write your own tables here. */
  readonly db: DatabaseSync;
  readonly command: Command;
  readonly result: CommandResult;
  /** What the command changed (empty if it was rejected). */
  readonly transitions: readonly Transition[];
}

/**
 * Code that runs inside the same transaction as each command (the daemon appends a
 * receipt per final state to its ledger here). It must be deterministic like `apply`;
 * a throw rolls back the command, which then fails alone.
 */
export interface ApplyExtension {
  readonly name: string;
  /**
   * The command kinds `afterApply` sees (default: all). An extension that does not watch
   * `enqueue` keeps the store's fast path for runs of enqueues (one multi-row INSERT).
   */
  readonly watches?: readonly CommandKind[];
  /** Called once, at open, to create the extension's own tables. */
  init?(db: DatabaseSync): void;
  afterApply(context: ApplyContext): void;
  /**
   * Called once per transaction, after its last `afterApply` and before COMMIT (the
   * daemon appends the batch's receipts here, under one signed checkpoint). A throw
   * fails the transaction like a throw in `afterApply`.
   */
  beforeCommit?(db: DatabaseSync): void;
  /** The transaction committed (durability is the commit path's business, not yet known here). */
  afterCommit?(): void;
  /** The transaction rolled back: forget what `afterApply` and `beforeCommit` did for it. */
  afterRollback?(): void;
}

/** The outcome of one command of a batch. */
export type ApplyOutcome =
  | { readonly ok: true; readonly result: CommandResult }
  | { readonly ok: false; readonly error: unknown };

/** What an in-memory ready index needs of a pending operation. */
export interface PendingRow {
  readonly id: string;
  readonly type: string;
  readonly priority: number;
  readonly groupKey: string | null;
  readonly runAt: number;
}

/** A committed (not necessarily yet durable) batch. */
export interface CommittedBatch {
  readonly outcomes: ApplyOutcome[];
  readonly transitions: readonly Transition[];
}

/** A persisted recurring schedule. */
export interface ScheduleRow {
  readonly name: string;
  readonly type: string;
  readonly cron: string;
  readonly timezone: string | null;
  readonly payload: string;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly nextRunAt: number | null;
}

export interface StateMachineOptions {
  /** SQLite file (created if missing); `:memory:` for a throwaway store. */
  readonly path: string;
  /**
   * SQLite's own syncing: `full` (default) fsyncs inside every COMMIT; `off` for a caller
   * that fsyncs the WAL itself before acknowledging (the default commit path) or whose
   * durability comes from elsewhere (a Raft log).
   */
  readonly synchronous?: Synchronous;
  /** SQLite's automatic checkpoints (default true; off when the caller checkpoints). */
  readonly autoCheckpoint?: boolean;
  readonly extensions?: readonly ApplyExtension[];
}

/**
 * The queue's deterministic state machine over SQLite. `apply` reads no clock, draws
 * no randomness and does no I/O besides the store: two instances fed the same
 * commands end in the same state, which is what replication through a log needs.
 */
export interface StateMachine {
  readonly db: DatabaseSync;
  /** Applies one command in its own transaction. @throws what apply or an extension threw */
  apply<K extends CommandKind>(command: CommandOf<K>): ResultOf<K>;
  /**
   * Applies commands in one transaction (`BEGIN IMMEDIATE` … `COMMIT`); if one throws,
   * the batch is rolled back and replayed one command per transaction, so only the
   * culprit fails. Listeners hear the transitions after the commit.
   */
  applyBatch(commands: readonly Command[]): ApplyOutcome[];
  /**
   * Like `applyBatch`, but keeps the transitions for the caller to `publish` once the
   * batch is durable (a commit path that fsyncs after COMMIT).
   */
  commitBatch(commands: readonly Command[]): CommittedBatch;
  /** Hands a committed batch's transitions to the listeners. */
  publish(transitions: readonly Transition[]): void;
  /** Hears every committed batch's transitions, in order. Returns the unsubscribe. */
  subscribe(listener: (transitions: readonly Transition[]) => void): () => void;
  get(id: string): OperationRow | undefined;
  /** The operation's state alone (no payload read or parse), for a cheap check on a hot path. */
  stateOf(id: string): OperationState | undefined;
  /** Every pending operation in enqueue order, without payloads (to rebuild a ready index). */
  pending(): PendingRow[];
  /** Every running operation (to recover leases of dead epochs). */
  running(): OperationRow[];
  pausedTypes(): string[];
  schedules(): ScheduleRow[];
  schedule(name: string): ScheduleRow | undefined;
  /** Operations per state (cheap enough for diagnostics, not for a hot path). */
  countByState(): Record<OperationState, number>;
  /** The current boot epoch (0 before the first boot command). */
  epoch(): number;
  /**
   * Moves the WAL into the database, fsyncing the WAL before it copies and the database
   * once every frame is copied (synchronous=FULL for the call). `truncate` (default) then cuts the
   * WAL file to zero bytes (bounded disk use; slow on some file systems); `passive`
   * leaves the file, and the next write starts the WAL over from its beginning if
   * every frame was moved.
   */
  checkpoint(mode?: 'truncate' | 'passive'): CheckpointResult;
  /** The path of the WAL file (for a caller that fsyncs it). */
  readonly walPath: string | undefined;
  close(): void;
}

/**
 * What a checkpoint did, in WAL frames (https://sqlite.org/pragma.html#pragma_wal_checkpoint):
 * `busy` 1 if it could not run to completion (then nothing may have been synced).
 */
export interface CheckpointResult {
  readonly busy: number;
  readonly log: number;
  readonly checkpointed: number;
}

const ALL_KINDS: readonly CommandKind[] = Command.options.map((o) => o.shape.kind.value);

/** Rows per multi-row INSERT (10 parameters each, far below SQLite's limit of 32,766). */
const MAX_INSERT_ROWS = 64;

const SCHEDULE_COLUMNS = `name, type, cron, timezone, payload, priority, max_attempts AS maxAttempts, next_run_at AS nextRunAt`;

/** Opens (creating if needed) the queue store and its state machine. */
export function createStateMachine(options: StateMachineOptions): StateMachine {
  const db = new DatabaseSync(options.path);
  const synchronous = options.synchronous ?? 'full';
  try {
    initialiseStore(db, synchronous, options.autoCheckpoint ?? true);
    for (const extension of options.extensions ?? []) extension.init?.(db);
  } catch (error) {
    db.close();
    throw error;
  }
  const walPath = options.path === ':memory:' || options.path === '' ? undefined : `${options.path}-wal`;
  return new SqliteStateMachine(db, options.extensions ?? [], synchronous, walPath);
}

class SqliteStateMachine implements StateMachine {
  readonly db: DatabaseSync;
  readonly walPath: string | undefined;
  readonly #synchronous: Synchronous;
  readonly #extensions: readonly ApplyExtension[];
  /** Extensions by the command kind they watch. */
  readonly #watchers = new Map<CommandKind, ApplyExtension[]>();
  /** No extension watches enqueues: runs of them may be inserted with one statement. */
  readonly #insertRuns: boolean;
  /** No extension watches claims either: a run's claims may be written by its INSERT. */
  readonly #claimInInsert: boolean;
  readonly #listeners = new Set<(transitions: readonly Transition[]) => void>();
  readonly #s: Record<string, StatementSync>;
  // Transitions of the command being applied; reset per command.
  #pending: Transition[] = [];
  // Operations inserted by the open transaction and not touched since, exactly as
  // stored: a claim of one of them (the executor claims on enqueue, in the same
  // transaction) needs no read. Any other command on the id drops it; cleared per transaction.
  readonly #fresh = new Map<string, OperationRow>();
  // Multi-row INSERT statements by row count, and the seqs of the run being applied.
  readonly #inserts: (StatementSync | undefined)[] = [];
  #runSeqs: number[] = [];
  // Operations of the run being applied that its INSERT wrote as claimed already (see
  // #insertRun): their claim command checks as usual and writes nothing.
  readonly #preclaimed = new Set<string>();

  constructor(
    db: DatabaseSync,
    extensions: readonly ApplyExtension[],
    synchronous: Synchronous,
    walPath: string | undefined,
  ) {
    this.db = db;
    this.walPath = walPath;
    this.#synchronous = synchronous;
    this.#extensions = extensions;
    for (const extension of extensions) {
      for (const kind of extension.watches ?? ALL_KINDS) {
        const list = this.#watchers.get(kind) ?? [];
        list.push(extension);
        this.#watchers.set(kind, list);
      }
    }
    this.#insertRuns = !this.#watchers.has('enqueue');
    this.#claimInInsert = this.#insertRuns && !this.#watchers.has('claim');
    const p = (sql: string) => db.prepare(sql);
    this.#s = {
      // No RETURNING anywhere on the hot path: SQLite materialises RETURNING rows in an
      // ephemeral table, which costs more than a separate point read. Writes go by seq
      // (the rowid) after a read by id, the cheapest lookup there is.
      insert: p(`INSERT INTO operations (id, type, state, payload, priority, group_key, idempotency_key, run_at,
          created_at, max_attempts, schedule) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`),
      byId: p(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE id = ?`),
      stateById: p('SELECT state FROM operations WHERE id = ?'),
      byIdempotency: p(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE type = ? AND idempotency_key = ?`),
      status: p(`SELECT seq, type, state, token, attempts, max_attempts AS maxAttempts, priority, group_key AS groupKey,
          created_at AS createdAt, run_at AS runAt FROM operations WHERE id = ?`),
      claimable: p(`SELECT seq, type, state, token, attempts, max_attempts AS maxAttempts, group_key AS groupKey,
          run_at AS runAt, payload, idempotency_key AS idempotencyKey FROM operations WHERE id = ?`),
      claim: p(`UPDATE operations SET state = 'running', attempts = attempts + 1, token = token + 1, epoch = ?,
          started_at = ? WHERE seq = ?`),
      complete: p(`UPDATE operations SET state = 'completed', result = ?, finished_at = ?, epoch = NULL WHERE seq = ?`),
      // The fence and the write in one statement (a complete that names its type).
      completeFenced: p(`UPDATE operations SET state = 'completed', result = ?, finished_at = ?, epoch = NULL
          WHERE id = ? AND state = 'running' AND token = ? AND type = ?`),
      retry: p(`UPDATE operations SET state = 'pending', run_at = ?, error = ?, epoch = NULL WHERE seq = ?`),
      dead: p(`UPDATE operations SET state = 'dead', error = ?, finished_at = ?, epoch = NULL WHERE seq = ?`),
      release: p(`UPDATE operations SET state = 'pending', attempts = attempts - 1, epoch = NULL WHERE seq = ?`),
      cancel: p(`UPDATE operations SET state = 'cancelled', finished_at = ?, epoch = NULL WHERE seq = ?`),
      redrive: p(`UPDATE operations SET state = 'pending', attempts = 0, run_at = ?, finished_at = NULL, result = NULL
          WHERE seq = ?`),
      pause: p('INSERT INTO paused_types (type) VALUES (?) ON CONFLICT DO NOTHING'),
      resume: p('DELETE FROM paused_types WHERE type = ?'),
      boot: p("UPDATE meta SET value = value + 1 WHERE key = 'epoch' RETURNING value"),
      epoch: p("SELECT value FROM meta WHERE key = 'epoch'"),
      scheduleByName: p(`SELECT ${SCHEDULE_COLUMNS} FROM schedules WHERE name = ?`),
      upsertSchedule:
        p(`INSERT INTO schedules (name, type, cron, timezone, payload, priority, max_attempts, next_run_at,
          created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (name) DO UPDATE SET type = excluded.type, cron = excluded.cron, timezone = excluded.timezone,
          payload = excluded.payload, priority = excluded.priority, max_attempts = excluded.max_attempts,
          next_run_at = CASE WHEN schedules.cron = excluded.cron AND schedules.timezone IS excluded.timezone
            AND schedules.next_run_at IS NOT NULL THEN schedules.next_run_at ELSE excluded.next_run_at END,
          updated_at = excluded.updated_at`),
      removeSchedule: p('DELETE FROM schedules WHERE name = ?'),
      advanceSchedule: p('UPDATE schedules SET next_run_at = ?, updated_at = ? WHERE name = ?'),
      purge: p(`DELETE FROM operations WHERE seq IN (SELECT seq FROM operations WHERE finished_at IS NOT NULL
          AND finished_at < ? ORDER BY finished_at, seq LIMIT ?)`),
      pending: p(`SELECT id, type, priority, group_key AS groupKey, run_at AS runAt FROM operations
          WHERE state = 'pending' ORDER BY seq`),
      running: p(`SELECT ${OPERATION_COLUMNS} FROM operations WHERE state = 'running' ORDER BY seq`),
      paused: p('SELECT type FROM paused_types ORDER BY type'),
      schedules: p(`SELECT ${SCHEDULE_COLUMNS} FROM schedules ORDER BY name`),
      counts: p('SELECT state, count(*) AS n FROM operations GROUP BY state'),
      // Prepared once: the commit path checkpoints several times a second under load.
      checkpointTruncate: p('PRAGMA wal_checkpoint(TRUNCATE)'),
      checkpointPassive: p('PRAGMA wal_checkpoint(PASSIVE)'),
    };
  }

  #stmt(name: string): StatementSync {
    const statement = this.#s[name];
    if (statement === undefined) throw new Error(`no statement ${name}`);
    return statement;
  }

  apply<K extends CommandKind>(command: CommandOf<K>): ResultOf<K> {
    const [outcome] = this.applyBatch([command]);
    if (outcome === undefined) throw new Error('applyBatch returned nothing');
    if (!outcome.ok) throw outcome.error;
    return outcome.result as ResultOf<K>;
  }

  applyBatch(commands: readonly Command[]): ApplyOutcome[] {
    const { outcomes, transitions } = this.commitBatch(commands);
    this.publish(transitions);
    return outcomes;
  }

  commitBatch(commands: readonly Command[]): CommittedBatch {
    if (commands.length === 0) return { outcomes: [], transitions: [] };
    const transitions: Transition[] = [];
    const outcomes: ApplyOutcome[] = [];
    this.#fresh.clear();
    this.#preclaimed.clear();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      for (let i = 0; i < commands.length; ) {
        const end = this.#insertRuns ? this.#insertRun(commands, i) : i;
        if (end > i) {
          // The run's enqueues are in the store already (one statement); the rest as usual.
          let k = 0;
          for (; i < end; i++) {
            const command = commands[i] as Command;
            let result: CommandResult;
            if (command.kind === 'enqueue') {
              this.#pending = [];
              result = this.#inserted(command, null, this.#runSeqs[k++] as number);
            } else result = this.#applyOne(command);
            transitions.push(...this.#pending);
            outcomes.push({ ok: true, result });
          }
          continue;
        }
        const result = this.#applyOne(commands[i] as Command);
        transitions.push(...this.#pending);
        outcomes.push({ ok: true, result });
        i++;
      }
      for (const extension of this.#extensions) extension.beforeCommit?.(this.db);
      this.db.exec('COMMIT');
      this.#fresh.clear();
      this.#preclaimed.clear();
    } catch (error) {
      this.#fresh.clear();
      this.#preclaimed.clear();
      this.#rollback();
      for (const extension of this.#extensions) extension.afterRollback?.();
      if (commands.length === 1) return { outcomes: [{ ok: false, error }], transitions: [] };
      // Replay one per transaction so only the failing command fails: the same
      // outcome as applying them one by one, which is what a replica would do.
      const single: ApplyOutcome[] = [];
      const replayed: Transition[] = [];
      for (const command of commands) {
        const one = this.commitBatch([command]);
        single.push(...one.outcomes);
        replayed.push(...one.transitions);
      }
      return { outcomes: single, transitions: replayed };
    }
    // Outside the try: the transaction is committed, nothing may roll it back or replay it.
    for (const extension of this.#extensions) extension.afterCommit?.();
    return { outcomes, transitions };
  }

  /**
   * Inserts the enqueues of a run starting at `start` with one multi-row INSERT and
   * returns the run's end (or `start` if there is no run). A run is consecutive
   * enqueues (at least two, at most MAX_INSERT_ROWS) and claims of operations enqueued
   * earlier in it (the executor claims on enqueue); nothing else in it reads what the
   * other enqueues write, so inserting them first ends in the same state. Any conflict
   * or constraint fails the whole statement (SQLite undoes it) and the run is applied
   * one command at a time instead, which gives duplicates their original operation.
   * Only when no extension watches enqueues: such an extension sees the store after each command.
   */
  #insertRun(commands: readonly Command[], start: number): number {
    const enqueues: CommandOf<'enqueue'>[] = [];
    // The first claim of each of the run's enqueues, if it would succeed (the row is
    // pending and due at the claim's time): the INSERT writes the row as claimed.
    const claims = new Map<string, CommandOf<'claim'> | null>();
    let end = start;
    for (; end < commands.length && enqueues.length < MAX_INSERT_ROWS; end++) {
      const command = commands[end] as Command;
      if (command.kind === 'enqueue') {
        enqueues.push(command);
        claims.set(command.id, null);
      } else if (command.kind === 'claim' && claims.has(command.id)) {
        if (claims.get(command.id) === null) claims.set(command.id, command);
      } else break;
    }
    if (enqueues.length < 2) return start;
    let statement = this.#inserts[enqueues.length];
    if (statement === undefined) {
      const rows = Array.from({ length: enqueues.length }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)');
      statement = this.db.prepare(`INSERT INTO operations (id, type, state, payload, priority, group_key,
          idempotency_key, run_at, created_at, max_attempts, attempts, token, epoch, started_at, schedule)
          VALUES ${rows.join(', ')}`);
      this.#inserts[enqueues.length] = statement;
    }
    const values: (string | number | null)[] = [];
    const preclaimed: string[] = [];
    for (const c of enqueues) {
      // Two enqueues with one id make the INSERT fail (and the run go one by one), so a
      // claim of that id is never pre-applied to the wrong row.
      const claim = this.#claimInInsert ? claims.get(c.id) : null;
      if (claim && c.runAt <= claim.at) {
        // What the claim's UPDATE would write: running, attempt 1, token 1 (Raft-safe:
        // the same end state as INSERT then UPDATE, whatever the batching).
        values.push(c.id, c.type, 'running', c.payload, c.priority, c.groupKey, c.idempotencyKey, c.runAt, c.at);
        values.push(c.maxAttempts, 1, 1, claim.epoch, claim.at);
        preclaimed.push(c.id);
      } else {
        values.push(c.id, c.type, 'pending', c.payload, c.priority, c.groupKey, c.idempotencyKey, c.runAt, c.at);
        values.push(c.maxAttempts, 0, 0, null, null);
      }
    }
    let last: number;
    try {
      last = Number(statement.run(...values).lastInsertRowid);
    } catch (error) {
      // Only a constraint (SQLITE_CONSTRAINT = 19, the low byte of the extended code)
      // leaves the transaction as it was; anything else (I/O, disk full) fails the batch.
      const code = (error as { errcode?: unknown }).errcode;
      if (typeof code !== 'number' || (code & 0xff) !== 19 || !this.db.isTransaction) throw error;
      return start;
    }
    for (const id of preclaimed) this.#preclaimed.add(id);
    // Rows of one INSERT take consecutive rowids (max + 1 each: no AUTOINCREMENT gaps).
    const first = last - enqueues.length + 1;
    this.#runSeqs = enqueues.map((_, k) => first + k);
    return end;
  }

  #rollback(): void {
    if (this.db.isTransaction) this.db.exec('ROLLBACK');
  }

  publish(transitions: readonly Transition[]): void {
    if (transitions.length === 0) return;
    for (const listener of this.#listeners) {
      try {
        listener(transitions);
      } catch (error) {
        // A listener's bug must not make a committed batch look failed.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  #applyOne(command: Command): CommandResult {
    this.#pending = [];
    const result = this.#dispatch(command);
    for (const extension of this.#watchers.get(command.kind) ?? []) {
      extension.afterApply({ db: this.db, command, result, transitions: this.#pending });
    }
    return result;
  }

  #dispatch(command: Command): CommandResult {
    switch (command.kind) {
      case 'enqueue':
        return this.#enqueue(command, null);
      case 'claim':
        return this.#claim(command);
      case 'complete':
        return this.#complete(command);
      case 'fail':
        return this.#fail(command);
      case 'release':
        return this.#release(command);
      case 'cancel':
        return this.#cancel(command);
      case 'redrive':
        return this.#redrive(command);
      case 'pause': {
        const applied = Number(this.#stmt('pause').run(command.type).changes) > 0;
        if (applied) this.#pending.push({ kind: 'paused', at: command.at, type: command.type });
        return { applied };
      }
      case 'resume': {
        const applied = Number(this.#stmt('resume').run(command.type).changes) > 0;
        if (applied) this.#pending.push({ kind: 'resumed', at: command.at, type: command.type });
        return { applied };
      }
      case 'boot': {
        const row = this.#stmt('boot').get() as { value: number };
        return { epoch: row.value };
      }
      case 'upsert-schedule': {
        const existed = this.#stmt('scheduleByName').get(command.name) !== undefined;
        this.#stmt('upsertSchedule').run(
          command.name,
          command.type,
          command.cron,
          command.timezone,
          command.payload,
          command.priority,
          command.maxAttempts,
          command.nextRunAt,
          command.at,
          command.at,
        );
        return { created: !existed };
      }
      case 'remove-schedule':
        return { applied: Number(this.#stmt('removeSchedule').run(command.name).changes) > 0 };
      case 'fire-schedule':
        return this.#fireSchedule(command);
      case 'purge':
        return { deleted: Number(this.#stmt('purge').run(command.finishedBefore, command.limit).changes) };
    }
  }

  #enqueue(command: CommandOf<'enqueue'>, schedule: string | null): ResultOf<'enqueue'> {
    const inserted = this.#stmt('insert').run(
      command.id,
      command.type,
      command.payload,
      command.priority,
      command.groupKey,
      command.idempotencyKey,
      command.runAt,
      command.at,
      command.maxAttempts,
      schedule,
    );
    if (Number(inserted.changes) === 0) {
      // A uniqueness conflict: the same idempotency key (per type) or the same id.
      const existing = (
        command.idempotencyKey === null
          ? undefined
          : this.#stmt('byIdempotency').get(command.type, command.idempotencyKey)
      ) as OperationRow | undefined;
      const original = existing ?? (this.#stmt('byId').get(command.id) as OperationRow | undefined);
      if (original === undefined) throw new Error(`enqueue of ${command.id} conflicted with nothing`);
      return { created: false, operation: original };
    }
    return this.#inserted(command, schedule, Number(inserted.lastInsertRowid));
  }

  /** The result and transition of an enqueue whose row was inserted with `seq`. */
  #inserted(command: CommandOf<'enqueue'>, schedule: string | null, seq: number): ResultOf<'enqueue'> {
    const operation: OperationRow = {
      seq,
      id: command.id,
      type: command.type,
      state: 'pending',
      payload: command.payload,
      priority: command.priority,
      groupKey: command.groupKey,
      idempotencyKey: command.idempotencyKey,
      runAt: command.runAt,
      createdAt: command.at,
      maxAttempts: command.maxAttempts,
      attempts: 0,
      token: 0,
      epoch: null,
      startedAt: null,
      finishedAt: null,
      result: null,
      error: null,
      schedule,
    };
    this.#fresh.set(command.id, operation);
    this.#pending.push({
      kind: 'enqueued',
      at: command.at,
      id: command.id,
      type: command.type,
      seq,
      priority: command.priority,
      groupKey: command.groupKey,
      runAt: command.runAt,
      createdAt: command.at,
      attempts: 0,
    });
    return { created: true, operation };
  }

  #status(id: string): StatusRow | undefined {
    return this.#stmt('status').get(id) as StatusRow | undefined;
  }

  #claim(command: CommandOf<'claim'>): ResultOf<'claim'> {
    const fresh = this.#fresh.get(command.id);
    if (fresh !== undefined) this.#fresh.delete(command.id);
    const status = fresh ?? (this.#stmt('claimable').get(command.id) as ClaimableRow | undefined);
    if (status === undefined) return { claimed: false, rejection: 'not-found' };
    if (status.state !== 'pending') return { claimed: false, rejection: 'not-pending' };
    if (status.runAt > command.at) return { claimed: false, rejection: 'not-due' };
    // A pre-claimed row holds exactly what this UPDATE would write.
    if (!this.#preclaimed.delete(command.id)) this.#stmt('claim').run(command.epoch, command.at, status.seq);
    const operation: ClaimedOperation = {
      id: command.id,
      type: status.type,
      payload: status.payload,
      groupKey: status.groupKey,
      idempotencyKey: status.idempotencyKey,
      maxAttempts: status.maxAttempts,
      attempts: status.attempts + 1,
      token: status.token + 1,
      runAt: status.runAt,
    };
    this.#pending.push({
      kind: 'claimed',
      at: command.at,
      id: command.id,
      type: status.type,
      token: operation.token,
      attempt: operation.attempts,
      runAt: status.runAt,
      groupKey: status.groupKey,
    });
    return { claimed: true, operation };
  }

  /** Why a command holding `token` may not act on a running operation, or undefined if it may. */
  #fence(status: StatusRow | undefined, token: number): Rejection | undefined {
    if (status === undefined) return 'not-found';
    if (status.state !== 'running') return 'not-running';
    // The fencing token: only the holder of the latest lease may finish the attempt.
    if (status.token !== token) return 'stale-token';
    return undefined;
  }

  #complete(command: CommandOf<'complete'>): ResultOf<'complete'> {
    this.#fresh.delete(command.id);
    if (command.type !== undefined) {
      const { changes } = this.#stmt('completeFenced').run(
        command.result,
        command.at,
        command.id,
        command.token,
        command.type,
      );
      // Nothing matched: a rejection (or a wrong type); the read below says which.
      if (Number(changes) === 1) {
        this.#pending.push({
          kind: 'completed',
          at: command.at,
          id: command.id,
          type: command.type,
          token: command.token,
          previous: 'running',
        });
        return { applied: true };
      }
    }
    const status = this.#status(command.id);
    const rejection = this.#fence(status, command.token);
    if (rejection !== undefined || status === undefined) return { applied: false, rejection: rejection ?? 'not-found' };
    this.#stmt('complete').run(command.result, command.at, status.seq);
    this.#pending.push({
      kind: 'completed',
      at: command.at,
      id: command.id,
      type: status.type,
      token: command.token,
      previous: 'running',
    });
    return { applied: true };
  }

  #fail(command: CommandOf<'fail'>): ResultOf<'fail'> {
    this.#fresh.delete(command.id);
    const status = this.#status(command.id);
    const rejection = this.#fence(status, command.token);
    if (rejection !== undefined || status === undefined) return { applied: false, rejection: rejection ?? 'not-found' };
    if (command.retryAt !== null && status.attempts < status.maxAttempts) {
      this.#stmt('retry').run(command.retryAt, command.error, status.seq);
      this.#pending.push({
        kind: 'retry-scheduled',
        at: command.at,
        id: command.id,
        type: status.type,
        seq: status.seq,
        priority: status.priority,
        groupKey: status.groupKey,
        runAt: command.retryAt,
        createdAt: status.createdAt,
        attempts: status.attempts,
        error: command.error,
      });
      return { applied: true, state: 'pending' };
    }
    this.#stmt('dead').run(command.error, command.at, status.seq);
    this.#pending.push({
      kind: 'dead',
      at: command.at,
      id: command.id,
      type: status.type,
      token: command.token,
      previous: 'running',
      error: command.error,
    });
    return { applied: true, state: 'dead' };
  }

  #release(command: CommandOf<'release'>): ResultOf<'release'> {
    this.#fresh.delete(command.id);
    const status = this.#status(command.id);
    const rejection = this.#fence(status, command.token);
    if (rejection !== undefined || status === undefined) return { applied: false, rejection: rejection ?? 'not-found' };
    this.#stmt('release').run(status.seq);
    this.#pending.push({
      kind: 'released',
      at: command.at,
      id: command.id,
      type: status.type,
      seq: status.seq,
      priority: status.priority,
      groupKey: status.groupKey,
      runAt: status.runAt,
      createdAt: status.createdAt,
      attempts: status.attempts - 1,
    });
    return { applied: true };
  }

  #cancel(command: CommandOf<'cancel'>): ResultOf<'cancel'> {
    this.#fresh.delete(command.id);
    const status = this.#status(command.id);
    if (status === undefined) return { applied: false, rejection: 'not-found' };
    if (status.state !== 'pending' && status.state !== 'running') return { applied: false, rejection: 'already-final' };
    this.#stmt('cancel').run(command.at, status.seq);
    this.#pending.push({
      kind: 'cancelled',
      at: command.at,
      id: command.id,
      type: status.type,
      token: status.token,
      previous: status.state,
    });
    return { applied: true, previous: status.state };
  }

  #redrive(command: CommandOf<'redrive'>): ResultOf<'redrive'> {
    this.#fresh.delete(command.id);
    const status = this.#status(command.id);
    if (status === undefined) return { applied: false, rejection: 'not-found' };
    if (status.state !== 'dead') return { applied: false, rejection: 'not-dead' };
    this.#stmt('redrive').run(command.runAt, status.seq);
    this.#pending.push({
      kind: 'redriven',
      at: command.at,
      id: command.id,
      type: status.type,
      seq: status.seq,
      priority: status.priority,
      groupKey: status.groupKey,
      runAt: command.runAt,
      createdAt: status.createdAt,
      attempts: 0,
    });
    return { applied: true };
  }

  #fireSchedule(command: CommandOf<'fire-schedule'>): ResultOf<'fire-schedule'> {
    const schedule = this.#stmt('scheduleByName').get(command.name) as ScheduleRow | undefined;
    // Only the fire for the due time on record counts: a duplicate or late fire is a no-op.
    if (schedule === undefined || schedule.nextRunAt !== command.runAt) {
      return { applied: false, created: false, operationId: null };
    }
    const { created, operation } = this.#enqueue(
      {
        kind: 'enqueue',
        at: command.at,
        id: command.id,
        type: schedule.type,
        payload: schedule.payload,
        priority: schedule.priority,
        runAt: command.runAt,
        groupKey: null,
        idempotencyKey: `schedule:${command.name}:${command.runAt}`,
        maxAttempts: schedule.maxAttempts,
      },
      command.name,
    );
    this.#stmt('advanceSchedule').run(command.nextRunAt, command.at, command.name);
    return { applied: true, created, operationId: operation.id };
  }

  subscribe(listener: (transitions: readonly Transition[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get(id: string): OperationRow | undefined {
    return this.#stmt('byId').get(id) as OperationRow | undefined;
  }

  stateOf(id: string): OperationState | undefined {
    return (this.#stmt('stateById').get(id) as { state: OperationState } | undefined)?.state;
  }

  pending(): PendingRow[] {
    return this.#stmt('pending').all() as unknown as PendingRow[];
  }

  running(): OperationRow[] {
    return this.#stmt('running').all() as unknown as OperationRow[];
  }

  pausedTypes(): string[] {
    return (this.#stmt('paused').all() as { type: string }[]).map((r) => r.type);
  }

  schedules(): ScheduleRow[] {
    return this.#stmt('schedules').all() as unknown as ScheduleRow[];
  }

  schedule(name: string): ScheduleRow | undefined {
    return this.#stmt('scheduleByName').get(name) as ScheduleRow | undefined;
  }

  countByState(): Record<OperationState, number> {
    const counts: Record<OperationState, number> = { pending: 0, running: 0, completed: 0, dead: 0, cancelled: 0 };
    for (const row of this.#stmt('counts').all() as { state: OperationState; n: number }[]) counts[row.state] = row.n;
    return counts;
  }

  epoch(): number {
    return (this.#stmt('epoch').get() as { value: number }).value;
  }

  checkpoint(mode: 'truncate' | 'passive' = 'truncate'): CheckpointResult {
    // TRUNCATE: copy every WAL frame into the database, then cut the WAL to zero bytes
    // (https://sqlite.org/pragma.html#pragma_wal_checkpoint).
    // Run under FULL (for `off`, NORMAL would sync as well): the WAL is synced before it
    // is copied and the database after, before any frame counts as copied.
    if (this.#synchronous === 'off') this.db.exec('PRAGMA synchronous = FULL');
    try {
      // PASSIVE leaves the file; once every frame is in the synced database, the next
      // write starts the WAL over from its beginning, syncing its new header first
      // (synchronous=NORMAL, see schema.ts) so that no new frame can pass for an old one.
      return this.#stmt(
        mode === 'truncate' ? 'checkpointTruncate' : 'checkpointPassive',
      ).get() as unknown as CheckpointResult;
    } finally {
      if (this.#synchronous === 'off') this.db.exec('PRAGMA synchronous = NORMAL');
    }
  }

  close(): void {
    this.#listeners.clear();
    if (this.db.isOpen) this.db.close();
  }
}

interface StatusRow {
  readonly seq: number;
  readonly type: string;
  readonly state: OperationState;
  readonly token: number;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly groupKey: string | null;
  readonly createdAt: number;
  readonly runAt: number;
}

interface ClaimableRow {
  readonly seq: number;
  readonly type: string;
  readonly state: OperationState;
  readonly token: number;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly groupKey: string | null;
  readonly runAt: number;
  readonly payload: string;
  readonly idempotencyKey: string | null;
}
