import { describe, it } from 'vitest';
import { FAULT_PROFILES } from '../../src/simulation/simulator.js';
import { SEEDS_PER_PROFILE, sweep } from './sweep.js';

describe('simulate', () => {
  it(`keeps every invariant and a linearizable history over ${SEEDS_PER_PROFILE} seeds of the "partition" profile (${FAULT_PROFILES.partition.nodes} nodes)`, async () => {
    await sweep('partition');
  }, 170_000);
});
