import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it, vi } from 'vitest';
import {
  createHealth,
  eventLoopCheck,
  pingCheck,
  queueAcceptingCheck,
  type ReadinessCheck,
  raftLeaderCheck,
  storageWritableCheck,
} from '../src/index.js';

const hanging: ReadinessCheck = {
  name: 'hangs',
  endpoint: 'readyz',
  run: (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
};

describe('createHealth', () => {
  describe('livez', () => {
    it('answers ok from process-local checks only, whatever readiness says', async () => {
      await using health = createHealth({
        checks: [pingCheck(), queueAcceptingCheck(() => ({ accepting: false, reason: 'draining' }))],
      });
      await health.refresh();
      expect(health.livez()).toMatchObject({ ok: true, httpStatus: 200, body: 'ok' });
      expect(health.livez().checks.map((c) => c.name)).toEqual(['ping']);
      expect(health.readyz()).toMatchObject({ ok: false, httpStatus: 503 });
    });

    it('fails when the event loop was blocked longer than the bound', async () => {
      const loop = eventLoopCheck({ maxDelayMs: 50 });
      await using health = createHealth({ checks: [loop] });
      await new Promise((r) => setTimeout(r, 60));
      const until = Date.now() + 200;
      while (Date.now() < until) {
        // block the loop on purpose
      }
      await new Promise((r) => setTimeout(r, 30));
      const response = health.livez();
      loop.close();
      expect(response.ok).toBe(false);
      expect(response.body).toMatch(/\[-\]event-loop failed: event loop blocked/);
    });
  });

  describe('readyz', () => {
    it('lists per-check results with ?verbose, like Kubernetes', async () => {
      await using dir = await tempDir('diag-health');
      await using health = createHealth({
        checks: [
          pingCheck(),
          storageWritableCheck(dir.path),
          raftLeaderCheck(() => ({ singleNode: false, leaderId: 'n2', term: 4 })),
          queueAcceptingCheck(() => ({ accepting: true })),
        ],
      });
      await health.refresh();
      const response = health.readyz(new URLSearchParams('verbose'));
      expect(response.httpStatus).toBe(200);
      expect(response.body).toBe(
        ['[+]ping ok', '[+]storage ok', '[+]raft ok', '[+]queue ok', 'readyz check passed'].join('\n'),
      );
      expect(response.checks.find((c) => c.name === 'raft')?.message).toBe('leader n2 in term 4');
    });

    it('fails with the reason and honours ?exclude, warning about unknown names', async () => {
      await using health = createHealth({
        checks: [pingCheck(), raftLeaderCheck(() => ({ singleNode: false, leaderId: undefined, term: 9 }))],
      });
      await health.refresh();
      const failing = health.readyz();
      expect(failing.httpStatus).toBe(503);
      expect(failing.body).toContain('[-]raft failed: no leader in term 9');
      expect(failing.body.endsWith('readyz check failed')).toBe(true);
      const excluded = health.readyz(new URLSearchParams('exclude=raft&exclude=nope&verbose=1'));
      expect(excluded.httpStatus).toBe(200);
      expect(excluded.body).toContain('[+]raft excluded: ok');
      expect(excluded.body).toContain('warn: some health checks cannot be excluded: no matches for "nope"');
    });

    it('never blocks on a hanging check: answers at once, then reports the timeout', async () => {
      await using health = createHealth({ checks: [hanging], timeoutMs: 50 });
      // readyz is synchronous: it returns the cached answer while the check still hangs.
      const before = health.readyz();
      expect(before).not.toBeInstanceOf(Promise);
      expect(before.checks[0]).toMatchObject({ ok: false, message: 'not checked yet', checkedAt: null });
      await health.refresh();
      expect(health.readyz().checks[0]).toMatchObject({ ok: false, message: 'timed out after 50 ms' });
    });

    it('treats a stale result as failed', async () => {
      let now = 1_000_000;
      await using health = createHealth({
        checks: [queueAcceptingCheck(() => ({ accepting: true }))],
        clock: () => now,
        intervalMs: 60_000,
        staleAfterMs: 5_000,
      });
      await health.refresh();
      expect(health.readyz().ok).toBe(true);
      now += 6_000;
      const stale = health.readyz();
      expect(stale.ok).toBe(false);
      expect(stale.checks[0]).toMatchObject({ stale: true });
      expect(stale.checks[0]?.message).toMatch(/^stale: last result 6000 ms old/);
    });

    it("judges staleness by each check's own interval", async () => {
      let now = 1_000_000;
      const slow: ReadinessCheck = { name: 'slow', endpoint: 'readyz', intervalMs: 10_000, run: async () => 'ok' };
      await using health = createHealth({
        checks: [slow, queueAcceptingCheck(() => ({ accepting: true }))],
        clock: () => now,
        intervalMs: 1000,
        timeoutMs: 1000,
      });
      await health.refresh();
      now += 5_000; // half way to slow's next run; the queue check (every second) is overdue
      expect(health.readyz().checks.map((c) => [c.name, c.stale])).toEqual([
        ['slow', false],
        ['queue', true],
      ]);
      now += 26_001; // past 3 of slow's intervals plus the timeout
      expect(health.readyz().checks[0]).toMatchObject({ name: 'slow', stale: true, ok: false });
    });

    it('fails a check that throws instead of rejecting, at start and when its timer runs it', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      try {
        let calls = 0;
        const throwing: ReadinessCheck = {
          name: 'throws',
          endpoint: 'readyz',
          intervalMs: 10,
          run: (() => {
            calls++;
            if (calls === 2) return Promise.resolve('ok');
            throw new Error(`synchronous failure ${calls}`);
          }) as ReadinessCheck['run'],
        };
        await using health = createHealth({ checks: [throwing], timeoutMs: 50 });
        await vi.advanceTimersByTimeAsync(0);
        expect(health.readyz().checks[0]).toMatchObject({ ok: false, message: 'synchronous failure 1' });
        await vi.advanceTimersByTimeAsync(10);
        expect(health.readyz().checks[0]).toMatchObject({ ok: true });
        // The third run, from the timer, throws: no uncaught exception, no unhandled rejection.
        await vi.advanceTimersByTimeAsync(10);
        expect(health.readyz().checks[0]).toMatchObject({ ok: false, message: 'synchronous failure 3' });
        await vi.advanceTimersByTimeAsync(1000); // past every timeout: nothing rejects unhandled
        expect(vi.getTimerCount()).toBe(1); // only the next scheduled run
      } finally {
        vi.useRealTimers();
      }
    });

    it('rejects duplicate check names', () => {
      expect(() => createHealth({ checks: [pingCheck(), pingCheck()] })).toThrow(/duplicate name "ping"/);
    });
  });
});
