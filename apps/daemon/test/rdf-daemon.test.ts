import { createDaemon, InvalidInputError, prepareSubmission } from '@unrdf/daemon';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { canonicalDescription, changeDigest, entityDigest, toHex } from '../src/rdf/canonical.js';
import { createEntityStore } from '../src/rdf/entity-store.js';
import { createRdfHandlers } from '../src/rdf/handlers.js';

const ALICE = 'https://example.org/people/alice';
const BOB = 'https://example.org/people/bob';
const turtle = (subject: string, name: string) =>
  `@prefix s: <https://schema.org/> . <${subject}> s:name ${JSON.stringify(name)} ; s:knows [ s:name "Eve" ] .`;
const canonicalOf = (subject: string, name: string) => {
  const result = canonicalDescription(turtle(subject, name), 'text/turtle');
  if (!result.ok) throw new Error(result.issues.join('\n'));
  return result.value.nquads;
};

/** A started daemon with the RDF handlers over their own entity store, in a fresh directory. */
async function rdfDaemon(name: string) {
  const dir = await tempDir(name);
  const store = createEntityStore();
  const handlers = createRdfHandlers(store);
  const daemon = createDaemon({
    dataDir: dir.join('daemon'),
    diagnostics: { logLevel: 'warn' },
    handlers,
    extensions: [store.extension],
  });
  await daemon.start();
  return {
    store,
    handlers,
    daemon,
    async [Symbol.asyncDispose]() {
      await daemon.close();
      await dir[Symbol.asyncDispose]();
    },
  };
}

