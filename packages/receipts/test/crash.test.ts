import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { generateNoteKey, merkleRoot, openCheckpoint, receiptHash, receiptLeafHash } from '../src/index.js';
import { openLedger } from '../src/ledger/index.js';
import { toHex } from './vectors.js';

const writer = new URL('./programs/ledger-writer.ts', import.meta.url).pathname;

// A SIGKILL loses the process, not the page cache, so this proves the ordering (nothing is
// reported before its COMMIT, checkpoints and WAL truncation never lose a committed
// batch, reopening recovers a consistent signed tree), not the fsync itself.
describe('Ledger durability', () => {
  it.each([
    // fsync-after-commit with 64 KiB checkpoints: many WAL checkpoints and truncations mid-stream.
    { durability: 'fsync-after-commit', checkpointBytes: String(64 * 1024) },
    { durability: 'fsync-in-commit', checkpointBytes: '' },
  ])(
    'keeps every receipt it reported durable when its process is killed with SIGKILL ($durability)',
    {
      timeout: 60_000,
    },
    async ({ durability, checkpointBytes }) => {
      await using dir = await tempDir('receipts-crash');
      const path = dir.join('ledger.db');
      const key = generateNoteKey('example.com/crash/ledger');
      let reported = -1;
      for (let round = 0; round < 2; round++) {
        await using child = spawnNode(writer, { args: [path, key.signerKey, durability, checkpointBytes] });
        await child.waitForLine(/^ready \d+$/, 30_000);
        const target = reported + 500;
        // Wait until the child has reported past the target, then kill it mid-stream.
        const seen = () => Math.max(-1, ...[...child.stdout().matchAll(/^durable (\d+)$/gm)].map((m) => Number(m[1])));
        for (let i = 0; i < 300 && seen() < target; i++) await new Promise((r) => setTimeout(r, 100));
        await child.kill9();
        reported = seen();
        expect(reported).toBeGreaterThanOrEqual(target);

        await using ledger = await openLedger({
          path,
          origin: 'example.com/crash/ledger',
          signers: [{ signer: key.signerKey }],
        });
        const size = ledger.size();
        expect(size).toBeGreaterThan(reported); // nothing reported durable is lost
        const receipts = Array.from({ length: size }, (_, i) => ledger.receipt(i));
        receipts.forEach((r, i) => {
          expect(r?.leafIndex).toBe(i);
          expect(r?.previousReceiptHash).toBe(i === 0 ? null : receiptHash(receipts[i - 1] as never));
        });
        // The tree, the stored subtrees and the last signed checkpoint agree after the crash.
        expect(toHex(ledger.root())).toBe(toHex(merkleRoot(receipts.map((r) => receiptLeafHash(r as never)))));
        const opened = openCheckpoint(ledger.latestCheckpoint(), ledger.trustedKeys);
        expect(opened.ok && opened.checkpoint.size).toBe(size);
        expect(opened.ok && toHex(opened.checkpoint.root)).toBe(toHex(ledger.root()));
        reported = size - 1;
      }
    },
  );
});
