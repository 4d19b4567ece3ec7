/**
 * Offline verification: a receipt, its inclusion proof and a signed checkpoint, checked
 * against the ledger's public keys and nothing else (CT's and Rekor's model).
 */
import { z } from 'zod';
import { type Checkpoint, openCheckpoint, type TrustedKey } from './checkpoint.js';
import { bytesEqual, fromHex, toBase64 } from './internal/bytes.js';
import { verifyConsistency, verifyInclusion } from './merkle.js';
import { ReceiptSchema, receiptLeafHash } from './receipt.js';

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

const invalid = (reason: string): Verdict => ({ status: 'invalid', reason });
const inconclusive = (reason: string): Verdict => ({ status: 'inconclusive', reason });
const decode = (hashes: readonly string[]) => hashes.map((h) => fromHex(h) as Uint8Array);

/**
 * Verifies a receipt offline: it is well formed, its checkpoint is signed by a trusted
 * key for that tree size, it belongs to that checkpoint's ledger, and the proof puts its
 * leaf at its index under the checkpoint's root. `inconclusive` when the checkpoint
 * cannot cover the leaf (it is older than the leaf) or the proof is for another tree
 * size: fetch a newer checkpoint or a matching proof. Total: never throws.
 * @example
 * const verdict = verifyReceipt(receipt, proof, checkpointNote, [{ verifierKey: 'ledger+1a2b3c4d+AT…' }]);
 * if (verdict.status !== 'valid') console.error(verdict);
 */
export function verifyReceipt(
  receipt: unknown,
  proof: unknown,
  checkpoint: unknown,
  trustedKeys: readonly TrustedKey[],
): Verdict {
  try {
    const parsedReceipt = ReceiptSchema.safeParse(receipt);
    if (!parsedReceipt.success) return invalid('malformed receipt');
    const parsedProof = InclusionProofSchema.safeParse(proof);
    if (!parsedProof.success) return invalid('malformed proof');
    const opened = openCheckpoint(checkpoint, trustedKeys);
    if (!opened.ok) return invalid(`checkpoint: ${opened.reason}`);
    const r = parsedReceipt.data;
    const p = parsedProof.data;
    const cp = opened.checkpoint;
    if (r.origin !== cp.origin) return invalid('the receipt belongs to another ledger than the checkpoint');
    if (p.leafIndex !== r.leafIndex) return invalid("the proof is for another leaf than the receipt's");
    if (cp.size <= r.leafIndex) return inconclusive('the checkpoint is older than the receipt; fetch a newer one');
    if (p.treeSize !== cp.size) return inconclusive("the proof is for another tree size than the checkpoint's");
    const ok = verifyInclusion(receiptLeafHash(r), r.leafIndex, cp.size, decode(p.hashes), cp.root);
    return ok ? { status: 'valid' } : invalid('the inclusion proof does not lead to the checkpoint root');
  } catch {
    return invalid('malformed input');
  }
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
  try {
    const a = openCheckpoint(checkpointA, trustedKeys);
    if (!a.ok) return invalid(`first checkpoint: ${a.reason}`);
    const b = openCheckpoint(checkpointB, trustedKeys);
    if (!b.ok) return invalid(`second checkpoint: ${b.reason}`);
    const [older, newer]: Checkpoint[] =
      a.checkpoint.size <= b.checkpoint.size ? [a.checkpoint, b.checkpoint] : [b.checkpoint, a.checkpoint];
    if (!older || !newer) return invalid('malformed input');
    if (older.origin !== newer.origin) return invalid('the checkpoints are of different ledgers');
    if (older.size === newer.size) {
      return bytesEqual(older.root, newer.root)
        ? { status: 'valid' }
        : invalid(`fork: two roots for tree size ${older.size} (${toBase64(older.root)} vs ${toBase64(newer.root)})`);
    }
    const parsed = ConsistencyProofSchema.safeParse(proof);
    if (!parsed.success) return invalid('malformed proof');
    const p = parsed.data;
    if (p.oldSize !== older.size || p.newSize !== newer.size) {
      return inconclusive('the proof is for other tree sizes than the checkpoints');
    }
    return verifyConsistency(older.size, newer.size, older.root, newer.root, decode(p.hashes))
      ? { status: 'valid' }
      : invalid('fork: the older checkpoint is not a prefix of the newer one');
  } catch {
    return invalid('malformed input');
  }
}
