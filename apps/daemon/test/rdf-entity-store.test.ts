import { existsSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { type Command, CompletionRefusedError, createStateMachine } from '@unrdf/queue';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { entityDigest, toHex } from '../src/rdf/canonical.js';
import { createEntityStore, type EntityChange, type EntityStore } from '../src/rdf/entity-store.js';
import { EntityExistsError, EntityNotFoundError, EntityStoreClosedError } from '../src/rdf/errors.js';

const A = 'https://example.org/a';
const B = 'https://example.org/b';
const nq = (s: string, v: string) => `<${s}> <https://schema.org/name> "${v}" .\n`;
const created = (subject: string, value: string): EntityChange => ({
  type: 'create',
  subject,
  nquads: nq(subject, value),
});

/** A real queue state machine (SQLite store) with the entity store as its extension. */
async function open(path: string, store: EntityStore = createEntityStore()) {
  const sm = createStateMachine({ path, extensions: [store.extension] });
  let n = 0;
  /** Enqueues and claims an operation; returns its id and token. */
  const start = () => {
    const id = `op-${++n}`;
    const at = 1_000 + n;
    sm.apply({
      kind: 'enqueue',
      at,
      id,
      type: 'create',
      payload: 'null',
      priority: 0,
      runAt: at,
      groupKey: null,
      idempotencyKey: null,
      maxAttempts: 3,
    });
    sm.apply({ kind: 'claim', at, id, epoch: 1 });
    return { id, token: 1 };
  };
  const complete = (op: { id: string; token: number }, effects?: unknown) =>
    sm.apply({
      kind: 'complete',
      at: 2_000,
      id: op.id,
      token: op.token,
      result: 'null',
      ...(effects === undefined ? {} : { effects: JSON.stringify(effects) }),
    } as Command & { kind: 'complete' });
  /** Plans the changes and commits them with a fresh operation's completion. */
  const apply = (changes: readonly EntityChange[]) => {
    const op = start();
    const plan = store.plan(changes);
    complete(op, plan.effects);
    return { op, plan };
  };
  return { sm, store, start, complete, apply };
}

describe('createEntityStore', () => {
  it('plans changes against the committed state, and the completion applies them', async () => {
    await using dir = await tempDir('rdf-store');
    const { sm, store, start, complete, apply } = await open(dir.join('daemon.db'));
    try {
      const plan = store.plan([created(A, 'x')]);
      expect(plan.outcomes).toEqual([
        { type: 'create', subject: A, version: 1, triples: 1, sha256: toHex(entityDigest(nq(A, 'x'))) },
      ]);
      // A plan writes nothing.
      expect(store.get(A)).toBeUndefined();
      const op = start();
      complete(op, plan.effects);
      expect(store.get(A)).toEqual({
        subject: A,
        nquads: nq(A, 'x'),
        triples: 1,
        version: 1,
        sha256: toHex(entityDigest(nq(A, 'x'))),
        lastOperationId: op.id,
        lastOperationToken: 1,
      });
      apply([{ type: 'update', subject: A, nquads: nq(A, 'y') }]);
      apply([{ type: 'delete', subject: A }]);
      expect(store.get(A)).toBeUndefined();
      // A re-created entity continues its versions.
      expect(apply([created(A, 'z')]).plan.outcomes[0]?.version).toBe(4);
      expect(store.stats()).toEqual({ applied: 4, refused: 0, imported: 0 });
    } finally {
      sm.close();
    }
  });

  it('refuses create of an existing entity and update or delete of a missing one, naming the batch member', async () => {
    await using dir = await tempDir('rdf-store');
    const { sm, store, apply } = await open(dir.join('daemon.db'));
    try {
      apply([created(A, 'x')]);
      expect(() => store.plan([created(A, 'again')])).toThrow(EntityExistsError);
      expect(() => store.plan([{ type: 'update', subject: B, nquads: nq(B, 'b') }])).toThrow(EntityNotFoundError);
      // In a batch, later changes see earlier ones: create then update B is fine, a second create is not.
      const batch = store.plan([created(B, 'b'), { type: 'update', subject: B, nquads: nq(B, 'c') }]);
      expect(batch.outcomes.map((o) => o.version)).toEqual([1, 2]);
      expect(() => store.plan([created(B, 'b'), created(B, 'b')])).toThrow(
        expect.objectContaining({ code: 'UNRDF_RDF_ENTITY_EXISTS', subject: B, index: 1 }),
      );
    } finally {
      sm.close();
    }
  });

  it('refuses a completion whose plan is out of date, and applies none of its changes', async () => {
    await using dir = await tempDir('rdf-store');
    const { sm, store, start, complete, apply } = await open(dir.join('daemon.db'));
    try {
      apply([created(A, 'x')]);
      const stale = store.plan([created(B, 'b'), { type: 'update', subject: A, nquads: nq(A, 'stale') }]);
      apply([{ type: 'update', subject: A, nquads: nq(A, 'first') }]);
      const op = start();
      const error = (() => {
        try {
          complete(op, stale.effects);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(CompletionRefusedError);
      expect(error).toMatchObject({ retry: true });
      // All or nothing: B (planned first, still valid) is not there either; the operation is still running.
      expect(store.get(B)).toBeUndefined();
      expect(store.get(A)).toMatchObject({ version: 2, nquads: nq(A, 'first') });
      expect(sm.db.prepare('SELECT state FROM operations WHERE id = ?').get(op.id)).toEqual({ state: 'running' });
      expect(store.stats()).toMatchObject({ applied: 2, refused: 1 });
      // Sharing a transaction with a refused completion: the batch rolls back and is replayed one
      // command at a time, so the good one commits once and is counted once.
      const good = start();
      const goodPlan = store.plan([created('https://example.org/c', 'c')]);
      const outcomes = sm.applyBatch([
        {
          kind: 'complete',
          at: 3_000,
          id: good.id,
          token: 1,
          result: 'null',
          effects: JSON.stringify(goodPlan.effects),
        },
        { kind: 'complete', at: 3_000, id: op.id, token: 1, result: 'null', effects: JSON.stringify(stale.effects) },
      ]);
      expect(outcomes.map((o) => o.ok)).toEqual([true, false]);
      expect(store.get('https://example.org/c')?.version).toBe(1);
      expect(store.stats()).toMatchObject({ applied: 3 });
    } finally {
      sm.close();
    }
  });

  it('ignores stale completions and other effects, and refuses malformed ones for good', async () => {
    await using dir = await tempDir('rdf-store');
    const { sm, store, start, complete } = await open(dir.join('daemon.db'));
    try {
      const op = start();
      const plan = store.plan([created(A, 'x')]);
      // A completion with an old fencing token is not applied, so neither are its effects.
      complete({ id: op.id, token: 7 }, plan.effects);
      expect(store.get(A)).toBeUndefined();
      complete(start(), { kind: 'someone-else/v1', changes: [created(A, 'x')] });
      complete(start(), 'not even an object');
      expect(store.get(A)).toBeUndefined();
      expect(() =>
        complete(start(), { ...plan.effects, changes: [{ type: 'create', subject: A, version: 1 }] }),
      ).toThrow(expect.objectContaining({ name: 'CompletionRefusedError', retry: false }));
      complete(op, plan.effects);
      expect(store.get(A)?.version).toBe(1);
    } finally {
      sm.close();
    }
  });

  it('keeps entities across close and reopen, and says when it is not open', async () => {
    await using dir = await tempDir('rdf-store');
    const path = dir.join('daemon.db');
    const store = createEntityStore();
    expect(() => store.get(A)).toThrow(EntityStoreClosedError);
    expect(() => store.plan([created(A, 'x')])).toThrow(EntityStoreClosedError);
    const first = await open(path, store);
    first.apply([created(A, 'x')]);
    first.sm.close();
    expect(() => store.get(A)).toThrow(EntityStoreClosedError);
    const again = await open(path);
    try {
      expect(again.store.get(A)).toMatchObject({ version: 1, nquads: nq(A, 'x') });
    } finally {
      again.sm.close();
    }
    expect(() => createEntityStore({ importFrom: '' })).toThrow(/importFrom/);
  });

  it('copies a stand-alone entities.db of an earlier version in once, then renames it', async () => {
    await using dir = await tempDir('rdf-store');
    const legacyPath = dir.join('entities.db');
    const legacy = new DatabaseSync(legacyPath);
    legacy.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE rdf_entity (subject TEXT PRIMARY KEY, nquads TEXT NOT NULL, triples INTEGER NOT NULL,
        version INTEGER NOT NULL, deleted INTEGER NOT NULL, last_op_id TEXT NOT NULL, last_op_token INTEGER NOT NULL) STRICT;
      CREATE TABLE rdf_operation (op_id TEXT PRIMARY KEY, token INTEGER NOT NULL, outcomes TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;`);
    legacy.prepare('INSERT INTO rdf_entity VALUES (?, ?, 1, 3, 0, ?, 2)').run(A, nq(A, 'old'), 'op-old');
    legacy.prepare("INSERT INTO rdf_entity VALUES (?, '', 0, 2, 1, 'op-gone', 1)").run(B);
    legacy.close();

    const path = dir.join('daemon.db');
    const store = createEntityStore({ importFrom: legacyPath });
    const first = await open(path, store);
    try {
      expect(store.stats().imported).toBe(2);
      expect(existsSync(legacyPath)).toBe(false);
      expect(existsSync(`${legacyPath}.imported`)).toBe(true);
      expect(store.get(A)).toMatchObject({ version: 3, nquads: nq(A, 'old'), lastOperationId: 'op-old' });
      expect(store.get(B)).toBeUndefined();
      // The deleted entity's version carries on.
      expect(first.apply([created(B, 'new')]).plan.outcomes[0]?.version).toBe(3);
    } finally {
      first.sm.close();
    }
    const second = createEntityStore({ importFrom: legacyPath });
    const reopened = await open(path, second);
    try {
      expect(second.stats().imported).toBe(0);
      expect(second.get(B)?.version).toBe(3);
    } finally {
      reopened.sm.close();
    }
  });
});
