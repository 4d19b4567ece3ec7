import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { generateNoteKey, merkleRoot, openCheckpoint, receiptHash, receiptLeafHash } from '../src/index.js';
import { openLedger } from '../src/ledger/index.js';
import { toHex } from './vectors.js';
import { firstCommitFrame } from './wal-format.js';

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

/** strace(1) can trace a child here (Linux, ptrace allowed): the WAL-restart test needs it. */
const canStrace = process.platform === 'linux' && spawnSync('strace', ['-f', '-o', '/dev/null', 'true']).status === 0;

/**
 * For each write of a WAL header (32 bytes at offset 0) in an strace log, whether the
 * writing thread synced that file descriptor before its next write to it.
 */
function headerSyncs(trace: string, walPath: string): boolean[] {
  const calls = [...trace.matchAll(/^(\d+) +(pwrite64|fsync|fdatasync)\((\d+)<([^>]*)>(.*)$/gm)].filter(
    (m) => m[4] === walPath,
  );
  const synced: boolean[] = [];
  calls.forEach(([, tid, call, fd, , rest], i) => {
    if (call !== 'pwrite64' || !/, 32, 0\) += 32$/.test(rest ?? '')) return;
    const next = calls.slice(i + 1).find((m) => m[1] === tid && m[3] === fd);
    synced.push(next !== undefined && next[2] !== 'pwrite64');
  });
  return synced;
}

describe('Ledger durability across a WAL restart', () => {
  // A power cut right after a WAL restart: the OS may have put later pages of the new
  // transaction on disk but not the new WAL header (one fdatasync orders nothing among the
  // pages it flushes). With the old header, recovery would take the old frames still in
  // the file as valid and replay them over the newer database: "database disk image is
  // malformed", acknowledged receipts lost. SQLite prevents it by syncing a restarted
  // WAL's header before writing frames after it, except under synchronous=OFF (wal.c,
  // sqlite3WalFrames, ticket ff5be73dee). A writer process runs under strace, which
  // records its writes and syncs; the test builds the worst on-disk image those syncs
  // allow from the real files, and reopens it.
  it.skipIf(!canStrace)(
    "syncs a restarted WAL's header before its frames, so a torn write after a restart keeps every acknowledged receipt (fsync-after-commit)",
    { timeout: 120_000 },
    async () => {
      await using dir = await tempDir('receipts-walrestart');
      const path = dir.join('ledger.db');
      const origin = 'example.com/crash/walrestart';
      const key = generateNoteKey(origin);
      const traceFile = dir.join('strace.log');
      const image = dir.join('image');
      const program = new URL('./programs/ledger-wal-restart.ts', import.meta.url).pathname;
      const tsx = createRequire(import.meta.url).resolve('tsx');
      const child = spawn(
        'strace',
        [
          ...['-f', '-y', '-e', 'trace=pwrite64,fsync,fdatasync', '-o', traceFile],
          ...[
            process.execPath,
            '--conditions=@unrdf/source',
            '--import',
            tsx,
            program,
            path,
            key.signerKey,
            origin,
            image,
          ],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        err += chunk;
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
      const [code] = await once(child, 'exit');
      clearTimeout(timer);
      expect({ code, err }).toEqual({ code: 0, err: '' });
      const ackedBefore = Number(/^restart (\d+)$/m.exec(out)?.[1]);
      expect(ackedBefore, `no WAL restart with old frames left behind was observed: ${out}`).toBeGreaterThan(0);

      const synced = headerSyncs(readFileSync(traceFile, 'utf8'), `${path}-wal`);
      expect(synced.length).toBeGreaterThanOrEqual(2); // the first WAL, then at least one restart
      // Soft: the reopen below shows what an unsynced header costs.
      expect.soft(synced.every(Boolean), `WAL headers synced before the next write: ${synced.join(', ')}`).toBe(true);

      // The worst case the syncs allow: the frames of the new transaction after the old
      // WAL's first transaction reached the disk, the ones before did not, and the header
      // is the new one only if it was synced before them.
      const oldWal = readFileSync(`${image}.old-wal`);
      const newWal = readFileSync(`${image}.new-wal`);
      const frame = 24 + 4096;
      const keepOld = 32 + (firstCommitFrame(oldWal, 4096) + 1) * frame;
      const end = 32 + (firstCommitFrame(newWal, 4096) + 1) * frame;
      const torn = Buffer.alloc(Math.max(oldWal.length, end));
      oldWal.copy(torn);
      newWal.copy(torn, keepOld, keepOld, end);
      if (synced.every(Boolean)) newWal.copy(torn, 0, 0, 32);
      const crashPath = dir.join('crash.db');
      writeFileSync(crashPath, readFileSync(`${image}.db`));
      writeFileSync(`${crashPath}-wal`, torn);
      await using after = await openLedger({ path: crashPath, origin, signers: [{ signer: key.signerKey }] });
      expect(after.size()).toBeGreaterThanOrEqual(ackedBefore);
      for (let i = 0; i < ackedBefore; i++) expect(after.receipt(i)?.leafIndex).toBe(i);
    },
  );
});
