import { afterEach, describe, expect, it } from 'vitest';
import { createStateMachine, OperationTimeoutError } from '../src/index.js';
import { allFinal, deferred, Fixture } from './support/helpers.js';

const fx = new Fixture();
afterEach(() => fx.cleanup());

describe('openQueue under faulty handlers', () => {
  it('records whatever a handler rejects with, Error or not, and keeps going', async () => {
    const values: unknown[] = [new TypeError('typed'), 'a string', { code: 42 }, undefined, null, 7];
    const queue = await fx.open({
      types: {
        job: {
          maxAttempts: 1,
          handler: (i: number) => {
            if (i === 0) throw values[0]; // synchronous throw from a non-async handler
            return Promise.reject(values[i]);
          },
        },
        ok: { handler: () => 'fine' },
      },
    });
    const ops = await Promise.all(values.map((_, i) => queue.enqueue('job', i)));
    const fine = await queue.enqueue('ok');
    await allFinal(queue, [...ops.map((o) => o.id), fine.id]);
    expect(ops.map((o) => queue.get(o.id)?.error)).toEqual([
      { name: 'TypeError', message: 'typed' },
      { name: 'NonError', message: 'a string' },
      { name: 'NonError', message: '{"code":42}' },
      { name: 'NonError', message: 'undefined' },
      { name: 'NonError', message: 'null' },
      { name: 'NonError', message: '7' },
    ]);
    expect(ops.every((o) => queue.get(o.id)?.state === 'dead')).toBe(true);
    expect(queue.get(fine.id)).toMatchObject({ state: 'completed', result: 'fine' });
  });

  it('dead-letters a result that cannot be stored instead of losing the operation', async () => {
    const queue = await fx.open({ types: { job: { handler: () => ({ big: 1n }) } } });
    const op = await queue.enqueue('job');
    await allFinal(queue, [op.id]);
    expect(queue.get(op.id)).toMatchObject({ state: 'dead', attempts: 1, error: { name: 'UnrecoverableError' } });
  });

  it('times out a handler that hangs forever, keeps its slot, serves other work and closes without it', async () => {
    const path = await fx.path();
    const aborted = deferred<unknown>();
    const queue = await fx.open({
      path,
      concurrency: 2,
      abortGraceMs: 20,
      types: {
        hang: {
          timeoutMs: 30,
          handler: (_p, { signal }) => {
            signal.addEventListener('abort', () => aborted.resolve(signal.reason));
            return new Promise(() => {}); // never settles, ignores its signal
          },
        },
        work: { handler: (n: number) => n + 1 },
      },
    });
    const hung = await queue.enqueue('hang');
    expect(await aborted.promise).toBeInstanceOf(OperationTimeoutError);
    // The hung handler still holds its slot (no zombie re-run), the other slot serves work.
    expect(queue.stats().inFlight).toBe(1);
    const work = await Promise.all([1, 2, 3].map((n) => queue.enqueue('work', n)));
    await allFinal(
      queue,
      work.map((o) => o.id),
    );
    expect(work.map((o) => queue.get(o.id)?.result)).toEqual([2, 3, 4]);
    expect(queue.get(hung.id)?.state).toBe('running');
    await queue.close({ drainMs: 10 });
    const sm = createStateMachine({ path });
    try {
      expect(sm.get(hung.id)).toMatchObject({ state: 'pending', token: 1 });
    } finally {
      sm.close();
    }
  });

  it('keeps its promises while a handler blocks the event loop for 200 ms', async () => {
    const blockMs = 200;
    const queue = await fx.open({
      types: {
        block: {
          timeoutMs: 50,
          handler: () => {
            const until = performance.now() + blockMs;
            while (performance.now() < until) {
              // busy: nothing else on this thread runs meanwhile
            }
            return 'unblocked';
          },
        },
        work: { timeoutMs: 1000, handler: async (n: number) => n },
      },
    });
    const blocker = await queue.enqueue('block');
    const enqueued = await Promise.all(Array.from({ length: 50 }, (_, n) => queue.enqueue('work', n)));
    await allFinal(queue, [blocker.id, ...enqueued.map((o) => o.id)]);
    // The block finished before its timer could fire: a result, not a timeout.
    expect(queue.get(blocker.id)).toMatchObject({ state: 'completed', result: 'unblocked', attempts: 1 });
    expect(enqueued.every((o) => queue.get(o.id)?.state === 'completed')).toBe(true);
    expect(queue.stats().inFlight).toBe(0);
  });
});
