import { defineConfig } from 'vitest/config';

// One runner for every workspace: `./run test` prints one summary for the whole repo.
// Each project's own vitest.config.ts (defineProject) holds its settings.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'benchmarks'],
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
