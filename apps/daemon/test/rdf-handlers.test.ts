import { createHash } from 'node:crypto';
import type { DaemonHandlerContext, HandlerDefinition } from '@unrdf/daemon';
import { InvalidInputError, prepareSubmission } from '@unrdf/daemon';
import { CompletionRefusedError, createStateMachine, type StateMachine, UnrecoverableError } from '@unrdf/queue';
import { tempDir } from '@unrdf/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalDescription, changeDigest, entityDigest, toHex } from '../src/rdf/canonical.js';
import { createEntityStore, type EntityStore } from '../src/rdf/entity-store.js';
import { type BatchOutput, createRdfHandlers } from '../src/rdf/handlers.js';

const ALICE = 'https://example.org/people/alice';
const BOB = 'https://example.org/people/bob';
const GROUP = 'urn:example:batch-group';
const turtle = (subject: string, name: string) =>
  `@prefix s: <https://schema.org/> . <${subject}> s:name ${JSON.stringify(name)} ; s:address [ s:city "Paris" ] .`;
const canonicalOf = (subject: string, name: string) => {
  const result = canonicalDescription(turtle(subject, name), 'text/turtle');
  if (!result.ok) throw new Error(result.issues.join('\n'));
  return result.value.nquads;
};

let nextId = 0;
/** The effects each operation's handler set last (what the queue carries on the completion). */
const effectsOf = new Map<string, unknown>();
function context(type: string, subject: string, over: Partial<DaemonHandlerContext> = {}): DaemonHandlerContext {
  nextId += 1;
  const ctx: DaemonHandlerContext = {
    id: `op-${nextId}`,
    type,
    subject,
    attempt: 1,
    token: 1,
    idempotencyKey: `op-${nextId}`,
    nodeId: 'node-1',
    // No digest from a submit: the handler canonicalizes the input itself.
    inputDigest: '',
    signal: new AbortController().signal,
    setEffects: (effects) => effectsOf.set(ctx.id, effects),
    ...over,
  };
  return ctx;
}

/** The queue's state machine (a real SQLite store) with the entity store as its extension. */
let machine: StateMachine | undefined;

/**
 * Runs an attempt the way the daemon's queue does: the operation is enqueued and claimed in the
 * store, the handler runs, and its outcome is committed as a `complete` command carrying the
 * effects it set (the entity store applies them in that transaction). `lose` drops the
 * completion, as a crash before its commit would.
 */
async function attempt(
  definition: HandlerDefinition,
  input: unknown,
  ctx: DaemonHandlerContext,
  options: { readonly lose?: boolean } = {},
): Promise<unknown> {
  const sm = machine as StateMachine;
  const at = Date.now();
  const existing = sm.db.prepare('SELECT state FROM operations WHERE id = ?').get(ctx.id) as
    | { state: string }
    | undefined;
  if (existing === undefined) {
    sm.apply({
      kind: 'enqueue',
      at,
      id: ctx.id,
      type: ctx.type,
      payload: JSON.stringify(input ?? null),
      priority: 0,
      runAt: at,
      groupKey: null,
      idempotencyKey: null,
      maxAttempts: 5,
    });
  }
  if (existing === undefined || existing.state === 'pending') sm.apply({ kind: 'claim', at, id: ctx.id, epoch: 1 });
  effectsOf.delete(ctx.id);
  const output = await definition.handler(input, ctx);
  if (!options.lose) commit(ctx, output);
  return output;
}

/** Commits the completion of the operation's running attempt with the effects its handler set last. */
function commit(ctx: DaemonHandlerContext, output: unknown): void {
  const sm = machine as StateMachine;
  const { token } = sm.db.prepare('SELECT token FROM operations WHERE id = ?').get(ctx.id) as { token: number };
  const effects = effectsOf.get(ctx.id);
  sm.apply({
    kind: 'complete',
    at: Date.now(),
    id: ctx.id,
    token,
    result: JSON.stringify(output ?? null),
    ...(effects === undefined ? {} : { effects: JSON.stringify(effects) }),
  });
}

