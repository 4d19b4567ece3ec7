import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Benchmark } from './benchmark.js';
import { describeMachine } from './machine.js';
import { createProgress } from './progress.js';
import { type BenchResult, finiteBaseline, judge } from './report.js';

/** Runs one benchmark and judges its figures; the caller prints and writes the result. */
export async function runBenchmark(benchmark: Benchmark, options: { quick: boolean }): Promise<BenchResult> {
  const scratchDir = await mkdtemp(join(tmpdir(), `unrdf-bench-${benchmark.name}-`));
  const progress = createProgress(benchmark.name);
  const startedAt = new Date();
  const started = performance.now();
  try {
    const outcome = await benchmark.run({
      quick: options.quick,
      progress,
      scratchDir,
      log: (message) => process.stderr.write(`[${benchmark.name}] ${message}\n`),
    });
    return {
      name: benchmark.name,
      startedAt: startedAt.toISOString(),
      quick: options.quick,
      durationMs: performance.now() - started,
      machine: describeMachine(),
      metrics: Object.fromEntries(Object.entries(outcome.metrics).map(([k, m]) => [k, judge(m)])),
      baselines: Object.fromEntries(Object.entries(outcome.baselines ?? {}).map(([k, b]) => [k, finiteBaseline(b)])),
      notes: [...(outcome.notes ?? [])],
    };
  } finally {
    progress.end();
    await rm(scratchDir, { recursive: true, force: true });
  }
}
