import type { Progress } from './progress.js';
import type { Baseline, MetricInput } from './report.js';

/** What a benchmark gets from the harness. */
export interface BenchContext {
  /** The shortened variant (each finishes in under 60 s on 2 cores). */
  readonly quick: boolean;
  readonly progress: Progress;
  /** A scratch directory, removed afterwards. */
  readonly scratchDir: string;
  /** Informational output (stderr, so stdout stays the report). */
  log(message: string): void;
}

/** What a benchmark hands back: figures, baselines measured in the same run, notes. */
export interface BenchOutcome {
  readonly metrics: Record<string, MetricInput>;
  readonly baselines?: Record<string, Baseline>;
  readonly notes?: readonly string[];
}

export interface Benchmark {
  /** File name of its results: lowercase, digits and dashes. */
  readonly name: string;
  readonly description: string;
  run(context: BenchContext): Promise<BenchOutcome>;
}
