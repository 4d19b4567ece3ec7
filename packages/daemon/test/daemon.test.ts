import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type SloDefinition, SPEC_SLOS } from '@unrdf/diagnostics';
import { type ApplyExtension, CompletionRefusedError, UnrecoverableError } from '@unrdf/queue';
import { verifyCheckpointConsistency, verifyReceipt } from '@unrdf/receipts';
import { spawnNode, tempDir, waitFor } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createDaemon,
  DataDirLockedError,
  InvalidInputError,
  loadOrCreateSigningKeys,
  lockDataDir,
  NotRunningError,
  prepareSubmission,
  rotateSigningKey,
  UnknownTypeError,
} from '../src/index.js';

const quiet = { logLevel: 'warn' as const };

describe('createDaemon', () => {
  it('refuses bad options with path: message issues', () => {
    expect(() => createDaemon({ dataDir: '' })).toThrow(InvalidInputError);
    expect(() => createDaemon({ dataDir: '/tmp/x', nodeId: 'bad id' })).toThrow(/nodeId/);
    const slo = SPEC_SLOS[0] as SloDefinition;
    expect(() => createDaemon({ dataDir: '/tmp/x', diagnostics: { slos: [{ ...slo, objective: 2 }] } })).toThrow(
      /diagnostics\.slos\.0\.objective/,
    );
    expect(() => createDaemon({ dataDir: '/tmp/x', diagnostics: { slos: [slo, slo] } })).toThrow(/unique/);
    expect(() => createDaemon({ dataDir: '/tmp/x', diagnostics: { slos: [slo] } })).not.toThrow();
  });

  it('loads handlers from modules named by a relative path, an absolute path or a file URL', async () => {
    await using dir = await tempDir('daemon-modules');
    const source = (type: string) =>
      `export const handlers = { ${type}: { handler: (input) => ({ ${type}: input.n }), maxAttempts: 1 } };\n`;
    writeFileSync(dir.join('relative.mjs'), source('rel'));
    writeFileSync(dir.join('absolute.mjs'), source('abs'));
    writeFileSync(dir.join('url.mjs'), `export default { url: { handler: (input) => ({ url: input.n }) } };\n`);
    const fromHere = relative(process.cwd(), dir.join('relative.mjs'));
    const modules = [
      fromHere.startsWith('.') ? fromHere : `./${fromHere}`,
      dir.join('absolute.mjs'),
      pathToFileURL(dir.join('url.mjs')).href,
    ];
    await using daemon = createDaemon({ dataDir: dir.join('data'), diagnostics: quiet, handlerModules: modules });
    await daemon.start();
    for (const type of ['rel', 'abs', 'url']) {
      const op = await daemon.submit({ type, subject: `urn:x:${type}`, input: { n: 7 } });
      const done = await daemon.waitFor(op.id, { timeoutMs: 10_000 });
      expect(done?.outcome).toBe('succeeded');
      expect(done?.output).toEqual({ [type]: 7 });
    }
  });

  it('refuses a handler module it cannot load with a typed error, and says when a bare name is a file here', async () => {
    await using dir = await tempDir('daemon-modules');
    // A bare name is a package to Node (as in `import`), even when a file of that name is here.
    const bare = `unrdf-test-handlers-${process.pid}.mjs`;
    writeFileSync(join(process.cwd(), bare), 'export const handlers = {};\n');
    try {
      const daemon = createDaemon({ dataDir: dir.join('a'), diagnostics: quiet, handlerModules: [bare] });
      const error = await daemon.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      await daemon.close();
      expect(error).toBeInstanceOf(InvalidInputError);
      expect((error as InvalidInputError).issues).toContain(
        `(root): '${bare}' is read as a package name; for the file here, write ./${bare}`,
      );
    } finally {
      rmSync(join(process.cwd(), bare), { force: true });
    }
    // A missing package: the typed error, without the hint.
    const missing = createDaemon({ dataDir: dir.join('b'), diagnostics: quiet, handlerModules: ['no-such-pkg-x'] });
    const error = await missing.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    await missing.close();
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).issues).toHaveLength(1);
    expect((error as InvalidInputError).issues[0]).toMatch(/^\(root\): Cannot find package 'no-such-pkg-x'/);
  });

  it("commits a handler's effects through its extensions with the final state, and retries a refused completion", async () => {
    await using dir = await tempDir('daemon');
    const kept: { id: string; effects: unknown; state: string }[] = [];
    const extension: ApplyExtension = {
      name: 'kept',
      watches: ['complete'],
      afterApply({ db, command }) {
        if (command.kind !== 'complete' || command.effects === undefined) return;
        // Decided from the command alone, as a replayed batch may apply it twice.
        const effects = JSON.parse(command.effects) as { attempt: number };
        if (effects.attempt === 1) throw new CompletionRefusedError('moved on meanwhile');
        // Inside the completion's transaction: the row is already completed, not yet committed.
        const { state } = db.prepare('SELECT state FROM operations WHERE id = ?').get(command.id) as { state: string };
        kept.push({ id: command.id, effects, state });
      },
    };
    await using daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet, extensions: [extension] });
    daemon.handle(
      'note',
      (input: { text: string }, ctx) => {
        ctx.setEffects({ text: input.text, attempt: ctx.attempt, digest: ctx.inputDigest });
        return 'noted';
      },
      { backoff: { baseMs: 1, maxMs: 5 } },
    );
    await daemon.start();
    const op = await daemon.submit({ type: 'note', subject: 'urn:x:note', input: { text: 'hi' } });
    const done = await daemon.waitFor(op.id, { timeoutMs: 10_000 });
    expect(done).toMatchObject({ state: 'completed', attempts: 2, output: 'noted' });
    const receipt = daemon.receipt(op.id)?.receipt as { inputDigest: string };
    expect(kept).toEqual([
      { id: op.id, effects: { text: 'hi', attempt: 2, digest: receipt.inputDigest }, state: 'completed' },
    ]);
    expect(() => createDaemon({ dataDir: dir.path, extensions: [{ name: 'x' } as never] })).toThrow(/extensions/);
  });

  describe('submit', () => {
    it('runs an operation and gives it a receipt that verifies offline', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
      daemon.handle('greet', async (input: { name: string }, ctx) => ({ hello: input.name, subject: ctx.subject }));
      await daemon.start();
      const op = await daemon.submit({ type: 'greet', subject: 'urn:x:1', input: { name: 'Ada' } });
      expect(op.state).toBe('pending');
      const done = await daemon.waitFor(op.id, { timeoutMs: 10_000 });
      expect(done).toMatchObject({
        state: 'completed',
        outcome: 'succeeded',
        output: { hello: 'Ada', subject: 'urn:x:1' },
      });
      expect(done?.receipt?.leafIndex).toBe(0);
      const bundle = daemon.receipt(op.id);
      expect(bundle?.receipt).toMatchObject({ operationId: op.id, type: 'greet', subject: 'urn:x:1', attempt: 1 });
      // Known answers (computed with Python's hashlib): SHA-256("unrdf-json/v1" 0x00 JCS(value)).
      expect(bundle?.receipt.inputDigest).toBe('bab05389255c7232979dab5bd86789aa72874e8d14c6943ad5f1e430023ceeaa');
      expect(bundle?.receipt.outputDigest).toBe('ece691784d9bca05083f15619312242ad2c957904bbfbb400230cdf11a3f4e0f');
      expect(verifyReceipt(bundle?.receipt, bundle?.proof, bundle?.checkpoint, daemon.trustedKeys).status).toBe(
        'valid',
      );
      expect(daemon.verify(bundle).status).toBe('valid');
      // A tampered receipt does not verify.
      const forged = { ...bundle, receipt: { ...bundle?.receipt, subject: 'urn:x:2' } };
      expect(daemon.verify(forged).status).toBe('invalid');
      expect(daemon.verify({ nonsense: true }).status).toBe('invalid');
      // Key files: the signer only for its owner.
      expect(statSync(daemon.verifierKeyPath.replace(/\.vkey$/, '.skey')).mode & 0o777).toBe(0o600);
    });

    it('gives failed, dead-lettered and cancelled operations a receipt too', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        defaults: { backoff: { baseMs: 1 } },
      });
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      daemon.handle('boom', () => {
        throw new UnrecoverableError('no way');
      });
      daemon.handle('flaky', () => {
        throw new Error('transient');
      });
      // A handler's own error coded CANCELLED (an upstream call was cancelled, say).
      daemon.handle('upstream', () => {
        throw Object.assign(new UnrecoverableError('upstream cancelled'), { code: 'CANCELLED' });
      });
      daemon.handle('slow', () => gate);
      await daemon.start();
      const boom = await daemon.submit({ type: 'boom', subject: 's' });
      const flaky = await daemon.submit({ type: 'flaky', subject: 's', maxAttempts: 2 });
      const slow = await daemon.submit({ type: 'slow', subject: 's', runAt: Date.now() + 60_000 });
      expect(await daemon.cancel(slow.id)).toBe(true);
      const upstream = await daemon.submit({ type: 'upstream', subject: 's2' });
      expect((await daemon.waitFor(upstream.id, { timeoutMs: 10_000 }))?.state).toBe('dead');
      // Only a user's cancel says CANCELLED in its receipt.
      expect(daemon.receipt(upstream.id)?.receipt.outcome).toEqual({
        status: 'failed',
        errorCode: 'HANDLER_CANCELLED',
      });
      release();
      const views = await Promise.all([boom, flaky, slow].map((o) => daemon.waitFor(o.id, { timeoutMs: 10_000 })));
      expect(views.map((v) => [v?.state, v?.outcome])).toEqual([
        ['dead', 'failed'],
        ['dead', 'failed'],
        ['cancelled', 'cancelled'],
      ]);
      const receipts = [boom, flaky, slow].map((o) => daemon.receipt(o.id)?.receipt);
      expect(receipts.map((r) => [r?.outcome, r?.attempt, r?.outputDigest])).toEqual([
        [{ status: 'failed', errorCode: 'UNRDF_QUEUE_UNRECOVERABLE' }, 1, null],
        [{ status: 'failed', errorCode: 'ERROR' }, 2, null],
        [{ status: 'failed', errorCode: 'CANCELLED' }, 0, null],
      ]);
      for (const o of [boom, flaky, slow]) expect(daemon.verify(daemon.receipt(o.id)).status).toBe('valid');
      const failures = daemon.metrics.snapshot().recentFailures;
      expect(failures.find((f) => f.id === boom.id)).toMatchObject({ errorType: 'UNRDF_QUEUE_UNRECOVERABLE' });
      expect(failures.find((f) => f.id === flaky.id)).toMatchObject({ errorType: 'Error', errorMessage: 'transient' });
      // A user's cancel is on record, but is no failure of the service: it burns no error budget.
      expect(failures.find((f) => f.id === slow.id)).toBeUndefined();
      const snapshot = daemon.metrics.snapshot();
      expect(snapshot.recentOperations.find((o) => o.id === slow.id)).toMatchObject({
        ok: false,
        cancelled: true,
        errorType: 'Cancelled',
      });
      expect(snapshot.errorTypes.map((e) => e.type)).not.toContain('Cancelled');
      expect(snapshot.indicators.operation).toMatchObject({ success: 0, failure: 3 }); // boom, flaky, upstream
    });

    it('rejects bad requests and inputs without writing anything', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        handlers: { typed: { handler: () => 1, inputSchema: z.strictObject({ n: z.number().int() }) } },
      });
      await daemon.start();
      await expect(daemon.submit({ type: 'nope', subject: 's' })).rejects.toBeInstanceOf(UnknownTypeError);
      await expect(daemon.submit({ type: 'typed', subject: '' })).rejects.toThrow(/subject/);
      await expect(daemon.submit({ type: 'typed', subject: 's', input: { n: 1.5 } })).rejects.toThrow(/input\.n/);
      await expect(
        daemon.submit({ type: 'typed', subject: 's', input: { n: 1 }, extra: 1 } as never),
      ).rejects.toBeInstanceOf(InvalidInputError);
      expect(daemon.checkpoint()).toBeUndefined();
      const ok = await daemon.submit({ type: 'typed', subject: 's', input: { n: 1 } });
      expect((await daemon.waitFor(ok.id, { timeoutMs: 10_000 }))?.outcome).toBe('succeeded');
    });

    it('shows every operation of a group commit with its durable receipt once it is final', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        handlers: { t: { handler: (i) => i } },
      });
      await daemon.start();
      // Submitted in one turn: enqueued, claimed and completed in shared transactions.
      const ops = await Promise.all(
        Array.from({ length: 50 }, (_, i) => daemon.submit({ type: 't', subject: 's', input: i })),
      );
      // Ids are letters and digits only: one starting with '-' would read as an option on a command line.
      expect(ops.map((o) => o.id).filter((id) => !/^[0-9A-Za-z]{22}$/.test(id))).toEqual([]);
      const views = await Promise.all(ops.map((o) => daemon.waitFor(o.id, { timeoutMs: 10_000 })));
      expect(views.filter((v) => v?.receipt === null || v === undefined)).toEqual([]);
      expect(new Set(views.map((v) => v?.receipt?.leafIndex)).size).toBe(50);
      for (const o of ops) expect(daemon.receipt(o.id)).toBeDefined();
    });

    it('returns the original operation for a duplicate idempotency key', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        handlers: { t: { handler: () => 1 } },
      });
      await daemon.start();
      const a = await daemon.submit({ type: 't', subject: 's', idempotencyKey: 'k' });
      const b = await daemon.submit({ type: 't', subject: 's', idempotencyKey: 'k' });
      expect(b.id).toBe(a.id);
    });
  });

  describe('prepared submissions', () => {
    it("hands the handler what inputDigest prepared, and enqueues prepareSubmission's result as is", async () => {
      await using dir = await tempDir('daemon');
      const digestCalls: string[] = [];
      const seen: { text: string; prepared: unknown }[] = [];
      const definition = {
        inputSchema: z.strictObject({ text: z.string() }),
        inputDigest: (input: unknown) => {
          const text = (input as { text: string }).text;
          digestCalls.push(text);
          const upper = text.toUpperCase();
          return { digest: new Uint8Array(32).fill(upper.length), prepared: { upper }, bytes: upper.length };
        },
      };
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        handlers: {
          shout: {
            ...definition,
            handler: (input: { text: string }, ctx) => {
              seen.push({ text: input.text, prepared: ctx.prepared });
              return (ctx.prepared as { upper: string } | undefined)?.upper ?? input.text.toUpperCase();
            },
          },
        },
      });
      await daemon.start();
      expect(daemon.definitionOf('shout')?.inputDigest).toBe(definition.inputDigest);
      const a = await daemon.submit({ type: 'shout', subject: 's', input: { text: 'abc' } });
      // Prepared elsewhere (as the app's HTTP front does) with the same definitions: not digested again here.
      const prepared = prepareSubmission(
        { type: 'shout', subject: 's', input: { text: 'hello' } },
        () => definition,
        () => ['shout'],
      );
      expect(prepared).toMatchObject({ inputDigest: '05'.repeat(32), prepared: { upper: 'HELLO' }, preparedBytes: 5 });
      const b = await daemon.submitPrepared(structuredClone(prepared));
      expect(digestCalls).toEqual(['abc', 'hello']);
      const done = await Promise.all([a, b].map((o) => daemon.waitFor(o.id, { timeoutMs: 10_000 })));
      expect(done.map((v) => v?.output)).toEqual(['ABC', 'HELLO']);
      expect(seen).toEqual([
        { text: 'abc', prepared: { upper: 'ABC' } },
        { text: 'hello', prepared: { upper: 'HELLO' } },
      ]);
      expect(daemon.receipt(b.id)?.receipt.inputDigest).toBe('05'.repeat(32));
      await expect(daemon.submitPrepared({ ...prepared, type: 'nope' })).rejects.toBeInstanceOf(UnknownTypeError);
      await expect(daemon.submitPrepared({ ...prepared, inputDigest: 'xyz' })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      expect(() =>
        prepareSubmission(
          { type: 'shout', subject: 's', input: { text: 1 } },
          () => definition,
          () => [],
        ),
      ).toThrow(/input\.text/);
    });

    it("commits a storeOnly handler's quick outcome and its receipt with the submission", async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        handlers: { quick: { storeOnly: true, handler: (n: number) => n + 1 } },
      });
      await daemon.start();
      const op = await daemon.submit({ type: 'quick', subject: 's', input: 1 });
      // Durable as one transaction: final, with its receipt, once the submission resolved.
      expect(daemon.get(op.id)).toMatchObject({ state: 'completed', output: 2, receipt: { leafIndex: 0 } });
      expect(daemon.verify(daemon.receipt(op.id)).status).toBe('valid');
      await using refused = createDaemon({
        dataDir: dir.join('other'),
        diagnostics: quiet,
        handlers: { t: { storeOnly: true, crashPolicy: 'fail', handler: () => 1 } },
      });
      await expect(refused.start()).rejects.toThrow(/storeOnly/);
    });

    it('keeps prepared values only while they fit, oldest out first', async () => {
      await using dir = await tempDir('daemon');
      const seen: unknown[] = [];
      await using daemon = createDaemon({
        dataDir: dir.path,
        diagnostics: quiet,
        handlers: {
          big: {
            inputDigest: (input: unknown) => ({
              digest: new Uint8Array(32).fill(input as number),
              prepared: input,
              // 6 MiB each: two fit in the 16 MiB the daemon keeps, a third pushes the first out.
              bytes: 6 * 1024 * 1024,
            }),
            handler: (_input: unknown, ctx) => {
              seen.push(ctx.prepared);
              return null;
            },
          },
        },
      });
      await daemon.start();
      // Not due yet: all three are accepted before any handler runs.
      const runAt = Date.now() + 300;
      const ops = [];
      for (const n of [1, 2, 3]) ops.push(await daemon.submit({ type: 'big', subject: `s${n}`, input: n, runAt }));
      await Promise.all(ops.map((o) => daemon.waitFor(o.id, { timeoutMs: 10_000 })));
      expect(seen.toSorted()).toEqual([2, 3, undefined].toSorted());
    });
  });

  describe('start', () => {
    it('keeps the ledger across restarts with consistent checkpoints, and locks the data directory', async () => {
      await using dir = await tempDir('daemon');
      const open = () =>
        createDaemon({ dataDir: dir.path, diagnostics: quiet, handlers: { t: { handler: (i) => i } } });
      const first = open();
      await first.start();
      await expect(open().start()).rejects.toBeInstanceOf(DataDirLockedError);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await first.submit({ type: 't', subject: `s${i}`, input: i })).id);
      for (const id of ids) await first.waitFor(id, { timeoutMs: 10_000 });
      const before = first.checkpoint();
      await first.close();
      await expect(first.submit({ type: 't', subject: 's' })).rejects.toBeInstanceOf(NotRunningError);

      await using second = open();
      await second.start();
      expect(second.checkpoint()).toBe(before);
      const more = await second.submit({ type: 't', subject: 'later' });
      await second.waitFor(more.id, { timeoutMs: 10_000 });
      const answer = second.consistency(5);
      expect(answer.from.checkpoint).toBe(before);
      expect(answer.to.treeSize).toBe(6);
      expect(
        verifyCheckpointConsistency(answer.from.checkpoint, answer.to.checkpoint, answer.proof, second.trustedKeys)
          .status,
      ).toBe('valid');
      for (const id of ids) expect(second.verify(second.receipt(id)).status).toBe('valid');
      expect(() => second.consistency(0)).toThrow(InvalidInputError);
      expect(() => second.consistency(3, 99)).toThrow(/to:/);
    });
  });

  describe('diagnostics', () => {
    it('reports health, logs, metrics and SLOs of the node', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({ dataDir: dir.path, handlers: { t: { handler: () => 1 } } });
      await daemon.start();
      const op = await daemon.submit({ type: 't', subject: 's' });
      await daemon.waitFor(op.id, { timeoutMs: 10_000 });
      const { livez, readyz } = daemon.health();
      expect([livez.ok, readyz.ok]).toEqual([true, true]);
      const logs = await daemon.logs();
      expect(logs.records.some((r) => r.msg === 'operation finished' && r.op === op.id)).toBe(true);
      const report = await daemon.report();
      expect(report.operations.recent.some((r) => r.id === op.id)).toBe(true);
      expect((await daemon.slo()).length).toBeGreaterThan(0);
    });

    it('measures queue wait from due time to handler start, the time claimed ahead of a free slot included', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
      daemon.handle('slow', () => new Promise((resolve) => setTimeout(resolve, 300)), { concurrency: 1 });
      await daemon.start();
      // The second is claimed at once (ahead of its slot) and starts only when the first ends.
      const ops = await Promise.all([
        daemon.submit({ type: 'slow', subject: 'urn:x:1' }),
        daemon.submit({ type: 'slow', subject: 'urn:x:2' }),
      ]);
      for (const op of ops) await daemon.waitFor(op.id, { timeoutMs: 10_000 });
      const wait = (await daemon.report()).metrics.queue_wait;
      expect(wait?.success).toBe(2);
      expect(wait?.lifetimeMs.max).toBeGreaterThanOrEqual(250);
    });

    it('logs an outcome it could not commit (an extension threw) as an error naming the operation', async () => {
      await using dir = await tempDir('daemon');
      const refusing: ApplyExtension = {
        name: 'refusing',
        watches: ['fail'],
        afterApply() {
          throw new Error('no record for failures');
        },
      };
      await using daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet, extensions: [refusing] });
      daemon.handle('t', () => {
        throw new UnrecoverableError('broken');
      });
      await daemon.start();
      const op = await daemon.submit({ type: 't', subject: 's' });
      const logged = await waitFor(
        async () =>
          (await daemon.logs()).records.find(
            (r) => r.operationId === op.id && /could not be committed/.test(String(r.msg)),
          ),
        { timeoutMs: 10_000 },
      );
      expect(logged).toMatchObject({ level: 50, outcome: 'fail' });
      expect(daemon.get(op.id)?.state).toBe('running');
    });
  });

  describe('receipts of operations SQLite cannot read as JSON, and of operations finished at start', () => {
    /** `depth` arrays nested in one another. */
    const nested = (depth: number): unknown => {
      let value: unknown = null;
      for (let i = 0; i < depth; i++) value = [value];
      return value;
    };

    it('finishes operations whose input or output nests deeper than SQLite JSON reads (1000 levels)', async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
      daemon.handle('echo', (input) => input);
      await daemon.start();
      // The envelope adds a level: 1000 arrays in the input are 1001 levels in the stored payload.
      const deepIn = await daemon.submit({ type: 'echo', subject: 'urn:x:deep', input: nested(1000) });
      const done = await daemon.waitFor(deepIn.id, { timeoutMs: 10_000 });
      expect(done?.state).toBe('completed');
      const bundle = daemon.receipt(deepIn.id);
      expect(bundle?.receipt.subject).toBe('urn:x:deep');
      expect(bundle?.receipt.inputDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(bundle?.receipt.outputDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(daemon.verify(bundle)).toEqual({ status: 'valid' });
    });

    it('shows receipts of operations that crash recovery finished while the daemon started', async () => {
      await using dir = await tempDir('daemon');
      const first = createDaemon({ dataDir: dir.path, diagnostics: quiet });
      first.handle('t', () => 1, { crashPolicy: 'fail' });
      await first.start();
      const op = await first.submit({ type: 't', subject: 'urn:x:1', runAt: Date.now() + 3_600_000 });
      await first.close();
      // As if the process died during attempt 1: the row still holds an old lease.
      const db = new DatabaseSync(dir.join('daemon.db'));
      db.prepare(
        "UPDATE operations SET state = 'running', attempts = 1, token = 1, epoch = 1, started_at = created_at WHERE id = ?",
      ).run(op.id);
      db.close();
      await using daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
      daemon.handle('t', () => 1, { crashPolicy: 'fail' });
      await daemon.start();
      const view = daemon.get(op.id);
      expect(view?.state).toBe('dead');
      expect(view?.receipt).not.toBeNull();
      expect(daemon.receipt(op.id)?.receipt.operationId).toBe(op.id);
      expect((await daemon.waitFor(op.id, { timeoutMs: 1_000 }))?.state).toBe('dead');
      // On record like any other finished operation.
      expect((await daemon.report()).operations.recent.some((r) => r.id === op.id)).toBe(true);
    });
  });
});

