import { fdatasync, fdatasyncSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { spawnNode, tempDir, waitFor } from '@unrdf/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  generateNoteKey,
  InvalidInputError,
  inclusionProof,
  LedgerError,
  merkleRoot,
  openCheckpoint,
  receiptHash,
  receiptLeafHash,
  verifyCheckpointConsistency,
  verifyReceipt,
} from '../src/index.js';
import { type Ledger, openLedger } from '../src/ledger/index.js';
import { type LedgerSyncIo, openLedgerWithSyncIo } from '../src/ledger/ledger.js';
import { bodies, bodyFor } from './fixtures.js';
import { toHex } from './vectors.js';

const origin = 'example.com/unrdf/ledger';
const key = generateNoteKey(origin);

describe('openLedger', () => {
  it('group-commits concurrent appends, in order, chained, one checkpoint per batch', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    const results = await Promise.all(bodies(50).map((b) => ledger.append(b)));
    expect(results.map((r) => r.leafIndex)).toEqual([...Array(50).keys()]);
    results.forEach((r, i) => {
      expect(r.receipt.previousReceiptHash).toBe(i === 0 ? null : receiptHash(results[i - 1]?.receipt as never));
      expect(r.receiptHash).toBe(receiptHash(r.receipt));
      expect(r.treeSize).toBeGreaterThan(r.leafIndex);
    });
    expect(new Set(results.map((r) => r.checkpoint)).size).toBe(1); // one turn, one batch, one signature
    const leaves = results.map((r) => receiptLeafHash(r.receipt));
    expect(toHex(ledger.root())).toBe(toHex(merkleRoot(leaves)));
    const opened = openCheckpoint(ledger.latestCheckpoint(), ledger.trustedKeys);
    expect(opened.ok && opened.checkpoint.size).toBe(50);
  });

  it('serves proofs identical to the in-memory generator at every size', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    const leaves: Uint8Array[] = [];
    for (let size = 1; size <= 40; size++) {
      const r = await ledger.append(bodyFor(size));
      leaves.push(receiptLeafHash(r.receipt));
      for (let i = 0; i < size; i++) {
        expect(ledger.inclusionProof(i, size).hashes).toEqual(inclusionProof(leaves, i).map(toHex));
      }
      for (let old = 0; old <= size; old++) {
        expect(ledger.consistencyProof(old, size).hashes).toEqual(consistencyProof(leaves, old).map(toHex));
      }
      expect(toHex(ledger.root(size))).toBe(toHex(merkleRoot(leaves)));
    }
  });

  it('produces receipts a verifier accepts offline, and consistent checkpoints', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    const first = await Promise.all(bodies(10).map((b) => ledger.append(b)));
    const cp1 = ledger.latestCheckpoint();
    const second = await Promise.all(bodies(7, 10).map((b) => ledger.append(b)));
    const cp2 = ledger.latestCheckpoint();
    for (const r of [...first, ...second]) {
      const proof = ledger.inclusionProof(r.leafIndex);
      expect(verifyReceipt(r.receipt, proof, cp2, ledger.trustedKeys)).toEqual({ status: 'valid' });
      expect(
        verifyReceipt(r.receipt, ledger.inclusionProof(r.leafIndex, r.treeSize), r.checkpoint, ledger.trustedKeys),
      ).toEqual({
        status: 'valid',
      });
    }
    expect(verifyReceipt(second[0]?.receipt, ledger.inclusionProof(10), cp1, ledger.trustedKeys).status).toBe(
      'inconclusive',
    );
    expect(verifyCheckpointConsistency(cp1, cp2, ledger.consistencyProof(10, 17), ledger.trustedKeys)).toEqual({
      status: 'valid',
    });
  });

  it('persists across reopen and continues the chain', async () => {
    await using dir = await tempDir('receipts-ledger');
    const path = dir.join('l.db');
    const a = await openLedger({ path, origin, signers: [{ signer: key.signerKey }] });
    const before = await Promise.all(bodies(5).map((b) => a.append(b)));
    await a.close();
    await using b = await openLedger({ path, origin, signers: [{ signer: key.signerKey }] });
    expect(b.size()).toBe(5);
    expect(b.receipt(4)).toEqual(before[4]?.receipt);
    expect(b.receiptByOperationId(bodyFor(2).operationId)).toEqual(before[2]?.receipt);
    const next = await b.append(bodyFor(5));
    expect(next.leafIndex).toBe(5);
    expect(next.receipt.previousReceiptHash).toBe(before[4]?.receiptHash);
    await expect(
      openLedger({ path, origin: 'other.example/log', signers: [{ signer: key.signerKey }] }),
    ).rejects.toThrow(LedgerError);
  });

  it('fails only the duplicate or invalid append in a batch', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    await ledger.append(bodyFor(1));
    const settled = await Promise.allSettled([
      ledger.append(bodyFor(2)),
      ledger.append(bodyFor(1)), // same operation id
      ledger.append({ ...bodyFor(3), attempt: -1 }),
      ledger.append(bodyFor(4)),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toBeInstanceOf(LedgerError);
    expect((settled[2] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidInputError);
    expect(ledger.size()).toBe(3);
  });

  it('rejects an operation id already in the ledger with LedgerError, as appendInTransaction does', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    const first = await ledger.append(bodyFor(1));
    const error = await ledger.append(bodyFor(1)).catch((e: unknown) => e); // alone in its batch
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).message).toMatch(/already has a receipt/);
    expect(ledger.receiptByOperationId(bodyFor(1).operationId)).toEqual(first.receipt);
    expect(ledger.size()).toBe(1);
  });

  it.each(['fsync-in-commit', 'fsync-after-commit'] as const)(
    'commits the batch-mates of a retried operation in one transaction, not one each (%s)',
    async (durability) => {
      await using dir = await tempDir('receipts-ledger');
      const path = dir.join('l.db');
      const ledger = await openLedger({
        path,
        origin,
        signers: [{ signer: key.signerKey }],
        durability,
        storeCheckpointEveryMs: 0, // one stored checkpoint per transaction: a transaction counter
      });
      await ledger.append(bodyFor(0));
      // An at-least-once client retries operation 0 in a busy turn; operation 1 comes twice in it.
      const settled = await Promise.allSettled(
        [bodyFor(0), ...bodies(300, 1), bodyFor(1)].map((b) => ledger.append(b)),
      );
      await ledger.close();
      expect(settled.map((s, i) => (s.status === 'rejected' ? i : -1)).filter((i) => i >= 0)).toEqual([0, 301]);
      for (const i of [0, 301]) expect((settled[i] as PromiseRejectedResult).reason).toBeInstanceOf(LedgerError);
      expect(
        settled.slice(1, 301).map((s) => (s as PromiseFulfilledResult<{ leafIndex: number }>).value.leafIndex),
      ).toEqual(Array.from({ length: 300 }, (_, i) => 1 + i));
      const db = new DatabaseSync(path, { readOnly: true });
      const checkpoints = db.prepare('SELECT tree_size FROM receipts_checkpoints ORDER BY tree_size').all();
      db.close();
      expect(checkpoints.map((r) => Number(r.tree_size))).toEqual([1, 301]); // the first append, then one batch
    },
  );

  it('produces byte-identical ledgers on replicas whatever the batch boundaries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 6 }), async (cuts) => {
        await using dir = await tempDir('receipts-replica');
        await using one = await openLedger({ path: dir.join('a.db'), origin, signers: [{ signer: key.signerKey }] });
        await using two = await openLedger({ path: dir.join('b.db'), origin, signers: [{ signer: key.signerKey }] });
        const all = bodies(cuts.reduce((a, b) => a + b, 0));
        await Promise.all(all.map((b) => one.append(b)));
        let at = 0;
        for (const cut of cuts) {
          await Promise.all(all.slice(at, at + cut).map((b) => two.append(b)));
          at += cut;
        }
        expect(toHex(two.root())).toBe(toHex(one.root()));
        expect(two.latestCheckpoint()).toBe(one.latestCheckpoint()); // Ed25519 is deterministic
        for (let i = 0; i < all.length; i++) expect(two.receipt(i)).toEqual(one.receipt(i));
      }),
      { numRuns: 8 },
    );
  });

  it('rotates signing keys by tree size', async () => {
    await using dir = await tempDir('receipts-ledger');
    const next = generateNoteKey(origin);
    await using ledger = await openLedger({
      path: dir.join('l.db'),
      origin,
      signers: [{ signer: key.signerKey }, { signer: next.signerKey, fromSize: 5 }],
    });
    expect(ledger.trustedKeys).toEqual([
      { verifierKey: key.verifierKey, fromSize: 0, untilSize: 5, origin },
      { verifierKey: next.verifierKey, fromSize: 5, origin },
    ]);
    for (const b of bodies(4)) await ledger.append(b);
    const early = ledger.latestCheckpoint();
    for (const b of bodies(3, 4)) await ledger.append(b);
    const late = ledger.latestCheckpoint();
    expect(openCheckpoint(early, [{ verifierKey: key.verifierKey }]).ok).toBe(true);
    expect(openCheckpoint(late, [{ verifierKey: key.verifierKey }]).ok).toBe(false);
    expect(openCheckpoint(late, ledger.trustedKeys).ok).toBe(true);
  });

  it('rejects bad options with InvalidInputError', async () => {
    await expect(openLedger({ origin, signers: [{ signer: key.signerKey }] })).rejects.toThrow(InvalidInputError);
    await expect(openLedger({ path: '/nonexistent/x.db', origin: 'a b', signers: [] })).rejects.toThrow(/signers/);
  });

  it('refuses at open an origin with a control character, which no checkpoint could be signed with', async () => {
    await using dir = await tempDir('receipts-ledger');
    for (const bad of ['example.com/a\tb', 'example.com/log\r', 'example.com/\u0000', 'example.com/\u007f']) {
      const error = await openLedger({
        path: dir.join('l.db'),
        origin: bad,
        signers: [{ signer: key.signerKey }],
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as InvalidInputError).issues).toEqual([
        'origin: an origin is one line, without "+" or control characters, not starting with a space',
      ]);
    }
    // What it accepts, it can sign: a Unicode origin with a space inside.
    await using ledger = await openLedger({
      path: dir.join('l.db'),
      origin: 'example.com/ünïcode log',
      signers: [{ signer: generateNoteKey('example.com/unicode').signerKey }],
    });
    const appended = await ledger.append(bodyFor(1));
    expect(openCheckpoint(appended.checkpoint, ledger.trustedKeys).ok).toBe(true);
  });

  it('refuses a key schedule that lists one key twice', async () => {
    await using dir = await tempDir('receipts-ledger');
    const other = generateNoteKey(origin);
    // A, then B from 2, then A again from 4: A would sign two windows, and a verifier
    // (its trustedKeys included) knows a key by name and id once, so it would accept one.
    const error = await openLedger({
      path: dir.join('l.db'),
      origin,
      signers: [
        { signer: key.signerKey },
        { signer: other.signerKey, fromSize: 2 },
        { signer: key.signerKey, fromSize: 4 },
      ],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidInputError);
    expect(String(error)).toMatch(
      /signers: the key example\.com\/unrdf\/ledger\+[0-9a-f]{8} is listed twice \(from size 0 and from size 4\)/,
    );
  });
});

