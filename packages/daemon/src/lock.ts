import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { DataDirLockedError } from './errors.js';
import { DATA_FILES } from './options.js';

/** Lock files this process holds (a second holder here on the same directory is refused too). */
const LOCKED_HERE = new Set<string>();

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user; still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data directory's lock (`daemon.lock`, holding the pid), as a daemon does at
 * start and `keys rotate` does while it writes the keys: one holder at a time. A lock
 * left by a process that died (kill -9) is taken over. Returns the release.
 * @throws {DataDirLockedError} when a live process (this one included) holds it.
 */
export function lockDataDir(dataDir: string, lockPath = resolve(dataDir, DATA_FILES.lock)): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      LOCKED_HERE.add(lockPath);
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        rmSync(lockPath, { force: true });
        LOCKED_HERE.delete(lockPath);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
      const ours = pid === process.pid && LOCKED_HERE.has(lockPath);
      if (ours || (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid))) {
        throw new DataDirLockedError(dataDir, pid);
      }
      rmSync(lockPath, { force: true }); // left by a process that died: take it over
    }
  }
  throw new DataDirLockedError(dataDir, -1);
}