describe('createRdfHandlers in a daemon', () => {
  it('runs create, update, delete and batch with receipts committing to the canonical changes', async () => {
    await using running = await rdfDaemon('rdf-daemon');
    const { store, handlers, daemon } = running;
    const run = async (request: Parameters<typeof daemon.submit>[0]) => {
      const op = await daemon.submit(request);
      const done = await daemon.waitFor(op.id, { timeoutMs: 10_000 });
      const bundle = daemon.receipt(op.id);
      expect(daemon.verify(bundle).status).toBe('valid');
      return { done, receipt: bundle?.receipt as Record<string, unknown> };
    };

    const created = await run({ type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'Alice') } });
    expect(created.done).toMatchObject({ state: 'completed', output: { subject: ALICE, version: 1, triples: 3 } });
    expect(created.receipt).toMatchObject({
      inputDigest: toHex(changeDigest('create', canonicalOf(ALICE, 'Alice'))),
      outputDigest: toHex(entityDigest(canonicalOf(ALICE, 'Alice'))),
    });

    const again = await run({ type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'Other') } });
    expect(again.done).toMatchObject({ state: 'dead', outcome: 'failed', attempts: 1 });
    expect(again.done?.error?.message).toMatch(/already exists/);

    const batchInput = {
      operations: [
        { type: 'update', subject: ALICE, input: { data: turtle(ALICE, 'Alicia') } },
        { type: 'create', subject: BOB, input: { data: turtle(BOB, 'Bob') } },
      ],
    };
    const batch = await run({ type: 'batch', subject: 'urn:example:batches', input: batchInput });
    expect(batch.done).toMatchObject({ state: 'completed', outcome: 'succeeded' });
    expect(batch.receipt).toMatchObject({
      type: 'batch',
      members: { count: 2 },
      inputDigest: prepareSubmission(
        { type: 'batch', subject: 'urn:example:batches', input: batchInput },
        () => handlers.batch,
        () => ['batch'],
      ).inputDigest,
      outputDigest: toHex(handlers.batch.outputDigest?.(batch.done?.output) ?? new Uint8Array()),
    });
    expect(store.get(ALICE)?.version).toBe(2);

    const deleted = await run({ type: 'delete', subject: BOB });
    expect(deleted.done).toMatchObject({ state: 'completed', output: { subject: BOB, version: 2, sha256: null } });
    expect(deleted.receipt).toMatchObject({ inputDigest: toHex(changeDigest('delete', '')), outputDigest: null });
    expect(store.get(BOB)).toBeUndefined();
  });

  it('ends a failed or cancelled batch with a receipt without members, applying none of it', async () => {
    await using running = await rdfDaemon('rdf-daemon-batch-fails');
    const { store, daemon } = running;
    const operations = [
      { type: 'create', subject: ALICE, input: { data: turtle(ALICE, 'Alice') } },
      { type: 'update', subject: BOB, input: { data: turtle(BOB, 'Bob') } }, // Bob does not exist
    ];
    const failing = await daemon.submit({ type: 'batch', subject: 'urn:example:b1', input: { operations } });
    expect(await daemon.waitFor(failing.id, { timeoutMs: 10_000 })).toMatchObject({ state: 'dead' });
    const receipt = daemon.receipt(failing.id);
    expect(receipt?.receipt).toMatchObject({ type: 'batch', outcome: { status: 'failed' }, outputDigest: null });
    expect(receipt?.receipt).not.toHaveProperty('members');
    expect(daemon.verify(receipt).status).toBe('valid');
    expect(store.get(ALICE)).toBeUndefined();

    const later = await daemon.submit({
      type: 'batch',
      subject: 'urn:example:b2',
      runAt: Date.now() + 60_000,
      input: { operations: operations.slice(0, 1) },
    });
    expect(await daemon.cancel(later.id)).toBe(true);
    expect(daemon.get(later.id)).toMatchObject({ state: 'cancelled' });
    expect(daemon.receipt(later.id)?.receipt).toMatchObject({
      type: 'batch',
      outcome: { status: 'failed', errorCode: 'CANCELLED' },
    });
  });

  it('runs a create and an update of one subject in submission order, submitted back to back', async () => {
    await using running = await rdfDaemon('rdf-daemon-order');
    const { store, daemon } = running;
    const subjects = Array.from({ length: 10 }, (_, i) => `https://example.org/order/${i}`);
    // Neither submit is awaited before the next: the update must wait for the create.
    const submitted = await Promise.all(
      subjects.flatMap((s) => [
        daemon.submit({ type: 'create', subject: s, input: { data: turtle(s, 'v1') } }),
        daemon.submit({ type: 'update', subject: s, input: { data: turtle(s, 'v2') } }),
        daemon.submit({ type: 'delete', subject: s }),
      ]),
    );
    const done = await Promise.all(submitted.map((op) => daemon.waitFor(op.id, { timeoutMs: 20_000 })));
    expect(done.map((d) => `${d?.type} ${d?.state} ${d?.error?.message ?? ''}`.trim())).toEqual(
      subjects.flatMap(() => ['create completed', 'update completed', 'delete completed']),
    );
    for (const s of subjects) expect(store.get(s)).toBeUndefined();
  });

  it('refuses bad RDF at submit, before anything is queued', async () => {
    await using running = await rdfDaemon('rdf-daemon');
    const { daemon } = running;
    const refused = await daemon
      .submit({ type: 'create', subject: ALICE, input: { data: `<${ALICE}> <https://schema.org/name> .` } })
      .catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InvalidInputError);
    expect((refused as InvalidInputError).issues).toEqual([
      expect.stringMatching(/^input\.data: is not valid text\/turtle/),
    ]);
    const shape = await daemon
      .submit({ type: 'update', subject: ALICE, input: { turtle: 'x' } })
      .catch((e: unknown) => e);
    expect((shape as InvalidInputError).issues).toContain(
      'input.data: Invalid input: expected string, received undefined',
    );
    const notAnIri = await daemon.submit({ type: 'delete', subject: 'not an iri' }).catch((e: unknown) => e);
    expect(notAnIri).toBeInstanceOf(InvalidInputError);
    expect((notAnIri as InvalidInputError).issues).toEqual([
      expect.stringMatching(/^subject: must be an absolute IRI/),
    ]);
  });
});
