import { createHash } from 'node:crypto';
import type { DaemonHandlerContext, HandlerDefinition } from '@unrdf/daemon';
import { InvalidInputError } from '@unrdf/daemon';
import { UnrecoverableError } from '@unrdf/queue';
import { tempDir } from '@unrdf/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalDescription, changeDigest, entityDigest, toHex } from '../src/rdf/canonical.js';
import { type EntityStore, openEntityStore } from '../src/rdf/entity-store.js';
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
function context(type: string, subject: string, over: Partial<DaemonHandlerContext> = {}): DaemonHandlerContext {
  nextId += 1;
  return {
    id: `op-${nextId}`,
    type,
    subject,
    attempt: 1,
    token: 1,
    idempotencyKey: `op-${nextId}`,
    nodeId: 'node-1',
    signal: new AbortController().signal,
    ...over,
  };
}

/** Runs a definition the way the daemon does: schema and digest at submit, then the handler. */
async function submitAndRun(definition: HandlerDefinition, input: unknown, ctx: DaemonHandlerContext) {
  const checked = definition.inputSchema?.safeParse(input);
  if (checked !== undefined && !checked.success) throw new Error(`schema refused: ${checked.error.message}`);
  const inputDigest = definition.inputDigest?.(input);
  const output = await definition.handler(input, ctx);
  return { inputDigest, output, outputDigest: definition.outputDigest?.(output) };
}