describe('Ledger on a shared handle', () => {
  const setup = async (dir: { join(p: string): string }) => {
    const db = new DatabaseSync(dir.join('daemon.db'));
    db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;');
    db.exec('CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL) STRICT');
    const ledger = await openLedger({ database: db, origin, signers: [{ signer: key.signerKey }] });
    return { db, ledger };
  };

  it("commits the caller's state, the receipts and the checkpoint atomically", async () => {
    await using dir = await tempDir('receipts-shared');
    const { db, ledger } = await setup(dir);
    db.exec('BEGIN IMMEDIATE');
    db.prepare('INSERT INTO jobs VALUES (?, ?)').run('op1', 'succeeded');
    const [r] = ledger.appendInTransaction([bodyFor(1)]);
    db.exec('COMMIT');
    expect(r?.leafIndex).toBe(0);
    expect(ledger.size()).toBe(1);
    expect(ledger.checkpointAt(1)).toBe(r?.checkpoint);
    await ledger.close();
    expect(db.isOpen).toBe(true); // the caller owns the handle
    db.close();
  });

  it('rejects an append with LedgerError when the caller closes its handle before the batch commits', async () => {
    await using dir = await tempDir('receipts-shared');
    const { db, ledger } = await setup(dir);
    const appended = ledger.append(bodyFor(1)).catch((e: unknown) => e); // commits on the next turn
    db.close();
    expect(await appended).toBeInstanceOf(LedgerError);
    expect(String(await appended)).toMatch(/handle is closed/);
  });

  it('fails only a receipt that cannot be written, halving its batch rather than retrying each append alone', async () => {
    await using dir = await tempDir('receipts-shared');
    const db = new DatabaseSync(dir.join('daemon.db'));
    const ledger = await openLedger({
      database: db,
      origin,
      signers: [{ signer: key.signerKey }],
      storeCheckpointEveryMs: 0,
    });
    // A fault only one receipt meets (not a duplicate): the caller's trigger refuses it.
    const bad = bodyFor(77).operationId;
    db.exec(
      `CREATE TRIGGER refuse BEFORE INSERT ON receipts_leaves WHEN NEW.operation_id = '${bad}' BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END`,
    );
    const settled = await Promise.allSettled(bodies(128).map((b) => ledger.append(b)));
    const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [[i, s.reason] as const] : []));
    expect(rejected.map(([i]) => i)).toEqual([77]);
    expect(rejected[0]?.[1]).toBeInstanceOf(LedgerError);
    expect(String(rejected[0]?.[1])).toMatch(/refused by a trigger/);
    expect(ledger.size()).toBe(127);
    // One transaction (and stored checkpoint) per half that committed: 7 for 128, not 127.
    const transactions = Number(db.prepare('SELECT count(*) AS n FROM receipts_checkpoints').get()?.n);
    expect(transactions).toBe(7);
    await ledger.close();
    db.close();
  });

  it('leaves no trace when the caller rolls back, and continues correctly after', async () => {
    await using dir = await tempDir('receipts-shared');
    const { db, ledger } = await setup(dir);
    db.exec('BEGIN IMMEDIATE');
    ledger.appendInTransaction(bodies(3));
    db.exec('COMMIT');
    db.exec('BEGIN IMMEDIATE');
    db.prepare('INSERT INTO jobs VALUES (?, ?)').run('op9', 'succeeded');
    ledger.appendInTransaction(bodies(5, 3));
    db.exec('ROLLBACK');
    expect(ledger.size()).toBe(3);
    expect(db.prepare('SELECT count(*) AS n FROM jobs').get()?.n).toBe(0);
    db.exec('BEGIN IMMEDIATE');
    const after = ledger.appendInTransaction(bodies(2, 100));
    db.exec('COMMIT');
    expect(after.map((r) => r.leafIndex)).toEqual([3, 4]);
    expect(after[0]?.receipt.previousReceiptHash).toBe(receiptHash(ledger.receipt(2) as never));
    const leaves = [0, 1, 2, 3, 4].map((i) => receiptLeafHash(ledger.receipt(i) as never));
    expect(toHex(ledger.root())).toBe(toHex(merkleRoot(leaves)));
    await ledger.close();
    db.close();
  });

  it('builds the same tree over many transactions, some rolled back, as from scratch', async () => {
    await using dir = await tempDir('receipts-shared');
    const { db, ledger } = await setup(dir);
    let next = 0;
    for (let t = 0; t < 40; t++) {
      db.exec('BEGIN IMMEDIATE');
      const batch = bodies(1 + (t % 3), 1000 + next);
      next += batch.length;
      ledger.appendInTransaction(batch);
      // Every fifth transaction rolls back (the ledger is not told), twice in a row at t = 20, 21.
      db.exec(t % 5 === 4 || t === 21 ? 'ROLLBACK' : 'COMMIT');
    }
    const size = ledger.size();
    const leaves = Array.from({ length: size }, (_, i) => receiptLeafHash(ledger.receipt(i) as never));
    expect(toHex(ledger.root())).toBe(toHex(merkleRoot(leaves)));
    for (let i = 1; i < size; i++) {
      expect(ledger.receipt(i)?.previousReceiptHash).toBe(receiptHash(ledger.receipt(i - 1) as never));
    }
    expect(openCheckpoint(ledger.latestCheckpoint(), ledger.trustedKeys)).toMatchObject({ ok: true });
    await ledger.close();
    db.close();
  });

  it('undoes only its own writes when a batch fails, leaving the caller transaction usable', async () => {
    await using dir = await tempDir('receipts-shared');
    const { db, ledger } = await setup(dir);
    db.exec('BEGIN IMMEDIATE');
    ledger.appendInTransaction([bodyFor(1)]);
    db.prepare('INSERT INTO jobs VALUES (?, ?)').run('op2', 'succeeded');
    expect(() => ledger.appendInTransaction([bodyFor(2), bodyFor(1)])).toThrow(/already has a receipt/);
    expect(db.isTransaction).toBe(true);
    db.exec('COMMIT');
    expect(ledger.size()).toBe(1);
    expect(db.prepare('SELECT count(*) AS n FROM jobs').get()?.n).toBe(1);
    expect(openCheckpoint(ledger.latestCheckpoint(), ledger.trustedKeys)).toMatchObject({ ok: true });
    await ledger.close();
    db.close();
  });

  it('refuses appendInTransaction outside a transaction and append() inside one', async () => {
    await using dir = await tempDir('receipts-shared');
    const { db, ledger } = await setup(dir);
    expect(() => ledger.appendInTransaction([bodyFor(1)])).toThrow(LedgerError);
    db.exec('BEGIN IMMEDIATE');
    const pending = ledger.append(bodyFor(1));
    const settled = pending.then(
      () => 'ok',
      (e: unknown) => e,
    );
    await new Promise((r) => setImmediate(r));
    db.exec('COMMIT');
    expect(await settled).toBeInstanceOf(LedgerError);
    await ledger.close();
    db.close();
  });
});

