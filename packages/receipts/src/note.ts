/**
 * C2SP signed-note with Ed25519 (signature type 0x01), byte-compatible with Go's
 * golang.org/x/mod/sumdb/note: the same key encodings (`name+hex(keyID)+base64(0x01||pub)`
 * and `PRIVATE+KEY+name+hex(keyID)+base64(0x01||seed)`), the same key id, the same note
 * grammar and the same acceptance rules. Browser-safe (@noble/curves).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { InvalidInputError, KeyError } from './errors.js';
import { bytesEqual, concatBytes, fromBase64, fromUtf8, toBase64, utf8 } from './internal/bytes.js';
import { ed25519Verifier, platformSha256 } from './internal/platform.js';

/** C2SP signed-note: signature type 0x01 is Ed25519. */
const ALG_ED25519 = 0x01;
const SIG_PREFIX = '\u2014 '; // "— " (U+2014 EM DASH, space)
const MAX_SIGNATURES = 100; // as Go's note.Open
/** Bound on a note accepted from outside; a checkpoint note is a few hundred bytes. */
export const MAX_NOTE_BYTES = 64 * 1024;

/** Something that signs note text (a signer key held in memory, or one in node:crypto). */
export interface NoteSigner {
  readonly name: string;
  /** C2SP key id: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || publicKey), as a uint32. */
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

/** A verifier key: who may sign, and their Ed25519 public key. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/**
 * Go's isValidName: non-empty, valid UTF-8, no Unicode white space, no '+'. Go's
 * unicode.IsSpace is the Unicode White_Space property (U+0085 included, U+FEFF not),
 * which JS's `\s` is not.
 */
export function isValidKeyName(name: string): boolean {
  return (
    typeof name === 'string' && name.length > 0 && !/[\p{White_Space}+]/u.test(name) && fromUtf8(utf8(name)) === name
  );
}

/** C2SP signed-note key id for an Ed25519 key: SHA-256(name || "\n" || 0x01 || pub)[:4], big-endian. */
export function keyIdOf(name: string, publicKey: Uint8Array): number {
  const digest = platformSha256(concatBytes(utf8(name), Uint8Array.of(0x0a, ALG_ED25519), publicKey));
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0);
}

const hex8 = (n: number) => n.toString(16).padStart(8, '0');

/** Encodes a verifier key in the Go/C2SP text form `name+hex(keyID)+base64(0x01||pub)`. */
export function encodeVerifierKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new KeyError(`"${name}" is not a valid key name (no spaces, no "+").`);
  if (publicKey.length !== 32) throw new KeyError('An Ed25519 public key is 32 bytes.');
  return `${name}+${hex8(keyIdOf(name, publicKey))}+${toBase64(concatBytes(Uint8Array.of(ALG_ED25519), publicKey))}`;
}

/** Encodes a signer key in the Go/C2SP text form `PRIVATE+KEY+name+hex(keyID)+base64(0x01||seed)`. */
export function encodeSignerKey(name: string, seed: Uint8Array): string {
  if (seed.length !== 32) throw new KeyError('An Ed25519 seed is 32 bytes.');
  const publicKey = ed25519.getPublicKey(seed);
  encodeVerifierKey(name, publicKey); // validates the name
  const key = toBase64(concatBytes(Uint8Array.of(ALG_ED25519), seed));
  return `PRIVATE+KEY+${name}+${hex8(keyIdOf(name, publicKey))}+${key}`;
}

/** Splits `name+hash+key` on the first two '+' only (base64 may contain '+'). */
function splitKey(text: string): [string, string, string] | undefined {
  const a = text.indexOf('+');
  const b = a < 0 ? -1 : text.indexOf('+', a + 1);
  if (a < 0 || b < 0) return undefined;
  return [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)];
}

function parseKeyParts(parts: [string, string, string] | undefined, what: string) {
  if (!parts) throw new KeyError(`Malformed ${what}: expected name+keyid+key.`);
  const [name, idHex, keyB64] = parts;
  if (!isValidKeyName(name)) throw new KeyError(`Malformed ${what}: invalid key name.`);
  if (!/^[0-9a-f]{8}$/.test(idHex)) throw new KeyError(`Malformed ${what}: the key id is 8 lowercase hex digits.`);
  const key = fromBase64(keyB64);
  if (key?.length !== 33) throw new KeyError(`Malformed ${what}: the key is base64 of 33 bytes.`);
  if (key[0] !== ALG_ED25519) throw new KeyError(`Unsupported ${what} algorithm ${key[0]}; only Ed25519 (1).`);
  return { name, keyId: Number.parseInt(idHex, 16), key: key.subarray(1) };
}