describe('signing keys and the data directory lock', () => {
  it('skips key files an interrupted first start or rotation left, and old keys keep their window', async () => {
    await using dir = await tempDir('daemon-keys');
    const keysDir = dir.join('keys');
    mkdirSync(keysDir, { recursive: true });
    // A first start cut off after writing its key, before the key list.
    writeFileSync(join(keysDir, 'ledger-1.skey'), 'partial\n', { mode: 0o600 });
    const first = await loadOrCreateSigningKeys(keysDir, 'example.org/log');
    expect(first.verifierKeyPath).toBe(join(keysDir, 'ledger-2.vkey'));
    // A rotation cut off the same way.
    writeFileSync(join(keysDir, 'ledger-3.skey'), 'partial\n', { mode: 0o600 });
    const rotated = await rotateSigningKey(keysDir, 10);
    expect(rotated).toMatchObject({ verifierKeyPath: join(keysDir, 'ledger-4.vkey'), fromSize: 11 });
    expect(rotated.trustedKeys.map((k) => [k.fromSize, k.untilSize])).toEqual([
      [0, 11],
      [11, undefined],
    ]);
    const reloaded = await loadOrCreateSigningKeys(keysDir, 'example.org/log');
    expect(reloaded.signers).toHaveLength(2);
  });

  it('refuses the lock while another process holds it, and takes it once that process is killed (-9)', async () => {
    await using dir = await tempDir('daemon-lock');
    await using holder = spawnNode(fileURLToPath(new URL('./programs/hold-lock.ts', import.meta.url)), {
      args: [dir.path],
    });
    await holder.waitForLine(/^locked/, 20_000);
    expect(() => lockDataDir(dir.path)).toThrow(
      expect.objectContaining({ name: 'DataDirLockedError', pid: holder.pid }),
    );
    await holder.kill9();
    // The operating system dropped the dead process' lock; its pid file is still there.
    lockDataDir(dir.path)();
  });

  it('is not fooled by a pid file naming a live process that holds no lock (its pid reused after a crash)', async () => {
    await using dir = await tempDir('daemon-lock');
    writeFileSync(dir.join('daemon.lock'), `${process.ppid}\n`); // alive, and not a daemon here
    const release = lockDataDir(dir.path);
    expect(readFileSync(dir.join('daemon.lock'), 'utf8').trim()).toBe(String(process.pid));
    release();
  });

  it('lets one holder at a time take the lock, and takes over one left by a dead process', async () => {
    await using dir = await tempDir('daemon-lock');
    const release = lockDataDir(dir.path);
    expect(() => lockDataDir(dir.path)).toThrow(DataDirLockedError);
    const daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
    await expect(daemon.start()).rejects.toBeInstanceOf(DataDirLockedError);
    release();
    writeFileSync(dir.join('daemon.lock'), '999999999\n'); // no such process
    lockDataDir(dir.path)();
  });
});