describe('Ledger.close', () => {
  it('finishes closing when it is the last thing a process does (the checkpointer thread included)', {
    timeout: 60_000,
  }, async () => {
    await using dir = await tempDir('receipts-close');
    const path = dir.join('l.db');
    const closeKey = generateNoteKey('example.com/close/ledger');
    const program = new URL('./programs/ledger-close-last.ts', import.meta.url).pathname;
    await using child = spawnNode(program, { args: [path, closeKey.signerKey] });
    const { code } = await child.exited;
    expect(child.stderr()).toBe('');
    expect(child.stdout()).toBe('closed 320\n');
    expect(code).toBe(0);
    await using again = await openLedger({
      path,
      origin: 'example.com/close/ledger',
      signers: [{ signer: closeKey.signerKey }],
    });
    expect(again.size()).toBe(320);
  });

  it('flushes pending appends, then rejects new ones with LedgerError', async () => {
    await using dir = await tempDir('receipts-close');
    const ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    const pending = bodies(5).map((b) => ledger.append(b));
    await ledger.close();
    expect((await Promise.all(pending)).map((r) => r.leafIndex)).toEqual([0, 1, 2, 3, 4]);
    await expect(ledger.append(bodyFor(9))).rejects.toThrow(LedgerError);
    expect(() => ledger.size()).toThrow(LedgerError);
  });

  it.each(['fsync-after-commit', 'fsync-in-commit'] as const)(
    'rejects an append made while close() runs with LedgerError, and throws nothing outside it (%s)',
    async (durability) => {
      await using dir = await tempDir('receipts-close');
      const ledger = await openLedger({
        path: dir.join('l.db'),
        origin,
        signers: [{ signer: key.signerKey }],
        durability,
      });
      await ledger.append(bodyFor(0));
      const uncaught: unknown[] = [];
      const listeners = process.listeners('uncaughtException');
      process.removeAllListeners('uncaughtException');
      process.on('uncaughtException', (e) => uncaught.push(e));
      try {
        // Nothing is pending, so close() closes the database within a few microtasks,
        // before an append accepted now could commit.
        const closing = ledger.close();
        const late = ledger.append(bodyFor(1)).then(
          () => 'resolved',
          (e: unknown) => e,
        );
        const again = ledger.close(); // the same close
        await closing;
        await again;
        const outcome = await Promise.race([late, new Promise((r) => setTimeout(() => r('never settled'), 1000))]);
        expect(outcome).toBeInstanceOf(LedgerError);
        expect(String(outcome)).toMatch(/closing/);
        await new Promise((r) => setImmediate(r));
        expect(uncaught.map(String)).toEqual([]);
      } finally {
        process.removeAllListeners('uncaughtException');
        for (const l of listeners) process.on('uncaughtException', l);
      }
      await using reopened = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
      expect(reopened.size()).toBe(1);
    },
  );
});

