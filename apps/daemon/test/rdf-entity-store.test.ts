import { fdatasync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it, vi } from 'vitest';
import { entityDigest, toHex } from '../src/rdf/canonical.js';
import { type ApplyRequest, openEntityStore } from '../src/rdf/entity-store.js';
import {
  EntityExistsError,
  EntityNotFoundError,
  EntityStoreClosedError,
  EntityStoreSyncError,
  StaleTokenError,
} from '../src/rdf/errors.js';

const A = 'https://example.org/a';
const B = 'https://example.org/b';
const C = 'https://example.org/c';
const nq = (s: string, v: string) => `<${s}> <https://schema.org/name> "${v}" .\n`;
const create = (operationId: string, subject: string, value: string, token = 1): ApplyRequest => ({
  operationId,
  token,
  changes: [{ type: 'create', subject, nquads: nq(subject, value) }],
});

/** Settles to 'resolved' / 'rejected', or 'pending' if it has not settled after the microtasks queued so far. */
const state = (promise: Promise<unknown>) =>
  Promise.race([
    promise.then(
      () => 'resolved',
      () => 'rejected',
    ),
    new Promise((resolve) => setImmediate(() => resolve('pending'))),
  ]);

describe('openEntityStore', () => {
  describe('apply', () => {
    it('creates, updates and deletes an entity, bumping its version each time', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      expect(store.get(A)).toBeUndefined();
      const created = await store.apply(create('op-1', A, 'x'));
      expect(created).toEqual({
        replayed: false,
        outcomes: [{ type: 'create', subject: A, version: 1, triples: 1, sha256: toHex(entityDigest(nq(A, 'x'))) }],
      });
      await store.apply({
        operationId: 'op-2',
        token: 3,
        changes: [{ type: 'update', subject: A, nquads: nq(A, 'y') }],
      });
      expect(store.get(A)).toMatchObject({
        nquads: nq(A, 'y'),
        version: 2,
        lastOperationId: 'op-2',
        lastOperationToken: 3,
      });
      const deleted = await store.apply({ operationId: 'op-3', token: 1, changes: [{ type: 'delete', subject: A }] });
      expect(deleted.outcomes).toEqual([{ type: 'delete', subject: A, version: 3, triples: 0, sha256: null }]);
      expect(store.get(A)).toBeUndefined();
      // A re-created entity continues its version, so versions never repeat for one subject.
      await store.apply(create('op-4', A, 'z'));
      expect(store.get(A)?.version).toBe(4);
    });

    it('refuses create of an existing entity and update or delete of a missing one', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      await store.apply(create('op-1', A, 'x'));
      await expect(store.apply(create('op-2', A, 'y'))).rejects.toThrow(EntityExistsError);
      await expect(
        store.apply({ operationId: 'op-3', token: 1, changes: [{ type: 'update', subject: B, nquads: nq(B, 'y') }] }),
      ).rejects.toThrow(EntityNotFoundError);
      await expect(
        store.apply({ operationId: 'op-4', token: 1, changes: [{ type: 'delete', subject: B }] }),
      ).rejects.toThrow(expect.objectContaining({ code: 'UNRDF_RDF_ENTITY_NOT_FOUND', subject: B }));
      expect(store.get(A)).toMatchObject({ nquads: nq(A, 'x'), version: 1 });
      // A refused operation left no outcome behind: the same id may apply once the entity exists.
      await store.apply(create('op-3', B, 'b', 2));
      expect(store.get(B)?.version).toBe(1);
    });

    it('returns the stored outcome when the same operation is applied again, without applying it twice', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      await store.apply(create('op-1', A, 'x'));
      const update = { type: 'update', subject: A, nquads: nq(A, 'y') } as const;
      const first = await store.apply({ operationId: 'op-2', token: 1, changes: [update] });
      const retry = await store.apply({ operationId: 'op-2', token: 2, changes: [update] });
      expect(retry).toEqual({ replayed: true, outcomes: first.outcomes });
      expect(store.get(A)?.version).toBe(2);
      // A create retried after it applied is not refused as "exists": it replays.
      await expect(store.apply(create('op-1', A, 'x', 5))).resolves.toMatchObject({
        replayed: true,
        outcomes: [{ type: 'create', version: 1 }],
      });
    });

    it('refuses a change whose fencing token is older than the one that applied the operation', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      await store.apply(create('op-1', A, 'x', 4));
      await expect(store.apply(create('op-1', A, 'x', 3))).rejects.toThrow(StaleTokenError);
      await expect(store.apply(create('op-1', A, 'x', 3))).rejects.toThrow(
        expect.objectContaining({ code: 'UNRDF_RDF_STALE_TOKEN', token: 3, appliedToken: 4 }),
      );
      // A newer attempt's replay raises the recorded token, so the one before it is now stale too.
      await store.apply(create('op-1', A, 'x', 6));
      await expect(store.apply(create('op-1', A, 'x', 5))).rejects.toThrow(StaleTokenError);
    });

    it('applies all changes of one operation or none', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      const failing = {
        operationId: 'batch-1',
        token: 1,
        changes: [
          { type: 'create', subject: A, nquads: nq(A, 'x') },
          { type: 'update', subject: A, nquads: nq(A, 'y') },
          { type: 'delete', subject: B },
        ],
      } as const;
      await expect(store.apply(failing)).rejects.toThrow(
        expect.objectContaining({ code: 'UNRDF_RDF_ENTITY_NOT_FOUND', index: 2 }),
      );
      expect(store.get(A)).toBeUndefined();
      const ok = await store.apply({ ...failing, changes: failing.changes.slice(0, 2) });
      expect(ok.outcomes.map((o) => o.version)).toEqual([1, 2]);
      expect(store.get(A)?.nquads).toBe(nq(A, 'y'));
    });

    it('refuses a request without changes', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      await expect(store.apply({ operationId: 'op-1', token: 1, changes: [] })).rejects.toThrow(RangeError);
    });
  });

  describe('group commit', () => {
    it('commits every apply requested in one event-loop turn in one transaction and one sync', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      const before = store.stats();
      const applies = Array.from({ length: 200 }, (_, i) => store.apply(create(`op-${i}`, `${A}/${i}`, `v${i}`)));
      const results = await Promise.all(applies);
      expect(results.every((r) => !r.replayed && r.outcomes[0]?.version === 1)).toBe(true);
      expect(store.stats().transactions - before.transactions).toBe(1);
      expect(store.stats().syncs - before.syncs).toBe(1);
      expect(store.get(`${A}/199`)?.nquads).toBe(nq(`${A}/199`, 'v199'));
      // The next turn is the next transaction.
      await Promise.all([store.apply(create('op-x', B, 'b')), store.apply(create('op-y', C, 'c'))]);
      expect(store.stats().transactions - before.transactions).toBe(2);
    });

    it('splits a turn into transactions of at most maxBatch applies', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db'), maxBatch: 16 });
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.apply(create(`op-${i}`, `${A}/${i}`, 'v'))));
      expect(store.stats().transactions).toBe(3);
      expect(store.get(`${A}/39`)?.version).toBe(1);
    });

    it('rolls back and rejects only the applies that fail, in request order, within a shared transaction', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      await store.apply(create('op-a', A, 'a', 5));
      const before = store.stats().transactions;
      const applies = [
        store.apply(create('op-b', B, 'b')), // ok
        store.apply(create('op-a2', A, 'again')), // exists
        store.apply({ operationId: 'op-c', token: 1, changes: [{ type: 'update', subject: C, nquads: nq(C, 'c') }] }),
        store.apply(create('op-a', A, 'a', 4)), // stale token
        store.apply({
          // The first change would apply; the second fails, so neither stays.
          operationId: 'op-batch',
          token: 1,
          changes: [
            { type: 'create', subject: C, nquads: nq(C, 'c') },
            { type: 'delete', subject: `${A}/missing` },
          ],
        }),
        // Sees the applies before it in the same transaction: B exists now, C does not.
        store.apply({ operationId: 'op-ub', token: 1, changes: [{ type: 'update', subject: B, nquads: nq(B, 'b2') }] }),
        store.apply(create('op-c2', C, 'c2')),
        store.apply(create('op-b', B, 'b', 2)), // replay of the first, in the same turn
      ];
      const settled = await Promise.allSettled(applies);
      expect(store.stats().transactions - before).toBe(1);
      expect(settled.map((s) => s.status)).toEqual([
        'fulfilled',
        'rejected',
        'rejected',
        'rejected',
        'rejected',
        'fulfilled',
        'fulfilled',
        'fulfilled',
      ]);
      const reason = (i: number) => (settled[i] as PromiseRejectedResult).reason;
      expect(reason(1)).toBeInstanceOf(EntityExistsError);
      expect(reason(2)).toBeInstanceOf(EntityNotFoundError);
      expect(reason(3)).toMatchObject({ code: 'UNRDF_RDF_STALE_TOKEN', token: 4, appliedToken: 5 });
      expect(reason(4)).toMatchObject({ code: 'UNRDF_RDF_ENTITY_NOT_FOUND', index: 1 });
      expect((settled[7] as PromiseFulfilledResult<unknown>).value).toMatchObject({
        replayed: true,
        outcomes: [{ type: 'create', subject: B, version: 1 }],
      });
      expect(store.get(A)).toMatchObject({ nquads: nq(A, 'a'), version: 1, lastOperationId: 'op-a' });
      expect(store.get(B)).toMatchObject({ nquads: nq(B, 'b2'), version: 2, lastOperationId: 'op-ub' });
      expect(store.get(C)).toMatchObject({ nquads: nq(C, 'c2'), version: 1, lastOperationId: 'op-c2' });
      // Refused operations left no outcome: their ids apply normally later.
      await expect(store.apply(create('op-batch', `${A}/later`, 'l'))).resolves.toMatchObject({ replayed: false });
    });

    it('resolves an apply only once the fdatasync of its transaction has returned', async () => {
      await using dir = await tempDir('rdf-store');
      const held: (() => void)[] = [];
      let syncStarted: () => void = () => {};
      const started = new Promise<void>((resolve) => {
        syncStarted = resolve;
      });
      await using store = openEntityStore({
        path: dir.join('entities.db'),
        // The real fdatasync, whose answer the test holds back.
        fdatasync: (fd, callback) =>
          fdatasync(fd, (error) => {
            held.push(() => callback(error));
            syncStarted();
          }),
      });
      const applied = store.apply(create('op-1', A, 'x'));
      await started;
      // Committed (reads see it) but not yet known durable: the promise waits.
      expect(store.get(A)?.version).toBe(1);
      expect(await state(applied)).toBe('pending');
      expect(held).toHaveLength(1);
      held.shift()?.();
      expect(await state(applied)).toBe('resolved');
      expect(store.stats().syncs).toBe(1);
    });

    it('rejects every waiting and later call once an fdatasync fails, and recovers on reopen', async () => {
      await using dir = await tempDir('rdf-store');
      const path = dir.join('entities.db');
      const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 });
      let failSyncs = false;
      const store = openEntityStore({
        path,
        fdatasync: (fd, callback) => (failSyncs ? setImmediate(() => callback(eio)) : fdatasync(fd, callback)),
      });
      await store.apply(create('op-1', A, 'x'));
      failSyncs = true;
      const lost = [store.apply(create('op-2', B, 'b')), store.apply(create('op-1', A, 'x', 0))];
      const settled = await Promise.allSettled(lost);
      // Both rejected with the sync error, the stale one too: no answer is given from unsynced state.
      for (const s of settled) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(EntityStoreSyncError);
        expect((s as PromiseRejectedResult).reason).toMatchObject({
          code: 'UNRDF_RDF_STORE_SYNC_FAILED',
          cause: { code: 'EIO' },
        });
      }
      // Final: even with the disk healthy again, nothing is accepted.
      failSyncs = false;
      await expect(store.apply(create('op-3', C, 'c'))).rejects.toBeInstanceOf(EntityStoreSyncError);
      expect(() => store.get(A)).toThrow(EntityStoreSyncError);
      expect(() => store.pruneOperations(0)).toThrow(EntityStoreSyncError);
      await store.close();

      // Reopened, the store is at a consistent state; a retry of the rejected operation is safe
      // whether or not it persisted (here it did: the process did not crash).
      await using reopened = openEntityStore({ path });
      expect(reopened.get(A)?.version).toBe(1);
      await expect(reopened.apply(create('op-2', B, 'b', 2))).resolves.toMatchObject({
        outcomes: [{ type: 'create', subject: B, version: 1 }],
      });
      expect(reopened.get(B)?.version).toBe(1);
      await expect(reopened.apply(create('op-3', C, 'c'))).resolves.toMatchObject({ replayed: false });
    });
  });

  it('keeps entities and applied operations across close and reopen', async () => {
    await using dir = await tempDir('rdf-store');
    const path = dir.join('nested', 'entities.db');
    {
      await using store = openEntityStore({ path });
      await store.apply(create('op-1', A, 'x', 7));
      await store.apply(create('op-2', B, 'b'));
      await store.apply({ operationId: 'op-3', token: 1, changes: [{ type: 'delete', subject: B }] });
      // Requested but not awaited: close commits and syncs it first.
      void store.apply(create('op-4', C, 'c'));
    }
    await using store = openEntityStore({ path });
    expect(store.get(A)).toEqual({
      subject: A,
      nquads: nq(A, 'x'),
      triples: 1,
      version: 1,
      sha256: toHex(entityDigest(nq(A, 'x'))),
      lastOperationId: 'op-1',
      lastOperationToken: 7,
    });
    expect(store.get(B)).toBeUndefined();
    expect(store.get(C)?.lastOperationId).toBe('op-4');
    expect((await store.apply(create('op-1', A, 'x', 7))).replayed).toBe(true);
    await expect(store.apply(create('op-1', A, 'x', 6))).rejects.toThrow(StaleTokenError);
  });

  it('keeps every apply whose promise resolved when the process is killed while still writing', async () => {
    await using dir = await tempDir('rdf-store');
    const path = dir.join('entities.db');
    const storeModule = fileURLToPath(new URL('../src/rdf/entity-store.ts', import.meta.url));
    const script = dir.join('apply-until-killed.mts');
    // Each turn requests 50 creates, and reports the count once all of them resolved; the
    // writer keeps going, so the kill lands among commits and syncs in flight.
    await writeFile(
      script,
      [
        `import { openEntityStore } from ${JSON.stringify(storeModule)};`,
        `const store = openEntityStore({ path: ${JSON.stringify(path)} });`,
        'let durable = 0;',
        'for (let turn = 0; turn < 2000; turn++) {',
        '  const applies = [];',
        '  for (let i = 0; i < 50; i++) {',
        '    const n = durable + i;',
        `    const subject = ${JSON.stringify(`${A}/`)} + n;`,
        '    const nquads = "<" + subject + "> <https://schema.org/name> \\"v" + n + "\\" .\\n";',
        '    applies.push(store.apply({ operationId: "op-" + n, token: 2, changes: [{ type: "create", subject, nquads }] }));',
        '  }',
        '  await Promise.all(applies);',
        '  durable += 50;',
        '  console.log("durable " + durable);',
        '}',
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    await using child = spawnNode(script);
    await child.waitForLine(/^durable 500$/, 30_000);
    await child.kill9();
    const reported = Math.max(...[...child.stdout().matchAll(/^durable (\d+)$/gm)].map((m) => Number(m[1])));
    expect(reported).toBeGreaterThanOrEqual(500);
    await using store = openEntityStore({ path });
    for (let n = 0; n < reported; n++) {
      const subject = `${A}/${n}`;
      expect(store.get(subject), subject).toMatchObject({
        nquads: nq(subject, `v${n}`),
        version: 1,
        lastOperationId: `op-${n}`,
        lastOperationToken: 2,
      });
    }
    expect((await store.apply(create('op-0', `${A}/0`, 'v0', 3))).replayed).toBe(true);
  }, 60_000);

  it('checkpoints the WAL off the event loop every N transactions, so it stays small, and loses nothing', async () => {
    await using dir = await tempDir('rdf-store-checkpoint');
    /**
     * 400 applies, one transaction each; the WAL file's size after them (its largest extent).
     * With checkpoints on, each is awaited before the next 20 applies: how fast a worker thread
     * starts and copies depends on the machine's load, and this test is about what a finished
     * checkpoint does, not how soon it finishes.
     */
    const run = async (path: string, checkpointEveryTransactions: number) => {
      await using store = openEntityStore({ path, checkpointEveryTransactions });
      for (let i = 0; i < 400; i++) {
        await store.apply({
          operationId: `op-${i}`,
          token: 1,
          changes: [{ type: 'create', subject: `${A}/${i}`, nquads: nq(`${A}/${i}`, 'x'.repeat(500)) }],
        });
        if ((i + 1) % checkpointEveryTransactions === 0) {
          const due = (i + 1) / checkpointEveryTransactions;
          await vi.waitFor(() => expect(store.stats().checkpoints).toBe(due), {
            timeout: 15_000,
            interval: 5,
          });
        }
      }
      return { stats: store.stats(), wal: (await stat(`${path}-wal`)).size };
    };
    const never = await run(dir.join('never.db'), 1_000_000);
    const path = dir.join('entities.db');
    const every20 = await run(path, 20);
    expect(never.stats.checkpoints).toBe(0);
    // Each counted checkpoint moved the whole WAL into the database, so the next write started it over.
    expect(every20.stats).toMatchObject({ transactions: 400, checkpoints: expect.any(Number) });
    expect(every20.stats.checkpoints).toBe(20);
    expect(every20.wal).toBeLessThan(never.wal / 4);
    await using reopened = openEntityStore({ path });
    for (const i of [0, 199, 399]) expect(reopened.get(`${A}/${i}`)?.version).toBe(1);
    expect((await reopened.apply(create('op-0', `${A}/0`, 'x'))).replayed).toBe(true);
  });

  it('forgets old operation outcomes when pruned', async () => {
    await using dir = await tempDir('rdf-store');
    let now = 1000;
    await using store = openEntityStore({ path: dir.join('entities.db'), clock: () => now });
    await store.apply(create('op-1', A, 'x'));
    now = 2000;
    await store.apply(create('op-2', B, 'b'));
    expect(store.pruneOperations(1500)).toBe(1);
    await expect(store.apply(create('op-1', A, 'x'))).rejects.toThrow(EntityExistsError);
    expect(
      (await store.apply({ operationId: 'op-2', token: 1, changes: [{ type: 'delete', subject: B }] })).replayed,
    ).toBe(true);
  });

  it('throws once closed, and refuses bad options', async () => {
    await using dir = await tempDir('rdf-store');
    const store = openEntityStore({ path: dir.join('entities.db') });
    await Promise.all([store.close(), store.close()]);
    await store.close();
    expect(() => store.get(A)).toThrow(EntityStoreClosedError);
    await expect(store.apply(create('op-1', A, 'x'))).rejects.toThrow(EntityStoreClosedError);
    expect(() => openEntityStore({ path: '' })).toThrow(
      expect.objectContaining({ code: 'UNRDF_DAEMON_INVALID_INPUT' }),
    );
    expect(() => openEntityStore({ path: dir.join('x.db'), maxBatch: 0 })).toThrow(
      expect.objectContaining({ code: 'UNRDF_DAEMON_INVALID_INPUT' }),
    );
  });
});
