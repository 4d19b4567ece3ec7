import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import type { FaultProfileName } from '../../src/simulation/simulator.js';
import { runShard, type SweepTotals } from './sweep-worker.js';

/** Seeds per fault profile in CI (override with RAFT_SIM_SEEDS for a longer soak). */
export const SEEDS_PER_PROFILE = Number(process.env.RAFT_SIM_SEEDS ?? 2000);

/**
 * Linearizability checks that may end without a verdict (search budget spent) before the
 * sweep fails: such a seed proves nothing about linearizability.
 */
export const MAX_INCONCLUSIVE_SHARE = 0.005;

/** Worker threads per sweep (RAFT_SIM_WORKERS; default: one per core, at most 4). */
const WORKERS = Math.max(1, Number(process.env.RAFT_SIM_WORKERS ?? Math.min(4, availableParallelism())));

/**
 * Runs one shard in a worker thread, on Node's own TypeScript transform (no loader to start
 * in each worker; `resolve-ts.mjs` maps the sources' `.js` imports to their `.ts` files).
 */
function inWorker(profile: FaultProfileName, from: number, to: number): Promise<SweepTotals> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./sweep-worker.ts', import.meta.url), {
      workerData: { profile, from, to },
      execArgv: [
        '--experimental-transform-types',
        '--no-warnings',
        '--conditions',
        '@unrdf/source',
        '--import',
        new URL('./resolve-ts.mjs', import.meta.url).href,
      ],
    });
    worker.once('message', (totals: SweepTotals) => {
      resolve(totals);
      void worker.terminate();
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`sweep worker ${profile} [${from}, ${to}) exited with ${code}`));
    });
  });
}

/**
 * Runs seeds [0, count) of `profile`, split over worker threads so the sweep uses every
 * core; every failure is reported with its replay command.
 */
export async function sweep(profile: FaultProfileName, count = SEEDS_PER_PROFILE): Promise<void> {
  const shards = Math.min(WORKERS, count);
  const bounds = Array.from({ length: shards }, (_, i) => [
    Math.floor((count * i) / shards),
    Math.floor((count * (i + 1)) / shards),
  ]);
  const parts =
    shards === 1
      ? [runShard({ profile, from: 0, to: count })]
      : await Promise.all(bounds.map(([from, to]) => inWorker(profile, from as number, to as number)));
  const failures = parts.flatMap((p) => p.failures);
  const inconclusive = parts.flatMap((p) => p.inconclusive);
  const acknowledged = parts.reduce((sum, p) => sum + p.acknowledged, 0);
  const elections = parts.reduce((sum, p) => sum + p.elections, 0);
  const deduplicated = parts.reduce((sum, p) => sum + p.deduplicated, 0);
  console.log(
    `${profile}: ${count} seeds, ${acknowledged} acknowledged operations, ${deduplicated} retries answered from a session, ${inconclusive.length} inconclusive linearizability checks`,
  );
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
