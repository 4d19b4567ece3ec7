import { tempDir } from '@unrdf/test-utils';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Command, CommandOf } from '../src/commands.js';
import { type ApplyExtension, createStateMachine, type StateMachine } from '../src/state-machine.js';

const open: StateMachine[] = [];
afterEach(() => {
  for (const sm of open.splice(0)) sm.close();
});
const memory = (extensions: ApplyExtension[] = []) => {
  const sm = createStateMachine({ path: ':memory:', extensions });
  open.push(sm);
  return sm;
};

const enqueue = (id: string, over: Partial<CommandOf<'enqueue'>> = {}): CommandOf<'enqueue'> => ({
  kind: 'enqueue',
  at: 1000,
  id,
  type: 'job',
  payload: '{"n":1}',
  priority: 0,
  runAt: 1000,
  groupKey: null,
  idempotencyKey: null,
  maxAttempts: 3,
  ...over,
});

/** Everything a replica's state consists of, in a canonical order. */
function dump(sm: StateMachine): unknown {
  const all = (sql: string) => sm.db.prepare(sql).all();
  return {
    operations: all('SELECT * FROM operations ORDER BY seq'),
    meta: all('SELECT * FROM meta ORDER BY key'),
    paused: all('SELECT * FROM paused_types ORDER BY type'),
    schedules: all('SELECT * FROM schedules ORDER BY name'),
  };
}

