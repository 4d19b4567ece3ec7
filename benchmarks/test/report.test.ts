import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type BenchResult,
  BenchResultSchema,
  errorRateMetrics,
  finiteBaseline,
  formatNumber,
  judge,
  rateUpperBound95,
  ratioToSpec,
  renderResult,
  writeResult,
} from '../src/harness/report.js';

const machine = { cpus: 2, cpuModel: 'test cpu', node: 'v24.0.0', sqlite: '3.50.0', platform: 'linux-x64' };

function result(overrides: Partial<BenchResult> = {}): BenchResult {
  return {
    name: 'demo',
    startedAt: '2026-11-27T00:00:00.000Z',
    quick: true,
    durationMs: 1234,
    machine,
    metrics: {
      p99: judge({ value: 4, unit: 'ms', better: 'lower', specTarget: 45, goal: 5 }),
      rate: judge({ value: 900, unit: 'op/s', better: 'higher', specTarget: 33, goal: 1000 }),
    },
    baselines: { 'p-queue': { value: 9000, unit: 'op/s', note: 'in memory, not durable' } },
    notes: ['a note'],
    ...overrides,
  };
}

describe('judge', () => {
  it('judges against our goal when there is one, not the looser spec target', () => {
    expect(judge({ value: 10, unit: 'ms', better: 'lower', specTarget: 45, goal: 5 }).pass).toBe(false);
    expect(judge({ value: 5, unit: 'ms', better: 'lower', specTarget: 45, goal: 5 }).pass).toBe(true);
  });

  it('falls back to the spec target, and to null with neither', () => {
    expect(judge({ value: 50, unit: 'ms', better: 'lower', specTarget: 45 }).pass).toBe(false);
    expect(judge({ value: 40, unit: 'op/s', better: 'higher', specTarget: 33 }).pass).toBe(true);
    expect(judge({ value: 40, unit: 'op/s', better: 'higher' })).toMatchObject({
      pass: null,
      specTarget: null,
      goal: null,
    });
  });

  it('writes a value that is not finite as null and judges it FAIL', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const m = judge({ value, unit: 'ms', better: 'lower', goal: 5 });
      expect(m).toMatchObject({ value: null, pass: false });
      expect(m.reason).toMatch(/NaN|Infinity/);
      expect(() => BenchResultSchema.shape.metrics.parse({ m })).not.toThrow();
    }
    // Without any target, too: a figure that could not be computed is not information.
    expect(judge({ value: Number.POSITIVE_INFINITY, unit: 'ms', better: 'lower' }).pass).toBe(false);
  });

  it('drops a figure from an empty sample and never passes it', () => {
    // A P99 of an empty histogram reads 0, which would pass any latency target.
    const m = judge({ value: 0, unit: 'ms', better: 'lower', specTarget: 45, goal: 5, samples: 0 });
    expect(m).toMatchObject({ value: null, pass: false, samples: 0, reason: 'no samples' });
    expect(judge({ value: 0, unit: 'ms', better: 'lower', samples: 0 }).pass).toBe(false);
    expect(judge({ value: null, unit: 'ms', better: 'lower', goal: 5 })).toMatchObject({ value: null, pass: false });
  });

  it('keeps the sample count when there are samples', () => {
    expect(judge({ value: 3, unit: 'ms', better: 'lower', goal: 5, samples: 12 })).toMatchObject({
      value: 3,
      pass: true,
      samples: 12,
    });
  });

  it('fails a figure the run cannot show met, whatever its value, and says why', () => {
    const m = judge({ value: 1, unit: 's', better: 'lower', specTarget: 45, cannotPass: '1 trial did not recover' });
    expect(m).toMatchObject({ value: 1, pass: false, reason: '1 trial did not recover' });
  });
});

describe('errorRateMetrics', () => {
  it('judges the spec target on the upper bound: 300,000 clean cases show 0.001 %, 30,000 do not', () => {
    const enough = errorRateMetrics(0, 300_000, 'cases', 0.001);
    expect(judge(enough.count).pass).toBe(true);
    expect(judge(enough.upper95).pass).toBe(true);
    expect(judge(enough.pct)).toMatchObject({ value: 0, pass: null, samples: 300_000 });
    expect(judge(errorRateMetrics(0, 30_000, 'cases', 0.001).upper95).pass).toBe(false);
    expect(judge(errorRateMetrics(0, 0, 'cases', 0.001).pct)).toMatchObject({ value: null, pass: false });
  });
});

