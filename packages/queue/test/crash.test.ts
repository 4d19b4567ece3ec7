import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { createStateMachine } from '../src/index.js';

const WORKER = fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url));
const CYCLES = 20;
const RATE = 1000;

const lines = (path: string): string[] => {
  try {
    return readFileSync(path, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

describe('openQueue under kill -9', () => {
  it('loses no acknowledged operation and finishes each exactly once across 20 crashes', async () => {
    await using dir = await tempDir('queue-crash');
    const [db, runs, acks] = [dir.join('q.db'), dir.join('runs.log'), dir.join('acks.log')];
    // A fixed sequence of kill moments (deterministic, still spread over the run).
    const killAfterMs = Array.from({ length: CYCLES }, (_, i) => 60 + ((i * 97) % 240));
    for (const delay of killAfterMs) {
      const worker = spawnNode(WORKER, { args: [db, runs, acks, 'load', String(RATE)] });
      await worker.waitForLine(/^ready/, 20_000);
      await sleep(delay);
      await worker.kill9();
    }
    const drain = spawnNode(WORKER, { args: [db, runs, acks, 'drain', '0'] });
    const [epochLine] = await drain.waitForLine(/^ready epoch=(\d+)/, 20_000);
    expect(epochLine).toBe(`ready epoch=${CYCLES + 1}`);
    await drain.waitForLine(/^drained/, 30_000);
    expect(await drain.exited).toMatchObject({ code: 0 });

    const acked = lines(acks);
    expect(acked.length).toBeGreaterThan(CYCLES * 20);
    const starts = new Map<string, number[]>();
    const dones = new Map<string, number[]>();
    for (const line of lines(runs)) {
      const [what, id, token] = line.split(' ') as [string, string, string];
      const into = what === 'start' ? starts : dones;
      into.set(id, [...(into.get(id) ?? []), Number(token)]);
    }
    const sm = createStateMachine({ path: db });
    try {
      const counts = sm.countByState();
      // Nothing stuck: every operation reached a final state, all completed.
      expect(counts).toMatchObject({ pending: 0, running: 0, dead: 0, cancelled: 0 });
      let rerun = 0;
      // Every acknowledged enqueue survived every crash.
      for (const id of acked) expect(sm.get(id)?.state, id).toBe('completed');
      for (const [id, tokens] of starts) {
        const op = sm.get(id);
        expect(op?.state, id).toBe('completed');
        if (op === undefined) continue;
        // Each attempt ran at most once (no token twice), none after the winner, and
        // the winner's token is the stored one: the fencing token names the attempt that won.
        expect(new Set(tokens).size, id).toBe(tokens.length);
        expect(Math.max(...tokens), id).toBe(op.token);
        expect(dones.get(id) ?? [], id).toContain(op.token);
        // A re-run only follows an attempt cut short by a crash (the retry policy),
        // which used up one attempt each: attempts = claims = the final token.
        expect(op.attempts, id).toBe(op.token);
        if (tokens.length > 1) rerun++;
      }
      // Some operations were in flight at a kill, so the retry policy re-ran them.
      expect(rerun).toBeGreaterThan(0);
      expect(counts.completed).toBeGreaterThanOrEqual(new Set(acked).size);
    } finally {
      sm.close();
    }
  }, 120_000);
});
