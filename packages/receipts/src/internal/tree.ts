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

/**
 * Nodes of one tree (one signed size and root) already proven to lead to its root: node
 * (L, k) is the hash of the subtree over leaves [k·2^L, min((k+1)·2^L, size)). Shared by
 * all verifications against that tree head. An open-addressing hash table on typed
 * arrays (level, index and the 32 hash bytes in flat arrays): remembering a node
 * allocates nothing, so a verifier's cache adds no objects for the garbage collector to
 * trace or promote (with a Map of hashes it spent more time collecting than hashing).
 */
export interface VerifiedNodes {
  /** Most nodes kept; past it the table starts over. */
  readonly limit: number;
  count: number;
  /** Slot mask (capacity - 1; capacity a power of two, at most half full). */
  mask: number;
  /** Per slot: level + 1, or 0 for an empty slot. */
  levels: Uint8Array;
  indices: Float64Array;
  /** 32 bytes per slot. */
  hashes: Uint8Array;
}

const INITIAL_SLOTS = 1024;

const allocate = (cache: VerifiedNodes, slots: number): void => {
  cache.mask = slots - 1;
  cache.levels = new Uint8Array(slots);
  cache.indices = new Float64Array(slots);
  cache.hashes = new Uint8Array(slots * 32);
  cache.count = 0;
};

export const createVerifiedNodes = (limit = 1 << 18): VerifiedNodes => {
  const cache = { limit, count: 0, mask: 0 } as VerifiedNodes;
  allocate(cache, INITIAL_SLOTS);
  return cache;
};

/** The first slot to probe for node (level, index); indices reach 2^53, so both halves mix in. */
function homeSlot(cache: VerifiedNodes, level: number, index: number): number {
  const low = index >>> 0;
  const high = Math.floor(index / 4294967296) >>> 0;
  let h = Math.imul(low ^ Math.imul(high, 0x9e3779b1) ^ Math.imul(level + 1, 0x85ebca6b), 0xc2b2ae35);
  h ^= h >>> 15;
  return h & cache.mask;
}

/** The slot holding node (level, index), or -1. */
function findSlot(cache: VerifiedNodes, level: number, index: number): number {
  const tag = level + 1;
  for (let slot = homeSlot(cache, level, index); ; slot = (slot + 1) & cache.mask) {
    const at = cache.levels[slot] as number;
    if (at === 0) return -1;
    if (at === tag && cache.indices[slot] === index) return slot;
  }
}

/** Stores node (level, index) unless present; hex values must already be known strict hex. */
function storeNode(cache: VerifiedNodes, level: number, index: number, hash: Uint8Array | string): void {
  if ((cache.count + 1) * 2 > cache.mask + 1) {
    // Grow: rehash into twice the slots (the limit keeps the table bounded).
    const { levels, indices, hashes } = cache;
    allocate(cache, (cache.mask + 1) * 2);
    for (let slot = 0; slot < levels.length; slot++) {
      if (levels[slot] === 0) continue;
      storeNode(
        cache,
        (levels[slot] as number) - 1,
        indices[slot] as number,
        hashes.subarray(slot * 32, slot * 32 + 32),
      );
    }
  }
  let slot = homeSlot(cache, level, index);
  for (; cache.levels[slot] !== 0; slot = (slot + 1) & cache.mask) {
    if (cache.levels[slot] === level + 1 && cache.indices[slot] === index) return;
  }
  cache.levels[slot] = level + 1;
  cache.indices[slot] = index;
  if (typeof hash === 'string') decodeInto(hash, cache.hashes.subarray(slot * 32, slot * 32 + 32));
  else cache.hashes.set(hash, slot * 32);
  cache.count++;
}

/** The stored hash of a slot equals `value` (32 bytes, or strict lowercase hex). */
function slotEquals(cache: VerifiedNodes, slot: number, value: Uint8Array | string): boolean {
  const base = slot * 32;
  const hashes = cache.hashes;
  if (typeof value === 'string') {
    for (let i = 0; i < 32; i++) {
      const first = value.charCodeAt(2 * i);
      const second = value.charCodeAt(2 * i + 1);
      if ((first | second) >= 128 || HEX_PAIR[(first << 7) | second] !== hashes[base + i]) return false;
    }
    return true;
  }
  for (let i = 0; i < 32; i++) if (value[i] !== hashes[base + i]) return false;
  return true;
}

/** Proof elements as bytes, or as hex text decoded only when an element is hashed. */
type ProofElements = readonly Uint8Array[] | readonly string[];

// Hex elements are only length-checked here: each is then either decoded (strictly) or
// matched against a verified node (strictly), so a `true` answer implies every element
// was valid lowercase hex, without a separate pass over the text.
const isProofElements = (proof: unknown): proof is ProofElements =>
  Array.isArray(proof) &&
  (proof.every(isHash) || proof.every((element: unknown) => typeof element === 'string' && element.length === 64));

/** Byte value of each pair of lowercase hex digits, indexed by (first << 7) | second; -1 elsewhere. */
const HEX_PAIR = new Int16Array(1 << 14).fill(-1);
for (let hi = 0; hi < 16; hi++) {
  for (let lo = 0; lo < 16; lo++) {
    HEX_PAIR[('0123456789abcdef'.charCodeAt(hi) << 7) | '0123456789abcdef'.charCodeAt(lo)] = hi * 16 + lo;
  }
}

