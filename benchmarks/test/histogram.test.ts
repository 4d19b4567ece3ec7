import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LatencyHistogram } from '../src/harness/histogram.js';

// The exact nearest-rank percentile, to check the histogram against.
function exactPercentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] as number;
}

describe('LatencyHistogram', () => {
  describe('percentile', () => {
    it('stays within 0.1% of the exact percentile on any sample', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 60_000_000 }), { minLength: 1, maxLength: 2000 }),
          fc.constantFrom(50, 90, 95, 99, 99.9, 100),
          (micros, p) => {
            const h = new LatencyHistogram();
            for (const us of micros) h.record(us / 1000);
            const exact =
              exactPercentile(
                [...micros].sort((a, b) => a - b),
                p,
              ) / 1000;
            expect(Math.abs(h.percentile(p) - exact)).toBeLessThanOrEqual(exact * 0.001 + 0.001);
          },
        ),
        { numRuns: 200 },
      );
    });

    it('returns 0 when nothing was recorded', () => {
      const h = new LatencyHistogram();
      expect(h.percentile(99)).toBe(0);
      expect(h.summary()).toMatchObject({ count: 0, min: 0, max: 0, p50: 0 });
    });
  });

  describe('record', () => {
    it('counts negative values as 0 and rejects non-finite ones', () => {
      const h = new LatencyHistogram();
      h.record(-5);
      expect(h.count).toBe(1);
      expect(h.percentile(100)).toBe(0);
      expect(() => h.record(Number.NaN)).toThrow(RangeError);
      expect(() => h.record(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    });
  });

  describe('merge', () => {
    it('gives the same distribution as recording everything in one histogram', () => {
      const a = new LatencyHistogram();
      const b = new LatencyHistogram();
      const all = new LatencyHistogram();
      for (let i = 1; i <= 1000; i++) {
        (i % 3 === 0 ? a : b).record(i / 10);
        all.record(i / 10);
      }
      a.merge(b);
      expect(a.summary()).toEqual(all.summary());
      expect(a.count).toBe(1000);
    });
  });
});
