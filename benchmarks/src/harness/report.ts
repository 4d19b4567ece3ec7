import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';

/** Which way is good: latencies want `lower`, throughputs `higher`. */
export const Better = z.enum(['lower', 'higher']);
export type Better = z.infer<typeof Better>;

/** A figure a benchmark measured, before it is judged. */
export interface MetricInput {
  /**
   * The figure; null (or NaN, ±Infinity) when there is none. A missing figure is written
   * as null and never passes.
   */
  readonly value: number | null;
  readonly unit: string;
  readonly better: Better;
  /** The target from ../shared/SLO-SPEC.md, when the spec names one. */
  readonly specTarget?: number | null;
  /** Our own (stricter) goal, from the issue. */
  readonly goal?: number | null;
  /**
   * How many samples the figure comes from (a histogram's `count`). With 0 the figure
   * (a percentile of nothing reads 0) is dropped: value null, never a pass.
   */
  readonly samples?: number;
  /**
   * Why this run cannot show the figure met, whatever its value (e.g. a failover trial
   * that never recovered, a load below the rate the goal is about): judged FAIL.
   */
  readonly cannotPass?: string | undefined;
}

export const MetricSchema = z.object({
  /** Null when there was nothing to measure (no samples) or the figure was not finite. */
  value: z.number().nullable(),
  unit: z.string(),
  better: Better,
  specTarget: z.number().nullable(),
  goal: z.number().nullable(),
  /**
   * Against the goal when there is one, else against the spec target; null when neither.
   * Always false when the value is null or `reason` says the run cannot show it met.
   */
  pass: z.boolean().nullable(),
  samples: z.number().int().nonnegative().optional(),
  /** Why the value is null, or why the figure cannot pass. */
  reason: z.string().optional(),
});
export type Metric = z.infer<typeof MetricSchema>;

