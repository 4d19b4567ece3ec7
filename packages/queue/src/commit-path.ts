import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { endianness } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type SyncIo, WalSync } from '@unrdf/wal-sync';
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
  /**
   * With `syncWal`: a batch of at most this many commands committed while no fsync runs is
   * synced on the event loop right after COMMIT, while recent fsyncs average under 1 ms
   * (default 64, see @unrdf/wal-sync; 0: always on the thread pool).
   */
  readonly inlineSyncMaxBatch?: number;
  /** @internal With `syncWal`: the file syncs (tests inject failing ones); Node's by default. */
  readonly syncIo?: SyncIo;
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

/** Background checkpoint passes (commits going on) before the last one, with commits held. */
const MAX_BACKGROUND_PASSES = 3;
/** How long a background pass may take before the event loop checkpoints itself. */
const PASS_TIMEOUT_MS = 1000;
/** WAL bytes not yet in the database small enough to finish with commits held (the worker's final pass). */
const REMAINDER_BYTES = 256 * 1024;
/**
 * How long commits may wait for the worker's last pass (a few hundred KiB and two fsyncs:
 * a few milliseconds) before the event loop finishes the checkpoint itself.
 */
const FINAL_PASS_TIMEOUT_MS = 50;

/**
 * Frames in the WAL since it last started over: `mxFrame` of the wal-index header at the
 * start of the -shm file (https://sqlite.org/walformat.html#the_wal_index_file_format:
 * a u32 at offset 16, in the machine's byte order). Read between transactions of the
 * only writer, so it is current. Undefined if the file cannot be read.
 */
class WalFrames {
  readonly #path: string;
  readonly #buffer = Buffer.alloc(4);
  #fd: number | undefined;

  constructor(path: string) {
    this.#path = path;
  }

