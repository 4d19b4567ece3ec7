// Replays or sweeps simulator seeds from the command line:
//   ./run pnpm --filter @unrdf/raft simulate --seed 42 --profile chaos [--bug vote-twice] [--trace]
//   ./run pnpm --filter @unrdf/raft simulate --seeds 0..999 --profile crash
import { parseArgs } from 'node:util';
import { RAFT_BUGS, type RaftBug } from '../src/internal/bugs.js';
import { FAULT_PROFILES, type FaultProfileName, simulate } from '../src/simulation/simulator.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    seeds: { type: 'string' },
    profile: { type: 'string', default: 'chaos' },
    bug: { type: 'string' },
    trace: { type: 'boolean', default: false },
  },
});
const profile = values.profile as FaultProfileName;
if (!(profile in FAULT_PROFILES)) {
  console.error(`unknown profile ${profile}; one of ${Object.keys(FAULT_PROFILES).join(', ')}`);
  process.exit(2);
}
const bugs = (values.bug ?? '').split(',').filter((b) => b.length > 0) as RaftBug[];
for (const bug of bugs) {
  if (!(RAFT_BUGS as readonly string[]).includes(bug)) {
    console.error(`unknown bug ${bug}; one of ${RAFT_BUGS.join(', ')}`);
    process.exit(2);
  }
}
const [lo, hi] = values.seeds
  ? (values.seeds.split('..').map(Number) as [number, number])
  : [Number(values.seed ?? 0), Number(values.seed ?? 0)];
let failures = 0;
const started = performance.now();
for (let seed = lo; seed <= hi; seed++) {
  const result = simulate({ seed, profile, bugs, trace: values.trace });
  if (values.trace) for (const line of result.trace) console.log(line);
  if (!result.ok) {
    failures++;
    console.log(`seed ${seed} ${profile}: ${result.violation}\n  replay: ${result.replay}`);
  } else if (lo === hi) {
    console.log(
      `seed ${seed} ${profile}: ok (${result.events} events, ${result.acknowledged} acknowledged, ${result.elections} elections)`,
    );
  }
}
const ms = performance.now() - started;
console.log(`${hi - lo + 1} seeds, ${failures} failed, ${(ms / (hi - lo + 1)).toFixed(1)} ms/seed`);
process.exit(failures > 0 ? 1 : 0);
