import { copyFileSync, existsSync, statSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from '@unrdf/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type ApplyExtension,
  CompletionRefusedError,
  createStateMachine,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  OperationAbortedError,
  OperationTimeoutError,
  openQueue,
  QueueClosedError,
  type QueueEvent,
  UnknownTypeError,
  UnrecoverableError,
} from '../src/index.js';
import { allFinal, deferred, Fixture, nextEvent } from './support/helpers.js';

const fx = new Fixture();
afterEach(() => fx.cleanup());

const countRows = (path: string): number => {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM operations').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe('openQueue', () => {
  it('rejects invalid options with the zod issues as path: message lines', async () => {
    const path = await fx.path();
    const attempt = openQueue({ path, types: { job: { handler: () => 1, concurrency: 0 } }, concurrency: -1 });
    await expect(attempt).rejects.toBeInstanceOf(InvalidInputError);
    await expect(attempt).rejects.toThrow(/types\.job\.concurrency: .*\n?.*|concurrency: /);
    await expect(openQueue({ path, types: { job: { handler: () => 1, crashPolicy: 'reconcile' } } })).rejects.toThrow(
      /types\.job\.reconcile: crashPolicy 'reconcile' needs a reconcile hook/,
    );
  });

  describe('enqueue', () => {
    it('resolves only once the operation is committed to the file, and runs it', async () => {
      const path = await fx.path();
      const gate = deferred();
      const queue = await fx.open({
        path,
        types: {
          job: {
            handler: async (p: { n: number }) => {
              await gate.promise;
              return p.n * 2;
            },
          },
        },
      });
      const op = await queue.enqueue('job', { n: 21 });
      // Another connection sees the row: it is committed, not just buffered.
      expect(countRows(path)).toBe(1);
      expect(op).toMatchObject({ type: 'job', payload: { n: 21 }, attempts: 0, priority: 0 });
      gate.resolve();
      await allFinal(queue, [op.id]);
      expect(queue.get(op.id)).toMatchObject({ state: 'completed', result: 42, attempts: 1, token: 1 });
    });

    it('returns the original operation for a duplicate idempotency key and runs it once', async () => {
      let runs = 0;
      const queue = await fx.open({ types: { job: { handler: () => ++runs } } });
      const [a, b] = await Promise.all([
        queue.enqueue('job', { v: 1 }, { idempotencyKey: 'order-7' }),
        queue.enqueue('job', { v: 2 }, { idempotencyKey: 'order-7' }),
      ]);
      expect(b.id).toBe(a.id);
      expect(b.payload).toEqual({ v: 1 });
      await allFinal(queue, [a.id]);
      const c = await queue.enqueue('job', { v: 3 }, { idempotencyKey: 'order-7' });
      expect(c).toMatchObject({ id: a.id, state: 'completed' });
      expect(runs).toBe(1);
    });

    it('throws typed errors for bad options, payloads and types, and writes nothing', async () => {
      const path = await fx.path();
      const queue = await fx.open({
        path,
        types: { job: { handler: () => null, payloadSchema: z.object({ email: z.email() }) } },
      });
      await expect(queue.enqueue('job', { email: 'a@b.org' }, { priority: 1.5 })).rejects.toThrow(/priority: /);
      await expect(queue.enqueue('job', { email: 'a@b.org' }, { delayMs: 5, runAt: 10 })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      await expect(queue.enqueue('job', { email: 'nope' })).rejects.toThrow(/email: /);
      await expect(queue.enqueue('nope', {})).rejects.toBeInstanceOf(UnknownTypeError);
      const loose = await fx.open({ path: await fx.path('loose.db'), types: { job: { handler: () => null } } });
      await expect(loose.enqueue('job', { n: 1n })).rejects.toThrow(/not JSON-serialisable/);
      await expect(loose.enqueue('job', () => 1)).rejects.toBeInstanceOf(InvalidInputError);
      expect(countRows(path)).toBe(0);
      expect(countRows(await fx.path('loose.db'))).toBe(0);
    });
  });

  describe('concurrency', () => {
    it('never runs more than the global, per-type and per-group limits', async () => {
      let running = 0;
      let peak = 0;
      const peaks = new Map<string, number>();
      const live = new Map<string, number>();
      const handler = async (p: { g: string }, { type }: { type: string }) => {
        running++;
        peak = Math.max(peak, running);
        const key = `${type}:${p.g}`;
        live.set(key, (live.get(key) ?? 0) + 1);
        peaks.set(key, Math.max(peaks.get(key) ?? 0, live.get(key) ?? 0));
        peaks.set(
          type,
          Math.max(
            peaks.get(type) ?? 0,
            [...live].filter(([k]) => k.startsWith(type)).reduce((s, [, n]) => s + n, 0),
          ),
        );
        await new Promise((r) => setTimeout(r, 2));
        live.set(key, (live.get(key) ?? 1) - 1);
        running--;
      };
      const queue = await fx.open({
        concurrency: 5,
        types: { a: { handler, concurrency: 3, groupConcurrency: 2 }, b: { handler, concurrency: 4 } },
      });
      const ops = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          queue.enqueue(i % 2 ? 'a' : 'b', { g: `t${i % 3}` }, { groupKey: `t${i % 3}` }),
        ),
      );
      await allFinal(
        queue,
        ops.map((o) => o.id),
      );
      expect(peak).toBe(5);
      expect(peaks.get('a')).toBeLessThanOrEqual(3);
      expect(peaks.get('b')).toBeLessThanOrEqual(4);
      for (const g of ['t0', 't1', 't2']) expect(peaks.get(`a:${g}`)).toBeLessThanOrEqual(2);
    });

    it('serves priorities highest first and group keys round-robin within a priority', async () => {
      const order: string[] = [];
      const queue = await fx.open({ concurrency: 1, types: { job: { handler: (p: string) => order.push(p) } } });
      await queue.pause('job');
      const ops = [
        await queue.enqueue('job', 'A1', { groupKey: 'A' }),
        await queue.enqueue('job', 'A2', { groupKey: 'A' }),
        await queue.enqueue('job', 'A3', { groupKey: 'A' }),
        await queue.enqueue('job', 'B1', { groupKey: 'B' }),
        await queue.enqueue('job', 'B2', { groupKey: 'B' }),
        await queue.enqueue('job', 'low', { priority: -5 }),
        await queue.enqueue('job', 'high', { priority: 5, groupKey: 'A' }),
      ];
      await queue.resume('job');
      await allFinal(
        queue,
        ops.map((o) => o.id),
      );
      expect(order).toEqual(['high', 'A1', 'B1', 'A2', 'B2', 'A3', 'low']);
    });
  });

  describe('delays and retries', () => {
    it('runs a delayed operation no earlier than its runAt', async () => {
      const started = new Map<string, number>();
      const queue = await fx.open({ types: { job: { handler: (_p, { id }) => started.set(id, Date.now()) } } });
      const op = await queue.enqueue('job', null, { delayMs: 40 });
      expect(queue.stats().delayed).toBe(1);
      await allFinal(queue, [op.id]);
      expect(started.get(op.id)).toBeGreaterThanOrEqual(op.runAt);
      expect(op.runAt - op.createdAt).toBe(40);
    });

    it('retries with exponential backoff and full jitter from the injected random, then completes', async () => {
      let calls = 0;
      const queue = await fx.open({
        random: () => 0.5,
        types: {
          job: {
            handler: () => {
              if (++calls < 3) throw new Error(`flaky ${calls}`);
              return 'finally';
            },
            backoff: { baseMs: 20, maxMs: 30 },
          },
        },
      });
      const retries: QueueEvent[] = [];
      queue.onEvent((e) => e.kind === 'retry-scheduled' && retries.push(e));
      const op = await queue.enqueue('job');
      await allFinal(queue, [op.id]);
      // Delay = random * min(max, base * 2^(attempt-1)): 0.5*20, then 0.5*min(30, 40).
      expect(retries.map((e) => ('runAt' in e ? e.runAt - e.at : -1))).toEqual([10, 15]);
      expect(queue.get(op.id)).toMatchObject({ state: 'completed', attempts: 3, token: 3, result: 'finally' });
    });

    it('dead-letters after maxAttempts or on an UnrecoverableError, and redrives', async () => {
      let healthy = false;
      const queue = await fx.open({
        random: () => 0,
        types: {
          flaky: {
            handler: () => {
              if (!healthy) throw new Error('down');
              return 'up';
            },
            maxAttempts: 2,
          },
          strict: {
            handler: () => {
              throw new UnrecoverableError('bad input');
            },
            maxAttempts: 5,
          },
        },
      });
      const a = await queue.enqueue('flaky');
      const b = await queue.enqueue('strict');
      await allFinal(queue, [a.id, b.id]);
      expect(queue.get(a.id)).toMatchObject({ state: 'dead', attempts: 2, error: { name: 'Error', message: 'down' } });
      expect(queue.get(b.id)).toMatchObject({
        state: 'dead',
        attempts: 1,
        error: { name: 'UnrecoverableError', code: 'UNRDF_QUEUE_UNRECOVERABLE' },
      });
      await expect(queue.redrive('missing')).rejects.toBeInstanceOf(NotFoundError);
      await expect(queue.redrive(b.id, { delayMs: 1e20 })).rejects.toThrow(/delayMs: /);
      await expect(queue.redrive(b.id, { delayMs: -1 })).rejects.toBeInstanceOf(InvalidInputError);
      healthy = true;
      const done = nextEvent(queue, (e) => e.kind === 'completed' && e.id === a.id);
      await queue.redrive(a.id);
      await done;
      expect(queue.get(a.id)).toMatchObject({ state: 'completed', attempts: 1, token: 3 });
      await expect(queue.redrive(a.id)).rejects.toBeInstanceOf(InvalidStateError);
    });
  });

  describe('timeouts and cancel', () => {
    it('aborts a handler past its timeout and holds its slot until it settles', async () => {
      const release = deferred();
      const reasons: unknown[] = [];
      const starts: string[] = [];
      const queue = await fx.open({
        concurrency: 1,
        random: () => 0,
        types: {
          job: {
            timeoutMs: 20,
            maxAttempts: 1,
            handler: async (p: string, { signal }) => {
              starts.push(p);
              if (p !== 'slow') return;
              await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
              reasons.push(signal.reason);
              // Ignores the abort for a while: the next operation must not start meanwhile.
              await release.promise;
            },
          },
        },
      });
      const slow = await queue.enqueue('job', 'slow');
      const next = await queue.enqueue('job', 'next');
      await waitFor(() => reasons.length === 1, { what: 'the timeout aborts the handler' });
      expect(reasons[0]).toBeInstanceOf(OperationTimeoutError);
      expect(starts).toEqual(['slow']);
      expect(queue.stats().inFlight).toBe(1);
      release.resolve();
      await allFinal(queue, [slow.id, next.id]);
      expect(queue.get(slow.id)).toMatchObject({ state: 'dead', error: { name: 'OperationTimeoutError' } });
      expect(starts).toEqual(['slow', 'next']);
    });

    it('cancels pending operations before they run and running ones through their signal', async () => {
      const started = deferred();
      let reason: unknown;
      let ran = 0;
      const queue = await fx.open({
        types: {
          job: {
            handler: async (p: string, { signal }) => {
              ran++;
              if (p !== 'long') return;
              started.resolve();
              await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
              reason = signal.reason;
              return 'late result';
            },
          },
        },
      });
      const later = await queue.enqueue('job', 'later', { delayMs: 60_000 });
      expect(await queue.cancel(later.id)).toBe(true);
      const long = await queue.enqueue('job', 'long');
      await started.promise;
      expect(await queue.cancel(long.id)).toBe(true);
      await waitFor(() => queue.stats().inFlight === 0, { what: 'the cancelled handler settles' });
      expect(reason).toBeInstanceOf(OperationAbortedError);
      expect(queue.get(long.id)).toMatchObject({ state: 'cancelled', result: null });
      expect(queue.get(later.id)?.state).toBe('cancelled');
      expect(await queue.cancel(long.id)).toBe(false);
      await expect(queue.cancel('missing')).rejects.toBeInstanceOf(NotFoundError);
      expect(ran).toBe(1);
      expect(queue.stats()).toMatchObject({ delayed: 0, ready: 0 });
    });
  });

  describe('pause and resume', () => {
    it('holds a paused type across a restart and runs it after resume', async () => {
      const path = await fx.path();
      const ran: string[] = [];
      const types = { a: { handler: (p: string) => ran.push(p) }, b: { handler: (p: string) => ran.push(p) } };
      const first = await openQueue({ path, types });
      await first.pause('a');
      const held = await first.enqueue('a', 'held');
      const other = await first.enqueue('b', 'other');
      await allFinal(first, [other.id]);
      await first.close();
      const second = await fx.open({ path, types });
      const other2 = await second.enqueue('b', 'other2');
      await allFinal(second, [other2.id]);
      expect(ran).toEqual(['other', 'other2']);
      expect(second.get(held.id)?.state).toBe('pending');
      await second.resume('a');
      await allFinal(second, [held.id]);
      expect(ran).toEqual(['other', 'other2', 'held']);
    });
  });

  describe('crash recovery', () => {
    /** Leaves an operation `running` under boot epoch 1, as a killed process would. */
    async function strandedOperation(path: string, type: string): Promise<string> {
      const sm = createStateMachine({ path });
      sm.apply({ kind: 'boot', at: 1 });
      sm.apply({
        kind: 'enqueue',
        at: 1,
        id: 'stranded',
        type,
        payload: '{"x":1}',
        priority: 0,
        runAt: 1,
        groupKey: null,
        idempotencyKey: 'idem-1',
        maxAttempts: 3,
      });
      sm.apply({ kind: 'claim', at: 2, id: 'stranded', epoch: 1 });
      sm.close();
      return 'stranded';
    }

    it('retries by default, with a new fencing token', async () => {
      const path = await fx.path();
      const id = await strandedOperation(path, 'job');
      const tokens: number[] = [];
      const queue = await fx.open({ path, types: { job: { handler: (_p, { token }) => tokens.push(token) } } });
      expect(queue.epoch).toBe(2);
      await allFinal(queue, [id]);
      expect(tokens).toEqual([2]);
      expect(queue.get(id)).toMatchObject({ state: 'completed', token: 2, attempts: 2 });
    });

    it("dead-letters under the 'fail' policy", async () => {
      const path = await fx.path();
      const id = await strandedOperation(path, 'job');
      let ran = false;
      const queue = await fx.open({ path, types: { job: { handler: () => (ran = true), crashPolicy: 'fail' } } });
      expect(queue.get(id)).toMatchObject({ state: 'dead', error: { name: 'CrashedError' } });
      expect(ran).toBe(false);
    });

    it("asks the reconcile hook under the 'reconcile' policy", async () => {
      const path = await fx.path();
      const id = await strandedOperation(path, 'job');
      const asked: unknown[] = [];
      const queue = await fx.open({
        path,
        types: {
          job: {
            handler: () => 'ran again',
            crashPolicy: 'reconcile',
            reconcile: (op) => {
              asked.push(op);
              return { outcome: 'completed', result: 'found it done' };
            },
          },
        },
      });
      expect(asked).toEqual([{ id, type: 'job', payload: { x: 1 }, token: 1, attempt: 1, idempotencyKey: 'idem-1' }]);
      expect(queue.get(id)).toMatchObject({ state: 'completed', token: 1, result: 'found it done' });
    });

    it.each([
      [
        'throws',
        () => {
          throw new Error('cannot tell');
        },
      ],
      ['answers completed with a result that cannot be stored', () => ({ outcome: 'completed' as const, result: 1n })],
    ])('retries when the reconcile hook %s', async (_case, reconcile) => {
      const path = await fx.path();
      const id = await strandedOperation(path, 'job');
      const tokens: number[] = [];
      const queue = await fx.open({
        path,
        types: {
          job: {
            handler: (_p, { token }) => tokens.push(token),
            crashPolicy: 'reconcile',
            reconcile,
          },
        },
      });
      await allFinal(queue, [id]);
      expect(tokens).toEqual([2]);
      expect(queue.get(id)).toMatchObject({ state: 'completed', token: 2 });
    });
  });

  describe('close with operations claimed ahead', () => {
    it('gives back leases claimed ahead of a free slot, unspent', async () => {
      const path = await fx.path();
      const gate = deferred();
      const started = deferred();
      const first = await openQueue({
        path,
        concurrency: 1,
        abortGraceMs: 10,
        types: {
          job: {
            handler: async (_p, { signal }) => {
              started.resolve();
              await Promise.race([gate.promise, new Promise((r) => signal.addEventListener('abort', r))]);
            },
          },
        },
      });
      const running = await first.enqueue('job');
      await started.promise;
      const waiting = await first.enqueue('job');
      await waitFor(() => first.stats().leased === 2, { what: 'the second operation is claimed ahead' });
      expect(first.stats().inFlight).toBe(1);
      await first.close({ drainMs: 0 });
      const sm = createStateMachine({ path });
      try {
        expect(sm.get(running.id)).toMatchObject({ state: 'pending', attempts: 0, token: 1 });
        expect(sm.get(waiting.id)).toMatchObject({ state: 'pending', attempts: 0, token: 1 });
      } finally {
        sm.close();
      }
    });
  });

  describe('close with claims in flight', () => {
    it('leaves no operation running in the store', async () => {
      const path = await fx.path();
      const queue = await openQueue({
        path,
        // 'fail': claims wait for their fsync, so they are still in flight when close() starts.
        types: { job: { crashPolicy: 'fail', handler: () => new Promise((r) => setTimeout(r, 5)) } },
      });
      await queue.pause('job');
      const ops = await Promise.all(Array.from({ length: 20 }, () => queue.enqueue('job')));
      await queue.resume('job'); // its commit dispatches: claims are being committed now
      await queue.close({ drainMs: 0 });
      const sm = createStateMachine({ path });
      try {
        const states = ops.map((o) => sm.get(o.id)?.state);
        expect(states.every((state) => state === 'pending' || state === 'completed')).toBe(true);
        expect(sm.countByState().running).toBe(0);
      } finally {
        sm.close();
      }
    });
  });

  describe('close', () => {
    it('drains running handlers, then aborts the rest and gives their leases back', async () => {
      const path = await fx.path();
      const started = deferred();
      let abortedWith: unknown;
      const first = await openQueue({
        path,
        abortGraceMs: 50,
        types: {
          quick: { handler: () => new Promise((r) => setTimeout(() => r('done'), 10)) },
          stuck: {
            handler: async (_p, { signal }) => {
              started.resolve();
              await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
              abortedWith = signal.reason;
            },
          },
        },
      });
      const quick = await first.enqueue('quick');
      const stuck = await first.enqueue('stuck');
      await started.promise;
      await first.close({ drainMs: 100 });
      await expect(first.enqueue('quick')).rejects.toThrow(/closed/);
      expect(() => first.get(quick.id)).toThrow(QueueClosedError);
      expect(() => first.state(quick.id)).toThrow(QueueClosedError);
      expect(abortedWith).toBeInstanceOf(OperationAbortedError);
      const sm = createStateMachine({ path });
      try {
        expect(sm.get(quick.id)).toMatchObject({ state: 'completed' });
        // Not stuck: back to pending, the interrupted attempt not counted.
        expect(sm.get(stuck.id)).toMatchObject({ state: 'pending', attempts: 0, token: 1 });
      } finally {
        sm.close();
      }
    });

    it('releases leases of handlers that ignore their signal, and fences their late outcome', async () => {
      const path = await fx.path();
      const started = deferred();
      const finish = deferred();
      const first = await openQueue({
        path,
        abortGraceMs: 10,
        types: {
          job: {
            handler: async () => {
              started.resolve();
              await finish.promise;
              return 'zombie';
            },
          },
        },
      });
      const op = await first.enqueue('job');
      await started.promise;
      await first.close({ drainMs: 10 });
      finish.resolve();
      const tokens: number[] = [];
      const second = await fx.open({ path, types: { job: { handler: (_p, { token }) => tokens.push(token) } } });
      await allFinal(second, [op.id]);
      expect(tokens).toEqual([2]);
      expect(second.get(op.id)).toMatchObject({ state: 'completed', token: 2, result: 1 });
    });
  });

  describe('schedules', () => {
    it('enqueues a cron schedule once per due time and keeps it across a restart', async () => {
      const path = await fx.path();
      const types = { tick: { handler: (p: { n: number }) => p.n } };
      const first = await openQueue({ path, types });
      await expect(first.schedule('bad', { type: 'tick', cron: 'not a cron' })).rejects.toThrow(/cron: /);
      // The next run is after the call began (by the time it resolves, on a slow machine, it may be past).
      const calledAt = Date.now();
      const info = await first.schedule('every-second', { type: 'tick', cron: '* * * * * *', payload: { n: 7 } });
      expect(info.nextRunAt).toBeGreaterThanOrEqual(calledAt);
      const fired = await nextEvent(first, (e) => e.kind === 'completed', 3000);
      const op = first.get('id' in fired ? fired.id : '');
      expect(op).toMatchObject({
        schedule: 'every-second',
        result: 7,
        idempotencyKey: `schedule:every-second:${op?.runAt}`,
      });
      await first.close();
      const second = await fx.open({ path, types });
      const again = await nextEvent(second, (e) => e.kind === 'completed', 3000);
      expect(second.get('id' in again ? again.id : '')?.runAt).toBeGreaterThan(op?.runAt ?? 0);
      expect(await second.unschedule('every-second')).toBe(true);
    });

    it('fires a run missed while down once, even when the start-up code registers the schedule again', async () => {
      for (const again of [false, true]) {
        let now = Date.parse('2025-01-01T00:00:30.000Z');
        const clock = { now: () => now };
        const path = await fx.path(`missed-${again}.db`);
        const types = { tick: { handler: () => 'ok' } };
        const first = await fx.open({ path, clock, durability: 'none', types });
        await first.schedule('every-minute', { type: 'tick', cron: '* * * * *' });
        await first.close();
        now = Date.parse('2025-01-01T00:01:20.000Z'); // down over the 00:01 run
        const second = await fx.open({ path, clock, durability: 'none', types });
        const fired: string[] = [];
        second.onEvent((e) => {
          if (e.kind === 'enqueued') fired.push(e.id);
        });
        if (again) await second.schedule('every-minute', { type: 'tick', cron: '* * * * *' });
        await waitFor(() => fired.length > 0, { timeoutMs: 3000 });
        await sleep(100);
        expect(fired, `registered again: ${again}`).toHaveLength(1);
      }
    });

    it('tries a fire the store refuses again later, backing off, not in a tight loop', async () => {
      let now = Date.parse('2025-01-01T00:00:30.000Z');
      let attempts = 0;
      const refuse: ApplyExtension = {
        name: 'refuses-fires',
        watches: ['fire-schedule'],
        afterApply() {
          attempts++;
          throw new Error('unavailable');
        },
      };
      const queue = await fx.open({
        durability: 'none',
        clock: { now: () => now },
        extensions: [refuse],
        types: { tick: { handler: () => 'ok' } },
      });
      await queue.schedule('m', { type: 'tick', cron: '* * * * *' });
      now = Date.parse('2025-01-01T00:01:05.000Z'); // due
      await queue.schedule('other', { type: 'tick', cron: '0 0 1 1 *' }); // re-arms the timer
      await sleep(500);
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(attempts).toBeLessThanOrEqual(2); // the retry waits a second (the clock stands still here)
    });

    it('refuses a bad timezone, a payload that is not JSON or fails the payloadSchema, with InvalidInputError', async () => {
      const queue = await fx.open({
        durability: 'none',
        types: { job: { handler: () => 1 }, typed: { handler: () => 1, payloadSchema: z.object({ n: z.number() }) } },
      });
      const cron = '* * * * *';
      await expect(queue.schedule('s', { type: 'job', cron, timezone: 'Not/AZone' })).rejects.toThrow(/timezone: /);
      await expect(queue.schedule('s', { type: 'job', cron, payload: 10n })).rejects.toBeInstanceOf(InvalidInputError);
      await expect(queue.schedule('s', { type: 'typed', cron, payload: { n: 'x' } })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
    });
  });

  describe('storeOnly types: started before their enqueue commits', () => {
    it('commit a quick outcome with the enqueue: final once the enqueue resolves', async () => {
      const started: string[] = [];
      const queue = await fx.open({
        types: {
          quick: {
            storeOnly: true,
            handler: (n: number, ctx) => {
              started.push(ctx.id);
              return n * 2;
            },
          },
          plain: {
            handler: (n: number, ctx) => {
              started.push(ctx.id);
              return n * 2;
            },
          },
        },
      });
      const enqueued = queue.enqueue('quick', 21);
      // Started in this very turn, before anything was committed.
      expect(started).toHaveLength(1);
      const op = await enqueued;
      // One transaction: the enqueue, its claim and its completion.
      expect(queue.get(op.id)).toMatchObject({ state: 'completed', result: 42, attempts: 1 });
      // Another type's handler waits for its claim's commit.
      const plain = queue.enqueue('plain', 21);
      expect(started).toHaveLength(1);
      await allFinal(queue, [(await plain).id]);
      expect(started).toHaveLength(2);
      // With an idempotency key the handler waits for the claim's commit: a duplicate never runs.
      const keyed = queue.enqueue('quick', 1, { idempotencyKey: 'k' });
      expect(started).toHaveLength(2);
      const again = await queue.enqueue('quick', 1, { idempotencyKey: 'k' });
      expect(again.id).toBe((await keyed).id);
      await allFinal(queue, [again.id]);
      expect(started).toHaveLength(3);
    });

    it('are refused without the retry crash policy', async () => {
      await expect(
        fx.open({ types: { t: { storeOnly: true, crashPolicy: 'fail', handler: () => 1 } } }),
      ).rejects.toThrow(/storeOnly/);
    });
  });

  describe('effects: data a handler hands to the store extensions with its completion', () => {
    /** An extension that records the effects of each complete command and can refuse some. */
    /**
     * An extension that records the effects of each complete command and can refuse some. Like
     * any extension it decides from the command alone: a batch that fails is replayed one command
     * per transaction, so afterApply may see one command more than once.
     */
    const recorder = (refuse: (effects: unknown) => CompletionRefusedError | undefined) => {
      const seen: { id: string; effects: unknown; columns: string }[] = [];
      const extension: ApplyExtension = {
        name: 'recorder',
        watches: ['complete'],
        afterApply({ db, command }) {
          if (command.kind !== 'complete') return;
          const effects = command.effects === undefined ? undefined : JSON.parse(command.effects);
          const refusal = refuse(effects);
          if (refusal) throw refusal;
          const row = db.prepare('SELECT * FROM operations WHERE id = ?').get(command.id) as Record<string, unknown>;
          seen.push({ id: command.id, effects, columns: JSON.stringify(row) });
        },
      };
      return { extension, seen };
    };

    it("applies them in the completion's transaction, from the command, without storing them on the operation", async () => {
      const { extension, seen } = recorder(() => undefined);
      const queue = await fx.open({
        extensions: [extension],
        types: {
          job: {
            handler: (n: number, ctx) => {
              ctx.setEffects({ first: n });
              ctx.setEffects({ last: n, secret: 'only-in-effects' });
              return n + 1;
            },
          },
          plain: { handler: () => 'none' },
        },
      });
      const [a, b] = [await queue.enqueue('job', 41), await queue.enqueue('plain')];
      await allFinal(queue, [a.id, b.id]);
      expect(queue.get(a.id)).toMatchObject({ state: 'completed', result: 42 });
      expect(seen.find((x) => x.id === a.id)?.effects).toEqual({ last: 41, secret: 'only-in-effects' });
      expect(seen.find((x) => x.id === a.id)?.columns).not.toContain('only-in-effects');
      expect(seen.find((x) => x.id === b.id)?.effects).toBeUndefined();
    });

    it('fails the attempt when an extension refuses the completion: retried by policy, or dead when it says so', async () => {
      const { extension } = recorder((effects) => {
        const e = effects as { kind: string; attempt: number };
        if (e.kind === 'conflict-once' && e.attempt === 1) return new CompletionRefusedError('changed meanwhile');
        if (e.kind === 'never') return new CompletionRefusedError('not allowed', { retry: false });
        return undefined;
      });
      const queue = await fx.open({
        extensions: [extension],
        types: {
          job: {
            backoff: { baseMs: 1, maxMs: 5 },
            handler: (kind: string, ctx) => {
              ctx.setEffects({ kind, attempt: ctx.attempt });
              return `${kind} attempt ${ctx.attempt}`;
            },
          },
        },
      });
      const once = await queue.enqueue('job', 'conflict-once');
      const never = await queue.enqueue('job', 'never');
      await allFinal(queue, [once.id, never.id]);
      expect(queue.get(once.id)).toMatchObject({ state: 'completed', attempts: 2, result: 'conflict-once attempt 2' });
      expect(queue.get(never.id)).toMatchObject({
        state: 'dead',
        attempts: 1,
        error: { name: 'CompletionRefusedError', message: 'not allowed' },
      });
    });

    it("starts the next operation of a group only once the previous one's outcome is committed", async () => {
      const states: (string | undefined)[] = [];
      let previous: string | undefined;
      const queue = await fx.open({
        types: {
          job: {
            groupConcurrency: 1,
            handler: (_: unknown, ctx) => {
              if (previous !== undefined) states.push(queue.get(previous)?.state);
              previous = ctx.id;
              return 'ok';
            },
          },
        },
      });
      const ops = await Promise.all(Array.from({ length: 20 }, () => queue.enqueue('job', null, { groupKey: 'g' })));
      await allFinal(
        queue,
        ops.map((o) => o.id),
      );
      expect(states).toHaveLength(19);
      expect(states.every((s) => s === 'completed')).toBe(true);
    });

    it('runs one group of a shared lane in enqueue order across types, each after the previous outcome is committed', async () => {
      const runs: { payload: string; previous: string | undefined }[] = [];
      let previous: string | undefined;
      const handler = (payload: string, ctx: { id: string }) => {
        runs.push({ payload, previous: previous === undefined ? undefined : queue.get(previous)?.state });
        previous = ctx.id;
        return payload;
      };
      // `update` comes first in the round-robin between lanes: alone in its lane it would be served first.
      const queue = await fx.open({
        types: {
          update: { handler, groupConcurrency: 1, lane: 'entity' },
          create: { handler, groupConcurrency: 1, lane: 'entity' },
          other: { handler: () => 'x' },
        },
      });
      const ops = await Promise.all(
        ['create', 'update', 'update', 'create', 'update'].map((type, i) =>
          queue.enqueue(type, `${type}${i}`, { groupKey: 'e1' }),
        ),
      );
      await allFinal(
        queue,
        ops.map((o) => o.id),
      );
      expect(runs.map((r) => r.payload)).toEqual(['create0', 'update1', 'update2', 'create3', 'update4']);
      expect(runs.slice(1).every((r) => r.previous === 'completed')).toBe(true);
    });

    it('reports an outcome it could not commit (an extension threw) to onSettleError; the operation stays running', async () => {
      const reported: { id: string; kind: string; error: string }[] = [];
      const extension: ApplyExtension = {
        name: 'refuses-failures',
        watches: ['fail'],
        afterApply() {
          throw new Error('cannot record this failure');
        },
      };
      const queue = await fx.open({
        types: {
          job: {
            handler: () => {
              throw new UnrecoverableError('no');
            },
          },
        },
        extensions: [extension],
        onSettleError: (error, { id, kind }) => reported.push({ id, kind, error: String(error) }),
      });
      const op = await queue.enqueue('job');
      await waitFor(() => reported.length > 0, { timeoutMs: 5_000 });
      expect(reported).toEqual([
        { id: op.id, kind: 'fail', error: expect.stringContaining('cannot record this failure') },
      ]);
      expect(queue.get(op.id)?.state).toBe('running');
    });

    it('refuses types of one lane whose groupConcurrency differs', async () => {
      const attempt = fx.open({
        types: {
          a: { handler: () => 1, groupConcurrency: 1, lane: 'l' },
          b: { handler: () => 1, groupConcurrency: 2, lane: 'l' },
        },
      });
      await expect(attempt).rejects.toBeInstanceOf(InvalidInputError);
      await expect(attempt).rejects.toThrow(/types\.b\.groupConcurrency: the types of lane "l" share their groups/);
    });
  });

  describe('events, stats and hygiene', () => {
    it('emits each transition after commit and counts them', async () => {
      const queue = await fx.open({ types: { job: { handler: () => 'ok' } } });
      const kinds: string[] = [];
      queue.onEvent((e) => kinds.push(e.kind));
      const completed = nextEvent(queue, (e) => e.kind === 'completed');
      await queue.enqueue('job');
      await completed;
      expect(kinds).toEqual(['enqueued', 'claimed', 'completed']);
      expect(queue.stats()).toMatchObject({
        epoch: 1,
        ready: 0,
        delayed: 0,
        inFlight: 0,
        totals: { enqueued: 1, completed: 1 },
      });
    });

    it('purges final operations past retention and checkpoints the WAL', async () => {
      const path = await fx.path();
      const queue = await fx.open({
        path,
        retentionMs: 0,
        maintenanceIntervalMs: 30,
        types: { job: { handler: () => 1 } },
      });
      const ops = await Promise.all(Array.from({ length: 50 }, () => queue.enqueue('job', { pad: 'x'.repeat(500) })));
      await allFinal(
        queue,
        ops.map((o) => o.id),
      );
      await waitFor(() => ops.every((o) => queue.get(o.id) === undefined), {
        what: 'retention purges',
        timeoutMs: 3000,
      });
      await waitFor(() => statSync(`${path}-wal`).size === 0, { what: 'the WAL is truncated', timeoutMs: 3000 });
    });

    it('purges final operations in several batches until none past retention is left', async () => {
      const path = await fx.path();
      // 1,200 final operations: more than two purge batches.
      const queue = await fx.open({ path, types: { job: { handler: () => null } } });
      const ops = await Promise.all(Array.from({ length: 1200 }, (_, i) => queue.enqueue('job', i)));
      await allFinal(
        queue,
        ops.map((o) => o.id),
      );
      await queue.close();
      const again = await fx.open({
        path,
        retentionMs: 0,
        maintenanceIntervalMs: 50,
        types: { job: { handler: () => null } },
      });
      await waitFor(() => ops.every((o) => again.get(o.id) === undefined), {
        what: 'retention purges every final operation',
        timeoutMs: 5000,
      });
      expect(again.stats().totals.completed).toBe(0);
    });
  });
});