describe('openLedger on a handle inside a transaction', () => {
  it('creates its schema in that transaction and still refuses another origin', async () => {
    await using dir = await tempDir('receipts-shared-open');
    const db = new DatabaseSync(dir.join('daemon.db'));
    db.exec('BEGIN IMMEDIATE');
    const ledger = await openLedger({ database: db, origin, signers: [{ signer: key.signerKey }] });
    ledger.appendInTransaction([bodyFor(1)]);
    db.exec('COMMIT');
    db.exec('BEGIN IMMEDIATE');
    await expect(
      openLedger({ database: db, origin: 'other.example/log', signers: [{ signer: key.signerKey }] }),
    ).rejects.toThrow(LedgerError);
    db.exec('ROLLBACK');
    expect(ledger.size()).toBe(1);
    await ledger.close();
    db.close();
  });
});

describe('openLedger integrity check', () => {
  it('refuses a file whose stored tree no longer hashes to its latest signed root', async () => {
    await using dir = await tempDir('receipts-corrupt');
    const path = dir.join('l.db');
    const ledger = await openLedger({ path, origin, signers: [{ signer: key.signerKey }] });
    await Promise.all(bodies(9).map((b) => ledger.append(b)));
    await ledger.close();
    const db = new DatabaseSync(path);
    db.prepare('UPDATE receipts_nodes SET hash = ? WHERE level = 3 AND idx = 0').run(new Uint8Array(32));
    db.close();
    await expect(openLedger({ path, origin, signers: [{ signer: key.signerKey }] })).rejects.toThrow(
      /does not hash to the latest signed root/,
    );
    const db2 = new DatabaseSync(path);
    db2.exec('DELETE FROM receipts_checkpoints');
    db2.close();
    await expect(openLedger({ path, origin, signers: [{ signer: key.signerKey }] })).rejects.toThrow(
      /without any signed checkpoint/,
    );
  });
});

