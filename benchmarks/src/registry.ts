import { machineBaseline } from './benches/machine-baseline.js';
import type { Benchmark } from './harness/benchmark.js';

/** Every benchmark `pnpm bench <name>` knows, in the order `all` runs them. */
export const benchmarks: readonly Benchmark[] = [machineBaseline];
