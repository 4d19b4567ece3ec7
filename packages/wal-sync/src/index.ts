import { fdatasync, fdatasyncSync } from 'node:fs';

/**
 * Group-commit durability for a SQLite database in WAL mode with `synchronous=OFF`: its
 * one writer COMMITs without syncing and hands each committed batch to a {@link WalSync},
 * which fdatasyncs the WAL and releases the batch once an fsync that started after its
 * COMMIT has returned. Batches are released in commit order, whichever fsync returns.
 *
 * Used by the receipts ledger and by the queue's commit path, each over its own store.
 */

/** The file syncs a {@link WalSync} makes, injectable so tests can delay or fail them. */
export interface SyncIo {
  readonly fdatasync: (fd: number, callback: (error: Error | null) => void) => void;
  readonly fdatasyncSync: (fd: number) => void;
  /** A monotonic clock in ms, to time the syncs (it decides scheduling, never content). */
  readonly now: () => number;
}

export const NODE_SYNC_IO: SyncIo = { fdatasync, fdatasyncSync, now: () => performance.now() };

/**
 * fsyncs running at once. libuv's thread pool has 4 threads by default, shared with all
 * fs work. Two let a batch committed during a slow fsync start its own instead of waiting
 * for that one to end (the kernel merges them into one journal commit).
 */
export const MAX_SYNCS_IN_FLIGHT = 2;

/**
 * A batch of at most this many commands, committed while no fsync is in flight, is synced
 * on the event loop right after its COMMIT, while the disk answers fast (below). At low
 * rates (batches of one or two) the thread-pool round trip costs more than the sync it
 * carries: two thread wake-ups and ~40 µs of the event loop's CPU per sync (measured at
 * 1,000 operations/s through the daemon; ~85 µs per receipt for the ledger alone at
 * 1,000 receipts/s, and a worse P99), and on a busy machine the pool thread waits for a
 * core before and after the disk; a 4 KiB fdatasync on this disk takes ~0.1 ms.
 * Larger batches (a backlog) sync on the pool while the loop gathers and commits the next
 * one: ~20% more receipts/s at saturation than syncing every batch inline.
 */
export const DEFAULT_INLINE_MAX_BATCH = 64;

/**
 * ...and only while recent fsyncs average at most this many milliseconds (a moving
 * average, each sync weighing 1/8): a slow disk never stalls the event loop.
 */
export const INLINE_MAX_MS = 1;

export interface WalSyncOptions<T> {
  /** A descriptor of the WAL file (`<db>-wal`), only ever fdatasynced. */
  readonly fd: number;
  /** A batch is durable: called once per batch, in commit order. */
  readonly onDurable: (batch: T) => void;
  /**
   * An fsync failed. After that nothing written since the last good fsync can be known
   * durable (PostgreSQL's "fsyncgate", 2018: a retried fsync may succeed having dropped
   * the pages), so the failure is final: this is called at once with every batch still
   * waiting (possibly none: a later fsync may have released them all before this one
   * failed), and again for any batch committed later, and none is ever released again.
   * The owner must refuse further work from the first call on. Reopening the database
   * recovers its last durable state.
   */
  readonly onFailure: (error: unknown, unsynced: readonly T[]) => void;
  /** After a successful fsync released what it covered (e.g. to check the WAL's size). */
  readonly afterRelease?: () => void;
  /** After every thread-pool fsync settled, once the next one (if any) started (not after inline ones). */
  readonly afterSync?: () => void;
  /** See {@link DEFAULT_INLINE_MAX_BATCH}; 0 syncs every batch on the thread pool. */
  readonly inlineMaxBatch?: number;
  readonly io?: SyncIo;
}

interface Unsynced<T> {
  readonly seq: number;
  readonly batch: T;
}

/**
 * Tracks committed batches until an fsync makes them durable.
 * @example
 * const sync = new WalSync({ fd: openSync(`${path}-wal`, 'a'), onDurable: release, onFailure: reject });
 * db.exec('COMMIT');
 * sync.committed(batch, batch.length);
 */
export class WalSync<T> {
  readonly #o: WalSyncOptions<T>;
  readonly #io: SyncIo;
  readonly #inlineMaxBatch: number;
  /** Committed batches no fsync has covered yet, oldest first. */
  #unsynced: Unsynced<T>[] = [];
  #committedSeq = 0;
  /** The newest batch an fsync started (or ran inline) for. */
  #lastStartedFor = 0;
  #inFlight = 0;
  /** Moving average of recent fsync durations (ms), each weighing 1/8. */
  #syncMs = 0;
  #failure: unknown;
  #failed = false;
  #idleWaiters: (() => void)[] = [];

