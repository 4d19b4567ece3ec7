import { sha256 } from '@noble/hashes/sha2.js';
import { createTreeHasher, type Sha256 } from './tree.js';

/**
 * SHA-256 from @noble/hashes: pure JavaScript, audited, the same code in Node and in
 * the browser verifier. (The Node-only ledger swaps in node:crypto where it measured
 * faster; a test proves the two agree on random inputs.)
 */
export const nobleSha256: Sha256 = (data) => sha256(data);

export const nobleTree = createTreeHasher(nobleSha256);
