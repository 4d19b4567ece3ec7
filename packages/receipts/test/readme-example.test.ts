// Recomputes every value of the README's worked example, so the README stays true.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  buildReceipt,
  encodeSignerKey,
  encodeVerifierKey,
  inclusionProof,
  merkleRoot,
  parseReceipt,
  parseSignerKey,
  receiptHash,
  receiptLeafHash,
  signCheckpoint,
  verifyReceipt,
} from '../src/index.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const origin = 'example.com/unrdf/ledger';
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('README worked example', () => {
  const r0 = buildReceipt(
    {
      operationId: 'V1StGXR8_Z5jdHi6B-myT',
      type: 'create',
      subject: 'urn:example:invoice:42',
      inputDigest: sha('{"amount":100}'),
      outputDigest: sha('{"amount":100,"id":42}'),
      outcome: { status: 'succeeded' },
      attempt: 1,
      submittedAt: 1796000000000,
      startedAt: 1796000000004,
      finishedAt: 1796000000011,
      nodeId: 'node-a',
    },
    { origin, leafIndex: 0, previousReceiptHash: null },
  );
  const r1 = buildReceipt(
    {
      operationId: 'Uakgb_J5m9g-0JDMbcJqL',
      type: 'delete',
      subject: 'urn:example:invoice:41',
      inputDigest: sha('{"id":41}'),
      outputDigest: null,
      outcome: { status: 'failed', errorCode: 'NOT_FOUND' },
      attempt: 2,
      submittedAt: 1796000000020,
      startedAt: 1796000000500,
      finishedAt: 1796000000502,
      nodeId: 'node-a',
    },
    { origin, leafIndex: 1, previousReceiptHash: receiptHash(r0) },
  );
  const leaves = [receiptLeafHash(r0), receiptLeafHash(r1)];
  const root = merkleRoot(leaves);
  const seed = createHash('sha256').update('unrdf README example key: never use it').digest();
  const signer = parseSignerKey(encodeSignerKey(origin, seed));
  const vkey = encodeVerifierKey(origin, signer.publicKey);
  const note = signCheckpoint({ origin, size: 2, root }, [signer]);

  it('prints the receipt, hashes, proof, root, key and checkpoint that the README shows', () => {
    const shown = [
      JSON.stringify(r1),
      receiptHash(r0),
      receiptHash(r1),
      hex(leaves[1] as Uint8Array),
      hex(root),
      Buffer.from(root).toString('base64'),
      vkey,
      JSON.stringify({ leafIndex: 1, treeSize: 2, hashes: inclusionProof(leaves, 1).map(hex) }),
      ...note.split('\n').filter((l) => l.length > 0),
    ];
    for (const value of shown) expect(readme, value).toContain(value);
  });

  it('verifies as the README says', () => {
    const receipt = parseReceipt(JSON.stringify(r1));
    const proof = { leafIndex: 1, treeSize: 2, hashes: inclusionProof(leaves, 1).map(hex) };
    expect(verifyReceipt(receipt, proof, note, [{ verifierKey: vkey }])).toEqual({ status: 'valid' });
  });
});