describe('createStateMachine', () => {
  describe('apply enqueue', () => {
    it('inserts a pending operation and reports the transition after commit', () => {
      const sm = memory();
      const heard: string[] = [];
      sm.subscribe((ts) => heard.push(...ts.map((t) => `${t.kind}:${'id' in t ? t.id : ''}`)));
      const result = sm.apply(enqueue('a'));
      expect(result.created).toBe(true);
      expect(sm.get('a')).toMatchObject({ state: 'pending', attempts: 0, token: 0, payload: '{"n":1}' });
      expect(heard).toEqual(['enqueued:a']);
    });

    it('returns the original operation for a duplicate idempotency key of the same type', () => {
      const sm = memory();
      sm.apply(enqueue('a', { idempotencyKey: 'k' }));
      const dup = sm.apply(enqueue('b', { idempotencyKey: 'k', payload: '{"n":2}' }));
      expect(dup).toMatchObject({ created: false, operation: { id: 'a', payload: '{"n":1}' } });
      expect(sm.get('b')).toBeUndefined();
      // Keys are unique per type: another type may use the same key.
      expect(sm.apply(enqueue('c', { idempotencyKey: 'k', type: 'other' })).created).toBe(true);
    });

    it('treats a replayed enqueue (same id) as a duplicate', () => {
      const sm = memory();
      sm.apply(enqueue('a'));
      expect(sm.apply(enqueue('a')).created).toBe(false);
      expect(sm.countByState().pending).toBe(1);
    });
  });

  describe('apply claim / complete / fail', () => {
    it('issues a new fencing token per claim and applies only the current token', () => {
      const sm = memory();
      sm.apply(enqueue('a'));
      const first = sm.apply({ kind: 'claim', at: 1001, id: 'a', epoch: 1 });
      expect(first).toMatchObject({ claimed: true, operation: { token: 1, attempts: 1 } });
      expect(sm.get('a')).toMatchObject({ state: 'running', epoch: 1, startedAt: 1001 });
      // The attempt fails and is retried; the second claim gets token 2.
      expect(sm.apply({ kind: 'fail', at: 1002, id: 'a', token: 1, error: '{}', retryAt: 1003 })).toEqual({
        applied: true,
        state: 'pending',
      });
      expect(sm.apply({ kind: 'claim', at: 1002, id: 'a', epoch: 1 })).toEqual({
        claimed: false,
        rejection: 'not-due',
      });
      expect(sm.apply({ kind: 'claim', at: 1003, id: 'a', epoch: 1 })).toMatchObject({
        claimed: true,
        operation: { token: 2 },
      });
      // A zombie of attempt 1 completes late: refused by the fence.
      expect(sm.apply({ kind: 'complete', at: 1004, id: 'a', token: 1, result: '"zombie"' })).toEqual({
        applied: false,
        rejection: 'stale-token',
      });
      expect(sm.apply({ kind: 'complete', at: 1005, id: 'a', token: 2, result: '"ok"' })).toEqual({ applied: true });
      expect(sm.get('a')).toMatchObject({
        state: 'completed',
        token: 2,
        result: '"ok"',
        finishedAt: 1005,
        epoch: null,
      });
      expect(sm.apply({ kind: 'complete', at: 1006, id: 'a', token: 2, result: '"again"' })).toEqual({
        applied: false,
        rejection: 'not-running',
      });
    });

    it('dead-letters when attempts are used up or no retry is given, and redrive resets attempts', () => {
      const sm = memory();
      sm.apply(enqueue('a', { maxAttempts: 2 }));
      sm.apply({ kind: 'claim', at: 1001, id: 'a', epoch: 1 });
      sm.apply({ kind: 'fail', at: 1002, id: 'a', token: 1, error: '{"message":"1"}', retryAt: 1002 });
      sm.apply({ kind: 'claim', at: 1002, id: 'a', epoch: 1 });
      expect(sm.apply({ kind: 'fail', at: 1003, id: 'a', token: 2, error: '{"message":"2"}', retryAt: 1004 })).toEqual({
        applied: true,
        state: 'dead',
      });
      expect(sm.get('a')).toMatchObject({ state: 'dead', attempts: 2, error: '{"message":"2"}', finishedAt: 1003 });
      expect(sm.apply({ kind: 'redrive', at: 1010, id: 'a', runAt: 1010 })).toEqual({ applied: true });
      expect(sm.get('a')).toMatchObject({ state: 'pending', attempts: 0, token: 2, finishedAt: null });
      sm.apply({ kind: 'claim', at: 1010, id: 'a', epoch: 1 });
      expect(sm.apply({ kind: 'fail', at: 1011, id: 'a', token: 3, error: '{}', retryAt: null })).toMatchObject({
        state: 'dead',
      });
      expect(sm.apply({ kind: 'redrive', at: 1, id: 'nope', runAt: 1 })).toEqual({
        applied: false,
        rejection: 'not-found',
      });
    });

    it('fences a complete that names its type the same way, and a wrong type cannot mislabel it', () => {
      const sm = memory();
      const events: string[] = [];
      sm.subscribe((ts) => {
        for (const t of ts) events.push(`${t.kind}:${t.type}`);
      });
      sm.apply(enqueue('a'));
      sm.apply({ kind: 'claim', at: 1001, id: 'a', epoch: 1 });
      expect(sm.apply({ kind: 'complete', at: 1002, id: 'a', token: 2, result: '1', type: 'job' })).toEqual({
        applied: false,
        rejection: 'stale-token',
      });
      expect(sm.apply({ kind: 'complete', at: 1003, id: 'a', token: 1, result: '2', type: 'other' })).toEqual({
        applied: true,
      });
      expect(sm.get('a')).toMatchObject({ state: 'completed', result: '2', finishedAt: 1003, epoch: null });
      expect(sm.apply({ kind: 'complete', at: 1004, id: 'a', token: 1, result: '3', type: 'job' })).toEqual({
        applied: false,
        rejection: 'not-running',
      });
      expect(sm.apply({ kind: 'complete', at: 1005, id: 'zz', token: 1, result: '3', type: 'job' })).toEqual({
        applied: false,
        rejection: 'not-found',
      });
      expect(events).toEqual(['enqueued:job', 'claimed:job', 'completed:job']);
    });

    it('claims an operation enqueued earlier in the same transaction exactly as a later claim would', () => {
      const sm = memory();
      const [, claimed, , notDue, , reclaimed] = sm.applyBatch([
        enqueue('a', { payload: '{"p":1}', groupKey: 'g', idempotencyKey: 'k' }),
        { kind: 'claim', at: 1001, id: 'a', epoch: 1 },
        enqueue('b', { runAt: 5000 }),
        { kind: 'claim', at: 1001, id: 'b', epoch: 1 },
        { kind: 'fail', at: 1002, id: 'a', token: 1, error: '{}', retryAt: 1002 },
        { kind: 'claim', at: 1003, id: 'a', epoch: 1 },
      ]);
      expect(claimed).toEqual({
        ok: true,
        result: {
          claimed: true,
          operation: {
            id: 'a',
            type: 'job',
            payload: '{"p":1}',
            groupKey: 'g',
            idempotencyKey: 'k',
            maxAttempts: 3,
            attempts: 1,
            token: 1,
            runAt: 1000,
          },
        },
      });
      expect(notDue).toEqual({ ok: true, result: { claimed: false, rejection: 'not-due' } });
      expect(reclaimed).toMatchObject({ ok: true, result: { claimed: true, operation: { attempts: 2, token: 2 } } });
      expect(sm.get('a')).toMatchObject({ state: 'running', attempts: 2, token: 2, startedAt: 1003 });
    });

    it('releases a lease without spending the attempt', () => {
      const sm = memory();
      sm.apply(enqueue('a'));
      sm.apply({ kind: 'claim', at: 1001, id: 'a', epoch: 1 });
      expect(sm.apply({ kind: 'release', at: 1002, id: 'a', token: 1 })).toEqual({ applied: true });
      expect(sm.get('a')).toMatchObject({ state: 'pending', attempts: 0, token: 1, epoch: null });
    });

    it('cancels pending and running operations, not final ones', () => {
      const sm = memory();
      sm.apply(enqueue('a'));
      sm.apply(enqueue('b'));
      sm.apply({ kind: 'claim', at: 1001, id: 'b', epoch: 1 });
      expect(sm.apply({ kind: 'cancel', at: 1002, id: 'a' })).toEqual({ applied: true, previous: 'pending' });
      expect(sm.apply({ kind: 'cancel', at: 1002, id: 'b' })).toEqual({ applied: true, previous: 'running' });
      expect(sm.apply({ kind: 'cancel', at: 1003, id: 'b' })).toEqual({ applied: false, rejection: 'already-final' });
      expect(sm.apply({ kind: 'complete', at: 1004, id: 'b', token: 1, result: 'null' })).toMatchObject({
        applied: false,
        rejection: 'not-running',
      });
    });
  });

  describe('apply boot / schedules / purge', () => {
    it('counts boot epochs', () => {
      const sm = memory();
      expect(sm.epoch()).toBe(0);
      expect(sm.apply({ kind: 'boot', at: 1 })).toEqual({ epoch: 1 });
      expect(sm.apply({ kind: 'boot', at: 2 })).toEqual({ epoch: 2 });
    });

    it('fires a schedule once per due time', () => {
      const sm = memory();
      sm.apply({
        kind: 'upsert-schedule',
        at: 0,
        name: 'tick',
        type: 'job',
        cron: '* * * * *',
        timezone: null,
        payload: '{}',
        priority: 0,
        maxAttempts: 1,
        nextRunAt: 60_000,
      });
      const fire = {
        kind: 'fire-schedule',
        at: 60_001,
        name: 'tick',
        id: 'op1',
        runAt: 60_000,
        nextRunAt: 120_000,
      } as const;
      expect(sm.apply(fire)).toEqual({ applied: true, created: true, operationId: 'op1' });
      expect(sm.apply({ ...fire, id: 'op2' })).toEqual({ applied: false, created: false, operationId: null });
      expect(sm.get('op1')).toMatchObject({ schedule: 'tick', idempotencyKey: 'schedule:tick:60000', runAt: 60_000 });
      expect(sm.schedule('tick')?.nextRunAt).toBe(120_000);
    });

    it('purges the oldest final operations before the cutoff, in bounded batches', () => {
      const sm = memory();
      for (let i = 0; i < 5; i++) {
        sm.apply(enqueue(`op${i}`, { idempotencyKey: `k${i}` }));
        sm.apply({ kind: 'cancel', at: 2000 + i, id: `op${i}` });
      }
      sm.apply(enqueue('live'));
      expect(sm.apply({ kind: 'purge', at: 9999, finishedBefore: 2004, limit: 3 })).toEqual({ deleted: 3 });
      expect(sm.apply({ kind: 'purge', at: 9999, finishedBefore: 2004, limit: 3 })).toEqual({ deleted: 1 });
      expect(sm.get('op4')).toBeDefined();
      expect(sm.get('live')).toBeDefined();
      // The idempotency key is free again once its operation is gone.
      expect(sm.apply(enqueue('again', { idempotencyKey: 'k0' })).created).toBe(true);
    });
  });

  describe('applyBatch', () => {
    it('runs extensions inside the transaction and fails only the command whose extension threw', () => {
      const ledger: ApplyExtension = {
        name: 'ledger',
        init: (db) => db.exec('CREATE TABLE IF NOT EXISTS ledger (id TEXT NOT NULL) STRICT'),
        afterApply({ db, command, transitions }) {
          if (command.kind === 'enqueue' && command.id === 'bad') throw new Error('ledger refuses');
          for (const t of transitions)
            if (t.kind === 'enqueued') db.prepare('INSERT INTO ledger (id) VALUES (?)').run(t.id);
        },
      };
      const sm = memory([ledger]);
      const outcomes = sm.applyBatch([enqueue('a'), enqueue('bad'), enqueue('c')]);
      expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
      expect(sm.get('bad')).toBeUndefined();
      expect(sm.db.prepare('SELECT id FROM ledger ORDER BY id').all()).toEqual([{ id: 'a' }, { id: 'c' }]);
    });

    it('shows an extension only the kinds it watches and calls beforeCommit once per transaction', () => {
      const seen: string[] = [];
      let collected: string[] = [];
      let staged: string[] = [];
      const commits: string[][] = [];
      let rollbacks = 0;
      const receipts: ApplyExtension = {
        name: 'receipts',
        watches: ['complete', 'cancel'],
        afterApply({ command, transitions }) {
          seen.push(command.kind);
          if (command.kind === 'cancel' && command.id === 'boom') throw new Error('refused');
          for (const t of transitions) collected.push(`${t.kind}:${'id' in t ? t.id : ''}`);
        },
        beforeCommit() {
          staged = collected;
          collected = [];
        },
        afterCommit() {
          commits.push(staged);
        },
        afterRollback() {
          rollbacks++;
          collected = [];
        },
      };
      const sm = memory([receipts]);
      // Enqueues are not watched: the run of them is still inserted with one statement.
      sm.applyBatch([enqueue('a'), enqueue('b'), enqueue('boom'), { kind: 'claim', at: 1001, id: 'a', epoch: 1 }]);
      expect(seen).toEqual([]);
      expect(commits).toEqual([[]]);
      const outcomes = sm.applyBatch([
        { kind: 'complete', at: 1002, id: 'a', token: 1, result: '{}' },
        { kind: 'cancel', at: 1003, id: 'boom' },
        { kind: 'cancel', at: 1004, id: 'b' },
      ]);
      expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
      // The batch rolled back once, then each command ran in its own transaction.
      expect(rollbacks).toBe(2);
      expect(commits.slice(1)).toEqual([['completed:a'], ['cancelled:b']]);
      expect(sm.get('boom')?.state).toBe('pending');
    });

    it('survives reopening from disk with the same state', async () => {
      await using dir = await tempDir('queue-sm');
      const path = dir.join('q.db');
      const first = createStateMachine({ path });
      first.applyBatch([enqueue('a'), enqueue('b'), { kind: 'claim', at: 1001, id: 'a', epoch: 1 }]);
      const before = dump(first);
      first.close();
      const second = createStateMachine({ path });
      open.push(second);
      expect(dump(second)).toEqual(before);
      expect(second.db.prepare('PRAGMA journal_mode').get()).toEqual({ journal_mode: 'wal' });
      expect(second.db.prepare('PRAGMA synchronous').get()).toEqual({ synchronous: 2 });
    });
  });

  describe('determinism (property)', () => {
    // Random command sequences over a small pool of ids and tokens, so commands collide,
    // go stale and get rejected as often as they apply.
    const id = fc.constantFrom('a', 'b', 'c', 'd', 'e');
    const at = fc.integer({ min: 0, max: 10_000 });
    const token = fc.integer({ min: 1, max: 4 });
    const command: fc.Arbitrary<Command> = fc.oneof(
      fc.record({
        kind: fc.constant('enqueue' as const),
        at,
        id,
        type: fc.constantFrom('x', 'y'),
        payload: fc.json(),
        priority: fc.integer({ min: -2, max: 2 }),
        runAt: at,
        groupKey: fc.option(fc.constantFrom('g1', 'g2'), { nil: null }),
        idempotencyKey: fc.option(fc.constantFrom('k1', 'k2'), { nil: null }),
        maxAttempts: fc.integer({ min: 1, max: 3 }),
      }),
      fc.record({ kind: fc.constant('claim' as const), at, id, epoch: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('complete' as const), at, id, token, result: fc.json() }),
      fc.record({
        kind: fc.constant('complete' as const),
        at,
        id,
        token,
        result: fc.json(),
        type: fc.constantFrom('x', 'y'),
      }),
      fc.record({
        kind: fc.constant('fail' as const),
        at,
        id,
        token,
        error: fc.constant('{"name":"E","message":"m"}'),
        retryAt: fc.option(at, { nil: null }),
      }),
      fc.record({ kind: fc.constant('release' as const), at, id, token }),
      fc.record({ kind: fc.constant('cancel' as const), at, id }),
      fc.record({ kind: fc.constant('redrive' as const), at, id, runAt: at }),
      fc.record({ kind: fc.constantFrom('pause' as const, 'resume' as const), at, type: fc.constantFrom('x', 'y') }),
      fc.record({ kind: fc.constant('boot' as const), at }),
      fc.record({ kind: fc.constant('purge' as const), at, finishedBefore: at, limit: fc.integer({ min: 1, max: 3 }) }),
    );

    // Mostly enqueues (several in a row make one multi-row INSERT) with their claims,
    // over a pool where ids and idempotency keys sometimes collide.
    const wideId = fc.oneof(
      fc.constantFrom('a', 'b'),
      fc.integer({ min: 0, max: 200 }).map((n) => `n${n}`),
    );
    const enqueueHeavy: fc.Arbitrary<Command> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('enqueue' as const),
          at,
          id: wideId,
          type: fc.constantFrom('x', 'y'),
          payload: fc.json(),
          priority: fc.integer({ min: -2, max: 2 }),
          runAt: at,
          groupKey: fc.option(fc.constantFrom('g1', 'g2'), { nil: null }),
          idempotencyKey: fc.option(
            fc.integer({ min: 0, max: 30 }).map((n) => `k${n}`),
            { nil: null, freq: 2 },
          ),
          maxAttempts: fc.integer({ min: 1, max: 3 }),
        }),
      },
      {
        weight: 3,
        arbitrary: fc.record({ kind: fc.constant('claim' as const), at, id: wideId, epoch: fc.constant(1) }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('complete' as const),
          at,
          id: wideId,
          token: fc.constant(1),
          result: fc.constant('null'),
          type: fc.constantFrom('x', 'y'),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), at, id: wideId }) },
    );

    it('gives the same outcomes, events and state whether enqueues are inserted together or one by one', () => {
      fc.assert(
        fc.property(fc.array(enqueueHeavy, { maxLength: 120 }), fc.integer({ min: 2, max: 120 }), (commands, size) => {
          const one = createStateMachine({ path: ':memory:' });
          const two = createStateMachine({ path: ':memory:' });
          const heard: [unknown[], unknown[]] = [[], []];
          one.subscribe((ts) => heard[0].push(...ts));
          two.subscribe((ts) => heard[1].push(...ts));
          try {
            const singles = commands.map((c) => one.applyBatch([c])[0]);
            const batched: unknown[] = [];
            for (let i = 0; i < commands.length; i += size)
              batched.push(...two.applyBatch(commands.slice(i, i + size)));
            expect(batched).toEqual(singles);
            expect(heard[1]).toEqual(heard[0]);
            expect(dump(two)).toEqual(dump(one));
          } finally {
            one.close();
            two.close();
          }
        }),
        { numRuns: 100 },
      );
    });

    it('gives two instances fed the same commands identical state, however the commands are batched', () => {
      fc.assert(
        fc.property(
          fc.array(command, { maxLength: 60 }),
          fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1 }),
          (commands, cuts) => {
            const one = createStateMachine({ path: ':memory:' });
            const two = createStateMachine({ path: ':memory:' });
            const heard: [unknown[], unknown[]] = [[], []];
            one.subscribe((ts) => heard[0].push(...ts));
            two.subscribe((ts) => heard[1].push(...ts));
            try {
              // Replica one: a command per transaction. Replica two: group-committed batches.
              const singles = commands.map((c) => one.applyBatch([c])[0]);
              const batched: unknown[] = [];
              for (let i = 0, k = 0; i < commands.length; k++) {
                const size = cuts[k % cuts.length] as number;
                batched.push(...two.applyBatch(commands.slice(i, i + size)));
                i += size;
              }
              expect(batched).toEqual(singles);
              expect(dump(two)).toEqual(dump(one));
              expect(heard[1]).toEqual(heard[0]);
            } finally {
              one.close();
              two.close();
            }
          },
        ),
        { numRuns: 150 },
      );
    });
  });
});
