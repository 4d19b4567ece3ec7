import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { createDaemon, DataDirLockedError, InvalidInputError, NotRunningError } from '../src/index.js';

const quiet = { logLevel: 'warn' as const };

describe('daemon lifecycle and policy edges', () => {
  it('close() called while start() is in progress leaves the daemon closed, with no open queue and no lock', async () => {
    await using dir = await tempDir('daemon');
    const daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet, handlers: { t: { handler: (i) => i } } });
    const started = daemon.start().then(
      () => 'started',
      (e: unknown) => `start failed: ${String(e)}`,
    );
    // e.g. a SIGTERM handler or `await using` disposing while start is still opening the store
    await daemon.close();
    await started;
    const state = daemon.state;
    const lockExists = existsSync(join(dir.path, 'daemon.lock'));
    // Whatever start() said, once close() resolved the daemon must not run.
    let submitted = false;
    try {
      await daemon.submit({ type: 't', subject: 'urn:x:1', input: 1 });
      submitted = true;
    } catch (e) {
      expect(e).toBeInstanceOf(NotRunningError);
    }
    // a second daemon can now open the same directory while the first still runs?
    const second = createDaemon({ dataDir: dir.path, diagnostics: quiet, handlers: { t: { handler: (i) => i } } });
    let secondStarted = false;
    try {
      await second.start();
      secondStarted = true;
    } catch (e) {
      expect(e).toBeInstanceOf(DataDirLockedError);
    }
    await second.close();
    if (daemon.state !== 'closed') {
      // clean up the leaked daemon: force a real close
      (daemon as unknown as { close(): Promise<void> }).close();
    }
    expect({ state, submitted, secondStarted, lockExists }).toEqual({
      state: 'closed',
      submitted: false,
      secondStarted: true,
      lockExists: false,
    });
  });

  it('readyz stops being ready as soon as close() begins (and after it)', async () => {
    await using dir = await tempDir('daemon');
    const daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
    let release: () => void = () => {};
    const blocker = new Promise<void>((r) => {
      release = r;
    });
    daemon.handle('slow', async (_i, ctx) => {
      await Promise.race([blocker, new Promise((r) => ctx.signal.addEventListener('abort', r))]);
      return null;
    });
    await daemon.start();
    expect(daemon.health().readyz.ok).toBe(true);
    const op = await daemon.submit({ type: 'slow', subject: 'urn:x:1' });
    const closing = daemon.close({ drainMs: 2_000 });
    await new Promise((r) => setTimeout(r, 50));
    const duringClose = { state: daemon.state, ready: daemon.health().readyz.ok };
    release();
    await closing;
    const afterClose = { state: daemon.state, ready: daemon.health().readyz.ok };
    expect(op.id).toBeTruthy();
    expect({ duringClose, afterClose }).toEqual({
      duringClose: { state: 'closing', ready: false },
      afterClose: { state: 'closed', ready: false },
    });
  });

  it('close() after a failed start resolves (await using must not throw a second error)', async () => {
    await using dir = await tempDir('daemon');
    const first = createDaemon({ dataDir: dir.path, diagnostics: quiet, handlers: { t: { handler: (i) => i } } });
    await first.start();
    const second = createDaemon({ dataDir: dir.path, diagnostics: quiet, handlers: { t: { handler: (i) => i } } });
    await expect(second.start()).rejects.toBeInstanceOf(DataDirLockedError);
    await expect(second.close()).resolves.toBeUndefined();
    await first.close();
    expect(existsSync(join(dir.path, 'daemon.lock'))).toBe(false);
  });

  it('answers waitFor after close() with a rejected promise (NotRunningError), never a throw', async () => {
    await using dir = await tempDir('daemon');
    const daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet, handlers: { t: { handler: (i) => i } } });
    await daemon.start();
    const op = await daemon.submit({ type: 't', subject: 'urn:x:1', input: 1 });
    await daemon.waitFor(op.id, { timeoutMs: 5_000 });
    await daemon.close();
    let threwSync: unknown;
    let waiting: Promise<unknown> | undefined;
    try {
      waiting = daemon.waitFor(op.id, { timeoutMs: 100 });
    } catch (e) {
      threwSync = e;
    }
    expect(threwSync).toBeUndefined();
    await expect(waiting).rejects.toBeInstanceOf(NotRunningError);
    expect(() => daemon.get(op.id)).toThrow(NotRunningError);
  });

  it('refuses a groupKey other than the subject for a type serialised by subject (it would run two at once)', async () => {
    await using dir = await tempDir('daemon');
    let running = 0;
    let maxRunning = 0;
    const order: number[] = [];
    await using daemon = createDaemon({
      dataDir: dir.path,
      diagnostics: quiet,
      handlers: {
        edit: {
          serialize: 'subject',
          handler: async (input: { n: number }) => {
            running++;
            maxRunning = Math.max(maxRunning, running);
            await new Promise((r) => setTimeout(r, 100));
            order.push(input.n);
            running--;
            return null;
          },
        },
      },
    });
    await daemon.start();
    await expect(
      daemon.submit({ type: 'edit', subject: 'urn:x:same', input: { n: 1 }, groupKey: 'tenant-a' }),
    ).rejects.toThrow(/groupKey: 'edit' runs one operation per subject at a time/);
    const a = await daemon.submit({ type: 'edit', subject: 'urn:x:same', input: { n: 1 }, groupKey: 'urn:x:same' });
    const b = await daemon.submit({ type: 'edit', subject: 'urn:x:same', input: { n: 2 } });
    await daemon.waitFor(a.id, { timeoutMs: 10_000 });
    await daemon.waitFor(b.id, { timeoutMs: 10_000 });
    expect(maxRunning).toBe(1);
    expect(order).toEqual([1, 2]);
  });

  it('keeps the 16 MiB bound on prepared values whatever bytes an inputDigest reports', async () => {
    await using dir = await tempDir('daemon');
    const big = 'x'.repeat(1024 * 1024); // 1 MiB each
    const seen: unknown[] = [];
    await using daemon = createDaemon({
      dataDir: dir.path,
      diagnostics: quiet,
      handlers: {
        p: {
          inputDigest: (input: unknown) => ({
            digest: new Uint8Array(32).fill(input as number),
            prepared: `${big}${input as number}`,
            bytes: -1, // a wrong size estimate is accepted without complaint
          }),
          handler: (_input: unknown, ctx) => {
            seen.push(ctx.prepared);
            return null;
          },
        },
      },
    });
    await daemon.start();
    const runAt = Date.now() + 1_500; // all accepted before any runs: the values sit in the cache
    const ops = [];
    for (let n = 0; n < 40; n++) ops.push(await daemon.submit({ type: 'p', subject: `s${n}`, input: n, runAt }));
    await Promise.all(ops.map((o) => daemon.waitFor(o.id, { timeoutMs: 20_000 })));
    const served = seen.filter((v) => v !== undefined).length;
    // 40 MiB were held at once; the README promises at most 16 MiB (16 of these values).
    expect(served).toBeLessThanOrEqual(16);
  }, 30_000);

  it('refuses a close() drainMs that is not an integer of ms a timer can hold, instead of draining 10 s', async () => {
    await using dir = await tempDir('daemon');
    const daemon = createDaemon({ dataDir: dir.path, diagnostics: quiet });
    daemon.handle(
      'wait',
      (_i, ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))),
    );
    await daemon.start();
    await daemon.submit({ type: 'wait', subject: 'urn:x:1' });
    await new Promise((r) => setTimeout(r, 100));
    for (const drainMs of [0.5, -1, Number.POSITIVE_INFINITY, 2 ** 31]) {
      await expect(daemon.close({ drainMs })).rejects.toBeInstanceOf(InvalidInputError);
    }
    const t0 = performance.now();
    await daemon.close({ drainMs: 0 });
    expect(performance.now() - t0).toBeLessThan(5_000); // not the 10 s default drain
  }, 20_000);

  it('ends a wait when its signal aborts, and only that wait', async () => {
    await using dir = await tempDir('daemon');
    await using daemon = createDaemon({ dataDir: dir.path, diagnostics: { logLevel: 'silent' } });
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    daemon.handle('gated', () => gate.then(() => 'done'));
    await daemon.start();
    const op = await daemon.submit({ type: 'gated', subject: 'urn:x:1' });
    const gone = new AbortController();
    const abandoned = daemon.waitFor(op.id, { timeoutMs: 60_000, signal: gone.signal });
    const kept = daemon.waitFor(op.id, { timeoutMs: 60_000 });
    gone.abort();
    expect(await abandoned).toBeUndefined();
    expect(await daemon.waitFor(op.id, { signal: AbortSignal.abort() })).toBeUndefined();
    await expect(daemon.waitFor(op.id, { signal: 'no' as never })).rejects.toBeInstanceOf(InvalidInputError);
    release();
    expect((await kept)?.state).toBe('completed');
  });

  for (const timeoutMs of [2 ** 31, Number.POSITIVE_INFINITY]) {
    it(`waitFor(id, { timeoutMs: ${timeoutMs} }) waits for the outcome (no timer can hold it) instead of giving up at once`, async () => {
      await using dir = await tempDir('daemon');
      await using daemon = createDaemon({ dataDir: dir.path, diagnostics: { logLevel: 'silent' } });
      daemon.handle('slow', async () => {
        await new Promise((r) => setTimeout(r, 300));
        return 'done';
      });
      await daemon.start();
      const op = await daemon.submit({ type: 'slow', subject: 'urn:x:1' });
      const view = await daemon.waitFor(op.id, { timeoutMs });
      expect(view?.state).toBe('completed');
    });
  }
});