describe('rateUpperBound95', () => {
  it('is the rule of three, 3/n, when nothing was observed', () => {
    expect(rateUpperBound95(0, 300_000)).toBeCloseTo(1e-5, 12);
    expect(rateUpperBound95(0, 600)).toBeCloseTo(0.005, 12);
  });

  it('is 1 with no trials and at most 1', () => {
    expect(rateUpperBound95(0, 0)).toBe(1);
    expect(rateUpperBound95(10, 10)).toBeLessThanOrEqual(1);
  });

  it('lies above the observed rate and shrinks with more trials', () => {
    // One-sided Wilson, z = 1.645: 5 in 1,000 gives about 0.0099.
    expect(rateUpperBound95(5, 1000)).toBeCloseTo(0.0099, 3);
    expect(rateUpperBound95(5, 1000)).toBeGreaterThan(0.005);
    expect(rateUpperBound95(50, 10_000)).toBeLessThan(rateUpperBound95(5, 1000));
  });
});

describe('ratioToSpec', () => {
  it('is target/value for lower-is-better and value/target for higher-is-better', () => {
    expect(ratioToSpec(judge({ value: 5, unit: 'ms', better: 'lower', specTarget: 45 }))).toBe(9);
    expect(ratioToSpec(judge({ value: 66, unit: 'op/s', better: 'higher', specTarget: 33 }))).toBe(2);
    expect(ratioToSpec(judge({ value: 66, unit: 'op/s', better: 'higher' }))).toBeNull();
  });

  it('is null for a figure from no samples', () => {
    expect(ratioToSpec(judge({ value: 0, unit: 'ms', better: 'lower', specTarget: 45, samples: 0 }))).toBeNull();
  });
});

describe('formatNumber', () => {
  it('keeps 3 significant digits and separates thousands', () => {
    expect(formatNumber(0.012345)).toBe('0.0123');
    expect(formatNumber(12345.6)).toBe('12,346');
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(Number.POSITIVE_INFINITY)).toBe('∞');
  });
});

describe('renderResult', () => {
  it('prints every metric with its target, goal, ratio and verdict, then the baselines', () => {
    const text = renderResult(result());
    const p99 = text.split('\n').find((l) => l.startsWith('p99'));
    expect(p99).toMatch(/4 ms\s+<= 45\s+<= 5\s+11\.3x\s+pass/);
    const rate = text.split('\n').find((l) => l.startsWith('rate'));
    expect(rate).toMatch(/900 op\/s\s+>= 33\s+>= 1,000\s+27\.3x\s+FAIL/);
    expect(text).toContain('p-queue');
    expect(text).toContain('in memory, not durable');
    expect(text).toContain('1 of 2 judged metrics pass');
  });

  it('prints a missing figure as n/a, FAIL, with the reason under the table', () => {
    const text = renderResult(
      result({
        metrics: {
          p99: judge({ value: 0, unit: 'ms', better: 'lower', specTarget: 45, samples: 0 }),
          drain: judge({ value: Number.POSITIVE_INFINITY, unit: 'ms', better: 'lower' }),
        },
        baselines: { ratio: finiteBaseline({ value: Number.NaN, unit: 'x', note: 'a ratio to zero' }) },
      }),
    );
    expect(text.split('\n').find((l) => l.startsWith('p99'))).toMatch(/n\/a ms\s+<= 45\s+—\s+—\s+FAIL\*/);
    expect(text).toContain('* p99: no figure: no samples');
    expect(text).toContain('* drain: no figure: not finite (+Infinity)');
    expect(text.split('\n').find((l) => l.startsWith('ratio'))).toMatch(/n\/a x/);
    expect(text).toContain('0 of 2 judged metrics pass');
  });
});

describe('writeResult', () => {
  it('writes JSON that parses back to the same result under the schema', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'unrdf-report-'));
    try {
      const path = await writeResult(result(), dir);
      expect(path).toBe(join(dir, 'demo.json'));
      const back = BenchResultSchema.parse(JSON.parse(await readFile(path, 'utf8')));
      expect(back).toEqual(result());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writes missing and non-finite figures as null', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'unrdf-report-'));
    try {
      const withGaps = result({
        metrics: {
          wait: judge({ value: Number.NaN, unit: 'ms', better: 'lower', goal: 50 }),
          p99: judge({ value: 0, unit: 'ms', better: 'lower', goal: 5, samples: 0 }),
        },
        baselines: { ratio: finiteBaseline({ value: Number.POSITIVE_INFINITY, unit: 'x', note: 'ratio' }) },
      });
      const back = BenchResultSchema.parse(JSON.parse(await readFile(await writeResult(withGaps, dir), 'utf8')));
      expect(back.metrics.wait).toMatchObject({ value: null, pass: false });
      expect(back.metrics.p99).toMatchObject({ value: null, pass: false, samples: 0 });
      expect(back.baselines.ratio?.value).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a result that does not fit the schema', async () => {
    await expect(writeResult(result({ name: 'Bad Name' }), tmpdir())).rejects.toThrow(/name/);
  });
});
