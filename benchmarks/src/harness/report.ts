import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** Which way is good: latencies want `lower`, throughputs `higher`. */
export const Better = z.enum(['lower', 'higher']);
export type Better = z.infer<typeof Better>;

/** A figure a benchmark measured, before it is judged. */
export interface MetricInput {
  readonly value: number;
  readonly unit: string;
  readonly better: Better;
  /** The target from ../shared/SLO-SPEC.md, when the spec names one. */
  readonly specTarget?: number | null;
  /** Our own (stricter) goal, from the issue. */
  readonly goal?: number | null;
}

export const MetricSchema = z.object({
  value: z.number(),
  unit: z.string(),
  better: Better,
  specTarget: z.number().nullable(),
  goal: z.number().nullable(),
  /** Against the goal when there is one, else against the spec target; null when neither. */
  pass: z.boolean().nullable(),
});
export type Metric = z.infer<typeof MetricSchema>;

export const BaselineSchema = z.object({
  value: z.number(),
  unit: z.string(),
  /** What it is and how durable, e.g. "p-queue, in memory, not durable". */
  note: z.string(),
});
export type Baseline = z.infer<typeof BaselineSchema>;

export const MachineSchema = z.object({
  cpus: z.number().int().positive(),
  cpuModel: z.string(),
  node: z.string(),
  sqlite: z.string(),
  platform: z.string(),
});
export type Machine = z.infer<typeof MachineSchema>;

/** The JSON each benchmark writes to benchmarks/results/<name>.json. */
export const BenchResultSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  startedAt: z.iso.datetime(),
  quick: z.boolean(),
  durationMs: z.number().nonnegative(),
  machine: MachineSchema,
  metrics: z.record(z.string(), MetricSchema),
  baselines: z.record(z.string(), BaselineSchema),
  notes: z.array(z.string()),
});
export type BenchResult = z.infer<typeof BenchResultSchema>;

const meets = (value: number, threshold: number, better: Better): boolean =>
  better === 'lower' ? value <= threshold : value >= threshold;

/** Judges one figure: against our goal when set, else the spec's target. */
export function judge(input: MetricInput): Metric {
  const specTarget = input.specTarget ?? null;
  const goal = input.goal ?? null;
  const threshold = goal ?? specTarget;
  const pass = threshold === null || !Number.isFinite(input.value) ? null : meets(input.value, threshold, input.better);
  return { value: input.value, unit: input.unit, better: input.better, specTarget, goal, pass };
}

/**
 * How many times better than the spec's target the value is (>1 is better), or null.
 * For `lower` metrics that is target/value, for `higher` value/target.
 */
export function ratioToSpec(metric: Metric): number | null {
  const { specTarget, value } = metric;
  if (specTarget === null || specTarget === 0) return null;
  if (metric.better === 'lower') return value === 0 ? Number.POSITIVE_INFINITY : specTarget / value;
  return value / specTarget;
}

/** Formats a number for a table: 3 significant digits, thousands separated. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? '∞' : String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(3)).toString();
}

const cell = (value: number | null, unit = ''): string => (value === null ? '—' : `${formatNumber(value)}${unit}`);

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** The human-readable report a benchmark prints. */
export function renderResult(result: BenchResult): string {
  const metricRows = Object.entries(result.metrics).map(([name, m]) => {
    const op = m.better === 'lower' ? '<=' : '>=';
    const ratio = ratioToSpec(m);
    return [
      name,
      `${formatNumber(m.value)} ${m.unit}`,
      m.specTarget === null ? '—' : `${op} ${cell(m.specTarget)}`,
      m.goal === null ? '—' : `${op} ${cell(m.goal)}`,
      ratio === null ? '—' : `${formatNumber(ratio)}x`,
      m.pass === null ? '—' : m.pass ? 'pass' : 'FAIL',
    ];
  });
  const parts = [
    `# ${result.name}${result.quick ? ' (quick)' : ''}  ${result.startedAt}  ${formatNumber(result.durationMs / 1000)} s`,
    `machine: ${result.machine.cpus} x ${result.machine.cpuModel}, node ${result.machine.node}, sqlite ${result.machine.sqlite}`,
    '',
    table(['metric', 'value', 'spec target', 'our goal', 'vs spec', 'result'], metricRows),
  ];
  const baselines = Object.entries(result.baselines);
  if (baselines.length > 0) {
    parts.push(
      '',
      table(
        ['baseline', 'value', 'what'],
        baselines.map(([name, b]) => [name, `${formatNumber(b.value)} ${b.unit}`, b.note]),
      ),
    );
  }
  for (const note of result.notes) parts.push(`note: ${note}`);
  const judged = Object.values(result.metrics).filter((m) => m.pass !== null);
  const failed = judged.filter((m) => m.pass === false).length;
  parts.push('', `${judged.length - failed} of ${judged.length} judged metrics pass`);
  return parts.join('\n');
}

/** Validates and writes `<dir>/<name>.json`; returns the path. */
export async function writeResult(result: BenchResult, dir: string): Promise<string> {
  const valid = BenchResultSchema.parse(result);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${valid.name}.json`);
  await writeFile(path, `${JSON.stringify(valid, null, 2)}\n`);
  return path;
}
