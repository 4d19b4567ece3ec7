import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulate } from '../../src/simulation/simulator.js';

describe('simulate', () => {
  it('replays a seed bit for bit', () => {
    const a = simulate({ seed: 1234, profile: 'chaos', trace: true });
    const b = simulate({ seed: 1234, profile: 'chaos', trace: true });
    expect(b.trace).toEqual(a.trace);
    expect(b.events).toBe(a.events);
    expect(a.trace.length).toBeGreaterThan(10);
  });

  it('reports a violation with a one-line replay command', () => {
    const result = simulate({ seed: 0, profile: 'crash', bugs: ['vote-not-persisted'] });
    expect(result.ok).toBe(false);
    expect(result.replay).toBe(
      './run pnpm --filter @unrdf/raft simulate --seed 0 --profile crash --bug vote-not-persisted --trace',
    );
  });

  it('holds the invariants for arbitrary seeds and profiles (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.constantFrom('crash', 'partition', 'chaos'),
        (seed, profile) => {
          const result = simulate({ seed, profile: profile as 'crash' | 'partition' | 'chaos' });
          expect(result.violation, result.replay).toBeUndefined();
        },
      ),
      { numRuns: 40 },
    );
  });
});
