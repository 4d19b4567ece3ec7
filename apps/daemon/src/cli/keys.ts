import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DATA_FILES, DataDirLockedError, lockDataDir, type RotatedKey, rotateSigningKey } from '@unrdf/daemon';
import { failure } from './errors.js';

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
  if (!existsSync(dataDir)) throw failure(`${dataDir} does not exist: start the daemon once first.`);
  // Held while the keys are written, so a daemon cannot start on the old key list meanwhile.
  let unlock: () => void;
  try {
    unlock = lockDataDir(dataDir);
  } catch (error) {
    if (!(error instanceof DataDirLockedError)) throw failure((error as Error).message, { cause: error });
    throw failure(
      `the daemon (process ${error.pid}) is running on ${dataDir}; stop it first: it reads its keys at start, so a key rotated under it would not be used.`,
    );
  }
  try {
    return await rotateSigningKey(keysDir, ledgerSize(dataDir));
  } catch (error) {
    throw failure((error as Error).message, { cause: error });
  } finally {
    unlock();
  }
}
