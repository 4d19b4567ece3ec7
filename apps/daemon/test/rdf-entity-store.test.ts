import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { entityDigest, toHex } from '../src/rdf/canonical.js';
import { openEntityStore } from '../src/rdf/entity-store.js';
import { EntityExistsError, EntityNotFoundError, EntityStoreClosedError, StaleTokenError } from '../src/rdf/errors.js';

const A = 'https://example.org/a';
const B = 'https://example.org/b';
const nq = (s: string, v: string) => `<${s}> <https://schema.org/name> "${v}" .\n`;

describe('openEntityStore', () => {
  describe('apply', () => {
    it('creates, updates and deletes an entity, bumping its version each time', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      expect(store.get(A)).toBeUndefined();
      const created = store.apply({
        operationId: 'op-1',
        token: 1,
        changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }],
      });
      expect(created).toEqual({
        replayed: false,
        outcomes: [{ type: 'create', subject: A, version: 1, triples: 1, sha256: toHex(entityDigest(nq(A, 'x'))) }],
      });
      store.apply({ operationId: 'op-2', token: 3, changes: [{ type: 'update', subject: A, nquads: nq(A, 'y') }] });
      expect(store.get(A)).toMatchObject({
        nquads: nq(A, 'y'),
        version: 2,
        lastOperationId: 'op-2',
        lastOperationToken: 3,
      });
      const deleted = store.apply({ operationId: 'op-3', token: 1, changes: [{ type: 'delete', subject: A }] });
      expect(deleted.outcomes).toEqual([{ type: 'delete', subject: A, version: 3, triples: 0, sha256: null }]);
      expect(store.get(A)).toBeUndefined();
      // A re-created entity continues its version, so versions never repeat for one subject.
      store.apply({ operationId: 'op-4', token: 1, changes: [{ type: 'create', subject: A, nquads: nq(A, 'z') }] });
      expect(store.get(A)?.version).toBe(4);
    });

    it('refuses create of an existing entity and update or delete of a missing one', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      store.apply({ operationId: 'op-1', token: 1, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
      expect(() =>
        store.apply({ operationId: 'op-2', token: 1, changes: [{ type: 'create', subject: A, nquads: nq(A, 'y') }] }),
      ).toThrow(EntityExistsError);
      expect(() =>
        store.apply({ operationId: 'op-3', token: 1, changes: [{ type: 'update', subject: B, nquads: nq(B, 'y') }] }),
      ).toThrow(EntityNotFoundError);
      expect(() => store.apply({ operationId: 'op-4', token: 1, changes: [{ type: 'delete', subject: B }] })).toThrow(
        expect.objectContaining({ code: 'UNRDF_RDF_ENTITY_NOT_FOUND', subject: B }),
      );
      expect(store.get(A)).toMatchObject({ nquads: nq(A, 'x'), version: 1 });
      // A refused operation left no outcome behind: the same id may apply once the entity exists.
      store.apply({ operationId: 'op-3', token: 2, changes: [{ type: 'create', subject: B, nquads: nq(B, 'b') }] });
      expect(store.get(B)?.version).toBe(1);
    });

    it('returns the stored outcome when the same operation is applied again, without applying it twice', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      store.apply({ operationId: 'op-1', token: 1, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
      const first = store.apply({
        operationId: 'op-2',
        token: 1,
        changes: [{ type: 'update', subject: A, nquads: nq(A, 'y') }],
      });
      const retry = store.apply({
        operationId: 'op-2',
        token: 2,
        changes: [{ type: 'update', subject: A, nquads: nq(A, 'y') }],
      });
      expect(retry).toEqual({ replayed: true, outcomes: first.outcomes });
      expect(store.get(A)?.version).toBe(2);
      // A create retried after it applied is not refused as "exists": it replays.
      expect(
        store.apply({ operationId: 'op-1', token: 5, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] }),
      ).toMatchObject({ replayed: true, outcomes: [{ type: 'create', version: 1 }] });
    });

    it('refuses a change whose fencing token is older than the one that applied the operation', async () => {
      await using dir = await tempDir('rdf-store');
      await using store = openEntityStore({ path: dir.join('entities.db') });
      store.apply({ operationId: 'op-1', token: 4, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
      const stale = () =>
        store.apply({ operationId: 'op-1', token: 3, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
      expect(stale).toThrow(StaleTokenError);
      expect(stale).toThrow(expect.objectContaining({ code: 'UNRDF_RDF_STALE_TOKEN', token: 3, appliedToken: 4 }));
      // A newer attempt's replay raises the recorded token, so the one before it is now stale too.
      store.apply({ operationId: 'op-1', token: 6, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
      expect(() =>
        store.apply({ operationId: 'op-1', token: 5, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] }),
      ).toThrow(StaleTokenError);
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
      expect(() => store.apply(failing)).toThrow(
        expect.objectContaining({ code: 'UNRDF_RDF_ENTITY_NOT_FOUND', index: 2 }),
      );
      expect(store.get(A)).toBeUndefined();
      const ok = store.apply({ ...failing, changes: failing.changes.slice(0, 2) });
      expect(ok.outcomes.map((o) => o.version)).toEqual([1, 2]);
      expect(store.get(A)?.nquads).toBe(nq(A, 'y'));
    });
  });

  it('keeps entities and applied operations across close and reopen', async () => {
    await using dir = await tempDir('rdf-store');
    const path = dir.join('nested', 'entities.db');
    {
      await using store = openEntityStore({ path });
      store.apply({ operationId: 'op-1', token: 7, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
      store.apply({ operationId: 'op-2', token: 1, changes: [{ type: 'create', subject: B, nquads: nq(B, 'b') }] });
      store.apply({ operationId: 'op-3', token: 1, changes: [{ type: 'delete', subject: B }] });
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
    expect(
      store.apply({ operationId: 'op-1', token: 7, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] })
        .replayed,
    ).toBe(true);
    expect(() =>
      store.apply({ operationId: 'op-1', token: 6, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] }),
    ).toThrow(StaleTokenError);
  });

  it('keeps an applied change when the process is killed right after apply returns', async () => {
    await using dir = await tempDir('rdf-store');
    const path = dir.join('entities.db');
    const storeModule = fileURLToPath(new URL('../src/rdf/entity-store.ts', import.meta.url));
    const script = dir.join('apply-then-hang.ts');
    await writeFile(
      script,
      [
        `import { openEntityStore } from ${JSON.stringify(storeModule)};`,
        `const store = openEntityStore({ path: ${JSON.stringify(path)} });`,
        `store.apply({ operationId: 'op-1', token: 2, changes: [{ type: 'create', subject: ${JSON.stringify(A)}, nquads: ${JSON.stringify(nq(A, 'x'))} }] });`,
        `console.log('applied');`,
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    await using child = spawnNode(script);
    await child.waitForLine(/^applied$/, 20_000);
    await child.kill9();
    await using store = openEntityStore({ path });
    expect(store.get(A)).toMatchObject({
      nquads: nq(A, 'x'),
      version: 1,
      lastOperationId: 'op-1',
      lastOperationToken: 2,
    });
    expect(
      store.apply({ operationId: 'op-1', token: 3, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] })
        .replayed,
    ).toBe(true);
  });

  it('forgets old operation outcomes when pruned', async () => {
    await using dir = await tempDir('rdf-store');
    let now = 1000;
    await using store = openEntityStore({ path: dir.join('entities.db'), clock: () => now });
    store.apply({ operationId: 'op-1', token: 1, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] });
    now = 2000;
    store.apply({ operationId: 'op-2', token: 1, changes: [{ type: 'create', subject: B, nquads: nq(B, 'b') }] });
    expect(store.pruneOperations(1500)).toBe(1);
    expect(() =>
      store.apply({ operationId: 'op-1', token: 1, changes: [{ type: 'create', subject: A, nquads: nq(A, 'x') }] }),
    ).toThrow(EntityExistsError);
    expect(store.apply({ operationId: 'op-2', token: 1, changes: [{ type: 'delete', subject: B }] }).replayed).toBe(
      true,
    );
  });

  it('throws once closed, and refuses bad options', async () => {
    await using dir = await tempDir('rdf-store');
    const store = openEntityStore({ path: dir.join('entities.db') });
    store.close();
    store.close();
    expect(() => store.get(A)).toThrow(EntityStoreClosedError);
    expect(() => openEntityStore({ path: '' })).toThrow(
      expect.objectContaining({ code: 'UNRDF_DAEMON_INVALID_INPUT' }),
    );
  });
});
