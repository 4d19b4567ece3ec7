/**
 * Offline verification: a receipt, its inclusion proof and a signed checkpoint, checked
 * against the ledger's public keys and nothing else (CT's and Rekor's model).
 */
import { z } from 'zod';
import { type Checkpoint, openCheckpoint, type TrustedKey } from './checkpoint.js';
import { bytesEqual, fromHex, isLowerHex, toBase64, toHex } from './internal/bytes.js';
import { platformTree } from './internal/sha256.js';
import { createVerifiedNodes, type VerifiedNodes, verifyInclusionCached } from './internal/tree.js';
import { verifyConsistency } from './merkle.js';
import { parseVerifierKey } from './note.js';
import { canonicalText, ReceiptSchema, readValidReceipt, receiptDigestOfText, validatedLeafHash } from './receipt.js';

/** Every verification answers with one of these; only `valid` is an acceptance. */
export type Verdict =
  | { readonly status: 'valid' }
  | { readonly status: 'invalid'; readonly reason: string }
  | { readonly status: 'inconclusive'; readonly reason: string };

const HexHash = z.string().regex(/^[0-9a-f]{64}$/);
const Size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** The wire form of an inclusion proof: hex hashes, leaf side first (RFC 9162 §2.1.3.1). */
export const InclusionProofSchema = z.strictObject({
  leafIndex: Size,
  treeSize: Size,
  hashes: z.array(HexHash).max(64),
});
export type InclusionProofJson = z.infer<typeof InclusionProofSchema>;

/** The wire form of a consistency proof between two tree sizes. */
export const ConsistencyProofSchema = z.strictObject({
  oldSize: Size,
  newSize: Size,
  hashes: z.array(HexHash).max(128),
});
export type ConsistencyProofJson = z.infer<typeof ConsistencyProofSchema>;

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/**
 * The hot-path equivalent of `InclusionProofSchema.safeParse` (same rules, no error
 * objects): offline verification runs it for every receipt. The hashes stay hex; the
 * verifier decodes only those it hashes and compares the rest as text.
 */
function readInclusionProof(proof: unknown): { leafIndex: number; treeSize: number; hashes: string[] } | undefined {
  if (typeof proof !== 'object' || proof === null || Array.isArray(proof)) return undefined;
  if (Object.keys(proof).length !== 3) return undefined;
  const { leafIndex, treeSize, hashes } = proof as Record<string, unknown>;
  if (!isSize(leafIndex) || !isSize(treeSize) || !Array.isArray(hashes) || hashes.length > 64) return undefined;
  const copy: string[] = [];
  for (const h of hashes) {
    // The characters are checked where each element is used (decoded or matched); a
    // failed verification re-checks them to name a malformed proof as such.
    if (typeof h !== 'string' || h.length !== 64) return undefined;
    copy.push(h);
  }
  return { leafIndex, treeSize, hashes: copy };
}

const NODE_CACHE_CHECKPOINTS = 8;
const NODES_PER_CHECKPOINT = 1 << 16;

const invalid = (reason: string): Verdict => ({ status: 'invalid', reason });
const inconclusive = (reason: string): Verdict => ({ status: 'inconclusive', reason });
const toVerifier = (k: TrustedKey) =>
  typeof k.verifierKey === 'string' ? parseVerifierKey(k.verifierKey) : k.verifierKey;
const decode = (hashes: readonly string[]) => hashes.map((h) => fromHex(h) as Uint8Array);

/** Options of {@link createReceiptVerifier}. */
export interface ReceiptVerifierOptions {
  /** Keys trusted to sign checkpoints, with their tree-size windows (see `Ledger.trustedKeys`). */
  readonly trustedKeys: readonly TrustedKey[];
  /** How many verified checkpoint notes to remember (by exact text); default 1024. */
  readonly cacheSize?: number;
}

/** A verifier bound to a set of trusted keys; remembers checkpoints whose signatures it checked. */
export interface ReceiptVerifier {
  /** As {@link verifyReceipt}. */
  verify(receipt: unknown, proof: unknown, checkpoint: unknown): Verdict;
  /** As {@link verifyCheckpointConsistency}. */
  verifyConsistency(checkpointA: unknown, checkpointB: unknown, proof: unknown): Verdict;
}

