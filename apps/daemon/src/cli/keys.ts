import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DATA_FILES, type RotatedKey, rotateSigningKey } from '@unrdf/daemon';
import { failure } from './errors.js';

/** The pid in the data directory's lock file when that process is alive, else undefined. */
export function liveLockHolder(dataDir: string): number | undefined {
  const path = join(dataDir, DATA_FILES.lock);
  if (!existsSync(path)) return undefined;
  const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (error) {
    // EPERM: it exists but belongs to another user; still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * The ledger's size (number of leaves) in `<dataDir>/daemon.db`, read-only; 0 when the
 * store does not exist yet.
 */
export function ledgerSize(dataDir: string): number {
  const path = join(dataDir, DATA_FILES.store);
  if (!existsSync(path)) return 0;
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(path, { readOnly: true });
  } catch (error) {
    throw failure(`cannot open ${path} read-only: ${(error as Error).message}`, { cause: error });
  }
  try {
    const row = db.prepare('SELECT coalesce(max(leaf_index) + 1, 0) AS n FROM receipts_leaves').get() as
      | { n: number | bigint }
      | undefined;
    return Number(row?.n ?? 0);
  } catch (error) {
    // No receipts table: the daemon never committed a receipt here.
    if (/no such table/.test((error as Error).message)) return 0;
    throw failure(`cannot read the ledger size from ${path}: ${(error as Error).message}`, { cause: error });
  } finally {
    db.close();
  }
}

/**
 * Rotates the ledger's signing key of a stopped daemon: the new key signs tree sizes
 * after the current ledger size; the old one stays trusted for the sizes it signed.
 * @throws {CliError} exit 1 while a live daemon holds the data directory or when the keys cannot be written.
 */
export async function rotateKeys(dataDir: string, keysDir = join(dataDir, DATA_FILES.keys)): Promise<RotatedKey> {
  const pid = liveLockHolder(dataDir);
  if (pid !== undefined) {
    throw failure(
      `the daemon (process ${pid}) is running on ${dataDir}; stop it first: it reads its keys at start, so a key rotated under it would not be used.`,
    );
  }
  const size = ledgerSize(dataDir);
  try {
    return await rotateSigningKey(keysDir, size);
  } catch (error) {
    throw failure((error as Error).message, { cause: error });
  }
}
