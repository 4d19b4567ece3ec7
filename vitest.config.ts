import { defineConfig } from 'vitest/config';

// One runner for every workspace: `./run test` prints one summary for the whole repo.
// Each project's own vitest.config.ts (defineProject) holds its settings. The number of
// test files run at once is the root `test` script's `--maxWorkers=100%` (one per core):
// a `maxWorkers` here would not reach the projects, and vitest 5.1's default is one core
// less, which on a 2-core machine ran the files one at a time.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'benchmarks'],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