/** The digest bytes of a definition's inputDigest (which may also prepare a value for the handler). */
function digestOf(
  definition: HandlerDefinition,
  input: unknown,
  operation?: { readonly subject: string; readonly type: string },
): Uint8Array {
  const digest = definition.inputDigest?.(input, operation);
  if (digest === undefined) throw new Error('the definition has no inputDigest');
  return digest instanceof Uint8Array ? digest : digest.digest;
}

/** Runs a definition the way the daemon does: prepareSubmission at submit, then the attempt. */
async function submitAndRun(definition: HandlerDefinition, input: unknown, ctx: DaemonHandlerContext) {
  const prepared = prepareSubmission(
    { type: ctx.type, subject: ctx.subject, input },
    () => definition,
    () => [ctx.type],
  );
  // The daemon hands the handler the digest it computed at submit, and what it prepared.
  const output = await attempt(definition, prepared.input, {
    ...ctx,
    inputDigest: prepared.inputDigest,
    ...(prepared.prepared === undefined ? {} : { prepared: prepared.prepared }),
  });
  const inputDigest = new Uint8Array(Buffer.from(prepared.inputDigest, 'hex'));
  return { inputDigest, output, outputDigest: definition.outputDigest?.(output) };
}

async function withStore<T>(fn: (store: EntityStore) => Promise<T>): Promise<T> {
  await using dir = await tempDir('rdf-handlers');
  const store = createEntityStore();
  machine = createStateMachine({ path: dir.join('daemon.db'), extensions: [store.extension] });
  try {
    return await fn(store);
  } finally {
    machine.close();
    machine = undefined;
  }
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('createRdfHandlers', () => {
  it('gives all four types subject serialisation and a crash-safe retry policy', () =>
    withStore(async (store) => {
      const handlers = createRdfHandlers(store, { timeoutMs: 5000, maxAttempts: 3 });
      expect(Object.keys(handlers).sort()).toEqual(['batch', 'create', 'delete', 'update']);
      for (const definition of Object.values(handlers)) {
        expect(definition).toMatchObject({
          serialize: 'subject',
          crashPolicy: 'retry',
          timeoutMs: 5000,
          maxAttempts: 3,
        });
      }
      expect(typeof handlers.batch.batchMembers).toBe('function');
    }));

  it('refuses bad options', () =>
    withStore(async (store) => {
      expect(() => createRdfHandlers(store, { maxTriples: 0 })).toThrow(InvalidInputError);
    }));

  describe('create, update and delete', () => {
    it('apply a change and commit to its canonical form in the digests', () =>
      withStore(async (store) => {
        const { create, update, delete: remove } = createRdfHandlers(store);
        const created = await submitAndRun(create, { data: turtle(ALICE, 'Alice') }, context('create', ALICE));
        const nquads = canonicalOf(ALICE, 'Alice');
        expect(created.output).toEqual({
          subject: ALICE,
          version: 1,
          triples: 3,
          sha256: toHex(entityDigest(nquads)),
          nquads,
        });
        expect(created.inputDigest).toEqual(
          new Uint8Array(createHash('sha256').update(`unrdf-rdf-change/v1\0create\0${nquads}`).digest()),
        );
        expect(created.outputDigest).toEqual(new Uint8Array(createHash('sha256').update(nquads).digest()));

        const updated = await submitAndRun(update, { data: turtle(ALICE, 'Alicia') }, context('update', ALICE));
        expect(updated.output).toMatchObject({ version: 2, triples: 3 });
        expect(updated.inputDigest).toEqual(changeDigest('update', canonicalOf(ALICE, 'Alicia')));
        expect(store.get(ALICE)?.nquads).toBe(canonicalOf(ALICE, 'Alicia'));

        const deleted = await submitAndRun(remove, undefined, context('delete', ALICE));
        expect(deleted.output).toEqual({ subject: ALICE, version: 3, triples: 0, sha256: null });
        expect(deleted.outputDigest).toBeNull();
        expect(deleted.inputDigest).toEqual(changeDigest('delete', ''));
        expect(digestOf(remove, null)).toEqual(changeDigest('delete', ''));
        expect(store.get(ALICE)).toBeUndefined();
      }));

    it('accepts N-Triples with the same digest as equivalent Turtle', () =>
      withStore(async (store) => {
        const { create } = createRdfHandlers(store);
        const ntriples = [
          `_:addr <https://schema.org/city> "Paris" .`,
          `<${ALICE}> <https://schema.org/address> _:addr .`,
          `<${ALICE}> <https://schema.org/name> "Alice" .`,
        ].join('\n');
        expect(digestOf(create, { data: ntriples, format: 'application/n-triples' })).toEqual(
          digestOf(create, { data: turtle(ALICE, 'Alice') }),
        );
      }));

    it('omits the N-Quads from outputs larger than maxOutputNquadsBytes', () =>
      withStore(async (store) => {
        const { create } = createRdfHandlers(store, { maxOutputNquadsBytes: 0 });
        const { output } = await submitAndRun(create, { data: turtle(ALICE, 'Alice') }, context('create', ALICE));
        expect(output).not.toHaveProperty('nquads');
      }));

    it('fail unrecoverably when the entity exists (create) or is missing (update, delete)', () =>
      withStore(async (store) => {
        const { create, update, delete: remove } = createRdfHandlers(store);
        await attempt(create, { data: turtle(ALICE, 'Alice') }, context('create', ALICE));
        await expect(attempt(create, { data: turtle(ALICE, 'Again') }, context('create', ALICE))).rejects.toThrow(
          UnrecoverableError,
        );
        await expect(attempt(create, { data: turtle(ALICE, 'Again') }, context('create', ALICE))).rejects.toMatchObject(
          {
            cause: { code: 'UNRDF_RDF_ENTITY_EXISTS' },
          },
        );
        await expect(attempt(update, { data: turtle(BOB, 'Bob') }, context('update', BOB))).rejects.toThrow(
          UnrecoverableError,
        );
        await expect(attempt(remove, null, context('delete', BOB))).rejects.toThrow(/does not exist/);
        expect(store.get(ALICE)?.version).toBe(1);
      }));

    it('fail unrecoverably when the data describes another entity than the operation subject', () =>
      withStore(async (store) => {
        const { create } = createRdfHandlers(store);
        await expect(attempt(create, { data: turtle(BOB, 'Bob') }, context('create', ALICE))).rejects.toThrow(
          /describes <https:\/\/example.org\/people\/bob>, not the operation's subject/,
        );
        expect(store.get(ALICE)).toBeUndefined();
        expect(store.get(BOB)).toBeUndefined();
        // A caller that passes the subject to inputDigest refuses the mismatch at submit.
        const error = caught(() => digestOf(create, { data: turtle(BOB, 'Bob') }, { subject: ALICE, type: 'create' }));
        expect(error).toBeInstanceOf(InvalidInputError);
      }));

    it('write nothing until the completion commits: after a lost completion the next attempt applies once', () =>
      withStore(async (store) => {
        const { create, update } = createRdfHandlers(store);
        await attempt(create, { data: turtle(ALICE, 'Alice') }, context('create', ALICE));
        const first = context('update', ALICE, { id: 'op-upd' });
        const planned = await attempt(update, { data: turtle(ALICE, 'Alicia') }, first, { lose: true });
        // The handler only planned: the process died before the completion (and its effects) committed.
        expect(store.get(ALICE)).toMatchObject({ version: 1, nquads: canonicalOf(ALICE, 'Alice') });
        const retry = await attempt(update, { data: turtle(ALICE, 'Alicia') }, { ...first, attempt: 2, token: 2 });
        expect(retry).toEqual(planned);
        expect(store.get(ALICE)).toMatchObject({
          version: 2,
          nquads: canonicalOf(ALICE, 'Alicia'),
          lastOperationId: 'op-upd',
          lastOperationToken: 1,
        });
      }));

    it('use what submit prepared (ctx.prepared) instead of canonicalizing again', () =>
      withStore(async (store) => {
        const { create, batch } = createRdfHandlers(store);
        const submitted = prepareSubmission(
          { type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'At submit') } },
          () => create,
          () => ['create'],
        );
        expect(submitted.prepared).toMatchObject({ subject: ALICE, nquads: canonicalOf(ALICE, 'At submit') });
        expect(submitted.preparedBytes).toBeGreaterThan(canonicalOf(ALICE, 'At submit').length);
        // The store's copy of the input would give another description: what submit prepared decides.
        const output = await attempt(
          create,
          { data: turtle(ALICE, 'Not this') },
          context('create', ALICE, { inputDigest: submitted.inputDigest, prepared: submitted.prepared }),
        );
        expect(output).toMatchObject({ sha256: toHex(entityDigest(canonicalOf(ALICE, 'At submit'))) });
        // Only for the subject it describes: another operation canonicalizes its own input.
        await attempt(create, { data: turtle(BOB, 'Bob') }, context('create', BOB, { prepared: submitted.prepared }));
        expect(store.get(BOB)?.nquads).toBe(canonicalOf(BOB, 'Bob'));
        // A batch too.
        const members = { operations: [{ type: 'update', subject: BOB, input: { data: turtle(BOB, 'Robert') } }] };
        const batchSubmitted = prepareSubmission(
          { type: 'batch', subject: GROUP, input: members },
          () => batch,
          () => ['batch'],
        );
        await attempt(
          batch,
          { operations: [{ type: 'delete', subject: BOB }] },
          context('batch', GROUP, { inputDigest: batchSubmitted.inputDigest, prepared: batchSubmitted.prepared }),
        );
        expect(store.get(BOB)?.nquads).toBe(canonicalOf(BOB, 'Robert'));
      }));

    it('does not write when the signal has already aborted', () =>
      withStore(async (store) => {
        const { create } = createRdfHandlers(store);
        const controller = new AbortController();
        controller.abort(new Error('timed out'));
        await expect(
          attempt(create, { data: turtle(ALICE, 'Alice') }, context('create', ALICE, { signal: controller.signal })),
        ).rejects.toThrow('timed out');
        expect(store.get(ALICE)).toBeUndefined();
      }));
  });

  describe('input validation at submit', () => {
    it('refuses malformed input shapes in the schema', () =>
      withStore(async (store) => {
        const { create, delete: remove, batch } = createRdfHandlers(store);
        expect(create.inputSchema?.safeParse({ data: '' }).success).toBe(false);
        expect(create.inputSchema?.safeParse({ data: 'x', format: 'application/ld+json' }).success).toBe(false);
        expect(create.inputSchema?.safeParse({ data: 'x', extra: 1 }).success).toBe(false);
        expect(create.inputSchema?.safeParse({ data: `<${ALICE}> <https://ex.org/p> "\uD800" .` }).success).toBe(false);
        expect(remove.inputSchema?.safeParse({ data: 'x' }).success).toBe(false);
        expect(batch.inputSchema?.safeParse({ operations: [] }).success).toBe(false);
        const tooMany = Array.from({ length: 1001 }, () => ({ type: 'delete', subject: ALICE }));
        expect(batch.inputSchema?.safeParse({ operations: tooMany }).success).toBe(false);
        expect(batch.inputSchema?.safeParse({ operations: [{ type: 'delete', subject: 'not an iri' }] }).success).toBe(
          false,
        );
      }));

    it('refuses bad RDF from inputDigest with input.path: message issues', () =>
      withStore(async (store) => {
        const { create, update } = createRdfHandlers(store, { maxTriples: 2 });
        const syntax = caught(() => digestOf(create, { data: `<${ALICE}> <https://schema.org/name> .` }));
        expect(syntax).toBeInstanceOf(InvalidInputError);
        expect((syntax as InvalidInputError).what).toBe("input of 'create'");
        expect((syntax as InvalidInputError).issues).toEqual([
          expect.stringMatching(/^input\.data: is not valid text\/turtle: /),
        ]);
        const other = caught(() =>
          digestOf(update, {
            data: `<${ALICE}> <https://schema.org/knows> <${BOB}> . <${BOB}> <https://schema.org/name> "Bob" .`,
          }),
        ) as InvalidInputError;
        expect(other.issues).toEqual([expect.stringMatching(/^input\.data: describes 2 IRI subjects/)]);
        const big = caught(() => digestOf(create, { data: `<${ALICE}> <https://schema.org/n> 1, 2, 3 .` }));
        expect((big as InvalidInputError).issues).toEqual(['input.data: holds 3 triples; at most 2 are allowed']);
        const shape = caught(() => digestOf(create, { text: 'x' })) as InvalidInputError;
        expect(shape.issues).toContain('input.data: Invalid input: expected string, received undefined');
      }));

    it('refuses a batch naming each bad member by its path', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store);
        const error = caught(() =>
          digestOf(batch, {
            operations: [
              { type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'Alice') } },
              { type: 'create', subject: BOB, input: { data: turtle(ALICE, 'Alice') } },
              { type: 'update', subject: BOB, input: { data: '_:x <https://schema.org/name> "x" .' } },
            ],
          }),
        ) as InvalidInputError;
        expect(error).toBeInstanceOf(InvalidInputError);
        expect(error.issues).toEqual([
          `input.operations.1.input.data: describes <${ALICE}>, not the operation's subject <${BOB}>`,
          expect.stringMatching(/^input\.operations\.2\.input\.data: has no IRI subject/),
        ]);
        const shape = caught(() => digestOf(batch, { operations: [{ type: 'rename', subject: ALICE }] }));
        expect((shape as InvalidInputError).issues[0]).toMatch(/^input\.operations\.0\.type: /);
      }));

    it('refuses a batch whose data together exceed maxBatchDataBytes', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store, { maxBatchDataBytes: 150 });
        const error = caught(() =>
          digestOf(batch, {
            operations: [
              { type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'Alice') } },
              { type: 'create', subject: BOB, input: { data: turtle(BOB, 'Bob') } },
            ],
          }),
        ) as InvalidInputError;
        expect(error.issues).toEqual([
          expect.stringMatching(/^input\.operations: the data total \d+ bytes; at most 150/),
        ]);
      }));
  });

  it('has a completion refused when its plan went stale, and the next attempt plans again', () =>
    withStore(async (store) => {
      const { create, update, batch } = createRdfHandlers(store);
      await attempt(create, { data: turtle(ALICE, 'Alice') }, context('create', ALICE));
      // Two attempts plan against version 1; a batch (serialised on its own group, not on ALICE)
      // commits first, so the update's plan is out of date when its completion comes.
      const slow = context('update', ALICE);
      const planned = await attempt(update, { data: turtle(ALICE, 'Slow') }, slow, { lose: true });
      expect(planned).toMatchObject({ version: 2 });
      const racing = { operations: [{ type: 'update', subject: ALICE, input: { data: turtle(ALICE, 'Batch') } }] };
      await attempt(batch, racing, context('batch', GROUP));
      const refused = (() => {
        try {
          commit(slow, planned);
        } catch (error) {
          return error;
        }
      })();
      expect(refused).toBeInstanceOf(CompletionRefusedError);
      expect(refused).toMatchObject({
        retry: true,
        message: expect.stringMatching(/changed after this attempt read it/),
      });
      expect(store.get(ALICE)).toMatchObject({ version: 2, nquads: canonicalOf(ALICE, 'Batch') });
      expect(store.stats()).toMatchObject({ refused: 1 });
      // The retry reads version 2 and applies on top of it.
      expect(await attempt(update, { data: turtle(ALICE, 'Slow') }, { ...slow, attempt: 2 })).toMatchObject({
        version: 3,
      });
      expect(store.get(ALICE)).toMatchObject({ version: 3, nquads: canonicalOf(ALICE, 'Slow') });
      // A create whose entity appeared meanwhile is refused the same way (the retry then fails for good).
      const late = context('create', BOB);
      const lateOutput = await attempt(create, { data: turtle(BOB, 'Bob') }, late, { lose: true });
      await attempt(create, { data: turtle(BOB, 'Bob 2') }, context('create', BOB));
      expect(() => commit(late, lateOutput)).toThrow(CompletionRefusedError);
      await expect(attempt(create, { data: turtle(BOB, 'Bob') }, { ...late, attempt: 2 })).rejects.toThrow(
        UnrecoverableError,
      );
    }));

  describe('batch', () => {
    const input = () => ({
      operations: [
        { type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'Alice') } },
        { type: 'create', subject: BOB, input: { data: turtle(BOB, 'Bob') } },
        { type: 'update', subject: ALICE, input: { data: turtle(ALICE, 'Alicia') } },
        { type: 'delete', subject: BOB },
      ],
    });

    it('applies its operations in order and gives one member per operation with its own digests', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store);
        const run = await submitAndRun(batch, input(), context('batch', GROUP));
        const { inputDigest, outputDigest } = run;
        const output = run.output as BatchOutput;
        expect(output).toEqual({
          operations: [
            {
              type: 'create',
              subject: ALICE,
              version: 1,
              triples: 3,
              sha256: toHex(entityDigest(canonicalOf(ALICE, 'Alice'))),
            },
            {
              type: 'create',
              subject: BOB,
              version: 1,
              triples: 3,
              sha256: toHex(entityDigest(canonicalOf(BOB, 'Bob'))),
            },
            {
              type: 'update',
              subject: ALICE,
              version: 2,
              triples: 3,
              sha256: toHex(entityDigest(canonicalOf(ALICE, 'Alicia'))),
            },
            { type: 'delete', subject: BOB, version: 2, triples: 0, sha256: null },
          ],
        });
        expect(store.get(ALICE)?.nquads).toBe(canonicalOf(ALICE, 'Alicia'));
        expect(store.get(BOB)).toBeUndefined();

        // A fresh copy of the input (as the queue hands it back) gives the same members.
        const members = batch.batchMembers?.(JSON.parse(JSON.stringify(input())), output) ?? [];
        expect(members).toEqual([
          {
            type: 'create',
            subject: ALICE,
            inputDigest: changeDigest('create', canonicalOf(ALICE, 'Alice')),
            outputDigest: entityDigest(canonicalOf(ALICE, 'Alice')),
          },
          {
            type: 'create',
            subject: BOB,
            inputDigest: changeDigest('create', canonicalOf(BOB, 'Bob')),
            outputDigest: entityDigest(canonicalOf(BOB, 'Bob')),
          },
          {
            type: 'update',
            subject: ALICE,
            inputDigest: changeDigest('update', canonicalOf(ALICE, 'Alicia')),
            outputDigest: entityDigest(canonicalOf(ALICE, 'Alicia')),
          },
          { type: 'delete', subject: BOB, inputDigest: changeDigest('delete', ''), outputDigest: null },
        ]);

        const hex = (m: (typeof members)[number]) => toHex(m.inputDigest);
        const expectedInput = `unrdf-rdf-batch/v1\0${members.map((m) => `${m.type}\0${m.subject}\0${hex(m)}\n`).join('')}`;
        expect(inputDigest).toEqual(new Uint8Array(createHash('sha256').update(expectedInput).digest()));
        const expectedOutput = `unrdf-rdf-batch-output/v1\0${output.operations
          .map((o) => `${o.subject}\0${o.sha256 ?? '-'}\n`)
          .join('')}`;
        expect(outputDigest).toEqual(new Uint8Array(createHash('sha256').update(expectedOutput).digest()));
      }));

    it('applies nothing when one operation fails, and fails unrecoverably', () =>
      withStore(async (store) => {
        const { create, batch } = createRdfHandlers(store);
        await attempt(create, { data: turtle(BOB, 'Bob') }, context('create', BOB));
        // Member 1 (create BOB) fails: BOB exists. Member 0 must not stay applied.
        const error = await Promise.resolve(attempt(batch, input(), context('batch', GROUP))).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnrecoverableError);
        expect(error).toMatchObject({ cause: { code: 'UNRDF_RDF_ENTITY_EXISTS', subject: BOB, index: 1 } });
        expect(store.get(ALICE)).toBeUndefined();
        expect(store.get(BOB)?.version).toBe(1);
      }));

    it('applies a batch whose completion was lost once, on its next attempt', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store);
        const ctx = context('batch', GROUP);
        const first = await attempt(batch, input(), ctx, { lose: true });
        expect(store.get(ALICE)).toBeUndefined();
        const again = await attempt(batch, input(), { ...ctx, attempt: 2, token: 2 });
        expect(again).toEqual(first);
        expect(store.get(ALICE)?.version).toBe(2);
        expect(store.get(BOB)).toBeUndefined();
      }));
  });

  it('leaves the store equal to a simple model after any sequence of operations (property)', async () => {
    const subjects = ['https://ex.org/e/1', 'https://ex.org/e/2', 'https://ex.org/e/3'];
    const single = fc.record({
      type: fc.constantFrom('create', 'update', 'delete'),
      subject: fc.constantFrom(...subjects),
      name: fc.string({ maxLength: 6 }),
    });
    const step = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('single' as const), op: single, retry: fc.boolean() }) },
      {
        weight: 1,
        arbitrary: fc.array(single, { minLength: 1, maxLength: 4 }).map((ops) => ({ kind: 'batch' as const, ops })),
      },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        await withStore(async (store) => {
          const handlers = createRdfHandlers(store);
          // The model: subject -> { name, version }, plus the last version of deleted subjects.
          const model = new Map<string, { name: string | undefined; version: number }>();
          const applyToModel = (
            draft: Map<string, { name: string | undefined; version: number }>,
            op: { type: string; subject: string; name: string },
          ) => {
            const current = draft.get(op.subject);
            const exists = current?.name !== undefined;
            if (op.type === 'create' ? exists : !exists) return false;
            draft.set(op.subject, {
              name: op.type === 'delete' ? undefined : op.name,
              version: (current?.version ?? 0) + 1,
            });
            return true;
          };
          const dataOf = (op: { type: string; subject: string; name: string }) =>
            op.type === 'delete' ? undefined : { data: turtle(op.subject, op.name) };
          for (const s of steps) {
            if (s.kind === 'single') {
              const { op } = s;
              const definition = handlers[op.type as 'create' | 'update' | 'delete'];
              const ok = applyToModel(model, op);
              const ctx = context(op.type, op.subject);
              const result = attempt(definition, dataOf(op), ctx, { lose: s.retry });
              if (!ok) {
                await expect(result).rejects.toThrow(UnrecoverableError);
              } else if (s.retry) {
                // The attempt's completion was lost: nothing applied; the next attempt applies once.
                const first = await result;
                expect(await attempt(definition, dataOf(op), { ...ctx, attempt: 2, token: ctx.token + 1 })).toEqual(
                  first,
                );
              } else {
                await result;
              }
            } else {
              const draft = new Map(model);
              const ok = s.ops.every((op) => applyToModel(draft, op));
              const input = {
                operations: s.ops.map((op) =>
                  op.type === 'delete'
                    ? { type: op.type, subject: op.subject }
                    : { type: op.type, subject: op.subject, input: dataOf(op) },
                ),
              };
              const result = attempt(handlers.batch, input, context('batch', GROUP));
              if (ok) {
                await result;
                for (const [k, v] of draft) model.set(k, v);
              } else {
                await expect(result).rejects.toThrow(UnrecoverableError);
              }
            }
          }
          for (const subject of subjects) {
            const expected = model.get(subject);
            const stored = store.get(subject);
            if (expected?.name === undefined) {
              expect(stored).toBeUndefined();
            } else {
              expect(stored?.nquads).toBe(canonicalOf(subject, expected.name));
              expect(stored?.version).toBe(expected.version);
            }
          }
        });
      }),
      { numRuns: 60 },
    );
  });
});