async function withStore<T>(fn: (store: EntityStore) => Promise<T>): Promise<T> {
  await using dir = await tempDir('rdf-handlers');
  await using store = openEntityStore({ path: dir.join('entities.db') });
  return await fn(store);
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
        expect(remove.inputDigest?.(null)).toEqual(changeDigest('delete', ''));
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
        expect(create.inputDigest?.({ data: ntriples, format: 'application/n-triples' })).toEqual(
          create.inputDigest?.({ data: turtle(ALICE, 'Alice') }),
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
        await create.handler({ data: turtle(ALICE, 'Alice') }, context('create', ALICE));
        await expect(create.handler({ data: turtle(ALICE, 'Again') }, context('create', ALICE))).rejects.toThrow(
          UnrecoverableError,
        );
        await expect(create.handler({ data: turtle(ALICE, 'Again') }, context('create', ALICE))).rejects.toMatchObject({
          cause: { code: 'UNRDF_RDF_ENTITY_EXISTS' },
        });
        await expect(update.handler({ data: turtle(BOB, 'Bob') }, context('update', BOB))).rejects.toThrow(
          UnrecoverableError,
        );
        await expect(remove.handler(null, context('delete', BOB))).rejects.toThrow(/does not exist/);
        expect(store.get(ALICE)?.version).toBe(1);
      }));

    it('fail unrecoverably when the data describes another entity than the operation subject', () =>
      withStore(async (store) => {
        const { create } = createRdfHandlers(store);
        await expect(create.handler({ data: turtle(BOB, 'Bob') }, context('create', ALICE))).rejects.toThrow(
          /describes <https:\/\/example.org\/people\/bob>, not the operation's subject/,
        );
        expect(store.get(ALICE)).toBeUndefined();
        expect(store.get(BOB)).toBeUndefined();
        // A caller that passes the subject to inputDigest refuses the mismatch at submit.
        const digestWithSubject = create.inputDigest as (input: unknown, operation: { subject: string }) => Uint8Array;
        const error = caught(() => digestWithSubject({ data: turtle(BOB, 'Bob') }, { subject: ALICE }));
        expect(error).toBeInstanceOf(InvalidInputError);
      }));

    it('return the first outcome when a crashed attempt is retried, and refuse a stale attempt', () =>
      withStore(async (store) => {
        const { create, update } = createRdfHandlers(store);
        await create.handler({ data: turtle(ALICE, 'Alice') }, context('create', ALICE));
        const first = context('update', ALICE, { id: 'op-upd', token: 2 });
        const output = await update.handler({ data: turtle(ALICE, 'Alicia') }, first);
        // The process died before the queue recorded completion; the next attempt has a higher token.
        const retry = await update.handler({ data: turtle(ALICE, 'Alicia') }, { ...first, attempt: 2, token: 3 });
        expect(retry).toEqual(output);
        expect(store.get(ALICE)?.version).toBe(2);
        await expect(update.handler({ data: turtle(ALICE, 'Alicia') }, { ...first, token: 2 })).rejects.toMatchObject({
          code: 'UNRDF_RDF_STALE_TOKEN',
        });
      }));

    it('does not write when the signal has already aborted', () =>
      withStore(async (store) => {
        const { create } = createRdfHandlers(store);
        const controller = new AbortController();
        controller.abort(new Error('timed out'));
        await expect(
          create.handler({ data: turtle(ALICE, 'Alice') }, context('create', ALICE, { signal: controller.signal })),
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
        const syntax = caught(() => create.inputDigest?.({ data: `<${ALICE}> <https://schema.org/name> .` }));
        expect(syntax).toBeInstanceOf(InvalidInputError);
        expect((syntax as InvalidInputError).what).toBe("input of 'create'");
        expect((syntax as InvalidInputError).issues).toEqual([
          expect.stringMatching(/^input\.data: is not valid text\/turtle: /),
        ]);
        const other = caught(() =>
          update.inputDigest?.({
            data: `<${ALICE}> <https://schema.org/knows> <${BOB}> . <${BOB}> <https://schema.org/name> "Bob" .`,
          }),
        ) as InvalidInputError;
        expect(other.issues).toEqual([expect.stringMatching(/^input\.data: describes 2 IRI subjects/)]);
        const big = caught(() => create.inputDigest?.({ data: `<${ALICE}> <https://schema.org/n> 1, 2, 3 .` }));
        expect((big as InvalidInputError).issues).toEqual(['input.data: holds 3 triples; at most 2 are allowed']);
        const shape = caught(() => create.inputDigest?.({ text: 'x' })) as InvalidInputError;
        expect(shape.issues).toContain('input.data: Invalid input: expected string, received undefined');
      }));

    it('refuses a batch naming each bad member by its path', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store);
        const error = caught(() =>
          batch.inputDigest?.({
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
        const shape = caught(() => batch.inputDigest?.({ operations: [{ type: 'rename', subject: ALICE }] }));
        expect((shape as InvalidInputError).issues[0]).toMatch(/^input\.operations\.0\.type: /);
      }));

    it('refuses a batch whose data together exceed maxBatchDataBytes', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store, { maxBatchDataBytes: 150 });
        const error = caught(() =>
          batch.inputDigest?.({
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

  it('commits the handlers run in one event-loop turn in one store transaction, failures apart', () =>
    withStore(async (store) => {
      const { create, update } = createRdfHandlers(store);
      await create.handler({ data: turtle(ALICE, 'Alice') }, context('create', ALICE));
      const before = store.stats().transactions;
      const subjects = Array.from({ length: 20 }, (_, i) => `https://example.org/people/p${i}`);
      const runs = [
        ...subjects.map((subject) => create.handler({ data: turtle(subject, subject) }, context('create', subject))),
        Promise.resolve(create.handler({ data: turtle(ALICE, 'Again') }, context('create', ALICE))),
        Promise.resolve(update.handler({ data: turtle(ALICE, 'Alicia') }, context('update', ALICE))),
      ];
      const settled = await Promise.allSettled(runs);
      expect(store.stats().transactions - before).toBe(1);
      expect(settled.slice(0, 20).every((s) => s.status === 'fulfilled')).toBe(true);
      expect(settled[20]).toMatchObject({ status: 'rejected', reason: expect.any(UnrecoverableError) });
      expect(settled[21]).toMatchObject({ status: 'fulfilled', value: { subject: ALICE, version: 2 } });
      for (const subject of subjects) expect(store.get(subject)?.nquads).toBe(canonicalOf(subject, subject));
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
        await create.handler({ data: turtle(BOB, 'Bob') }, context('create', BOB));
        // Member 1 (create BOB) fails: BOB exists. Member 0 must not stay applied.
        const error = await Promise.resolve(batch.handler(input(), context('batch', GROUP))).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnrecoverableError);
        expect(error).toMatchObject({ cause: { code: 'UNRDF_RDF_ENTITY_EXISTS', subject: BOB, index: 1 } });
        expect(store.get(ALICE)).toBeUndefined();
        expect(store.get(BOB)?.version).toBe(1);
      }));

    it('replays a retried batch instead of applying it twice', () =>
      withStore(async (store) => {
        const { batch } = createRdfHandlers(store);
        const ctx = context('batch', GROUP, { token: 1 });
        const first = await batch.handler(input(), ctx);
        const again = await batch.handler(input(), { ...ctx, attempt: 2, token: 2 });
        expect(again).toEqual(first);
        expect(store.get(ALICE)?.version).toBe(2);
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
              const result = Promise.resolve(definition.handler(dataOf(op), ctx));
              if (!ok) {
                await expect(result).rejects.toThrow(UnrecoverableError);
              } else if (s.retry) {
                // The attempt applied but its completion was lost: the next attempt must not apply again.
                const first = await result;
                expect(await definition.handler(dataOf(op), { ...ctx, attempt: 2, token: ctx.token + 1 })).toEqual(
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
              const result = handlers.batch.handler(input, context('batch', GROUP));
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
