// The ledger's signing keys on disk: `<keysDir>/ledger-<n>.skey` (0600) and `.vkey`
// (0644), listed in `<keysDir>/keys.json` with the tree size each key takes over at.
// Rotation appends a key; old keys stay listed so old checkpoints keep verifying.
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NoteSigner, TrustedKey } from '@unrdf/receipts';
import { generateKeyFiles, loadSignerKeyFile } from '@unrdf/receipts/ledger';
import { z } from 'zod';
import { issueLines, KeyFileError } from './errors.js';

const KEY_LIST = 'keys.json';

const KeyListSchema = z.strictObject({
  origin: z.string().min(1),
  keys: z
    .array(
      z.strictObject({
        /** File base name inside the keys directory (`.skey` and `.vkey` beside it). */
        file: z.string().regex(/^ledger-[0-9]{1,6}$/),
        fromSize: z.number().int().min(0),
        verifierKey: z.string().min(1),
      }),
    )
    .min(1),
});
type KeyList = z.infer<typeof KeyListSchema>;

/** The keys a ledger signs with, and what verifiers should trust. */
export interface SigningKeys {
  readonly signers: readonly { readonly signer: NoteSigner; readonly fromSize: number }[];
  readonly trustedKeys: readonly TrustedKey[];
  /** Path of the newest verifier key file (what the start output points users to). */
  readonly verifierKeyPath: string;
}

async function readKeyList(keysDir: string): Promise<KeyList | undefined> {
  const path = join(keysDir, KEY_LIST);
  if (!existsSync(path)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new KeyFileError(`${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  const parsed = KeyListSchema.safeParse(json);
  if (!parsed.success) throw new KeyFileError(`${path} is malformed:\n${issueLines(parsed.error).join('\n')}`);
  return parsed.data;
}

/** fsyncs a file or a directory (its entries: names created or renamed in it). */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeKeyList(keysDir: string, list: KeyList): Promise<void> {
  // Write, sync, rename, sync the directory: a crash leaves the old list or the new one,
  // never a half-written one, and a list on disk never names key files that are not.
  const path = join(keysDir, KEY_LIST);
  await writeFile(`${path}.tmp`, `${JSON.stringify(list, null, 2)}\n`, { mode: 0o644 });
  await syncPath(`${path}.tmp`);
  await rename(`${path}.tmp`, path);
  await syncPath(keysDir);
}

/** Bound on the key file names tried past leftovers of interrupted starts and rotations. */
const MAX_KEY_FILES = 10_000;

/**
 * Generates a key in the first `ledger-<n>` (from `n`) with no file yet, synced. A first
 * start or a rotation cut off before its list was written leaves key files no list names
 * (never used to sign); they stay as they are.
 */
async function newKeyFiles(keysDir: string, origin: string, n: number): Promise<{ file: string; verifierKey: string }> {
  const taken = (i: number) =>
    existsSync(join(keysDir, `ledger-${i}.skey`)) || existsSync(join(keysDir, `ledger-${i}.vkey`));
  let i = n;
  while (i < n + MAX_KEY_FILES && taken(i)) i++;
  const file = `ledger-${i}`;
  const base = join(keysDir, file);
  const { verifierKey } = await generateKeyFiles(base, origin).catch((cause: unknown) => {
    throw new KeyFileError(`Cannot write a new signing key in ${keysDir}: ${(cause as Error).message}`, { cause });
  });
  await chmod(`${base}.skey`, 0o600);
  await syncPath(`${base}.skey`);
  await syncPath(`${base}.vkey`);
  return { file, verifierKey };
}

const trustedOf = (list: KeyList): TrustedKey[] =>
  list.keys.map((k, i) => {
    const next = list.keys[i + 1];
    return next
      ? { verifierKey: k.verifierKey, fromSize: k.fromSize, untilSize: next.fromSize }
      : { verifierKey: k.verifierKey, fromSize: k.fromSize };
  });

/**
 * Loads the signing keys of `keysDir`, generating the first one (named after the
 * ledger's origin) when the directory has none.
 * @throws {KeyFileError} when the list or a key file is missing, malformed, too
 *   permissive, or belongs to another origin.
 */
export async function loadOrCreateSigningKeys(keysDir: string, origin: string): Promise<SigningKeys> {
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  let list = await readKeyList(keysDir);
  if (list === undefined) {
    const { file, verifierKey } = await newKeyFiles(keysDir, origin, 1);
    list = { origin, keys: [{ file, fromSize: 0, verifierKey }] };
    await writeKeyList(keysDir, list);
  }
  if (list.origin !== origin) {
    throw new KeyFileError(
      `The keys in ${keysDir} sign the ledger "${list.origin}", not "${origin}"; use that origin or another data directory.`,
    );
  }
  const signers = [];
  for (const key of list.keys) {
    const signer = await loadSignerKeyFile(join(keysDir, `${key.file}.skey`)).catch((cause: unknown) => {
      throw new KeyFileError((cause as Error).message, { cause });
    });
    signers.push({ signer, fromSize: key.fromSize });
  }
  const newest = list.keys.at(-1) as KeyList['keys'][number];
  return { signers, trustedKeys: trustedOf(list), verifierKeyPath: join(keysDir, `${newest.file}.vkey`) };
}

/** What {@link rotateSigningKey} did. */
export interface RotatedKey {
  readonly verifierKey: string;
  readonly verifierKeyPath: string;
  /** The first tree size the new key signs. */
  readonly fromSize: number;
  readonly trustedKeys: readonly TrustedKey[];
}

/**
 * Adds a new signing key that takes over after the ledger's current size (`ledgerSize`):
 * checkpoints already signed keep verifying under the old key, whose window closes there.
 * The daemon reads its keys at start, so rotate while it is stopped (the CLI checks).
 * @throws {KeyFileError} when the directory has no keys yet or cannot be written.
 */
export async function rotateSigningKey(keysDir: string, ledgerSize: number): Promise<RotatedKey> {
  const list = await readKeyList(keysDir);
  if (list === undefined) throw new KeyFileError(`${keysDir} has no ${KEY_LIST}: start the daemon once first.`);
  const last = list.keys.at(-1) as KeyList['keys'][number];
  // The checkpoint of exactly `ledgerSize` exists already, signed by the old key.
  const fromSize = Math.max(ledgerSize + 1, last.fromSize + 1);
  const { file, verifierKey } = await newKeyFiles(keysDir, list.origin, list.keys.length + 1);
  const verifierKeyPath = join(keysDir, `${file}.vkey`);
  const next = { ...list, keys: [...list.keys, { file, fromSize, verifierKey }] };
  await writeKeyList(keysDir, next);
  return { verifierKey, verifierKeyPath, fromSize, trustedKeys: trustedOf(next) };
}