describe('Ledger.receiptBundle', () => {
  it('returns receipt, proof and checkpoint that verify offline, by index or operation id', async () => {
    await using dir = await tempDir('receipts-bundle');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    await Promise.all(bodies(7).map((b) => ledger.append(b)));
    const byIndex = ledger.receiptBundle(3);
    const byId = ledger.receiptBundle(bodyFor(3).operationId);
    expect(byId).toEqual(byIndex);
    expect(verifyReceipt(byIndex?.receipt, byIndex?.proof, byIndex?.checkpoint, ledger.trustedKeys)).toEqual({
      status: 'valid',
    });
    expect(ledger.receiptBundle(99)).toBeUndefined();
    expect(ledger.receiptBundle('unknown')).toBeUndefined();
  });
});

describe('openLedger durability', () => {
  it('serves a batch to readers only once the fsync after its COMMIT returned (fsync-after-commit)', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    // 100 appends in one turn: a batch too large to sync on the event loop, so its
    // fdatasync runs on the thread pool.
    const pending = bodies(100).map((b) => ledger.append(b));
    // The batch commits in a check-phase callback queued before this one; the fdatasync
    // it started on the thread pool cannot have reported back (that takes a poll phase).
    await new Promise((resolve) => setImmediate(resolve));
    expect(ledger.size()).toBe(0);
    expect(ledger.latestCheckpoint()).toBeUndefined();
    expect(ledger.receipt(0)).toBeUndefined();
    expect(ledger.receiptByOperationId(bodyFor(0).operationId)).toBeUndefined();
    expect(ledger.checkpointAt(100)).toBeUndefined();
    expect(() => ledger.inclusionProof(0, 100)).toThrow(InvalidInputError);
    const appended = await Promise.all(pending);
    expect(ledger.size()).toBe(100);
    expect(ledger.latestCheckpoint()).toBe(appended[99]?.checkpoint);
    expect(ledger.receiptByOperationId(bodyFor(0).operationId)).toEqual(appended[0]?.receipt);
  });

  it('syncs a small batch right after its COMMIT, resolving only then', async () => {
    await using dir = await tempDir('receipts-ledger');
    const calls: string[] = [];
    let sizeAtSync = -1;
    const io: LedgerSyncIo = {
      fdatasync: (fd, callback) => {
        calls.push('pool');
        fdatasync(fd, callback);
      },
      fdatasyncSync: (fd) => {
        calls.push('inline');
        sizeAtSync = ledger.size(); // not yet served: the batch is committed, not yet synced
        fdatasyncSync(fd);
      },
      now: () => 0,
    };
    await using ledger = openLedgerWithSyncIo(
      { path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] },
      io,
    );
    const appended = await ledger.append(bodyFor(0));
    expect(calls).toEqual(['inline']);
    expect(sizeAtSync).toBe(0);
    expect(ledger.size()).toBe(1);
    expect(ledger.latestCheckpoint()).toBe(appended.checkpoint);
  });

  it('checkpoints the WAL (on a worker thread, synced by SQLite) and keeps it bounded', async () => {
    await using dir = await tempDir('receipts-ledger');
    const path = dir.join('l.db');
    const ledger = await openLedger({
      path,
      origin,
      signers: [{ signer: key.signerKey }],
      checkpointBytes: 64 * 1024,
    });
    const { statSync } = await import('node:fs');
    let count = 0;
    for (let round = 0; round < 40; round++) {
      await Promise.all(bodies(8, count).map((b) => ledger.append(b)));
      count += 8;
    }
    // Without checkpoints the WAL grows by several pages per batch (40 batches ≈ 1 MiB).
    // Checkpoints run beside the appends, so the WAL may outgrow the threshold while one
    // runs; once it caught up, the next append starts the WAL over and SQLite cuts the
    // file back to journal_size_limit (2 x checkpointBytes).
    await waitFor(
      async () => {
        await ledger.append(bodyFor(count++));
        return statSync(`${path}-wal`).size <= 2 * 64 * 1024 + 32 * 1024;
      },
      { timeoutMs: 20_000, what: 'the WAL is checkpointed and starts over' },
    );
    const root = toHex(ledger.root());
    await ledger.close();
    const db = new DatabaseSync(path);
    expect(db.prepare('PRAGMA synchronous').get()?.synchronous).toBe(2); // a fresh handle: FULL
    db.close();
    await using again = await openLedger({ path, origin, signers: [{ signer: key.signerKey }] });
    expect(again.size()).toBe(count);
    expect(toHex(again.root())).toBe(root);
  });

  it('behaves the same with fsync-in-commit', async () => {
    await using dir = await tempDir('receipts-ledger');
    await using ledger = await openLedger({
      path: dir.join('l.db'),
      origin,
      signers: [{ signer: key.signerKey }],
      durability: 'fsync-in-commit',
    });
    const results = await Promise.all(bodies(20).map((b) => ledger.append(b)));
    expect(ledger.size()).toBe(20);
    expect(ledger.latestCheckpoint()).toBe(results[19]?.checkpoint);
  });

  it('moves small batches to the thread pool while the disk is slow, and back once it is fast', async () => {
    await using dir = await tempDir('receipts-ledger');
    const calls: string[] = [];
    let clock = 0;
    let syncTakesMs = 0;
    const io: LedgerSyncIo = {
      fdatasync: (fd, callback) => {
        calls.push('pool');
        clock += syncTakesMs;
        fdatasync(fd, callback);
      },
      fdatasyncSync: (fd) => {
        calls.push('inline');
        clock += syncTakesMs;
        fdatasyncSync(fd);
      },
      now: () => clock,
    };
    await using ledger = openLedgerWithSyncIo(
      { path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] },
      io,
    );
    await ledger.append(bodyFor(0));
    syncTakesMs = 40; // one slow sync (a congested disk): the average goes to 5 ms
    await ledger.append(bodyFor(1));
    syncTakesMs = 0;
    for (let n = 2; n < 40; n++) await ledger.append(bodyFor(n));
    expect(calls.slice(0, 3)).toEqual(['inline', 'inline', 'pool']);
    // Back on the event loop once the average of fast syncs fell under 1 ms (13 of them).
    const back = calls.indexOf('inline', 2);
    expect(back).toBe(2 + 13);
    expect(calls.slice(back).every((c) => c === 'inline')).toBe(true);
    expect(ledger.size()).toBe(40);
  });

  it('refuses appends before committing them once an fsync failed, even one that left nothing waiting', async () => {
    await using dir = await tempDir('receipts-ledger');
    const path = dir.join('l.db');
    const inFlight: ((error: Error | null) => void)[] = [];
    const ledger = openLedgerWithSyncIo(
      { path, origin, maxBatch: 100, signers: [{ signer: key.signerKey }] },
      { fdatasync: (_fd, callback) => inFlight.push(callback), fdatasyncSync: () => {}, now: () => 0 },
    );
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    // Batches of 100 (over the inline limit) sync on the pool; a full batch commits while one runs.
    const first = bodies(100).map((b) => ledger.append(b));
    while (inFlight.length < 1) await tick();
    const second = bodies(100, 100).map((b) => ledger.append(b));
    while (inFlight.length < 2) await tick();
    const earlier = inFlight.shift() as (error: Error | null) => void;
    inFlight.shift()?.(null); // covers both batches
    await Promise.all([...first, ...second]);
    earlier(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(ledger.append(bodyFor(500))).rejects.toThrow(/Syncing the ledger to disk failed/);
    await ledger.close();
    const db = new DatabaseSync(path);
    expect(db.prepare('SELECT count(*) AS n FROM receipts_leaves').get()).toEqual({ n: 200 });
    db.close();
  });

  describe('a failed fsync', () => {
    /** Node's own syncs until `failing` is set, then EIO, as a dying disk reports it. */
    const failingIo = () => {
      const state = { failing: false, failures: 0 };
      const eio = () => Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 });
      const io: LedgerSyncIo = {
        fdatasync: (fd, callback) => {
          if (!state.failing) return fdatasync(fd, callback);
          state.failures++;
          setImmediate(() => callback(eio()));
        },
        fdatasyncSync: (fd) => {
          if (!state.failing) return fdatasyncSync(fd);
          state.failures++;
          throw eio();
        },
        now: () => performance.now(),
      };
      return { state, io };
    };

    const expectSyncFailure = async (promise: Promise<unknown>) => {
      const error = await promise.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LedgerError);
      expect((error as LedgerError).code).toBe('UNRDF_RECEIPTS_LEDGER');
      expect((error as LedgerError).message).toMatch(/Syncing the ledger to disk failed; close it and reopen/);
      expect(((error as LedgerError).cause as { code?: string }).code).toBe('EIO');
    };

    it.each([
      { path: 'on the event loop (a small batch)', batch: 1 },
      { path: 'on the thread pool (a large batch)', batch: 100 },
    ])('is final $path: its appends and every later one reject, reads keep the durable prefix', async ({ batch }) => {
      await using dir = await tempDir('receipts-ledger');
      const path = dir.join('l.db');
      const { state, io } = failingIo();
      const ledger = openLedgerWithSyncIo({ path, origin, signers: [{ signer: key.signerKey }] }, io);
      const durable = await Promise.all(bodies(10).map((b) => ledger.append(b)));
      const root = toHex(ledger.root());

      state.failing = true;
      const failed = bodies(batch, 10).map((b) => ledger.append(b));
      for (const promise of failed) await expectSyncFailure(promise);
      expect(state.failures).toBe(1);

      // Final: the disk works again, yet the ledger refuses to append (it cannot know
      // what the failed sync dropped), and it does not sync again.
      state.failing = false;
      await expectSyncFailure(ledger.append(bodyFor(500)));
      await expectSyncFailure(ledger.append(bodyFor(501)));
      expect(ledger.size()).toBe(10);
      expect(toHex(ledger.root())).toBe(root);
      expect(ledger.latestCheckpoint()).toBe(durable[9]?.checkpoint);
      expect(ledger.receiptByOperationId(bodyFor(10).operationId)).toBeUndefined();
      await ledger.close();

      // Reopened, it recovers a consistent signed state and appends again.
      await using again = await openLedger({ path, origin, signers: [{ signer: key.signerKey }] });
      expect(again.size()).toBeGreaterThanOrEqual(10);
      expect(toHex(again.root(10))).toBe(root);
      const next = await again.append(bodyFor(600));
      expect(next.leafIndex).toBe(again.size() - 1);
    });
  });

  it('refuses durability options on a shared handle: there the caller commits', async () => {
    const db = new DatabaseSync(':memory:');
    await expect(
      openLedger({ database: db, origin, signers: [{ signer: key.signerKey }], durability: 'fsync-in-commit' }),
    ).rejects.toThrow(InvalidInputError);
    db.close();
  });
});

