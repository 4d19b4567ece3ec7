/**
 * RFC 9162 §2.1 Merkle tree algorithms, written once over an abstract SHA-256 and an
 * abstract source of subtree hashes, so the in-memory functions of `merkle.ts` and the
 * SQLite ledger (which reads stored complete-subtree hashes) share one implementation.
 */
import { bytesEqual, isHash } from './bytes.js';

export type Sha256 = (data: Uint8Array) => Uint8Array;

export interface TreeHasher {
  /** RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0)). */
  leaf(data: Uint8Array): Uint8Array;
  /** RFC 9162 §2.1.1: SHA-256(0x01 || left || right). */
  children(left: Uint8Array, right: Uint8Array): Uint8Array;
  /** RFC 9162 §2.1.1: MTH({}) = SHA-256(""). */
  readonly emptyRoot: Uint8Array;
}

export function createTreeHasher(sha256: Sha256): TreeHasher {
  // One scratch buffer for the common 32+32 case: hashing is synchronous, so it is
  // never shared between two calls in flight.
  const scratch = new Uint8Array(65);
  scratch[0] = 0x01;
  return {
    leaf(data) {
      const input = new Uint8Array(data.length + 1);
      input.set(data, 1);
      return sha256(input);
    },
    children(left, right) {
      if (left.length === 32 && right.length === 32) {
        scratch.set(left, 1);
        scratch.set(right, 33);
        return sha256(scratch);
      }
      const input = new Uint8Array(1 + left.length + right.length);
      input[0] = 0x01;
      input.set(left, 1);
      input.set(right, 1 + left.length);
      return sha256(input);
    },
    emptyRoot: sha256(new Uint8Array(0)),
  };
}

/** MTH(D[start:end]) for 0 <= start < end <= size. */
export type SubtreeHash = (start: number, end: number) => Uint8Array;

/** The largest power of two strictly less than n (n >= 2), RFC 9162 §2.1.1's k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export const isPowerOfTwo = (n: number): boolean => n >= 1 && splitPoint(n + 1) === n;

/**
 * MTH over a range by recursion on the leaves (RFC 9162 §2.1.1), O(end - start) hashes.
 * Used by the in-memory functions; the ledger answers from stored subtrees instead.
 */
export function mthOfLeaves(hasher: TreeHasher, leafHashes: readonly Uint8Array[]): SubtreeHash {
  const mth: SubtreeHash = (start, end) => {
    const n = end - start;
    if (n === 1) return leafHashes[start] as Uint8Array;
    const k = splitPoint(n);
    return hasher.children(mth(start, start + k), mth(start + k, end));
  };
  return mth;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[n]): audit path of leaf `index` in a tree of `size`. */
export function inclusionPath(index: number, size: number, mth: SubtreeHash): Uint8Array[] {
  const path: Uint8Array[] = [];
  let start = 0;
  let end = size;
  // Walk down from the root; each step records the sibling subtree, so the path is
  // built root-first and reversed at the end (the RFC lists it leaf-first).
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      path.push(mth(start + k, end));
      end = start + k;
    } else {
      path.push(mth(start, start + k));
      start += k;
    }
  }
  return path.reverse();
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) for 0 < m < n. */
export function consistencyPath(oldSize: number, size: number, mth: SubtreeHash): Uint8Array[] {
  if (oldSize === 0 || oldSize === size) return [];
  const proof: Uint8Array[] = [];
  let start = 0;
  let end = size;
  let m = oldSize;
  let complete = true; // the RFC's b: is D[start:start+m] a subtree the verifier already has
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!complete) proof.push(mth(start, end));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      proof.push(mth(start + k, end));
      end = start + k;
    } else {
      proof.push(mth(start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  return proof.reverse();
}

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

const isProof = (proof: unknown): proof is readonly Uint8Array[] => Array.isArray(proof) && proof.every(isHash);

/** RFC 9162 §2.1.3.2, strict: rejects rather than throws on any malformed input. */
export function verifyInclusionWith(
  hasher: TreeHasher,
  leafHash: unknown,
  index: unknown,
  size: unknown,
  proof: unknown,
  root: unknown,
): boolean {
  if (!isHash(leafHash) || !isHash(root) || !isSize(index) || !isSize(size) || !isProof(proof)) return false;
  if (index >= size) return false;
  // Proof length must equal the path length exactly; a longer path can't be reached
  // when sn hits 0 early, which the loop below catches too.
  if (proof.length > 64) return false;
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hasher.children(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hasher.children(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(r, root);
}

/** RFC 9162 §2.1.4.2, strict: rejects rather than throws on any malformed input. */
export function verifyConsistencyWith(
  hasher: TreeHasher,
  oldSize: unknown,
  size: unknown,
  oldRoot: unknown,
  root: unknown,
  proof: unknown,
): boolean {
  if (!isSize(oldSize) || !isSize(size) || !isHash(oldRoot) || !isHash(root) || !isProof(proof)) return false;
  if (oldSize > size) return false;
  if (oldSize === size) return proof.length === 0 && bytesEqual(oldRoot, root);
  if (oldSize === 0) return proof.length === 0 && bytesEqual(oldRoot, hasher.emptyRoot);
  if (proof.length === 0 || proof.length > 128) return false;
  // RFC 9162 §2.1.4.2 step 2: a power-of-two old tree is itself a node of the new one.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = size - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hasher.children(c, fr);
      sr = hasher.children(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hasher.children(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(fr, oldRoot) && bytesEqual(sr, root);
}