export const BaselineSchema = z.object({
  /** Null when the figure was not finite (e.g. a ratio to a zero). */
  value: z.number().nullable(),
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

/** Why `value` is not a figure, or undefined when it is one. */
function missingReason(value: number | null, samples: number | undefined): string | undefined {
  if (samples === 0) return 'no samples';
  if (value === null) return 'no value';
  if (Number.isNaN(value)) return 'not a number (NaN)';
  if (!Number.isFinite(value)) return `not finite (${value > 0 ? '+' : '-'}Infinity)`;
  return undefined;
}

/**
 * Judges one figure: against our goal when set, else the spec's target. A figure from no
 * samples, or one that is not finite, is written as null and judged FAIL, whatever the
 * targets: a run that measured nothing has not shown anything met.
 */
export function judge(input: MetricInput): Metric {
  const specTarget = input.specTarget ?? null;
  const goal = input.goal ?? null;
  const threshold = goal ?? specTarget;
  const base = {
    unit: input.unit,
    better: input.better,
    specTarget,
    goal,
    ...(input.samples === undefined ? {} : { samples: input.samples }),
  };
  const missing = missingReason(input.value, input.samples);
  if (missing !== undefined || input.value === null) {
    return { value: null, ...base, pass: false, reason: missing ?? 'no value' };
  }
  if (input.cannotPass !== undefined) {
    return { value: input.value, ...base, pass: false, reason: input.cannotPass };
  }
  const pass = threshold === null ? null : meets(input.value, threshold, input.better);
  return { value: input.value, ...base, pass };
}

/**
 * How many times better than the spec's target the value is (>1 is better), or null.
 * For `lower` metrics that is target/value, for `higher` value/target.
 */
export function ratioToSpec(metric: Metric): number | null {
  const { specTarget, value } = metric;
  if (value === null || specTarget === null || specTarget === 0) return null;
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

/**
 * The 95% upper confidence bound of a rate of `failures` in `trials`, as a fraction:
 * with none observed the rule of three, 3/n (Hanley & Lippman-Hand, JAMA 1983; the exact
 * one-sided bound is 1 - 0.05^(1/n) ≈ 2.996/n); otherwise the upper end of the one-sided
 * Wilson score interval, z = 1.645 (Wilson, JASA 1927; Brown, Cai & DasGupta, Stat. Sci.
 * 2001). 1 with no trials: nothing was shown.
 */
export function rateUpperBound95(failures: number, trials: number): number {
  if (trials <= 0) return 1;
  if (failures <= 0) return Math.min(1, 3 / trials);
  const z = 1.645;
  const p = Math.min(1, failures / trials);
  const z2n = (z * z) / trials;
  const centre = p + z2n / 2;
  const spread = z * Math.sqrt((p * (1 - p)) / trials + z2n / (4 * trials));
  return Math.min(1, (centre + spread) / (1 + z2n));
}

/**
 * The three rows of an error rate: the count of errors (goal: none), the observed rate in
 * % (information) and its 95 % upper bound in % ({@link rateUpperBound95}), which is what
 * `specPct` is judged on: 0 errors in n cases only shows a rate below about 3/n.
 */
export function errorRateMetrics(
  errors: number,
  trials: number,
  countUnit: string,
  specPct: number,
): { readonly count: MetricInput; readonly pct: MetricInput; readonly upper95: MetricInput } {
  return {
    count: { value: errors, unit: countUnit, better: 'lower', goal: 0 },
    pct: { value: trials === 0 ? Number.NaN : (100 * errors) / trials, unit: '%', better: 'lower', samples: trials },
    upper95: {
      value: 100 * rateUpperBound95(errors, trials),
      unit: '%',
      better: 'lower',
      specTarget: specPct,
      samples: trials,
    },
  };
}

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
      m.value === null ? `n/a ${m.unit}` : `${formatNumber(m.value)} ${m.unit}`,
      m.specTarget === null ? '—' : `${op} ${cell(m.specTarget)}`,
      m.goal === null ? '—' : `${op} ${cell(m.goal)}`,
      ratio === null ? '—' : `${formatNumber(ratio)}x`,
      m.pass === null ? '—' : m.pass ? 'pass' : m.reason === undefined ? 'FAIL' : 'FAIL*',
    ];
  });
  const reasons = Object.entries(result.metrics).flatMap(([name, m]) =>
    m.reason === undefined ? [] : [`* ${name}: ${m.value === null ? 'no figure: ' : 'cannot pass: '}${m.reason}`],
  );
  const parts = [
    `# ${result.name}${result.quick ? ' (quick)' : ''}  ${result.startedAt}  ${formatNumber(result.durationMs / 1000)} s`,
    `machine: ${result.machine.cpus} x ${result.machine.cpuModel}, node ${result.machine.node}, sqlite ${result.machine.sqlite}`,
    '',
    table(['metric', 'value', 'spec target', 'our goal', 'vs spec', 'result'], metricRows),
    ...reasons,
  ];
  const baselines = Object.entries(result.baselines);
  if (baselines.length > 0) {
    parts.push(
      '',
      table(
        ['baseline', 'value', 'what'],
        baselines.map(([name, b]) => [
          name,
          b.value === null ? `n/a ${b.unit}` : `${formatNumber(b.value)} ${b.unit}`,
          b.note,
        ]),
      ),
    );
  }
  for (const note of result.notes) parts.push(`note: ${note}`);
  const judged = Object.values(result.metrics).filter((m) => m.pass !== null);
  const failed = judged.filter((m) => m.pass === false).length;
  parts.push('', `${judged.length - failed} of ${judged.length} judged metrics pass`);
  return parts.join('\n');
}

/** A baseline as written: a value that is not finite (a ratio to zero) becomes null. */
export function finiteBaseline(baseline: { value: number | null; unit: string; note: string }): Baseline {
  const { value } = baseline;
  return { ...baseline, value: value !== null && Number.isFinite(value) ? value : null };
}

/**
 * Validates and writes `<dir>/<name>.json`; returns the path. Print the result first
 * (`renderResult`): if this throws, the table is already out.
 */
export async function writeResult(result: BenchResult, dir: string): Promise<string> {
  const valid = BenchResultSchema.parse(result);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${valid.name}.json`);
  await writeFile(path, `${JSON.stringify(valid, null, 2)}\n`);
  return path;
}
