/**
 * C2SP tlog-checkpoint: the signed statement "the ledger <origin> has <size> leaves with
 * root <hash>", carried as a C2SP signed-note so any conforming verifier (Go's
 * golang.org/x/mod/sumdb/note, the transparency-dev tools) accepts it.
 */
import { InvalidInputError } from './errors.js';
import { fromBase64, isHash, toBase64 } from './internal/bytes.js';
import { type NoteSigner, type NoteVerifier, openNote, parseVerifierKey, signNote } from './note.js';

/** A tree head: which ledger, how many leaves, the RFC 9162 root. */
export interface Checkpoint {
  /** The log's unique name, e.g. `example.com/unrdf/ledger` (C2SP: a schema-less URL). */
  readonly origin: string;
  readonly size: number;
  /** 32-byte RFC 9162 root of the first `size` leaves. */
  readonly root: Uint8Array;
  /** Optional extension lines (C2SP tlog-checkpoint), signed with the rest. */
  readonly extensions?: readonly string[];
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** The checkpoint body (note text): origin, decimal size, base64 root, extensions, each `\n`-terminated. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root, extensions = [] } = checkpoint;
  if (!origin || origin.includes('\n')) throw new InvalidInputError('checkpoint', ['origin: one non-empty line']);
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidInputError('checkpoint', ['size: a safe integer >= 0']);
  if (!isHash(root)) throw new InvalidInputError('checkpoint', ['root: 32 bytes']);
  for (const line of extensions) {
    if (!line || line.includes('\n')) throw new InvalidInputError('checkpoint', ['extensions: non-empty single lines']);
  }
  return [origin, String(size), toBase64(root), ...extensions].map((l) => `${l}\n`).join('');
}

/**
 * Parses a checkpoint body (the note text, signatures already stripped).
 * @throws {InvalidInputError} when it is not a C2SP checkpoint.
 */
export function parseCheckpoint(text: string): Checkpoint {
  const fail = (issue: string): never => {
    throw new InvalidInputError('checkpoint', [issue]);
  };
  if (typeof text !== 'string' || !text.endsWith('\n')) fail('(root): text ending in a newline');
  const lines = text.slice(0, -1).split('\n');
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) fail('origin: missing');
  if (sizeText === undefined || !DECIMAL.test(sizeText)) fail('size: a decimal without leading zeros');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) fail('size: larger than this verifier supports (2^53 - 1)');
  const root = fromBase64(rootText ?? '');
  if (root?.length !== 32) fail('root: base64 of 32 bytes');
  if (extensions.some((l) => l.length === 0)) fail('extensions: empty line');
  return { origin: origin as string, size, root: root as Uint8Array, extensions };
}

/** Signs a checkpoint: the C2SP signed-note of its body. */
export function signCheckpoint(checkpoint: Checkpoint, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/**
 * A key trusted to sign checkpoints, optionally only for a range of tree sizes: key
 * rotation by tree size. A retired key signs nothing at or beyond `untilSize`, so a
 * leaked old key cannot vouch for a rewritten future.
 */
export interface TrustedKey {
  /** `name+hex(keyID)+base64(0x01||pub)`, or an already parsed verifier. */
  readonly verifierKey: string | NoteVerifier;
  /** First tree size this key may sign (inclusive); default 0. */
  readonly fromSize?: number;
  /** Tree size from which this key is retired (exclusive); default never. */
  readonly untilSize?: number;
  /**
   * The log (checkpoint origin line) this key signs for; default: the key's name. A
   * signature counts only on a checkpoint of this origin, so the key of one log trusted
   * beside another's cannot vouch for the other (C2SP tlog-checkpoint: the key name
   * SHOULD match the origin line).
   */
  readonly origin?: string;
}

/** The result of {@link openCheckpoint}. */
export type OpenedCheckpoint =
  | { readonly ok: true; readonly checkpoint: Checkpoint; readonly verifiedBy: readonly string[] }
  | { readonly ok: false; readonly reason: string };

const toVerifier = (k: TrustedKey): NoteVerifier =>
  typeof k.verifierKey === 'string' ? parseVerifierKey(k.verifierKey) : k.verifierKey;

/**
 * Opens a signed checkpoint: the note must verify (Go's note.Open rules) and at least
 * one signature must come from a key trusted for this tree size. Total: never throws.
 */
export function openCheckpoint(note: unknown, trustedKeys: readonly TrustedKey[]): OpenedCheckpoint {
  let keys: { verifier: NoteVerifier; fromSize: number; untilSize: number; origin: string | undefined }[];
  try {
    keys = trustedKeys.map((k) => ({
      verifier: toVerifier(k),
      fromSize: k.fromSize ?? 0,
      untilSize: k.untilSize ?? Number.POSITIVE_INFINITY,
      origin: k.origin,
    }));
  } catch (error) {
    return { ok: false, reason: `bad trusted key: ${(error as Error).message}` };
  }
  const opened = openNote(
    note,
    keys.map((k) => k.verifier),
  );
  if (!opened.ok) return opened;
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(opened.text);
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  const inWindow = opened.verifiedBy.filter((v) =>
    keys.some(
      (k) =>
        k.verifier === v &&
        (k.origin ?? v.name) === checkpoint.origin &&
        checkpoint.size >= k.fromSize &&
        checkpoint.size < k.untilSize,
    ),
  );
  if (inWindow.length === 0) {
    return { ok: false, reason: `no key trusted for ${checkpoint.origin} at tree size ${checkpoint.size} signed it` };
  }
  return { ok: true, checkpoint, verifiedBy: inWindow.map((v) => v.name) };
}
