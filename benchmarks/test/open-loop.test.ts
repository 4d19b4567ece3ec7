import { describe, expect, it } from 'vitest';
import type { BenchClock } from '../src/harness/clock.js';
import { openLoop } from '../src/harness/open-loop.js';

// A simulated clock: sleeping advances time, and so does the work we pretend to do.
function simulatedClock(): BenchClock & { advance(ms: number): void } {
  let t = 0;
  return {
    now: () => t,
    sleep: async (ms) => {
      t += Math.max(ms, 0.001);
    },
    advance(ms) {
      t += ms;
    },
  };
}

describe('openLoop', () => {
  it('issues exactly rate x duration arrivals and counts completions and errors', async () => {
    const clock = simulatedClock();
    const result = await openLoop({
      ratePerSec: 1000,
      durationMs: 500,
      clock,
      fire: async (_at, index) => {
        if (index % 10 === 0) throw new Error('boom');
      },
    });
    expect(result.issued).toBe(500);
    expect(result.errors).toBe(50);
    expect(result.completed).toBe(450);
    expect(result.latency.count).toBe(450);
  });

  it('charges a stall to every arrival that was due during it (no coordinated omission)', async () => {
    const clock = simulatedClock();
    // 100 arrivals/s; the system stalls for 1 s while serving arrival 10.
    const result = await openLoop({
      ratePerSec: 100,
      durationMs: 2000,
      clock,
      fire: async (_at, index) => {
        if (index === 10) clock.advance(1000);
      },
    });
    // A closed-loop generator would record one slow sample; open loop records the
    // ~100 arrivals that were due during the stall as late, up to 1 s.
    expect(result.latency.percentile(100)).toBeGreaterThanOrEqual(990);
    expect(result.latency.percentile(95)).toBeGreaterThan(100);
    expect(result.completed).toBe(200);
  });

  it('passes each arrival its intended time on an even schedule', async () => {
    const clock = simulatedClock();
    const intended: number[] = [];
    await openLoop({
      ratePerSec: 50,
      durationMs: 200,
      clock,
      fire: async (at) => {
        intended.push(at);
      },
    });
    expect(intended).toEqual([0, 20, 40, 60, 80, 100, 120, 140, 160, 180]);
  });
});