/**
 * Parses a verifier key (`name+hex(keyID)+base64(0x01||pub)`) into a {@link NoteVerifier}.
 * Verification is RFC 8032 strict (not ZIP-215), as Go's crypto/ed25519.
 * @throws {KeyError} when it is malformed or the key id does not match.
 */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const { name, keyId, key } = parseKeyParts(splitKey(String(vkey)), 'verifier key');
  if (keyIdOf(name, key) !== keyId) throw new KeyError('Verifier key id does not match its name and public key.');
  const publicKey = Uint8Array.from(key);
  const verify = ed25519Verifier(publicKey);
  return Object.freeze({
    name,
    keyId,
    publicKey,
    verify: (message: Uint8Array, signature: Uint8Array): boolean =>
      signature.length === 64 && verify(message, signature),
  });
}

/**
 * Decodes a signer key (`PRIVATE+KEY+name+hex(keyID)+base64(0x01||seed)`) and checks
 * its key id. Internal: the seed never leaves the package's signers.
 * @throws {KeyError} when it is malformed or the key id does not match.
 */
export function decodeSignerKey(skey: string): {
  name: string;
  keyId: number;
  seed: Uint8Array;
  publicKey: Uint8Array;
} {
  const text = String(skey);
  if (!text.startsWith('PRIVATE+KEY+')) throw new KeyError('Malformed signer key: expected PRIVATE+KEY+…');
  const { name, keyId, key } = parseKeyParts(splitKey(text.slice('PRIVATE+KEY+'.length)), 'signer key');
  const seed = Uint8Array.from(key);
  const publicKey = ed25519.getPublicKey(seed);
  if (keyIdOf(name, publicKey) !== keyId) throw new KeyError('Signer key id does not match its name and key.');
  return { name, keyId, seed, publicKey };
}

/**
 * Parses a signer key (`PRIVATE+KEY+name+hex(keyID)+base64(0x01||seed)`) into a
 * {@link NoteSigner} that signs with @noble/curves.
 * @throws {KeyError} when it is malformed or the key id does not match.
 */
export function parseSignerKey(skey: string): NoteSigner {
  const { name, keyId, seed, publicKey } = decodeSignerKey(skey);
  return Object.freeze({ name, keyId, publicKey, sign: (message: Uint8Array) => ed25519.sign(message, seed) });
}

/** A fresh Ed25519 key pair in the Go/C2SP text forms (random from the platform's crypto.getRandomValues). */
export function generateNoteKey(name: string): { signerKey: string; verifierKey: string } {
  const seed = ed25519.utils.randomSecretKey();
  return { signerKey: encodeSignerKey(name, seed), verifierKey: encodeVerifierKey(name, ed25519.getPublicKey(seed)) };
}

/** Go's note text rule: valid UTF-8, no ASCII control character but newline. */
const hasOnlyNoteCharacters = (text: string): boolean =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: this is the rule being checked
  !/[\u0000-\u0009\u000b-\u001f]/.test(text) && fromUtf8(utf8(text)) === text;

/**
 * Signs note text with one or more signers: the text, a blank line, one signature line
 * `— <name> base64(keyID || signature)` per signer (C2SP signed-note).
 * @throws {InvalidInputError} when the text does not end in a newline or has control characters.
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  if (!text.endsWith('\n') || !hasOnlyNoteCharacters(text)) {
    throw new InvalidInputError('note text', ['(root): must end with a newline and have no control characters']);
  }
  const message = utf8(text);
  let out = `${text}\n`;
  for (const signer of signers) {
    if (!isValidKeyName(signer.name)) throw new KeyError(`"${signer.name}" is not a valid key name.`);
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, signer.keyId);
    out += `${SIG_PREFIX}${signer.name} ${toBase64(concatBytes(id, signer.sign(message)))}\n`;
  }
  return out;
}

/**
 * Adds signatures to a signed note (C2SP cosigning, e.g. each replica signing the root
 * it computed): the text is unchanged, existing signature lines are kept in order
 * except one by the same key (name and key id) as a new signer, which is replaced, and
 * the new lines follow (as Go's note.Sign). Existing signatures are not verified here.
 * @throws {InvalidInputError} when `note` is not a well-formed signed note.
 */
export function cosignNote(note: string, signers: readonly NoteSigner[]): string {
  const split = typeof note === 'string' ? note.lastIndexOf('\n\n') : -1;
  const block = split < 0 ? '' : note.slice(split + 2);
  if (split < 0 || !block.endsWith('\n') || !hasOnlyNoteCharacters(note)) {
    throw new InvalidInputError('signed note', [
      '(root): text, a blank line and signature lines, each ending in a newline',
    ]);
  }
  const text = note.slice(0, split + 1);
  const replaced = new Set(signers.map((s) => `${s.name} ${s.keyId}`));
  const kept = block
    .slice(0, -1)
    .split('\n')
    .filter((line) => {
      const rest = line.startsWith(SIG_PREFIX) ? line.slice(SIG_PREFIX.length) : undefined;
      const [name, b64] = rest?.split(' ') ?? [];
      const raw = fromBase64(b64 ?? '');
      if (!name || !raw || raw.length < 5) throw new InvalidInputError('signed note', ['signatures: malformed line']);
      return !replaced.has(`${name} ${new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0)}`);
    });
  const fresh = signNote(text, signers).slice(text.length + 1);
  return `${text}\n${kept.map((l) => `${l}\n`).join('')}${fresh}`;
}

