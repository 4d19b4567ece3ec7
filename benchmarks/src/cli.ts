import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderResult, writeResult } from './harness/report.js';
import { runBenchmark } from './harness/run-benchmark.js';
import { loadBenchmarks } from './registry.js';

const DEFAULT_RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

const benchmarks = await loadBenchmarks();

const usage = `usage: pnpm bench <name>|all [--quick]

  <name>    one benchmark (below); writes benchmarks/results/<name>.json
  all       every benchmark, each in its own process
  --quick   the short variant (under 60 s each)
  --out DIR where to write the JSON (default benchmarks/results)
  --match RE with all: only the benchmarks whose name matches RE

benchmarks:
${benchmarks.map((b) => `  ${b.name.padEnd(22)}${b.description}`).join('\n')}`;

async function runOne(name: string, quick: boolean, outDir: string): Promise<number> {
  const benchmark = benchmarks.find((b) => b.name === name);
  if (!benchmark) {
    process.stderr.write(`unknown benchmark '${name}'\n\n${usage}\n`);
    return 2;
  }
  const result = await runBenchmark(benchmark, { quick });
  // The table first: a result the schema refuses must not take the figures with it.
  process.stdout.write(`${renderResult(result)}\n`);
  try {
    const path = await writeResult(result, outDir);
    process.stdout.write(`wrote ${path}\n\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`could not write the result of ${name}: ${(error as Error).message}\n`);
    return 1;
  }
}

// Each benchmark in a fresh process: no heap, JIT or open handles carried over.
function runChild(name: string, quick: boolean, outDir: string): Promise<number> {
  const args = [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    name,
    '--out',
    outDir,
    ...(quick ? ['--quick'] : []),
  ];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  const parse = (a: string[]) =>
    parseArgs({
      args: a,
      allowPositionals: true,
      options: {
        quick: { type: 'boolean', default: false },
        out: { type: 'string', default: DEFAULT_RESULTS_DIR },
        match: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  try {
    parsed = parse(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length !== 1) {
    process.stderr.write(`${usage}\n`);
    return values.help ? 0 : 2;
  }
  const [name] = positionals as [string];
  if (name !== 'all') return runOne(name, values.quick, values.out);
  const pattern = values.match === undefined ? undefined : new RegExp(values.match);
  const selected = benchmarks.filter((b) => pattern === undefined || pattern.test(b.name));
  let failures = 0;
  for (const b of selected) {
    if ((await runChild(b.name, values.quick, values.out)) !== 0) failures++;
  }
  process.stdout.write(`bench all: ${selected.length - failures} of ${selected.length} benchmarks ran\n`);
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
