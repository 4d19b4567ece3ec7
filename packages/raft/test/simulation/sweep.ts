import { expect } from 'vitest';
import { type FaultProfileName, simulate } from '../../src/simulation/simulator.js';

/** Seeds per fault profile in CI (override with RAFT_SIM_SEEDS for a longer soak). */
export const SEEDS_PER_PROFILE = Number(process.env.RAFT_SIM_SEEDS ?? 2000);

/**
 * Linearizability checks that may end without a verdict (search budget spent) before the
 * sweep fails: such a seed proves nothing about linearizability.
 */
export const MAX_INCONCLUSIVE_SHARE = 0.005;

/** Runs seeds [0, count) of `profile`; every failure is reported with its replay command. */
export function sweep(profile: FaultProfileName, count = SEEDS_PER_PROFILE): void {
  const failures: string[] = [];
  const inconclusive: number[] = [];
  let acknowledged = 0;
  let elections = 0;
  let deduplicated = 0;
  for (let seed = 0; seed < count; seed++) {
    const result = simulate({ seed, profile });
    acknowledged += result.acknowledged;
    elections += result.elections;
    deduplicated += result.deduplicated;
    if (result.inconclusive) inconclusive.push(seed);
    if (!result.ok) failures.push(`seed ${seed}: ${result.violation}\n  replay: ${result.replay}`);
  }
  if (failures.length > 0) console.error(failures.join('\n'));
  if (inconclusive.length > 0)
    console.warn(`${profile}: linearizability inconclusive (budget spent) on seeds ${inconclusive.join(', ')}`);
  expect(failures).toEqual([]);
  expect(inconclusive.length).toBeLessThanOrEqual(Math.floor(count * MAX_INCONCLUSIVE_SHARE));
  // The runs must have done real work, or "no violation" would mean nothing: acknowledged
  // writes, elections, and client retries answered from a session instead of re-applied.
  expect(acknowledged).toBeGreaterThan(count * 20);
  expect(elections).toBeGreaterThan(count);
  expect(deduplicated).toBeGreaterThan(0);
}
