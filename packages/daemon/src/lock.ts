import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DataDirLockedError } from './errors.js';
import { DATA_FILES } from './options.js';

/** SQLite's SQLITE_BUSY: another connection holds the lock (https://sqlite.org/rescode.html#busy). */
const SQLITE_BUSY = 5;

/**
 * Takes the data directory's lock, as a daemon does at start and `keys rotate` does while
 * it writes the keys: one holder at a time. Returns the release.
 *
 * The lock is an exclusive lock on `<lockPath>.db`, held through SQLite in exclusive
 * locking mode (https://sqlite.org/pragma.html#pragma_locking_mode): an fcntl lock the
 * operating system drops when its process dies, however it dies, so a crashed holder
 * never leaves a stale lock and two processes can never both hold it (a pid file taken
 * over when its process is gone cannot promise that: two could take it over at once).
 * SQLite also refuses a second connection of the same process. That file stays; the
 * pid file `<lockPath>` (`daemon.lock`) names the holder for people and error messages,
 * and goes with the release.
 * @throws {DataDirLockedError} when another holder (this process included) has it.
 */
export function lockDataDir(dataDir: string, lockPath = resolve(dataDir, DATA_FILES.lock)): () => void {
  const db = new DatabaseSync(`${lockPath}.db`);
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('PRAGMA journal_mode = MEMORY'); // nothing here needs a journal on disk
    // The first write takes the EXCLUSIVE lock; in exclusive locking mode it is kept
    // until the connection closes.
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL)');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    db.exec('COMMIT');
  } catch (error) {
    db.close();
    if ((error as { errcode?: unknown }).errcode !== SQLITE_BUSY) throw error;
    throw new DataDirLockedError(dataDir, holderPid(lockPath));
  }
  writeFileSync(lockPath, `${process.pid}\n`, { mode: 0o600 });
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    rmSync(lockPath, { force: true });
    db.close(); // releases the lock
  };
}

/** The holder's pid from the pid file, or -1 when it cannot be read yet. */
function holderPid(lockPath: string): number {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : -1;
  } catch {
    return -1;
  }
}