describe('openQueue durability modes and metrics', () => {
  it('configures SQLite for each durability mode and completes work in all of them', async () => {
    // NORMAL (1): no sync at COMMIT, but at checkpoints and when the WAL starts over.
    const expected = {
      fsync: { synchronous: 1 },
      'fsync-in-commit': { synchronous: 2 },
      none: { synchronous: 1 },
    } as const;
    for (const durability of ['fsync', 'fsync-in-commit', 'none'] as const) {
      const path = await fx.path(`${durability}.db`);
      const queue = await fx.open({ path, durability, types: { job: { handler: () => durability } } });
      const op = await queue.enqueue('job');
      await allFinal(queue, [op.id]);
      expect(queue.get(op.id)?.result).toBe(durability);
      await queue.close();
      const sm = createStateMachine({ path, synchronous: durability === 'fsync-in-commit' ? 'full' : 'off' });
      try {
        expect(sm.db.prepare('PRAGMA synchronous').get()).toEqual(expected[durability]);
        expect(sm.get(op.id)?.state).toBe('completed');
      } finally {
        sm.close();
      }
    }
  });

  it('feeds OpenTelemetry instruments through the API, durations in seconds', async () => {
    const recorded: { name: string; value: number; attributes: unknown }[] = [];
    const callbacks = new Map<string, (result: { observe(value: number, attributes?: unknown): void }) => void>();
    const units = new Map<string, string | undefined>();
    const instrument = (name: string, options?: { unit?: string }) => {
      units.set(name, options?.unit);
      return {
        record: (value: number, attributes?: unknown) => recorded.push({ name, value, attributes }),
        addCallback: (callback: never) => callbacks.set(name, callback),
        removeCallback: () => callbacks.delete(name),
      };
    };
    const meter = {
      createHistogram: instrument,
      createObservableCounter: instrument,
      createObservableGauge: instrument,
    } as unknown as import('@opentelemetry/api').Meter;
    const queue = await fx.open({ meter, types: { job: { handler: async () => sleep(30).then(() => 1) } } });
    const ops = [await queue.enqueue('job'), await queue.enqueue('job')];
    await allFinal(
      queue,
      ops.map((op) => op.id),
    );
    // What a collection reads from the observable instruments (a transition is counted
    // when its commit is released, just after the state is visible).
    const collect = () => {
      const observed: string[] = [];
      for (const [name, callback] of callbacks) {
        callback({ observe: (value, attributes) => observed.push(`${name}:${JSON.stringify(attributes)}=${value}`) });
      }
      return observed;
    };
    const observed = await waitFor(() => {
      const now = collect();
      return now.includes('unrdf.queue.transitions:{"operation.type":"job","transition":"completed"}=2') && now;
    });
    expect(observed).toContain('unrdf.queue.transitions:{"operation.type":"job","transition":"enqueued"}=2');
    expect([...callbacks.keys()].sort()).toEqual([
      'unrdf.queue.depth',
      'unrdf.queue.event_loop.delay',
      'unrdf.queue.in_flight',
      'unrdf.queue.transitions',
    ]);
    await queue.close();
    expect(callbacks.size).toBe(0);
    const names = recorded.map((r) => `${r.name}:${JSON.stringify(r.attributes)}`);
    expect(names).toContain('unrdf.queue.wait.duration:{"operation.type":"job","transition":"started"}');
    expect(names).toContain('unrdf.queue.run.duration:{"operation.type":"job","transition":"completed"}');
    // Seconds, as the diagnostics indicators: a 30 ms handler records about 0.03, not 30.
    expect(units.get('unrdf.queue.run.duration')).toBe('s');
    expect(units.get('unrdf.queue.wait.duration')).toBe('s');
    expect(units.get('unrdf.queue.event_loop.delay')).toBe('s');
    const runs = recorded.filter((r) => r.name === 'unrdf.queue.run.duration').map((r) => r.value);
    expect(runs).toHaveLength(2);
    for (const seconds of runs) {
      expect(seconds).toBeGreaterThanOrEqual(0.025);
      expect(seconds).toBeLessThan(10);
    }
  });
});