/** Strictly decodes 64 lowercase hex digits into `out` (32 bytes); false if any is not. */
function decodeInto(hex: string, out: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) {
    const first = hex.charCodeAt(2 * i);
    const second = hex.charCodeAt(2 * i + 1);
    const value = (first | second) < 128 ? (HEX_PAIR[(first << 7) | second] as number) : -1;
    if (value < 0) return false;
    out[i] = value;
  }
  return true;
}

/** Decoded hex elements land here; hasher.children copies its inputs before it returns. */
const decoded = new Uint8Array(32);

/**
 * RFC 9162 §2.1.3.2 inclusion verification in its inner/border form (as transparency-dev
 * does it), with an optional cache of verified nodes of this tree: once the path meets a
 * verified node and every remaining proof element equals the verified sibling at its
 * position, the proof is exactly the honest proof and hashing can stop. The answer is
 * the same as without the cache (a test proves it); only the number of hashes changes.
 * The proof may be 32-byte hashes or their lowercase hex: hex elements are decoded only
 * when hashed, and compared against verified nodes without decoding.
 */
export function verifyInclusionCached(
  hasher: TreeHasher,
  leafHash: unknown,
  index: unknown,
  size: unknown,
  proof: unknown,
  root: unknown,
  cache: VerifiedNodes | undefined,
): boolean {
  if (!isHash(leafHash) || !isHash(root) || !isSize(index) || !isSize(size) || !isProofElements(proof)) return false;
  if (index >= size) return false;
  const inner = innerLength(index, size - 1);
  let border = 0;
  for (let v = Math.floor(index / 2 ** inner); v > 0; v = Math.floor(v / 2)) border += v % 2;
  if (proof.length !== inner + border) return false;

  // Every node the path computes and every sibling it consumes, as flat (level, index,
  // hash) triples, to remember once the path is proven to reach the root.
  const computed: (number | Uint8Array | string)[] = [];
  let r = leafHash;
  let level = 0;
  let k = index;
  let used = 0;
  while (level < inner || k > 0) {
    if (level < inner || k % 2 === 1) {
      const element = proof[used++] as Uint8Array | string;
      let p: Uint8Array;
      if (typeof element === 'string') {
        if (!decodeInto(element, decoded)) return false;
        p = decoded;
      } else p = element;
      const siblingIndex = level < inner ? (k % 2 === 1 ? k - 1 : k + 1) : k - 1;
      r = k % 2 === 1 ? hasher.children(p, r) : hasher.children(r, p);
      computed.push(level, siblingIndex, element);
    }
    k = Math.floor(k / 2);
    level++;
    computed.push(level, k, r);
    const verified = cache ? findSlot(cache, level, k) : -1;
    if (verified >= 0) {
      if (!slotEquals(cache as VerifiedNodes, verified, r)) return false; // a verified node of this tree differs: no path to the root
      if (restIsVerified(cache as VerifiedNodes, proof, inner, level, k, used)) {
        remember(cache, computed, index, leafHash); // proven too: they lead to a verified node
        return true;
      }
    }
  }
  if (used !== proof.length || !bytesEqual(r, root)) return false;
  remember(cache, computed, index, leafHash);
  return true;
}

/** True when proof[from..] are exactly the verified siblings along the rest of the path from (l0, k0). */
function restIsVerified(
  cache: VerifiedNodes,
  proof: ProofElements,
  inner: number,
  l0: number,
  k0: number,
  from: number,
): boolean {
  let l = l0;
  let i = k0;
  let p = from;
  while (l < inner || i > 0) {
    if (l < inner || i % 2 === 1) {
      const sibling = findSlot(cache, l, l < inner ? (i % 2 === 1 ? i - 1 : i + 1) : i - 1);
      const element = proof[p++];
      if (sibling < 0 || element === undefined || !slotEquals(cache, sibling, element)) return false;
    }
    i = Math.floor(i / 2);
    l++;
  }
  return p === proof.length;
}

/** Adds the nodes of a proven path to the cache (starting over when it is full). */
function remember(
  cache: VerifiedNodes | undefined,
  computed: (number | Uint8Array | string)[],
  index: number,
  leafHash: Uint8Array,
): void {
  if (!cache) return;
  computed.push(0, index, leafHash);
  if (cache.count + computed.length / 3 > cache.limit) {
    // Full: start over rather than freeze. Verifiers walk ledgers in order, so the
    // nodes of the current region are worth more than those of a region passed long ago.
    allocate(cache, INITIAL_SLOTS);
  }
  for (let e = 0; e < computed.length; e += 3) {
    storeNode(cache, computed[e] as number, computed[e + 1] as number, computed[e + 2] as Uint8Array | string);
  }
}

/** Number of low bits in which `index` and `last` differ: RFC 9162's inner proof length. */
function innerLength(index: number, last: number): number {
  let bits = 0;
  let a = index;
  let b = last;
  let len = 0;
  while (a > 0 || b > 0) {
    bits++;
    if (a % 2 !== b % 2) len = bits;
    a = Math.floor(a / 2);
    b = Math.floor(b / 2);
  }
  return len;
}