/**
 * Creates a verifier for many receipts: a checkpoint's signature is checked once and the
 * opened checkpoint remembered by its exact note text (same bytes, same answer), so
 * verifying the receipts of one checkpoint costs hashing only.
 * @throws {KeyError} when a trusted key is malformed.
 */
export function createReceiptVerifier(options: ReceiptVerifierOptions): ReceiptVerifier {
  const trustedKeys = options.trustedKeys.map((k) => ({ ...k, verifierKey: toVerifier(k) }));
  const cacheSize = options.cacheSize ?? 1024;
  const cache = new Map<string, { checkpoint: Checkpoint; nodes?: VerifiedNodes | undefined }>();
  // Proven nodes are kept for the most recent few checkpoints only, so memory stays
  // bounded (NODE_CACHE_CHECKPOINTS x NODES_PER_CHECKPOINT entries) however many
  // checkpoints a long-lived verifier sees.
  const withNodes: { nodes?: VerifiedNodes | undefined }[] = [];

  const open = (
    note: unknown,
  ): { ok: true; checkpoint: Checkpoint; nodes?: VerifiedNodes | undefined } | { ok: false; reason: string } => {
    if (typeof note === 'string') {
      const hit = cache.get(note);
      if (hit) return { ok: true, ...hit };
    }
    const opened = openCheckpoint(note, trustedKeys);
    if (opened.ok && typeof note === 'string' && cacheSize > 0) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      const entry: { checkpoint: Checkpoint; nodes?: VerifiedNodes | undefined } = {
        checkpoint: opened.checkpoint,
        nodes: createVerifiedNodes(NODES_PER_CHECKPOINT),
      };
      cache.set(note, entry);
      withNodes.push(entry);
      const retired = withNodes.length > NODE_CACHE_CHECKPOINTS ? withNodes.shift() : undefined;
      if (retired) retired.nodes = undefined;
      return { ok: true, ...entry };
    }
    return opened;
  };

  return {
    verify(receipt, proof, checkpoint) {
      try {
        let r = readValidReceipt(receipt);
        if (!r) {
          const parsedReceipt = ReceiptSchema.safeParse(receipt);
          if (!parsedReceipt.success) return invalid('malformed receipt');
          r = parsedReceipt.data;
        }
        const p = readInclusionProof(proof);
        if (!p) return invalid('malformed proof');
        const opened = open(checkpoint);
        if (!opened.ok) return invalid(`checkpoint: ${opened.reason}`);
        const cp = opened.checkpoint;
        if (r.origin !== cp.origin) return invalid('the receipt belongs to another ledger than the checkpoint');
        if (p.leafIndex !== r.leafIndex) return invalid("the proof is for another leaf than the receipt's");
        if (cp.size <= r.leafIndex) return inconclusive('the checkpoint is older than the receipt; fetch a newer one');
        if (p.treeSize !== cp.size) return inconclusive("the proof is for another tree size than the checkpoint's");
        const ok = verifyInclusionCached(
          platformTree,
          validatedLeafHash(r),
          r.leafIndex,
          cp.size,
          p.hashes,
          cp.root,
          opened.nodes,
        );
        if (ok) return { status: 'valid' };
        if (!p.hashes.every((h) => isLowerHex(h, 32))) return invalid('malformed proof');
        return invalid('the inclusion proof does not lead to the checkpoint root');
      } catch {
        return invalid('malformed input');
      }
    },
    verifyConsistency(checkpointA, checkpointB, proof) {
      try {
        const a = open(checkpointA);
        if (!a.ok) return invalid(`first checkpoint: ${a.reason}`);
        const b = open(checkpointB);
        if (!b.ok) return invalid(`second checkpoint: ${b.reason}`);
        const [older, newer] =
          a.checkpoint.size <= b.checkpoint.size ? [a.checkpoint, b.checkpoint] : [b.checkpoint, a.checkpoint];
        if (older.origin !== newer.origin) return invalid('the checkpoints are of different ledgers');
        // Two signed roots for one size prove a fork by themselves, whatever the proof.
        if (older.size === newer.size && !bytesEqual(older.root, newer.root)) {
          return invalid(
            `fork: two roots for tree size ${older.size} (${toBase64(older.root)} vs ${toBase64(newer.root)})`,
          );
        }
        const parsed = ConsistencyProofSchema.safeParse(proof);
        if (!parsed.success) return invalid('malformed proof');
        const p = parsed.data;
        if (p.oldSize !== older.size || p.newSize !== newer.size) {
          return inconclusive('the proof is for other tree sizes than the checkpoints');
        }
        // RFC 9162 §2.1.4.1: between equal sizes the proof is empty.
        if (older.size === newer.size) return p.hashes.length === 0 ? { status: 'valid' } : invalid('malformed proof');
        return verifyConsistency(older.size, newer.size, older.root, newer.root, decode(p.hashes))
          ? { status: 'valid' }
          : invalid('fork: the older checkpoint is not a prefix of the newer one');
      } catch {
        return invalid('malformed input');
      }
    },
  };
}

