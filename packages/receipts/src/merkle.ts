/**
 * The RFC 9162 §2.1 Merkle tree (the Certificate Transparency v2 tree): SHA-256 leaf
 * hashes `H(0x00 || data)`, node hashes `H(0x01 || left || right)`, empty root `H("")`.
 * Names and signatures are a contract other code and external checks rely on.
 */
import { MerkleRangeError } from './errors.js';
import { isHash } from './internal/bytes.js';
import { platformTree } from './internal/sha256.js';
import {
  consistencyPath,
  inclusionPath,
  mthOfLeaves,
  verifyConsistencyWith,
  verifyInclusionWith,
} from './internal/tree.js';

/**
 * The leaf hash of `data`, `SHA-256(0x00 || data)` (RFC 9162 §2.1.1).
 * @example hashLeaf(new Uint8Array()) // 6e340b9c…
 */
export function hashLeaf(data: Uint8Array): Uint8Array {
  return platformTree.leaf(data);
}

/** The interior node hash `SHA-256(0x01 || left || right)` (RFC 9162 §2.1.1). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return platformTree.children(left, right);
}

function checkLeaves(leafHashes: readonly Uint8Array[]): void {
  for (let i = 0; i < leafHashes.length; i++) {
    if (!isHash(leafHashes[i])) throw new MerkleRangeError(`leafHashes[${i}] is not a 32-byte hash.`);
  }
}

function checkIndex(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new MerkleRangeError(`${name} must be an integer in [${min}, ${max}], got ${value}.`);
  }
}

/**
 * The Merkle tree hash MTH of a list of leaf hashes (RFC 9162 §2.1.1); `H("")` when empty.
 * @throws {MerkleRangeError} when a leaf hash is not 32 bytes.
 */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  checkLeaves(leafHashes);
  if (leafHashes.length === 0) return platformTree.emptyRoot;
  return mthOfLeaves(platformTree, leafHashes)(0, leafHashes.length);
}

/**
 * The inclusion proof (audit path) of leaf `index`, RFC 9162 §2.1.3.1, leaf-side first.
 * @throws {MerkleRangeError} when `index` is not in [0, leafHashes.length).
 */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  checkLeaves(leafHashes);
  checkIndex('index', index, 0, leafHashes.length - 1);
  return inclusionPath(index, leafHashes.length, mthOfLeaves(platformTree, leafHashes));
}

/**
 * The consistency proof from the tree of the first `oldSize` leaves to the whole list,
 * RFC 9162 §2.1.4.1; empty when `oldSize` is 0 or equals the length.
 * @throws {MerkleRangeError} when `oldSize` is not in [0, leafHashes.length].
 */
export function consistencyProof(leafHashes: readonly Uint8Array[], oldSize: number): Uint8Array[] {
  checkLeaves(leafHashes);
  checkIndex('oldSize', oldSize, 0, leafHashes.length);
  return consistencyPath(oldSize, leafHashes.length, mthOfLeaves(platformTree, leafHashes));
}

/**
 * Verifies an inclusion proof (RFC 9162 §2.1.3.2). Strict and total: anything
 * malformed (a hash not 32 bytes, a non-integer or out-of-range index or size, a proof
 * of the wrong length) is `false`; it never throws.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  treeSize: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    return verifyInclusionWith(platformTree, leafHash, index, treeSize, proof, root);
  } catch {
    return false; // hostile objects (throwing getters, proxies) end here
  }
}

/**
 * Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2). Strict and
 * total like {@link verifyInclusion}. The empty tree (size 0, root `H("")`) is
 * consistent with every tree, with an empty proof.
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  try {
    return verifyConsistencyWith(platformTree, oldSize, newSize, oldRoot, newRoot, proof);
  } catch {
    return false;
  }
}
