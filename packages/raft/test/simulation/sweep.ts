import { expect } from 'vitest';
import { type FaultProfileName, simulate } from '../../src/simulation/simulator.js';

/** Seeds per fault profile in CI (override with RAFT_SIM_SEEDS for a longer soak). */
export const SEEDS_PER_PROFILE = Number(process.env.RAFT_SIM_SEEDS ?? 2000);

/** Runs seeds [0, count) of `profile`; every failure is reported with its replay command. */
export function sweep(profile: FaultProfileName, count = SEEDS_PER_PROFILE): void {
  const failures: string[] = [];
  let acknowledged = 0;
  let elections = 0;
  for (let seed = 0; seed < count; seed++) {
    const result = simulate({ seed, profile });
    acknowledged += result.acknowledged;
    elections += result.elections;
    if (!result.ok) failures.push(`seed ${seed}: ${result.violation}\n  replay: ${result.replay}`);
  }
  if (failures.length > 0) console.error(failures.join('\n'));
  expect(failures).toEqual([]);
  // The runs must have done real work, or "no violation" would mean nothing.
  expect(acknowledged).toBeGreaterThan(count * 20);
  expect(elections).toBeGreaterThan(count);
}