const oneShot = (trustedKeys: readonly TrustedKey[]): ReceiptVerifier | undefined => {
  try {
    return createReceiptVerifier({ trustedKeys, cacheSize: 0 });
  } catch {
    return undefined;
  }
};

/**
 * Verifies a receipt offline: it is well formed, its checkpoint is signed by a key
 * trusted for that tree size, it belongs to that checkpoint's ledger, and the proof puts
 * its leaf at its index under the checkpoint's root. `inconclusive` when the checkpoint
 * cannot cover the leaf (it is older than the leaf) or the proof is for another tree
 * size: fetch a newer checkpoint or a matching proof. Total: never throws. For many
 * receipts, {@link createReceiptVerifier} checks each checkpoint's signature once.
 * @example
 * const verdict = verifyReceipt(receipt, proof, checkpointNote, [{ verifierKey: 'example.com/ledger+1a2b3c4d+AT…' }]);
 * if (verdict.status !== 'valid') console.error(verdict.reason);
 */
export function verifyReceipt(
  receipt: unknown,
  proof: unknown,
  checkpoint: unknown,
  trustedKeys: readonly TrustedKey[],
): Verdict {
  return oneShot(trustedKeys)?.verify(receipt, proof, checkpoint) ?? invalid('a trusted key is malformed');
}

/**
 * Verifies that two signed checkpoints of one ledger are consistent: the older tree is a
 * prefix of the newer one. `invalid` means a forked or rewritten ledger (keep both notes:
 * together they are the evidence). Order-agnostic in its two checkpoints. Total.
 */
export function verifyCheckpointConsistency(
  checkpointA: unknown,
  checkpointB: unknown,
  proof: unknown,
  trustedKeys: readonly TrustedKey[],
): Verdict {
  return (
    oneShot(trustedKeys)?.verifyConsistency(checkpointA, checkpointB, proof) ?? invalid('a trusted key is malformed')
  );
}

/**
 * Checks that receipts are a gap-free run of one ledger: same origin, consecutive leaf
 * indices, each `previousReceiptHash` the receipt hash of the one before (and `null`
 * for leaf 0). It proves order and completeness of the run among themselves; that the
 * run is in the ledger is what {@link verifyReceipt} proves for any one of them. Total.
 */
export function verifyReceiptChain(receipts: readonly unknown[]): Verdict {
  try {
    if (!Array.isArray(receipts) || receipts.length === 0) return invalid('no receipts');
    let previous: { origin: string; leafIndex: number; hash: string } | undefined;
    for (const [i, value] of receipts.entries()) {
      const parsed = ReceiptSchema.safeParse(value);
      if (!parsed.success) return invalid(`receipt ${i} is malformed`);
      const r = parsed.data;
      if (previous) {
        if (r.origin !== previous.origin) return invalid(`receipt ${i} belongs to another ledger`);
        if (r.leafIndex !== previous.leafIndex + 1) return invalid(`gap before receipt ${i} (leaf ${r.leafIndex})`);
        if (r.previousReceiptHash !== previous.hash) return invalid(`receipt ${i} does not chain to receipt ${i - 1}`);
      }
      previous = { origin: r.origin, leafIndex: r.leafIndex, hash: toHex(receiptDigestOfText(canonicalText(r))) };
    }
    return { status: 'valid' };
  } catch {
    return invalid('malformed input');
  }
}