describe('checkpoints stored now and then, signed on demand', () => {
  const storedSizes = (path: string): number[] => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return db
        .prepare('SELECT tree_size FROM receipts_checkpoints ORDER BY tree_size')
        .all()
        .map((r) => Number(r.tree_size));
    } finally {
      db.close();
    }
  };

  it('signs every size to the note a ledger storing each batch holds, and checks the stored prefix at open', async () => {
    await using dir = await tempDir('receipts-lazy');
    const signers = [{ signer: key.signerKey }];
    const lazyPath = dir.join('lazy.db');
    const lazy = await openLedger({ path: lazyPath, origin, signers, storeCheckpointEveryMs: 3_600_000 });
    const eager = await openLedger({ path: dir.join('eager.db'), origin, signers, storeCheckpointEveryMs: 0 });
    for (let i = 0; i < 12; i++) {
      const [a, b] = await Promise.all([lazy.append(bodyFor(i)), eager.append(bodyFor(i))]);
      expect(a.checkpoint).toBe(b.checkpoint);
    }
    for (let size = 1; size <= 12; size++) {
      const note = lazy.checkpointAt(size);
      expect(note).toBe(eager.checkpointAt(size));
      const opened = openCheckpoint(note, lazy.trustedKeys);
      expect(opened.ok && opened.checkpoint.size).toBe(size);
      expect(opened.ok && toHex(opened.checkpoint.root)).toBe(toHex(lazy.root(size)));
    }
    expect(lazy.checkpointAt(0)).toBeUndefined();
    expect(lazy.checkpointAt(13)).toBeUndefined();
    const bundle = lazy.receiptBundle(5);
    expect(bundle && verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, lazy.trustedKeys)).toEqual({
      status: 'valid',
    });
    await lazy.close();
    await eager.close();
    expect(storedSizes(lazyPath)).toEqual([1]);
    expect(storedSizes(dir.join('eager.db'))).toHaveLength(12);

    // The stored checkpoint is behind the log: open accepts it, and still checks what it covers.
    const again = await openLedger({ path: lazyPath, origin, signers });
    expect(again.latestCheckpoint()).toBe(
      (await openLedger({ path: dir.join('eager.db'), origin, signers })).latestCheckpoint(),
    );
    await again.close();
    const db = new DatabaseSync(lazyPath);
    db.prepare('UPDATE receipts_leaves SET leaf_hash = ? WHERE leaf_index = 0').run(new Uint8Array(32));
    db.close();
    await expect(openLedger({ path: lazyPath, origin, signers })).rejects.toThrow(
      /does not hash to the latest signed root/,
    );
  });

  it('signs a size again for what it holds after a rolled-back transaction had other receipts there', async () => {
    await using dir = await tempDir('receipts-lazy');
    const db = new DatabaseSync(dir.join('shared.db'));
    db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;');
    const ledger = await openLedger({
      database: db,
      origin,
      signers: [{ signer: key.signerKey }],
      storeCheckpointEveryMs: 3_600_000,
    });
    db.exec('BEGIN IMMEDIATE');
    ledger.appendInTransaction(bodies(3));
    db.exec('COMMIT');
    db.exec('BEGIN IMMEDIATE');
    const rolledBack = ledger.appendInTransaction(bodies(2, 3));
    const stale = rolledBack[1]?.checkpoint;
    expect(ledger.checkpointAt(5)).toBe(stale); // read inside the transaction: what it holds now
    db.exec('ROLLBACK');
    expect(ledger.checkpointAt(5)).toBeUndefined();
    db.exec('BEGIN IMMEDIATE');
    ledger.appendInTransaction(bodies(2, 100));
    db.exec('COMMIT');
    const note = ledger.checkpointAt(5);
    expect(note).not.toBe(stale);
    const opened = openCheckpoint(note, ledger.trustedKeys);
    expect(opened.ok && toHex(opened.checkpoint.root)).toBe(toHex(ledger.root(5)));
    const bundle = ledger.receiptBundle(4);
    expect(bundle && verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, ledger.trustedKeys)).toEqual({
      status: 'valid',
    });
    await ledger.close();
    db.close();
  });

  it('serves only notes its own trustedKeys accept after reopening with another key schedule', async () => {
    await using dir = await tempDir('receipts-lazy');
    const path = dir.join('l.db');
    const next = generateNoteKey(origin);
    const last = generateNoteKey(origin);
    const sizes = Array.from({ length: 10 }, (_, i) => i + 1);
    let roots: string[];
    {
      await using ledger = await openLedger({
        path,
        origin,
        signers: [{ signer: key.signerKey }],
        storeCheckpointEveryMs: 0,
      });
      for (const b of bodies(10)) await ledger.append(b); // sizes 1..10 stored, signed by key
      roots = sizes.map((size) => toHex(ledger.root(size)));
    }
    const keyIdOf = (vkey: string) => vkey.split('+')[1];
    /** The key id of each stored note's signature, by tree size. */
    const storedKeyIds = (): string[] => {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return db
          .prepare('SELECT note FROM receipts_checkpoints ORDER BY tree_size')
          .all()
          .map((r) =>
            Buffer.from(String(r.note).split(' ').at(-1) as string, 'base64')
              .subarray(0, 4)
              .toString('hex'),
          );
      } finally {
        db.close();
      }
    };
    /** Every size's note opens with the ledger's trustedKeys, signed by `signerAt(size)`, over the same root. */
    const expectServed = (ledger: Ledger, signerAt: (size: number) => string) => {
      for (const size of sizes) {
        const note = ledger.checkpointAt(size);
        const opened = openCheckpoint(note, ledger.trustedKeys);
        expect(opened.ok ? toHex(opened.checkpoint.root) : opened.reason).toBe(roots[size - 1]);
        expect(openCheckpoint(note, [{ verifierKey: signerAt(size) }]).ok, `size ${size}`).toBe(true);
      }
      const bundle = ledger.receiptBundle(7);
      expect(bundle && verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, ledger.trustedKeys)).toEqual({
        status: 'valid',
      });
    };
    {
      // The next key takes over at 5, below sizes already stored: those are signed again.
      await using ledger = await openLedger({
        path,
        origin,
        signers: [{ signer: key.signerKey }, { signer: next.signerKey, fromSize: 5 }],
      });
      expectServed(ledger, (size) => (size < 5 ? key.verifierKey : next.verifierKey));
    }
    // The notes signed again replaced the stored ones.
    expect(storedKeyIds()).toEqual(sizes.map((size) => keyIdOf(size < 5 ? key.verifierKey : next.verifierKey)));
    {
      // One key replaces the others (say they leaked): it signs every size.
      await using ledger = await openLedger({ path, origin, signers: [{ signer: last.signerKey }] });
      expectServed(ledger, () => last.verifierKey);
    }
    expect(storedKeyIds()).toEqual(sizes.map(() => keyIdOf(last.verifierKey)));
  });

  it('proves a receipt against a recent signed size rather than signing each new one', async () => {
    await using dir = await tempDir('receipts-lazy');
    await using ledger = await openLedger({ path: dir.join('l.db'), origin, signers: [{ signer: key.signerKey }] });
    for (let i = 0; i < 10; i++) await ledger.append(bodyFor(i));
    const first = ledger.receiptBundle(3);
    await ledger.append(bodyFor(10));
    const second = ledger.receiptBundle(3);
    const newest = ledger.receiptBundle(10);
    expect(first?.proof.treeSize).toBe(10);
    expect(second?.checkpoint).toBe(first?.checkpoint); // still covers leaf 3
    expect(newest?.proof.treeSize).toBe(11); // leaf 10 needs a larger size
    // Within a prefix the caller chooses (what it knows durable).
    expect(ledger.receiptBundle(10, 10)).toBeUndefined();
    expect(ledger.receiptBundle(3, 9)?.proof.treeSize).toBe(9);
    for (const b of [first, second, newest]) {
      expect(b && verifyReceipt(b.receipt, b.proof, b.checkpoint, ledger.trustedKeys)).toEqual({ status: 'valid' });
    }
  });
});
