/**
 * Signing keys on disk: the signer key in a file only its owner can read (0600), the
 * verifier key beside it (0644) for anyone to fetch. Text forms are Go/C2SP's, so
 * `golang.org/x/mod/sumdb/note` reads the same files.
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { KeyError } from '../errors.js';
import { generateNoteKey, type NoteSigner } from '../note.js';
import { nodeSigner } from './node-crypto.js';

/** Paths written by {@link generateKeyFiles}. */
export interface KeyFiles {
  readonly signerKeyPath: string;
  readonly verifierKeyPath: string;
  readonly verifierKey: string;
}

/**
 * Generates an Ed25519 key named `name` and writes `<basePath>.skey` (mode 0600, refuses
 * to overwrite) and `<basePath>.vkey` (0644).
 * @throws {KeyError} when a file already exists or the name is invalid.
 * @example const { verifierKey } = await generateKeyFiles('/var/lib/unrdf/ledger', 'example.com/ledger');
 */
export async function generateKeyFiles(basePath: string, name: string): Promise<KeyFiles> {
  const { signerKey, verifierKey } = generateNoteKey(name);
  const signerKeyPath = `${basePath}.skey`;
  const verifierKeyPath = `${basePath}.vkey`;
  try {
    await writeFile(signerKeyPath, `${signerKey}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(signerKeyPath, 0o600); // the umask cannot loosen it, but make it explicit
    await writeFile(verifierKeyPath, `${verifierKey}\n`, { mode: 0o644, flag: 'wx' });
  } catch (cause) {
    throw new KeyError(`Cannot write key files at ${basePath}.{skey,vkey}: ${(cause as Error).message}`, { cause });
  }
  return { signerKeyPath, verifierKeyPath, verifierKey };
}

/**
 * Loads a signer key file. Refuses a file that group or others can read or write.
 * @throws {KeyError} when missing, too permissive, or malformed.
 */
export async function loadSignerKeyFile(path: string): Promise<NoteSigner> {
  let text: string;
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) {
      throw new KeyError(`${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it.`);
    }
    text = await readFile(path, 'utf8');
  } catch (cause) {
    if (cause instanceof KeyError) throw cause;
    throw new KeyError(`Cannot read signer key ${path}: ${(cause as Error).message}`, { cause });
  }
  return nodeSigner(text.trim());
}

/** Loads a verifier key file's text (`name+hex(keyID)+base64(0x01||pub)`). */
export async function loadVerifierKeyFile(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (cause) {
    throw new KeyError(`Cannot read verifier key ${path}: ${(cause as Error).message}`, { cause });
  }
}