  constructor(options: WalSyncOptions<T>) {
    this.#o = options;
    this.#io = options.io ?? NODE_SYNC_IO;
    this.#inlineMaxBatch = options.inlineMaxBatch ?? DEFAULT_INLINE_MAX_BATCH;
  }

  /** fsyncs running now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Committed batches not yet released. */
  get unsynced(): number {
    return this.#unsynced.length;
  }

  /** The first fsync error, if one failed (final). */
  get failure(): unknown {
    return this.#failure;
  }

  get failed(): boolean {
    return this.#failed;
  }

  /**
   * `batch` was just committed (`commands` commands in it): syncs it inline now if it is
   * small, no fsync runs and the disk is fast, else starts (or joins) a thread-pool fsync.
   */
  committed(batch: T, commands: number): void {
    if (this.#failed) {
      this.#o.onFailure(this.#failure, [batch]);
      return;
    }
    this.#unsynced.push({ seq: ++this.#committedSeq, batch });
    if (commands <= this.#inlineMaxBatch && this.#inFlight === 0 && this.#syncMs <= INLINE_MAX_MS) {
      this.#syncInline();
    } else this.#start();
  }

  /**
   * Every batch committed so far is durable by other means (a checkpoint under
   * synchronous=FULL that copied every frame synced the WAL first): releases them now.
   */
  releaseAll(): void {
    const released = this.#unsynced;
    this.#unsynced = [];
    for (const u of released) this.#o.onDurable(u.batch);
    this.#notifyIdle();
  }

  /** Resolves once no fsync runs and no batch waits for one (or the syncs failed). */
  async settled(): Promise<void> {
    while (this.#inFlight > 0 || (this.#unsynced.length > 0 && !this.#failed)) {
      await new Promise<void>((resolve) => {
        this.#idleWaiters.push(resolve);
        this.#start();
      });
    }
  }

  #releaseUpTo(covers: number): void {
    let n = 0;
    while (n < this.#unsynced.length && (this.#unsynced[n] as Unsynced<T>).seq <= covers) n++;
    if (n === 0) return;
    const released = this.#unsynced.slice(0, n);
    this.#unsynced = this.#unsynced.slice(n);
    for (const u of released) this.#o.onDurable(u.batch);
  }

  #fail(error: unknown): void {
    const first = !this.#failed;
    if (first) {
      this.#failed = true;
      this.#failure = error;
    }
    const unsynced = this.#unsynced.map((u) => u.batch);
    this.#unsynced = [];
    // The first failure is reported even when nothing waits, so the owner stops before its next COMMIT.
    if (first || unsynced.length > 0) this.#o.onFailure(this.#failure, unsynced);
  }

  #noteSyncMs(ms: number): void {
    this.#syncMs += (ms - this.#syncMs) / 8;
  }

  #notifyIdle(): void {
    if (this.#inFlight > 0 || (this.#unsynced.length > 0 && !this.#failed)) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * An fdatasync of the WAL makes durable every batch committed before it started; a
   * batch committed while one runs waits for the next. Whichever returns releases
   * everything it covers, in commit order.
   */
  #start(): void {
    if (this.#failed || this.#inFlight >= MAX_SYNCS_IN_FLIGHT) return;
    const covers = this.#committedSeq;
    if (this.#unsynced.length === 0 || this.#lastStartedFor >= covers) return;
    this.#lastStartedFor = covers;
    this.#inFlight++;
    const started = this.#io.now();
    this.#io.fdatasync(this.#o.fd, (error) => {
      this.#inFlight--;
      this.#noteSyncMs(this.#io.now() - started);
      if (error) this.#fail(error);
      else if (!this.#failed) {
        this.#releaseUpTo(covers);
        this.#o.afterRelease?.();
      }
      this.#start();
      this.#o.afterSync?.();
      this.#notifyIdle();
    });
  }

  /** Syncs on the event loop, now: a small batch, no fsync in flight, a fast disk. */
  #syncInline(): void {
    const covers = this.#committedSeq;
    this.#lastStartedFor = covers;
    const started = this.#io.now();
    try {
      this.#io.fdatasyncSync(this.#o.fd);
    } catch (error) {
      this.#fail(error);
      this.#notifyIdle();
      return;
    }
    this.#noteSyncMs(this.#io.now() - started);
    this.#releaseUpTo(covers);
    this.#o.afterRelease?.();
    this.#notifyIdle();
  }
}
