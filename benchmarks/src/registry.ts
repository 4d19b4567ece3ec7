import { readdir } from 'node:fs/promises';
import type { Benchmark } from './harness/benchmark.js';

const BENCHES_DIR = new URL('./benches/', import.meta.url);

/**
 * Every benchmark `pnpm bench <name>` knows, sorted by name: each file in
 * src/benches/ exports one as `benchmark`, named like the file.
 */
export async function loadBenchmarks(): Promise<Benchmark[]> {
  const files = (await readdir(BENCHES_DIR)).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  const loaded: Benchmark[] = [];
  for (const file of files) {
    const module = (await import(new URL(file, BENCHES_DIR).href)) as { benchmark?: Benchmark };
    const benchmark = module.benchmark;
    if (!benchmark || benchmark.name !== file.replace(/\.(ts|js)$/, '')) {
      throw new Error(`src/benches/${file} must export \`benchmark\` named '${file.replace(/\.(ts|js)$/, '')}'`);
    }
    loaded.push(benchmark);
  }
  return loaded;
}
