import { closeSync, fdatasync, fstatSync, openSync } from 'node:fs';
import type { Command, CommandKind, CommandOf, ResultOf } from './commands.js';
import { QueueClosedError, QueueError } from './errors.js';
import type { CommittedBatch, StateMachine } from './state-machine.js';

/**
 * The path that makes a command durable and applies it. Locally it is a group-commit
 * writer over the state machine's SQLite store; in a cluster the daemon plugs in the
 * Raft log, whose every replica applies the committed command to its own state machine.
 */
export interface CommitPath {
  /**
   * Resolves with the command's result only once the command is durable and applied;
   * rejects with what apply threw.
   */
  submit<K extends CommandKind>(command: CommandOf<K>, options?: SubmitOptions): Promise<ResultOf<K>>;
  /** Commits and syncs what was submitted, then refuses more. */
  close(): Promise<void>;
}

export interface SubmitOptions {
  /**
   * Resolve once the command is committed, before it is synced: for commands whose loss
   * in a power cut is harmless (a claim under the `retry` crash policy: the attempt
   * simply runs again). A path may ignore it (the Raft log does). Listeners still hear
   * the transitions only once they are durable, in order.
   */
  readonly beforeSync?: boolean;
}

export interface GroupCommitOptions {
  /**
   * 0 (default): one transaction per event-loop turn. 1-2: wait up to this many
   * milliseconds to gather a larger batch (fewer fsyncs, a little more latency).
   */
  readonly windowMs?: number;
  /** Flush at once when this many commands wait (bounds a transaction's length). */
  readonly maxBatch?: number;
  /**
   * Fsync the WAL after COMMIT on the libuv thread pool, releasing results and
   * transitions only once it returned. For a state machine opened with
   * `synchronous: 'off', autoCheckpoint: false`; leave false when SQLite syncs itself
   * (synchronous=FULL) or durability comes from elsewhere.
   */
  readonly syncWal?: boolean;
  /** With `syncWal`: checkpoint (under synchronous=FULL) once the WAL exceeds this (default 8 MiB). */
  readonly checkpointBytes?: number;
}

/** The WAL fsync failed: what was committed since the last good fsync may be lost. */
export class StoreSyncError extends QueueError {
  override readonly name = 'StoreSyncError';
  override readonly code = 'UNRDF_QUEUE_SYNC_FAILED';
  constructor(options?: ErrorOptions) {
    super(
      'Syncing the queue store to disk failed; restart the process (the store recovers to its last durable state).',
      options,
    );
  }
}

/** fsyncs running at once; libuv's thread pool has 4 threads by default, shared with all fs work. */
const MAX_SYNCS_IN_FLIGHT = 2;

interface Waiter {
  resolve(result: unknown): void;
  reject(error: unknown): void;
  /** Wants its result at COMMIT (beforeSync). */
  readonly early: boolean;
  /** Already resolved or rejected. */
  settled: boolean;
}

interface Pending {
  readonly waiters: Waiter[];
  readonly batch: CommittedBatch;
}

/**
 * A group-commit writer: every command submitted during one event-loop turn (or one
 * short window) goes into one `BEGIN IMMEDIATE … COMMIT` (the technique of DeWitt et
 * al. 1984 and of every WAL database since), and callers and listeners hear back
 * only once it is durable.
 *
 * With `syncWal`, the fsync happens after COMMIT on the thread pool instead of inside
 * it, so the event loop never waits for the disk, and one fsync covers every batch
 * committed before it started (a batch committed while an fsync runs waits for the
 * next one). A failed fsync is final: after it nothing can be known durable
 * (PostgreSQL's "fsyncgate", 2018), so the path refuses all further work.
 * @example
 * const path = createGroupCommitPath(stateMachine);
 * const { created } = await path.submit({ kind: 'enqueue', ... });
 */
