import { readFileSync } from 'node:fs';
import { type TrustedKey, type Verdict, verifyReceipt } from '@unrdf/receipts';
import { z } from 'zod';
import { usageError, zodLines } from './errors.js';

/** A receipt bundle file: what `receipt --out` writes and GET /v1/operations/:id/receipt serves. */
export const BundleFileSchema = z.looseObject({
  receipt: z.record(z.string(), z.unknown()),
  proof: z.record(z.string(), z.unknown()),
  checkpoint: z.string().min(1),
});
export type BundleFile = z.infer<typeof BundleFileSchema>;

/**
 * Reads a bundle file.
 * @throws {CliError} exit 2 when it is missing, not JSON, or not a bundle.
 */
export function readBundleFile(path: string): BundleFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw usageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw usageError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = BundleFileSchema.safeParse(json);
  if (!parsed.success) throw usageError(`${path} is not a receipt bundle`, zodLines(parsed.error));
  return parsed.data;
}

/** What `verify` reports. */
export interface VerifyReport {
  readonly verdict: Verdict;
  readonly operationId: unknown;
  readonly leafIndex: unknown;
  readonly treeSize: unknown;
}

/**
 * Verifies a bundle offline (no daemon): receipt + inclusion proof + checkpoint signed by
 * a key trusted for its tree size (`verifyReceipt`, RFC 9162 §2.1.3.2 and C2SP checkpoints).
 */
export function verifyBundle(bundle: BundleFile, trustedKeys: readonly TrustedKey[]): VerifyReport {
  const verdict = verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, trustedKeys);
  return {
    verdict,
    operationId: bundle.receipt.operationId,
    leafIndex: bundle.proof.leafIndex,
    treeSize: bundle.proof.treeSize,
  };
}