  read(): number | undefined {
    try {
      this.#fd ??= openSync(this.#path, 'r');
      if (readSync(this.#fd, this.#buffer, 0, 4, 16) !== 4) return undefined;
      return endianness() === 'LE' ? this.#buffer.readUInt32LE(0) : this.#buffer.readUInt32BE(0);
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }
}

// The worker's whole program (CommonJS, evaluated: nothing to resolve in src or dist).
// Its own connection runs PASSIVE checkpoints under synchronous=FULL: when there are frames
// to copy, the WAL is synced first, then they are copied into the database; the database
// is synced only when the pass copied every frame there was when it began
// (https://sqlite.org/c3ref/wal_checkpoint_v2.html). So only a pass that no commit
// overlapped (the final one, with commits held) says anything about durability. PASSIVE
// takes no writer lock, so the queue's writer goes on committing meanwhile.
const CHECKPOINTER_SOURCE = `
const { DatabaseSync } = require('node:sqlite');
const { parentPort, workerData } = require('node:worker_threads');
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA synchronous = FULL');
db.exec('PRAGMA busy_timeout = 5000');
const pass = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
parentPort.on('message', (n) => {
  try {
    const row = pass.get();
    parentPort.postMessage({ n, ok: true, busy: row.busy, log: row.log, checkpointed: row.checkpointed });
  } catch (error) {
    parentPort.postMessage({ n, ok: false, message: String(error && error.message) });
  }
});
`;

interface PassResult {
  /** The pass this answers (a late answer to a pass that timed out is dropped). */
  readonly n?: number;
  readonly ok: boolean;
  readonly busy?: number;
  readonly log?: number;
  readonly checkpointed?: number;
}

/**
 * Copies the WAL into the database on a worker thread, so that the event loop never
 * does (megabytes: tens of milliseconds with a database fsync), unless the worker is not
 * running or does not answer in time.
 */
class BackgroundCheckpointer {
  readonly #worker: Worker;
  #reply: ((result: PassResult) => void) | undefined;
  /** Number of the pass awaited. */
  #pass = 0;
  #broken = false;
  // Until the worker runs (tens of milliseconds after open, more on a busy machine), the
  // event loop checkpoints itself.
  #online = false;

  constructor(path: string) {
    // None of the parent's loader hooks (tsx would slow its start); only the flag that
    // node:sqlite needs on Node 22.12. If the worker cannot start, the event loop checkpoints.
    const execArgv = process.execArgv.filter((arg) => arg === '--experimental-sqlite');
    this.#worker = new Worker(CHECKPOINTER_SOURCE, { eval: true, workerData: { path }, execArgv });
    this.#worker.unref();
    this.#worker.on('online', () => {
      this.#online = true;
    });
    this.#worker.on('message', (result: PassResult) => {
      if (result.n === this.#pass) this.#settle(result);
    });
    this.#worker.on('error', () => {
      this.#broken = true;
      this.#settle({ ok: false });
    });
    this.#worker.on('exit', () => {
      this.#broken = true;
      this.#settle({ ok: false });
    });
  }

  #settle(result: PassResult): void {
    const reply = this.#reply;
    this.#reply = undefined;
    reply?.(result);
  }

  /**
   * One PASSIVE pass; resolves `{ ok: false }` if the worker cannot or does not answer
   * within `timeoutMs` (the caller then checkpoints itself).
   */
  pass(timeoutMs = PASS_TIMEOUT_MS): Promise<PassResult> {
    if (this.#broken || !this.#online || this.#reply !== undefined) return Promise.resolve({ ok: false });
    // Referenced while a pass runs (an awaited reply keeps the process alive), not while idle.
    this.#worker.ref();
    return new Promise((resolve) => {
      // A worker slow to answer (starting, or starved of CPU) must not let the WAL grow:
      // after `timeoutMs` the event loop checkpoints itself (its late answer is dropped).
      const timer = setTimeout(() => this.#settle({ ok: false }), timeoutMs);
      this.#reply = (result) => {
        clearTimeout(timer);
        this.#worker.unref();
        resolve(result);
      };
      this.#worker.postMessage(++this.#pass);
    });
  }

  async close(): Promise<void> {
    this.#broken = true;
    this.#worker.ref();
    await this.#worker.terminate();
  }
}

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
  const checkpointer =
    walFd !== undefined && stateMachine.walPath !== undefined
      ? new BackgroundCheckpointer(stateMachine.walPath.slice(0, -'-wal'.length))
      : undefined;
  let checkpointing = false;
  // While the worker runs the last pass of a checkpoint, commits wait (see checkpoint()).
  let holding = false;
  const frameBytes = checkpointer
    ? 24 + Number((stateMachine.db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size)
    : 0;
  const walFrames =
    stateMachine.walPath === undefined ? undefined : new WalFrames(`${stateMachine.walPath.slice(0, -4)}-shm`);
  /** Bytes of WAL frames written since the WAL last started over (the file itself is reused, not shrunk). */
  const walBytes = (fd: number): number => {
    const frames = walFrames?.read();
    return frames === undefined || frameBytes === 0 ? fstatSync(fd).size : 32 + frames * frameBytes;
  };
  let commands: Command[] = [];
  let waiters: Waiter[] = [];
  let scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  let closed = false;
  let failure: unknown;

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

  // Batches committed but not yet known durable wait for an fsync of the WAL that started
  // after their COMMIT; whichever returns releases everything it covers, in commit order.
  const walSync =
    walFd === undefined
      ? undefined
      : new WalSync<Pending>({
          fd: walFd,
          onDurable: release,
          onFailure: (error, batches) => {
            failure ??= new StoreSyncError({ cause: error });
            for (const pending of batches)
              for (const waiter of pending.waiters) if (!waiter.settled) waiter.reject(failure);
          },
          afterRelease: () => {
            if (walFd !== undefined && !checkpointing && walBytes(walFd) > checkpointBytes) void checkpoint();
          },
          ...(options.inlineSyncMaxBatch === undefined ? {} : { inlineMaxBatch: options.inlineSyncMaxBatch }),
          ...(options.syncIo === undefined ? {} : { io: options.syncIo }),
        });

  // Keeps the WAL bounded: worker passes copy the bulk while commits go on; then commits
  // wait while the worker copies the small remainder, so that it copies every frame and
  // the next commit starts the WAL over. Meanwhile the event loop goes on accepting work,
  // which the next commit takes. The event loop checkpoints itself (a stall of a copy and
  // two fsyncs) only when the worker is not online or does not answer in time, when three
  // passes left more than REMAINDER_BYTES (commits outpacing the worker), or when the
  // final pass did not copy everything: the WAL must not grow without bound.
  const checkpoint = async (): Promise<void> => {
    checkpointing = true;
    try {
      let remainder = Number.POSITIVE_INFINITY;
      for (let i = 0; checkpointer !== undefined && i < MAX_BACKGROUND_PASSES; i++) {
        const result = await checkpointer.pass();
        if (!result.ok || walFd === undefined || failure !== undefined) break;
        // The WAL is a 32-byte header and frames of a 24-byte header and a page
        // (https://sqlite.org/fileformat2.html#walformat); what is not backfilled is left.
        remainder = walBytes(walFd) - 32 - (result.checkpointed ?? 0) * frameBytes;
        if (remainder <= Math.min(REMAINDER_BYTES, checkpointBytes / 4)) break;
      }
      if (walFd === undefined || failure !== undefined) return;
      if (checkpointer !== undefined && remainder <= REMAINDER_BYTES) {
        holding = true;
        let last: PassResult;
        try {
          last = await checkpointer.pass(FINAL_PASS_TIMEOUT_MS);
        } finally {
          holding = false;
          schedule();
        }
        if (last.ok && everyFrameCopied(last)) return;
        if (failure !== undefined) return; // an fsync failed during the hold: the store is done
      }
      // Under synchronous=FULL: syncs the WAL, copies what is left into the database and
      // syncs that. Everything committed so far is then durable, and the next commit
      // starts the WAL over at its beginning, reusing the file: truncating it instead
      // costs tens of milliseconds on ext4 (mounted with discard here), all on the event
      // loop. The maintenance tick still truncates it (bounded disk use when idle).
      everyFrameCopied(stateMachine.checkpoint('passive'));
    } catch {
      // A busy reader can block a checkpoint; the next one catches up.
    } finally {
      checkpointing = false;
    }
  };

  /**
   * After a checkpoint that copied every frame of the WAL (with no commit since it started):
   * every batch committed is durable. Frames it copied were synced first (synchronous=FULL);
   * frames an earlier checkpoint had already copied were synced by that one. One blocked by
   * another checkpointer (busy: such as a worker pass that timed out) proves nothing: the
   * batches then wait for their own fsync as usual. A store not in WAL mode answers log -1.
   */
  const everyFrameCopied = (done: {
    readonly busy?: number;
    readonly log?: number;
    readonly checkpointed?: number;
  }) => {
    if (done.busy !== 0 || (done.log ?? -1) < 0 || done.checkpointed !== done.log) return false;
    walSync?.releaseAll();
    return true;
  };

  const schedule = (): void => {
    if (commands.length > 0 && scheduled === undefined) {
      scheduled = windowMs > 0 ? setTimeout(flush, windowMs) : setImmediate(flush);
    }
  };

  const flush = (): void => {
    if (scheduled !== undefined) {
      if (windowMs > 0) clearTimeout(scheduled as NodeJS.Timeout);
      else clearImmediate(scheduled as NodeJS.Immediate);
      scheduled = undefined;
    }
    // The worker is copying the WAL's last frames: this batch waits for it (schedule() runs it then).
    if (commands.length === 0 || holding) return;
    const batch = commands;
    const batchWaiters = waiters;
    commands = [];
    waiters = [];
    if (failure !== undefined) {
      // Submitted before an fsync failed: nothing may be committed after it (a command the
      // caller saw fail must not come back after a restart).
      for (const waiter of batchWaiters) waiter.reject(failure);
      return;
    }
    let committed: CommittedBatch;
    try {
      committed = stateMachine.commitBatch(batch);
    } catch (error) {
      // BEGIN or COMMIT itself failed (disk full, I/O error): nothing is durable.
      for (const waiter of batchWaiters) waiter.reject(error);
      return;
    }
    const pending = { waiters: batchWaiters, batch: committed };
    if (walSync === undefined) {
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
    walSync.committed(pending, batch.length);
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
        else schedule();
      });
    },
    async close() {
      closed = true;
      while (holding) await new Promise((resolve) => setImmediate(resolve));
      flush();
      await walSync?.settled();
      while (checkpointing) await new Promise((resolve) => setImmediate(resolve));
      await checkpointer?.close();
      walFrames?.close();
      if (walFd !== undefined) {
        closeSync(walFd);
        walFd = undefined;
      }
    },
  };
}
