import { createDaemon, InvalidInputError } from '@unrdf/daemon';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { MAX_SLEEP_MS, sleepHandler } from '../src/handlers/sleep.js';

describe('sleepHandler', () => {
  it('sleeps and returns sleptMs, with a receipt that verifies', async () => {
    await using dir = await tempDir('sleep');
    await using daemon = createDaemon({
      dataDir: dir.path,
      diagnostics: { logLevel: 'warn' },
      handlers: { sleep: sleepHandler },
    });
    await daemon.start();
    const op = await daemon.submit({ type: 'sleep', subject: 'urn:example:sleep', input: { ms: 3 } });
    const done = await daemon.waitFor(op.id, { timeoutMs: 10_000 });
    expect(done).toMatchObject({ state: 'completed', outcome: 'succeeded' });
    expect((done?.output as { sleptMs: number } | undefined)?.sleptMs).toBeGreaterThanOrEqual(3);
    expect(daemon.verify(daemon.receipt(op.id)).status).toBe('valid');
  });

  it('refuses ms outside 0..60000 and non-integers at submit', async () => {
    await using dir = await tempDir('sleep');
    await using daemon = createDaemon({
      dataDir: dir.path,
      diagnostics: { logLevel: 'warn' },
      handlers: { sleep: sleepHandler },
    });
    await daemon.start();
    for (const input of [{ ms: -1 }, { ms: MAX_SLEEP_MS + 1 }, { ms: 1.5 }, { ms: '5' }, {}, { ms: 1, extra: true }]) {
      const refused = await daemon.submit({ type: 'sleep', subject: 'urn:example:sleep', input }).catch((e) => e);
      expect(refused, JSON.stringify(input)).toBeInstanceOf(InvalidInputError);
      expect((refused as InvalidInputError).issues.join('\n')).toMatch(/^input(\.ms|\.\(root\))?: /m);
    }
  });

  it('stops at once when the attempt is aborted (cancel)', async () => {
    await using dir = await tempDir('sleep');
    await using daemon = createDaemon({
      dataDir: dir.path,
      diagnostics: { logLevel: 'warn' },
      handlers: { sleep: sleepHandler },
    });
    await daemon.start();
    const op = await daemon.submit({ type: 'sleep', subject: 'urn:example:sleep', input: { ms: MAX_SLEEP_MS } });
    const started = performance.now();
    expect(await daemon.cancel(op.id)).toBe(true);
    const done = await daemon.waitFor(op.id, { timeoutMs: 10_000 });
    expect(done).toMatchObject({ state: 'cancelled', outcome: 'cancelled' });
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('rejects with the abort reason when its signal fires mid-sleep', async () => {
    const controller = new AbortController();
    const context = {
      id: 'op-1',
      type: 'sleep',
      subject: 'urn:example:sleep',
      attempt: 1,
      token: 1,
      idempotencyKey: 'op-1',
      nodeId: 'node-1',
      inputDigest: '',
      signal: controller.signal,
      setEffects: () => {
        throw new Error('sleep has no effects');
      },
    };
    const running = Promise.resolve(sleepHandler.handler({ ms: MAX_SLEEP_MS }, context));
    controller.abort(new Error('shutting down'));
    await expect(running).rejects.toThrow('shutting down');
  });
});
