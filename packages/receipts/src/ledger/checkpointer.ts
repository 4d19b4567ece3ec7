/**
 * A WAL checkpointer on a worker thread, for an owned ledger in fsync-after-commit mode:
 * the copy of the WAL into the database and its two syncs (seconds of disk time per
 * 4 MiB on a busy disk, measured here up to 130 ms) run on the worker's own connection,
 * so the event loop keeps committing and syncing receipts meanwhile.
 *
 * The worker runs `PRAGMA wal_checkpoint(PASSIVE)` under synchronous=FULL: SQLite syncs
 * the WAL, copies the frames committed so far into the database, syncs the database and
 * only then records them as backfilled (https://sqlite.org/wal.html#ckpt,
 * https://sqlite.org/pragma.html#pragma_wal_checkpoint), so a writer that restarts the
 * WAL afterwards overwrites only what is already on disk. PASSIVE never waits for the
 * writer: appends go on while it copies.
 */
import { Worker } from 'node:worker_threads';

// CommonJS, evaluated in the worker: one connection, one request at a time.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const db = new DatabaseSync(workerData.path);
db.exec('PRAGMA busy_timeout=5000; PRAGMA synchronous=FULL;');
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
parentPort.on('message', (request) => {
  if (request === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const row = checkpoint.get();
    parentPort.postMessage({ ok: row.busy === 0 });
  } catch (error) {
    parentPort.postMessage({ ok: false, error: String(error) });
  }
});
`;

/** A checkpointer thread bound to one database file. */
export interface WalCheckpointer {
  /** Checkpoints the WAL on the worker; true when every frame then in it was copied and synced. */
  checkpoint(): Promise<boolean>;
  /** Closes the worker's connection and ends the thread. */
  close(): Promise<void>;
}

/** Starts a checkpointer thread on the SQLite file at `path` (WAL mode). */
export function startWalCheckpointer(path: string): WalCheckpointer {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path } });
  worker.unref(); // a ledger left open must not keep the process alive
  let failure: Error | undefined;
  let waiting: ((ok: boolean) => void) | undefined;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('message', (answer: { ok: boolean }) => {
    const w = waiting;
    waiting = undefined;
    w?.(answer.ok);
  });
  worker.on('error', (error) => {
    failure = error;
    const w = waiting;
    waiting = undefined;
    w?.(false);
  });
  worker.once('exit', () => {
    failure ??= new Error('the checkpointer thread exited');
    const w = waiting;
    waiting = undefined;
    w?.(false);
  });
  return {
    checkpoint() {
      if (failure || waiting) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        waiting = resolve;
        worker.postMessage('checkpoint');
      });
    },
    async close() {
      // Referenced again: the process waits for the connection to close, even when
      // closing the ledger is the last thing it does.
      worker.ref();
      if (!failure) worker.postMessage('close');
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
      await worker.terminate();
    },
  };
}