describe('claims: cancels in the same batch, shared lanes, and what a crash finds', () => {
  for (const [label, options] of [
    ['durability none', { durability: 'none' as const }],
    ['fsync-in-commit', { durability: 'fsync-in-commit' as const }],
    ['crashPolicy fail', { crashPolicy: 'fail' as const }],
  ] as const) {
    it(`never starts an operation cancelled in the same batch as its claim (${label})`, async () => {
      let n = 0;
      const started: string[] = [];
      const queue = await fx.open({
        ...('durability' in options ? { durability: options.durability } : {}),
        generateId: () => `op-${++n}`,
        types: {
          job: {
            ...('crashPolicy' in options ? { crashPolicy: options.crashPolicy } : {}),
            handler: (_: unknown, ctx) => {
              started.push(ctx.id);
              return 'done';
            },
          },
        },
      });
      const enqueued = queue.enqueue('job', null); // claimed on enqueue
      const cancelled = queue.cancel('op-1'); // same turn: the same batch, after the claim
      await enqueued;
      expect(await cancelled).toBe(true);
      await sleep(100);
      expect(queue.get('op-1')?.state).toBe('cancelled');
      expect(started).toEqual([]);
    });
  }

  it('keeps a group of a shared lane in claim order when its earlier operation waits for its type limit', async () => {
    const gate = deferred();
    const runs: string[] = [];
    const handler = async (p: string) => {
      runs.push(`start ${p}`);
      if (p === 'create-g1') await gate.promise;
      runs.push(`end ${p}`);
      return p;
    };
    const queue = await fx.open({
      durability: 'none',
      types: {
        create: { lane: 'entity', groupConcurrency: 1, concurrency: 1, handler },
        update: { lane: 'entity', groupConcurrency: 1, handler },
      },
    });
    // create-g2 is claimed ahead and waits behind create-g1 (create's concurrency is 1).
    const ops = [
      await queue.enqueue('create', 'create-g1', { groupKey: 'g1' }),
      await queue.enqueue('create', 'create-g2', { groupKey: 'g2' }),
      await queue.enqueue('update', 'update-g2', { groupKey: 'g2' }),
    ];
    await sleep(100);
    gate.resolve();
    await allFinal(
      queue,
      ops.map((o) => o.id),
    );
    expect(runs.indexOf('start update-g2')).toBeGreaterThan(runs.indexOf('end create-g2'));
  });

  it('keeps a group of a shared lane in claim order when its types differ in crash policy', async () => {
    // A retry type's claim resolves at COMMIT, a fail type's after the fsync.
    const runs: string[] = [];
    const handler = async (p: string) => {
      runs.push(`start ${p}`);
      await sleep(20);
      runs.push(`end ${p}`);
      return p;
    };
    const queue = await fx.open({
      types: {
        create: { lane: 'entity', groupConcurrency: 1, crashPolicy: 'fail', handler },
        update: { lane: 'entity', groupConcurrency: 1, handler },
      },
    });
    const ops = await Promise.all([
      queue.enqueue('create', 'create', { groupKey: 'e1' }),
      queue.enqueue('update', 'update', { groupKey: 'e1' }),
    ]);
    await allFinal(
      queue,
      ops.map((o) => o.id),
    );
    expect(runs).toEqual(['start create', 'end create', 'start update', 'end update']);
  });

  it('claims an operation that must not run again only when it can start, so a crash never fails one that never ran', async () => {
    const gate = deferred();
    const ran: string[] = [];
    const path = await fx.path('a.db');
    const type = {
      concurrency: 1,
      crashPolicy: 'fail' as const,
      handler: async (p: string) => {
        ran.push(p);
        await gate.promise;
        return p;
      },
    };
    const queue = await fx.open({ path, durability: 'none', types: { job: type } });
    await queue.enqueue('job', 'A');
    const b = await queue.enqueue('job', 'B');
    await sleep(100);
    expect(ran).toEqual(['A']);
    expect(queue.get(b.id)?.state).toBe('pending'); // not claimed ahead of a free slot
    // A crash now: the files as they are.
    const copy = await fx.path('b.db');
    copyFileSync(path, copy);
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${copy}-wal`);
    gate.resolve();
    const reopened = await fx.open({
      path: copy,
      durability: 'none',
      types: { job: { ...type, handler: (p: string) => p } },
    });
    await allFinal(reopened, [b.id]);
    expect(reopened.get(b.id)?.state).toBe('completed');
  });
});
