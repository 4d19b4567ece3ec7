import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ed25519Verifier,
  nobleEd25519Verify,
  nobleSha256,
  nodeCrypto,
  platformSha256,
  platformSha256Text,
} from '../src/internal/platform.js';
import { nobleTree, platformTree } from '../src/internal/sha256.js';
import { toHex } from './vectors.js';

describe('platform backends', () => {
  it('uses node:crypto on Node', () => {
    expect(nodeCrypto).toBeDefined();
  });

  it('SHA-256: node:crypto and @noble/hashes agree on random inputs', () => {
    for (let i = 0; i < 1000; i++) {
      const data = randomBytes(i % 257);
      expect(toHex(platformSha256(data))).toBe(toHex(nobleSha256(data)));
    }
    const l = randomBytes(32);
    const r = randomBytes(32);
    expect(toHex(platformTree.children(l, r))).toBe(toHex(nobleTree.children(l, r)));
    expect(toHex(platformTree.leaf(l))).toBe(toHex(nobleTree.leaf(l)));
    expect(toHex(platformTree.emptyRoot)).toBe(toHex(nobleTree.emptyRoot));
  });

  it('SHA-256 of text: node:crypto and @noble/hashes agree on random Unicode strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
        const a = platformSha256Text(text);
        expect(a).toBeInstanceOf(Uint8Array);
        expect(a.length).toBe(32);
        expect(toHex(a)).toBe(toHex(nobleSha256(new TextEncoder().encode(text))));
      }),
      { numRuns: 500 },
    );
  });

  it('Ed25519: node:crypto and strict @noble/curves agree on honest and corrupted signatures', () => {
    for (let i = 0; i < 30; i++) {
      const seed = randomBytes(32);
      const publicKey = ed25519.getPublicKey(seed);
      const message = randomBytes(i * 7);
      const signature = ed25519.sign(message, seed);
      const verify = ed25519Verifier(publicKey);
      expect(verify(message, signature)).toBe(true);
      const bad = Uint8Array.from(signature);
      bad[i % 64] = (bad[i % 64] as number) ^ (1 << (i % 8));
      expect(verify(message, bad)).toBe(nobleEd25519Verify(publicKey, message, bad));
      expect(verify(message, bad)).toBe(false);
      // S >= L (non-canonical): RFC 8032 §5.1.7 requires rejection, in both backends
      const highS = Uint8Array.from(signature);
      highS[63] = (highS[63] as number) | 0xf0;
      expect(verify(message, highS)).toBe(false);
      expect(nobleEd25519Verify(publicKey, message, highS)).toBe(false);
    }
  });
});
