// Runs a range of simulator seeds in a worker thread and posts the totals back (see sweep.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { type FaultProfileName, simulate } from '../../src/simulation/simulator.js';

export interface SweepShard {
  readonly profile: FaultProfileName;
  readonly from: number;
  readonly to: number;
}

export interface SweepTotals {
  readonly failures: string[];
  readonly inconclusive: number[];
  readonly acknowledged: number;
  readonly elections: number;
  readonly deduplicated: number;
}

/** Runs seeds [from, to) of `profile`. */
export function runShard({ profile, from, to }: SweepShard): SweepTotals {
  const totals = {
    failures: [] as string[],
    inconclusive: [] as number[],
    acknowledged: 0,
    elections: 0,
    deduplicated: 0,
  };
  for (let seed = from; seed < to; seed++) {
    const result = simulate({ seed, profile });
    totals.acknowledged += result.acknowledged;
    totals.elections += result.elections;
    totals.deduplicated += result.deduplicated;
    if (result.inconclusive) totals.inconclusive.push(seed);
    if (!result.ok) totals.failures.push(`seed ${seed}: ${result.violation}\n  replay: ${result.replay}`);
  }
  return totals;
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object') {
  parentPort.postMessage(runShard(workerData as SweepShard));
}
