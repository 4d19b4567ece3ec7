// What the daemon stores in the queue: the payload wraps the caller's input with the
// subject and the input digest (computed once, at submit); the result wraps the
// handler's output with its digest and, for a batch, its members. Both are JSON text
// in the queue's rows and in the commands a replicated log would carry.
import { hash } from 'node:crypto';
import canonicalize from 'canonicalize';

export interface PayloadEnvelope {
  readonly subject: string;
  readonly input: unknown;
  /** Hex SHA-256: the receipt's inputDigest. */
  readonly inputDigest: string;
}

export interface MemberEnvelope {
  readonly type: string;
  readonly subject: string;
  readonly inputDigest: string;
  readonly outputDigest: string | null;
}

export interface ResultEnvelope {
  readonly output: unknown;
  readonly outputDigest: string | null;
  readonly members?: readonly MemberEnvelope[];
}

const DIGEST_TAG = 'unrdf-json/v1\0';

/**
 * The default digest of a JSON value: `SHA-256("unrdf-json/v1" || 0x00 || JCS(value))`,
 * JCS being RFC 8785 canonical JSON (undefined counts as null).
 * @throws TypeError when the value is not JSON (a BigInt, a cycle, a non-finite number).
 */
export function jsonDigest(value: unknown): Uint8Array {
  const text = canonicalize(value === undefined ? null : value);
  if (text === undefined) throw new TypeError('the value has no JSON form');
  // node:crypto (OpenSSL): the daemon is server-side only, and it is several times faster than pure JS.
  const digest = hash('sha256', DIGEST_TAG + text, 'buffer');
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

export const hex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

const ERROR_CODE = /^[A-Z0-9_]{1,128}$/;

/**
 * The receipt's `errorCode` from a stored error: its `code` when that is already an
 * upper-case code, else its class name in upper snake case (`CrashedError` →
 * `CRASHED_ERROR`), else `ERROR`.
 */
export function errorCodeOf(errorJson: string | null): string {
  if (errorJson === null) return 'ERROR';
  let error: { name?: unknown; code?: unknown };
  try {
    error = JSON.parse(errorJson) as { name?: unknown; code?: unknown };
  } catch {
    return 'ERROR';
  }
  if (typeof error?.code === 'string' && ERROR_CODE.test(error.code)) return error.code;
  if (typeof error?.name === 'string') {
    const snake = error.name
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toUpperCase()
      .replace(/[^A-Z0-9_]/g, '_')
      .slice(0, 128);
    if (ERROR_CODE.test(snake)) return snake;
  }
  return 'ERROR';
}