export function createGroupCommitPath(stateMachine: StateMachine, options: GroupCommitOptions = {}): CommitPath {
  const windowMs = options.windowMs ?? 0;
  const maxBatch = options.maxBatch ?? 4096;
  const checkpointBytes = options.checkpointBytes ?? 8 * 2 ** 20;
  let walFd: number | undefined;
  if (options.syncWal) {
    if (stateMachine.walPath === undefined) throw new Error('syncWal needs a file-backed store');
    // 'a' creates the WAL if SQLite has not yet; the descriptor is only ever fsynced.
    walFd = openSync(stateMachine.walPath, 'a');
  }
  let commands: Command[] = [];
  let waiters: Waiter[] = [];
  let scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  let closed = false;
  let failure: unknown;
  // Batches committed but not yet known durable, oldest first, each with its number.
  let awaitingSync: (Pending & { readonly seq: number })[] = [];
  let committedSeq = 0;
  let syncsInFlight = 0;
  let onSynced: (() => void) | undefined;

  const release = (pending: Pending): void => {
    stateMachine.publish(pending.batch.transitions);
    const { outcomes } = pending.batch;
    for (let i = 0; i < pending.waiters.length; i++) {
      const outcome = outcomes[i];
      const waiter = pending.waiters[i] as Waiter;
      if (waiter.settled) continue;
      waiter.settled = true;
      if (outcome?.ok) waiter.resolve(outcome.result);
      else waiter.reject(outcome?.error ?? new Error('no outcome for command'));
    }
  };

  const fail = (error: unknown): void => {
    failure = new StoreSyncError({ cause: error });
    for (const pending of awaitingSync)
      for (const waiter of pending.waiters) if (!waiter.settled) waiter.reject(failure);
    awaitingSync = [];
  };

  // An fsync makes durable every batch committed before it started. Several may run at
  // once (the kernel merges them into one journal commit), so a batch committed during
  // a slow fsync does not wait for it to end before its own starts. Whichever returns
  // releases everything it covers, in commit order, so listeners see batches in order.
  const startSync = (): void => {
    if (walFd === undefined || failure !== undefined || syncsInFlight >= MAX_SYNCS_IN_FLIGHT) return;
    const covers = committedSeq;
    if (awaitingSync.length === 0 || (awaitingSync[awaitingSync.length - 1]?.seq ?? 0) < covers) return;
    if (lastSyncStartedFor >= covers) return;
    lastSyncStartedFor = covers;
    syncsInFlight++;
    fdatasync(walFd, (error) => {
      syncsInFlight--;
      if (error) fail(error);
      else {
        let released = 0;
        while (released < awaitingSync.length && (awaitingSync[released]?.seq ?? Number.POSITIVE_INFINITY) <= covers) {
          release(awaitingSync[released] as Pending);
          released++;
        }
        if (released > 0) awaitingSync = awaitingSync.slice(released);
        if (walFd !== undefined && fstatSync(walFd).size > checkpointBytes) {
          try {
            // Under synchronous=FULL: syncs the WAL, copies it into the database, syncs
            // that, truncates the WAL. Everything committed so far is then durable.
            stateMachine.checkpoint();
            for (const pending of awaitingSync) release(pending);
            awaitingSync = [];
          } catch {
            // A busy reader can block a checkpoint; the next one catches up.
          }
        }
      }
      startSync();
      if (syncsInFlight === 0 && (awaitingSync.length === 0 || failure !== undefined)) onSynced?.();
    });
  };
  let lastSyncStartedFor = 0;

  const flush = (): void => {
    if (scheduled !== undefined) {
      if (windowMs > 0) clearTimeout(scheduled as NodeJS.Timeout);
      else clearImmediate(scheduled as NodeJS.Immediate);
      scheduled = undefined;
    }
    if (commands.length === 0) return;
    const batch = commands;
    const batchWaiters = waiters;
    commands = [];
    waiters = [];
    let committed: CommittedBatch;
    try {
      committed = stateMachine.commitBatch(batch);
    } catch (error) {
      // BEGIN or COMMIT itself failed (disk full, I/O error): nothing is durable.
      for (const waiter of batchWaiters) waiter.reject(error);
      return;
    }
    const pending = { waiters: batchWaiters, batch: committed };
    if (walFd === undefined) {
      release(pending);
      return;
    }
    for (let i = 0; i < batchWaiters.length; i++) {
      const waiter = batchWaiters[i] as Waiter;
      if (!waiter.early) continue;
      waiter.settled = true;
      const outcome = committed.outcomes[i];
      if (outcome?.ok) waiter.resolve(outcome.result);
      else waiter.reject(outcome?.error ?? new Error('no outcome for command'));
    }
    awaitingSync.push({ ...pending, seq: ++committedSeq });
    startSync();
  };

  return {
    submit<K extends CommandKind>(command: CommandOf<K>, submitOptions?: SubmitOptions): Promise<ResultOf<K>> {
      if (failure !== undefined) return Promise.reject(failure);
      if (closed) return Promise.reject(new QueueClosedError());
      return new Promise<ResultOf<K>>((resolve, reject) => {
        commands.push(command);
        waiters.push({
          resolve: resolve as (result: unknown) => void,
          reject,
          early: submitOptions?.beforeSync === true,
          settled: false,
        });
        if (commands.length >= maxBatch) flush();
        else if (scheduled === undefined) {
          scheduled = windowMs > 0 ? setTimeout(flush, windowMs) : setImmediate(flush);
        }
      });
    },
    async close() {
      flush();
      closed = true;
      while (syncsInFlight > 0 || (awaitingSync.length > 0 && failure === undefined)) {
        await new Promise<void>((resolve) => {
          onSynced = resolve;
          startSync();
        });
        onSynced = undefined;
      }
      if (walFd !== undefined) {
        closeSync(walFd);
        walFd = undefined;
      }
    },
  };
}