/**
 * Internal: the key (name and C2SP key ID) of each signature line of a signed note, in
 * order, or undefined when the note is malformed. Signatures are NOT verified: for notes
 * the caller signed itself (the ledger's stored checkpoints), never for input from outside.
 */
export function noteSignatureKeys(note: string): { name: string; keyId: number }[] | undefined {
  const split = note.lastIndexOf('\n\n');
  const block = split < 0 ? '' : note.slice(split + 2);
  if (!block.endsWith('\n')) return undefined;
  const keys: { name: string; keyId: number }[] = [];
  for (const line of block.slice(0, -1).split('\n')) {
    const rest = line.startsWith(SIG_PREFIX) ? line.slice(SIG_PREFIX.length) : '';
    const space = rest.indexOf(' ');
    const raw = space < 0 ? undefined : fromBase64(rest.slice(space + 1));
    if (!raw || raw.length < 5) return undefined;
    keys.push({ name: rest.slice(0, space), keyId: new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0) });
  }
  return keys;
}

/** One signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  readonly signature: Uint8Array;
}

/** The outcome of {@link openNote}: either the text with who verified it, or why not. */
export type OpenedNote =
  | { readonly ok: true; readonly text: string; readonly verifiedBy: readonly NoteVerifier[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Parses a signed note and checks its signatures against known verifiers, with Go's
 * note.Open rules: malformed notes are rejected, a known key with a bad signature
 * rejects the whole note, unknown keys are ignored, and at least one known key must
 * have signed. Total: never throws.
 */
export function openNote(note: unknown, verifiers: readonly NoteVerifier[]): OpenedNote {
  try {
    if (typeof note !== 'string') return { ok: false, reason: 'note is not a string' };
    if (note.length > MAX_NOTE_BYTES) return { ok: false, reason: 'note too large' };
    if (!hasOnlyNoteCharacters(note)) return { ok: false, reason: 'malformed note: control characters' };
    const split = note.lastIndexOf('\n\n');
    if (split < 0) return { ok: false, reason: 'malformed note: no signature block' };
    const text = note.slice(0, split + 1);
    const block = note.slice(split + 2);
    if (block.length === 0 || !block.endsWith('\n')) return { ok: false, reason: 'malformed note: signature block' };
    const lines = block.slice(0, -1).split('\n');
    if (lines.length > MAX_SIGNATURES) return { ok: false, reason: 'malformed note: too many signatures' };
    const message = utf8(text);
    const verifiedBy: NoteVerifier[] = [];
    const seen = new Set<string>();
    for (const line of lines) {
      if (!line.startsWith(SIG_PREFIX)) return { ok: false, reason: 'malformed note: signature line prefix' };
      const rest = line.slice(SIG_PREFIX.length);
      const space = rest.indexOf(' ');
      const name = space < 0 ? rest : rest.slice(0, space);
      const b64 = space < 0 ? '' : rest.slice(space + 1);
      const raw = fromBase64(b64);
      if (!raw || !isValidKeyName(name) || raw.length < 5) return { ok: false, reason: 'malformed note: signature' };
      const keyId = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0);
      // The same key listed twice is one key; two different keys under one name and id are ambiguous.
      const matches = verifiers.filter((v) => v.name === name && v.keyId === keyId);
      if (matches.some((v) => !sameKey(v, matches[0] as NoteVerifier)))
        return { ok: false, reason: `ambiguous key ${name}+${hex8(keyId)}` };
      const verifier = matches[0];
      if (!verifier) continue; // unknown key: ignored, as Go's UnverifiedSigs
      const id = `${name}+${keyId}`;
      if (seen.has(id)) continue;
      seen.add(id);
      if (!verifier.verify(message, raw.subarray(4))) {
        return { ok: false, reason: `invalid signature for key ${name}+${hex8(keyId)}` };
      }
      verifiedBy.push(verifier);
    }
    if (verifiedBy.length === 0) return { ok: false, reason: 'no signature from a trusted key' };
    return { ok: true, text, verifiedBy };
  } catch {
    return { ok: false, reason: 'malformed note' };
  }
}

/** True when two verifiers are the same key. */
export const sameKey = (a: { name: string; keyId: number; publicKey: Uint8Array }, b: typeof a): boolean =>
  a.name === b.name && a.keyId === b.keyId && bytesEqual(a.publicKey, b.publicKey);
