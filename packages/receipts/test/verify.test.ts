import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import {
  createReceiptVerifier,
  generateNoteKey,
  parseSignerKey,
  signCheckpoint,
  verifyCheckpointConsistency,
  verifyReceipt,
  verifyReceiptChain,
} from '../src/index.js';
import { openLedger } from '../src/ledger/index.js';
import { runTamperSweep, type SweepInput } from '../src/testing/index.js';
import { bodies } from './fixtures.js';

const origin = 'example.com/unrdf/ledger';
const key = generateNoteKey(origin);
const untrusted = generateNoteKey(origin);

/** An honest ledger of 24 receipts in batches of 8, plus a foreign, a forked and an untrusted twin. */
async function sweepInput(dir: { join(p: string): string }): Promise<SweepInput & { trusted: typeof key }> {
  const open = (file: string, o: string, skey: string) =>
    openLedger({ path: dir.join(file), origin: o, signers: [{ signer: skey }] });
  await using honest = await open('honest.db', origin, key.signerKey);
  await using foreign = await open('foreign.db', 'example.org/other', key.signerKey);
  await using forked = await open('forked.db', origin, key.signerKey);
  await using impostor = await open('impostor.db', origin, untrusted.signerKey);
  const all = bodies(24);
  const checkpoints: string[] = [];
  for (let at = 0; at < 24; at += 8) {
    await Promise.all(all.slice(at, at + 8).map((b) => honest.append(b)));
    checkpoints.push(honest.latestCheckpoint() as string);
  }
  for (const b of all) await foreign.append(b);
  for (const b of [...all.slice(0, 10), ...bodies(14, 500)]) await forked.append(b);
  await Promise.all(all.map((b) => impostor.append(b)));
  const latest = checkpoints[2] as string;
  const picks = [7, 22];
  return {
    trusted: key,
    honest: picks.map((i) => ({
      receipt: honest.receipt(i) as never,
      proof: honest.inclusionProof(i, 24),
      checkpoint: latest,
    })),
    otherCheckpoints: [
      checkpoints[0] as string,
      checkpoints[1] as string,
      foreign.latestCheckpoint() as string,
      forked.latestCheckpoint() as string,
      impostor.latestCheckpoint() as string,
      // the honest tree head with a swapped root, properly signed by the real key
      signCheckpoint({ origin, size: 24, root: forked.root() }, [parseSignerKey(key.signerKey)]),
    ],
    consistency: [
      { older: checkpoints[0] as string, newer: latest, proof: honest.consistencyProof(8, 24) },
      { older: checkpoints[1] as string, newer: latest, proof: honest.consistencyProof(16, 24) },
    ],
    forkedCheckpoints: [forked.latestCheckpoint() as string, forked.checkpointAt(24) as string],
  };
}

describe('verifyReceipt', () => {
  it('accepts honest receipts and rejects a tamper sweep with zero false accepts', { timeout: 60_000 }, async () => {
    await using dir = await tempDir('receipts-sweep');
    const input = await sweepInput(dir);
    const verifier = createReceiptVerifier({ trustedKeys: [{ verifierKey: input.trusted.verifierKey }] });
    const result = runTamperSweep(input, verifier);
    expect(result.falseRejects).toEqual([]);
    expect(result.falseAccepts).toEqual([]);
    expect(result.honestCases).toBe(4);
    expect(result.tamperedCases).toBeGreaterThan(10_000);
  });

  it('tells invalid from inconclusive', async () => {
    await using dir = await tempDir('receipts-verify');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    for (const b of bodies(3)) await ledger.append(b);
    const early = ledger.latestCheckpoint();
    const late = await ledger.append(bodies(1, 3)[0] as never);
    const trusted = ledger.trustedKeys;
    expect(verifyReceipt(late.receipt, ledger.inclusionProof(3, 4), early, trusted)).toEqual({
      status: 'inconclusive',
      reason: 'the checkpoint is older than the receipt; fetch a newer one',
    });
    expect(verifyReceipt(late.receipt, ledger.inclusionProof(3, 4), late.checkpoint, [])).toMatchObject({
      status: 'invalid',
    });
    expect(
      verifyReceipt(late.receipt, ledger.inclusionProof(3, 4), late.checkpoint, [{ verifierKey: 'junk' }]),
    ).toEqual({
      status: 'invalid',
      reason: 'a trusted key is malformed',
    });
    expect(verifyReceipt(late.receipt, ledger.inclusionProof(3, 4), late.checkpoint, trusted)).toEqual({
      status: 'valid',
    });
  });
});

