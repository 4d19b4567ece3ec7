import { describe, expect, it } from 'vitest';
import type { RaftBug } from '../../src/internal/bugs.js';
import { type FaultProfileName, simulate } from '../../src/simulation/simulator.js';

/**
 * The simulator has teeth: each deliberately injected bug (test-only switch in the core)
 * is caught within 1,000 seeds. The profile is the one that finds it fastest; the README
 * table lists the first failing seed of each.
 */
const CAUGHT: ReadonlyArray<readonly [RaftBug, FaultProfileName]> = [
  ['vote-not-persisted', 'crash'],
  ['term-not-persisted', 'crash'],
  ['no-up-to-date-check', 'crash'],
  ['stale-term-accepted', 'chaos'],
  ['no-prev-log-term-check', 'crash'],
  ['quorum-too-small', 'partition'],
  ['vote-twice', 'chaos'],
  ['match-leader-last-index', 'crash'],
  ['apply-uncommitted', 'chaos'],
  ['read-without-quorum', 'chaos'],
  ['no-session-dedupe', 'crash'],
];

describe('simulate with injected bugs', () => {
  it.each(CAUGHT)(
    'catches %s within 1,000 seeds of the %s profile',
    (bug, profile) => {
      let caught: { seed: number; violation: string } | undefined;
      for (let seed = 0; seed < 1000 && caught === undefined; seed++) {
        const result = simulate({ seed, profile, bugs: [bug] });
        if (!result.ok) caught = { seed, violation: result.violation ?? '' };
      }
      expect(caught, `${bug} was not caught`).toBeDefined();
      expect(caught?.violation).toMatch(/t=\d+ms: /);
    },
    120_000,
  );

  it('passes the same seeds with no bug switched on', () => {
    for (let seed = 0; seed < 20; seed++) expect(simulate({ seed, profile: 'chaos' }).violation).toBeUndefined();
  });
});
