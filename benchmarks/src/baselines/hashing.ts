import { createHash, randomBytes } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';

export interface HashRate {
  /** SHA-256 digests per second of `messageBytes`-byte messages. */
  readonly perSecond: number;
  readonly messageBytes: number;
}

function rate(durationMs: number, messageBytes: number, digest: (m: Uint8Array) => Uint8Array): HashRate {
  const messages = Array.from({ length: 64 }, () => randomBytes(messageBytes));
  let sink = 0;
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < durationMs) {
    for (let i = 0; i < 1024; i++) sink ^= digest(messages[i & 63] as Uint8Array)[0] as number;
    count += 1024;
    elapsed = performance.now() - start;
  }
  if (sink === -1) throw new Error('unreachable: keeps the digests alive');
  return { perSecond: (count * 1000) / elapsed, messageBytes };
}

/** Raw SHA-256 speed through node:crypto (OpenSSL): the ceiling for anything that hashes. */
export const nodeSha256Rate = (durationMs: number, messageBytes = 64): HashRate =>
  rate(durationMs, messageBytes, (m) => createHash('sha256').update(m).digest());

/** Raw SHA-256 speed through @noble/hashes (pure JS, what the browser verifier runs). */
export const nobleSha256Rate = (durationMs: number, messageBytes = 64): HashRate =>
  rate(durationMs, messageBytes, (m) => sha256(m));
