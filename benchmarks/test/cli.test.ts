import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BenchResultSchema } from '../src/harness/report.js';

const pkgDir = fileURLToPath(new URL('..', import.meta.url));
const tsx = join(pkgDir, 'node_modules', '.bin', 'tsx');
const bench = (...args: string[]) =>
  spawnSync(tsx, ['--conditions=@unrdf/source', 'src/cli.ts', ...args], {
    cwd: pkgDir,
    encoding: 'utf8',
    timeout: 60_000,
  });

describe('pnpm bench', () => {
  let outDir: string;
  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'unrdf-bench-cli-'));
  });
  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  // `all` runs each benchmark in its own process; the JTBD benchmarks take up to a
  // minute each, so the test selects the machine baseline through --match.
  it('runs the selected benchmarks with `all --quick` and writes valid JSON for each', async () => {
    const run = bench('all', '--quick', '--match', '^machine-', '--out', outDir);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('# machine-baseline (quick)');
    expect(run.stdout).toContain('bench all: 1 of 1 benchmarks ran');
    const json = JSON.parse(await readFile(join(outDir, 'machine-baseline.json'), 'utf8'));
    const result = BenchResultSchema.parse(json);
    expect(result.quick).toBe(true);
    expect(result.metrics.sqlite_full_commits?.value).toBeGreaterThan(0);
  }, 60_000);

  it('prints the table before writing, and exits 1 when the result cannot be written', () => {
    // A path under a regular file: mkdir fails after the benchmark ran.
    const run = bench('machine-baseline', '--quick', '--out', '/dev/null/results');
    expect(run.status).toBe(1);
    expect(run.stdout).toContain('# machine-baseline (quick)');
    expect(run.stdout).toContain('judged metrics pass');
    expect(run.stderr).toContain('could not write the result of machine-baseline');
  }, 60_000);

  it('exits 2 with the list of benchmarks for an unknown name', () => {
    const run = bench('no-such-bench', '--out', outDir);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("unknown benchmark 'no-such-bench'");
    expect(run.stderr).toContain('machine-baseline');
  });

  it('exits 2 on an unknown flag', () => {
    const run = bench('machine-baseline', '--fast');
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/Unknown option '--fast'/);
  });
});
