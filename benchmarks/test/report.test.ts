import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type BenchResult,
  BenchResultSchema,
  formatNumber,
  judge,
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

  it('never passes a value that is not a number', () => {
    expect(judge({ value: Number.NaN, unit: 'ms', better: 'lower', goal: 5 }).pass).toBeNull();
  });
});

describe('ratioToSpec', () => {
  it('is target/value for lower-is-better and value/target for higher-is-better', () => {
    expect(ratioToSpec(judge({ value: 5, unit: 'ms', better: 'lower', specTarget: 45 }))).toBe(9);
    expect(ratioToSpec(judge({ value: 66, unit: 'op/s', better: 'higher', specTarget: 33 }))).toBe(2);
    expect(ratioToSpec(judge({ value: 66, unit: 'op/s', better: 'higher' }))).toBeNull();
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

  it('refuses a result that does not fit the schema', async () => {
    await expect(writeResult(result({ name: 'Bad Name' }), tmpdir())).rejects.toThrow(/name/);
  });
});