describe('verifyCheckpointConsistency', () => {
  it('detects a fork: two signed roots for one size, or a rewritten prefix', async () => {
    await using dir = await tempDir('receipts-fork');
    const input = await sweepInput(dir);
    const trusted = [{ verifierKey: input.trusted.verifierKey }];
    const [c] = input.consistency ?? [];
    if (!c) throw new Error('fixture');
    expect(verifyCheckpointConsistency(c.older, c.newer, c.proof, trusted)).toEqual({ status: 'valid' });
    expect(verifyCheckpointConsistency(c.newer, c.older, c.proof, trusted)).toEqual({ status: 'valid' });
    const fork = input.forkedCheckpoints?.[0];
    expect(verifyCheckpointConsistency(c.newer, fork, undefined, trusted)).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/^fork: two roots for tree size 24/),
    });
    expect(verifyCheckpointConsistency(c.older, fork, c.proof, trusted).status).toBe('invalid');
  });
});

describe('trusted keys and origins', () => {
  it("counts a key's signature only on checkpoints of the log it is named after, or of its origin option", async () => {
    await using dir = await tempDir('receipts-origin');
    const other = generateNoteKey('example.org/other-ledger');
    // The other log's key signs a checkpoint that names this log's origin.
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: other.signerKey }] });
    const [appended] = await Promise.all(bodies(3).map((b) => ledger.append(b)));
    if (!appended) throw new Error('fixture');
    const proof = ledger.inclusionProof(appended.leafIndex, appended.treeSize);
    const both = [{ verifierKey: key.verifierKey }, { verifierKey: other.verifierKey }];
    expect(verifyReceipt(appended.receipt, proof, appended.checkpoint, both)).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/no key trusted for example\.com\/unrdf\/ledger/),
    });
    // Bound to this origin explicitly, the same key is trusted for it.
    const bound = [{ verifierKey: other.verifierKey, origin }];
    expect(verifyReceipt(appended.receipt, proof, appended.checkpoint, bound)).toEqual({ status: 'valid' });
  });

  it('takes only an empty proof between two checkpoints of the same size (RFC 9162 §2.1.4.1)', async () => {
    await using dir = await tempDir('receipts-origin');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    await Promise.all(bodies(5).map((b) => ledger.append(b)));
    const cp = ledger.latestCheckpoint() as string;
    const size = ledger.size();
    const trusted = ledger.trustedKeys;
    expect(verifyCheckpointConsistency(cp, cp, ledger.consistencyProof(size, size), trusted)).toEqual({
      status: 'valid',
    });
    for (const bad of ['garbage', { oldSize: size, newSize: size, hashes: ['00'.repeat(32)] }]) {
      expect(verifyCheckpointConsistency(cp, cp, bad, trusted).status).toBe('invalid');
    }
    expect(verifyCheckpointConsistency(cp, cp, { oldSize: 1, newSize: 9, hashes: [] }, trusted).status).not.toBe(
      'valid',
    );
  });
});

describe('createReceiptVerifier', () => {
  it('verifies across many checkpoints, past its node-cache window, with the same answers', async () => {
    await using dir = await tempDir('receipts-verifier');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    const appended = [];
    for (const b of bodies(12)) appended.push(await ledger.append(b)); // 12 checkpoints, sizes 1..12
    const verifier = createReceiptVerifier({ trustedKeys: ledger.trustedKeys, cacheSize: 4 });
    for (let round = 0; round < 2; round++) {
      for (const a of appended) {
        for (let size = a.leafIndex + 1; size <= 12; size += 3) {
          const proof = ledger.inclusionProof(a.leafIndex, size);
          expect(verifier.verify(a.receipt, proof, ledger.checkpointAt(size))).toEqual({ status: 'valid' });
          const bad = { ...proof, hashes: proof.hashes.toReversed() };
          if (proof.hashes.length > 1)
            expect(verifier.verify(a.receipt, bad, ledger.checkpointAt(size)).status).toBe('invalid');
        }
      }
    }
  });
});

describe('verifyReceiptChain', () => {
  it('accepts a gap-free run and names the first break', async () => {
    await using dir = await tempDir('receipts-chain');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    await Promise.all(bodies(6).map((b) => ledger.append(b)));
    const run = [0, 1, 2, 3, 4, 5].map((i) => ledger.receipt(i));
    expect(verifyReceiptChain(run)).toEqual({ status: 'valid' });
    expect(verifyReceiptChain(run.slice(2))).toEqual({ status: 'valid' });
    expect(verifyReceiptChain([run[0], run[2]])).toMatchObject({
      status: 'invalid',
      reason: expect.stringMatching(/^gap/),
    });
    expect(verifyReceiptChain([run[1], run[0]]).status).toBe('invalid');
    const forged = { ...(run[3] as object), attempt: 3 };
    expect(verifyReceiptChain([run[2], forged, run[4]])).toMatchObject({
      status: 'invalid',
      reason: 'receipt 2 does not chain to receipt 1',
    });
    expect(verifyReceiptChain([]).status).toBe('invalid');
    expect(verifyReceiptChain([null]).status).toBe('invalid');
  });
});
