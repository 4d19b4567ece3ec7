/** Byte helpers that run unchanged in Node and in a browser (no Buffer, no node: imports). */

const HEX_DIGITS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Byte value of each pair of lowercase hex digits, indexed by (first << 7) | second; -1 elsewhere. */
const HEX_PAIR = new Int16Array(1 << 14).fill(-1);
for (let hi = 0; hi < 16; hi++) {
  for (let lo = 0; lo < 16; lo++) {
    HEX_PAIR[('0123456789abcdef'.charCodeAt(hi) << 7) | '0123456789abcdef'.charCodeAt(lo)] = hi * 16 + lo;
  }
}

/** ASCII codes of the two hex digits of each byte value, at 2·byte and 2·byte + 1. */
const HEX_CODES = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  HEX_CODES[2 * i] = (HEX_DIGITS[i] as string).charCodeAt(0);
  HEX_CODES[2 * i + 1] = (HEX_DIGITS[i] as string).charCodeAt(1);
}
const asciiDecoder = new TextDecoder();
const hexScratch = new Uint8Array(128);

/**
 * Lowercase hex. Written as ASCII codes and decoded once: a flat string at about half
 * the cost of concatenating digit pairs, whose result is a 32-deep rope that the first
 * reader (a verifier comparing proof hashes) must flatten.
 */
export function toHex(bytes: Uint8Array): string {
  const length = bytes.length * 2;
  const codes = length <= hexScratch.length ? hexScratch : new Uint8Array(length);
  for (let i = 0; i < bytes.length; i++) {
    const at = 2 * (bytes[i] as number);
    codes[2 * i] = HEX_CODES[at] as number;
    codes[2 * i + 1] = HEX_CODES[at + 1] as number;
  }
  return asciiDecoder.decode(codes.subarray(0, length));
}

/** Strict lowercase hex; returns undefined for anything else. */
export function fromHex(hex: string): Uint8Array | undefined {
  if (typeof hex !== 'string' || hex.length % 2 !== 0) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const first = hex.charCodeAt(2 * i);
    const second = hex.charCodeAt(2 * i + 1);
    const value = (first | second) < 128 ? (HEX_PAIR[(first << 7) | second] as number) : -1;
    if (value < 0) return undefined;
    out[i] = value;
  }
  return out;
}

/** True when `hex` is strict lowercase hex of `length` bytes (what fromHex would decode). */
export function isLowerHex(hex: unknown, length: number): hex is string {
  if (typeof hex !== 'string' || hex.length !== length * 2) return false;
  for (let i = 0; i < hex.length; i += 2) {
    const first = hex.charCodeAt(i);
    const second = hex.charCodeAt(i + 1);
    if ((first | second) >= 128 || (HEX_PAIR[(first << 7) | second] as number) < 0) return false;
  }
  return true;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard (RFC 4648 §4) padded base64. */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i] as number);
  return btoa(binary);
}

/**
 * Strict standard padded base64: only the canonical encoding of some byte string is
 * accepted (no whitespace, no URL alphabet, no non-zero padding bits), so one value
 * has exactly one text form. Returns undefined otherwise.
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || !B64.test(text)) return undefined;
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return toBase64(out) === text ? out : undefined;
}

export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Byte equality (not constant time: everything compared here is public). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8, returning undefined for invalid sequences. */
export function fromUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

export const isHash = (value: unknown): value is Uint8Array => value instanceof Uint8Array && value.length === 32;
