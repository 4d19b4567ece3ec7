import { writeFileSync } from 'node:fs';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { tempDir } from '@unrdf/test-utils';
import fc from 'fast-check';
import * as hdr from 'hdr-histogram-js';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createMetrics,
  generatedAlerts,
  INDICATORS,
  InvalidObservationError,
  LatencyHistogram,
  parseSloDefinitions,
  prometheusRules,
  SPEC_SLOS,
} from '../src/index.js';
import { ensurePromtool, promtool } from './support/promtool.js';

/** The SDK wiring the app does: a MeterProvider with a pull-mode Prometheus reader. */
function sdk() {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'unrdf-daemon' }),
    readers: [exporter],
  });
  const exposition = async () => {
    const { resourceMetrics } = await exporter.collect();
    return new PrometheusSerializer(undefined, false, undefined, true, true).serialize(resourceMetrics);
  };
  return { meter: provider.getMeter('unrdf'), exposition, close: () => provider.shutdown() };
}

beforeAll(() => ensurePromtool(), 300_000);

describe('createMetrics', () => {
  describe('Prometheus exposition', () => {
    it('uses base units, _seconds/_total names and second-sized buckets, and passes promtool check metrics', async () => {
      const otel = sdk();
      const metrics = createMetrics({
        meter: otel.meter,
        consensus: () => ({
          role: 'follower',
          term: 5,
          leaderId: 'n1',
          commitIndex: 40,
          appliedIndex: 38,
          lastLogIndex: 41,
          members: [],
        }),
      });
      metrics.observe('receipt', { durationMs: 4, ok: true });
      metrics.observe('receipt', { durationMs: 50, ok: false });
      metrics.recordOperation({ id: 'op-1', type: 'create', ok: true, durationMs: 12, queueWaitMs: 3 });
      metrics.observe('health_check', { durationMs: 0.3, ok: true, endpoint: 'readyz' });
      for (const indicator of Object.keys(INDICATORS) as (keyof typeof INDICATORS)[]) {
        metrics.observe(indicator, { durationMs: 7, ok: false });
      }
      const text = await otel.exposition();
      await otel.close();
      expect(text).toContain('# TYPE unrdf_receipt_duration_seconds histogram');
      expect(text).toMatch(/unrdf_receipt_duration_seconds_bucket\{outcome="success",le="0.045"\} 1/);
      expect(text).toMatch(/unrdf_receipt_duration_seconds_sum\{outcome="success"\} 0.004/);
      expect(text).toMatch(/unrdf_receipts_total\{outcome="failure"\} 2/);
      for (const indicator of Object.keys(INDICATORS)) {
        expect(text).toContain(`# TYPE unrdf_${indicator}_duration_seconds histogram`);
        expect(text).toContain(`# TYPE unrdf_${indicator}s_total counter`);
      }
      expect(text).toMatch(/unrdf_operations_total\{outcome="success",type="create"\} 1/);
      expect(text).not.toMatch(/_total_total|_seconds_seconds|milliseconds/);
      expect(text).toMatch(/^unrdf_raft_has_leader 1$/m);
      expect(text).toMatch(/^unrdf_raft_term 5$/m);
      expect(text).toMatch(/^unrdf_raft_applied_index 38$/m);
      const check = promtool(['check', 'metrics'], text);
      expect(check.output).toBe('');
      expect(check.status).toBe(0);
    });

    it('bounds label cardinality: unknown operation types collapse to "other"', async () => {
      const otel = sdk();
      const metrics = createMetrics({ meter: otel.meter, operationTypes: ['create'] });
      for (let i = 0; i < 500; i++) metrics.recordOperation({ id: `op-${i}`, type: `t${i}`, ok: true, durationMs: 1 });
      const text = await otel.exposition();
      await otel.close();
      const series = text.split('\n').filter((l) => l.startsWith('unrdf_operations_total{'));
      expect(series).toEqual(['unrdf_operations_total{outcome="success",type="other"} 500']);
    });

    it('makes every SLO threshold a bucket boundary, so the generated rule for it fires', async () => {
      // 40 ms is not one of INDICATORS.receipt's own boundaries.
      const slos = parseSloDefinitions([
        {
          id: 'receipt-latency-p99-40',
          jtbd: 1,
          title: 'P99 receipt latency <= 40 ms',
          indicator: 'receipt',
          sli: { kind: 'latency', percentile: 99, thresholdMs: 40 },
          objective: 0.99,
          windowDays: 30,
        },
      ]);
      const otel = sdk();
      createMetrics({ meter: otel.meter, slos }).observe('receipt', { durationMs: 100, ok: true });
      const text = await otel.exposition();
      await otel.close();
      const boundaries = [
        ...text.matchAll(/^unrdf_receipt_duration_seconds_bucket\{outcome="success",le="([^"]+)"\}/gm),
      ].map((m) => m[1] ?? '');
      expect(boundaries).toContain('0.04');

      // Every receipt takes 100 ms, one a second, on exactly the buckets exported: the page fires.
      await using dir = await tempDir('diag-rules');
      writeFileSync(dir.join('rules.yml'), prometheusRules(slos));
      const series = (le: string) => ({
        series: `unrdf_receipt_duration_seconds_bucket{outcome="success",le="${le}"}`,
        values: le === '+Inf' || Number(le) >= 0.1 ? '0+60x120' : '0+0x120',
      });
      const tests = {
        rule_files: ['rules.yml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              ...boundaries.map(series),
              { series: 'unrdf_receipt_duration_seconds_count{outcome="success"}', values: '0+60x120' },
            ],
            alert_rule_test: [
              {
                eval_time: '60m',
                alertname: 'UnrdfSloBurnRatePage',
                exp_alerts: generatedAlerts(slos)
                  .filter((a) => a.alert === 'UnrdfSloBurnRatePage')
                  .map((a) => ({ exp_labels: a.labels, exp_annotations: a.annotations })),
              },
            ],
          },
        ],
      };
      writeFileSync(dir.join('tests.yml'), JSON.stringify(tests));
      const result = promtool(['test', 'rules', dir.join('tests.yml')]);
      expect(result.output).toContain('SUCCESS');
    });

    it('stops observing the Raft gauges on close', async () => {
      const otel = sdk();
      let views = 0;
      const metrics = createMetrics({
        meter: otel.meter,
        consensus: () => {
          views++;
          return null;
        },
      });
      await otel.exposition();
      expect(views).toBe(1);
      metrics.close();
      await otel.exposition();
      await otel.close();
      expect(views).toBe(1);
    });
  });

  describe('recordOperation', () => {
    it('lists a cancelled operation among the recent ones without counting it as a failure', async () => {
      const otel = sdk();
      const metrics = createMetrics({ meter: otel.meter });
      metrics.recordOperation({ id: 'ok', type: 'create', ok: true, durationMs: 1 });
      metrics.recordOperation({
        id: 'c',
        type: 'create',
        ok: false,
        durationMs: 2,
        errorType: 'Cancelled',
        cancelled: true,
      });
      expect(() =>
        metrics.recordOperation({ id: 'x', type: 'create', ok: true, durationMs: 1, cancelled: true }),
      ).toThrow(InvalidObservationError);
      const snapshot = metrics.snapshot();
      await otel.close();
      expect(snapshot.recentOperations.map((o) => [o.id, o.ok, o.cancelled])).toEqual([
        ['ok', true, undefined],
        ['c', false, true],
      ]);
      expect(snapshot.recentFailures).toEqual([]);
      expect(snapshot.errorTypes).toEqual([]);
      expect(snapshot.indicators.operation).toMatchObject({ success: 1, failure: 0 });
    });
  });

  describe('observe', () => {
    it('refuses a NaN, infinite or negative duration before recording anything', async () => {
      const otel = sdk();
      const metrics = createMetrics({ meter: otel.meter });
      metrics.observe('receipt', { durationMs: 3, ok: true });
      for (const durationMs of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
        expect(() => metrics.observe('receipt', { durationMs, ok: true })).toThrow(InvalidObservationError);
      }
      expect(() =>
        metrics.recordOperation({ id: 'op', type: 'create', ok: true, durationMs: 1, queueWaitMs: Number.NaN }),
      ).toThrow(/queueWaitMs: expected a finite number/);
      const text = await otel.exposition();
      await otel.close();
      // The OTel histogram, the counter, the HDR histogram and the SLI counts agree: one event each.
      expect(text).toMatch(/^unrdf_receipt_duration_seconds_count\{outcome="success"\} 1$/m);
      expect(text).toMatch(/^unrdf_receipt_duration_seconds_sum\{outcome="success"\} 0.003$/m);
      expect(text).toMatch(/^unrdf_receipts_total\{outcome="success"\} 1$/m);
      expect(text).not.toMatch(/^unrdf_operation/m);
      const receipt = metrics.snapshot().indicators.receipt;
      expect(receipt?.success).toBe(1);
      expect(LatencyHistogram.decode(receipt?.lifetime ?? '').count).toBe(1);
      expect(receipt?.windows['5m']?.total).toBe(1);
      expect(metrics.snapshot().indicators.operation).toBeUndefined();
    });
  });

  describe('snapshot', () => {
    it('counts SLI events per window from an injected clock; failures are never good', () => {
      let now = Date.UTC(2026, 0, 1);
      const metrics = createMetrics({ clock: () => now });
      metrics.observe('receipt', { durationMs: 10, ok: true }); // good for 15 and 45 ms
      metrics.observe('receipt', { durationMs: 20, ok: true }); // good for 45 ms only
      metrics.observe('receipt', { durationMs: 1, ok: false }); // bad for both
      now += 2 * 60 * 60_000; // 2 hours later
      metrics.observe('receipt', { durationMs: 100, ok: true });
      const receipt = metrics.snapshot().indicators.receipt;
      expect(receipt?.thresholdsMs).toEqual([15, 45]);
      expect(receipt?.windows['5m']).toMatchObject({ total: 1, failures: 0, good: [0, 0] });
      expect(receipt?.windows['6h']).toMatchObject({ total: 4, failures: 1, good: [1, 2] });
      expect(receipt?.windows['30d']).toMatchObject({ total: 4, failures: 1, good: [1, 2] });
      expect(LatencyHistogram.decode(receipt?.recent ?? '').count).toBe(1);
      expect(LatencyHistogram.decode(receipt?.lifetime ?? '').count).toBe(4);
    });

    it('keeps the 30-day SLI counts across a restart when given a database, and lets them age out', async () => {
      await using dir = await tempDir('diag-sli');
      let now = Date.UTC(2026, 0, 1);
      const first = createMetrics({ clock: () => now, sliDatabase: dir.join('sli.db') });
      first.observe('receipt', { durationMs: 10, ok: true });
      first.observe('receipt', { durationMs: 50, ok: true });
      now += 60_000;
      first.observe('receipt', { durationMs: 1, ok: false });
      first.close();

      now += 24 * 3600_000; // the next day, a new process
      const second = createMetrics({ clock: () => now, sliDatabase: dir.join('sli.db') });
      second.observe('receipt', { durationMs: 5, ok: true });
      expect(second.snapshot().indicators.receipt?.windows['30d']).toMatchObject({
        total: 4,
        failures: 1,
        good: [2, 2],
      });
      expect(second.snapshot().indicators.receipt?.windows['1h']).toMatchObject({
        total: 1,
        failures: 0,
        good: [1, 1],
      });
      second.close();

      now += 31 * 24 * 3600_000;
      const third = createMetrics({ clock: () => now, sliDatabase: dir.join('sli.db') });
      third.observe('receipt', { durationMs: 5, ok: true });
      expect(third.snapshot().indicators.receipt?.windows['30d']).toMatchObject({
        total: 1,
        failures: 0,
        good: [1, 1],
      });
      third.close();
    });

    it('keeps the last 100 operations and failures and a bounded error-type summary', () => {
      const metrics = createMetrics({ maxErrorTypes: 3 });
      for (let i = 0; i < 250; i++) {
        const ok = i % 2 === 0;
        metrics.recordOperation({
          id: `op-${i}`,
          type: 'update',
          ok,
          durationMs: i,
          ...(ok ? {} : { errorType: `E${i % 10}`, errorMessage: `failure ${i}` }),
        });
      }
      const snap = metrics.snapshot();
      expect(snap.recentOperations).toHaveLength(100);
      expect(snap.recentOperations.at(-1)?.id).toBe('op-249');
      expect(snap.recentFailures).toHaveLength(100);
      expect(snap.recentFailures.every((f) => !f.ok)).toBe(true);
      expect(snap.errorTypes.map((e) => e.type).sort()).toEqual(['E1', 'E3', 'E5', 'other']);
      expect(snap.errorTypes.reduce((n, e) => n + e.count, 0)).toBe(125);
    });

    it('cuts overlong ids, types and error texts to what the snapshot schema accepts', () => {
      const metrics = createMetrics();
      metrics.recordOperation({
        id: 'i'.repeat(300),
        type: 't'.repeat(200),
        ok: false,
        durationMs: 2,
        // What the daemon passes: error.code ?? error.name, error.message.
        errorType: `Handler Error ${'E'.repeat(200)}`,
        errorMessage: 'm'.repeat(2000),
      });
      const [failure] = metrics.snapshot().recentFailures;
      expect(failure?.id).toHaveLength(256);
      expect(failure?.type).toHaveLength(128);
      expect(failure?.errorType).toMatch(/^Handler_Error_E+$/);
      expect(failure?.errorType?.length).toBeLessThanOrEqual(128);
      expect(failure?.errorMessage).toHaveLength(1024);
      expect(metrics.snapshot().errorTypes.map((e) => e.type)).toEqual([failure?.errorType]);
    });
  });
});

describe('LatencyHistogram', () => {
  it('merges nodes so cluster percentiles are within 0.1% of the exact ones over the union', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.double({ min: 0.01, max: 60_000, noNaN: true }), { minLength: 1, maxLength: 300 }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.constantFrom(50, 90, 99, 99.9),
        (perNode, p) => {
          const encoded = perNode.map((values) => {
            const h = new LatencyHistogram();
            for (const v of values) h.record(v);
            return h.encode();
          });
          const merged = LatencyHistogram.mergeEncoded(encoded);
          const all = perNode.flat().sort((a, b) => a - b);
          // HdrHistogram's percentile: the value at rank ceil(p/100 * n).
          const exact = all[Math.max(0, Math.ceil((p / 100) * all.length) - 1)] ?? 0;
          expect(merged.count).toBe(all.length);
          expect(Math.abs(merged.percentile(p) - exact)).toBeLessThanOrEqual(exact * 0.001 + 0.001);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('merges bucket counts past 2^32 exactly (no 32-bit wrap)', () => {
    const atOneMs = (count: number) => {
      // A V2 encoding holding `count` values of 1000 µs: a run of 1000 zero buckets,
      // then the count (below 2048 µs an index is the value), as ZigZag LEB128 words.
      const body: number[] = [];
      for (const word of [-1000, count]) {
        let zigzag = word >= 0 ? word * 2 : -word * 2 - 1;
        while (zigzag >= 0x80) {
          body.push((zigzag % 0x80) | 0x80);
          zigzag = Math.floor(zigzag / 0x80);
        }
        body.push(zigzag);
      }
      const bytes = Buffer.alloc(40 + body.length);
      bytes.writeInt32BE(0x1c849303 | 0x10, 0);
      bytes.writeInt32BE(body.length, 4);
      bytes.writeInt32BE(3, 12);
      bytes.writeBigInt64BE(1n, 16);
      bytes.writeBigInt64BE(2n, 24);
      bytes.writeDoubleBE(1, 32);
      Buffer.from(body).copy(bytes, 40);
      return bytes.toString('base64');
    };
    const one = atOneMs(1_500_000_000);
    const merged = LatencyHistogram.mergeEncoded([one, one, atOneMs(4_000_000_000)]);
    const p = merged.percentiles();
    expect({ count: p.count, p50: p.p50, max: p.max }).toEqual({ count: 7_000_000_000, p50: 1, max: 1 });
    // Past 2^53 counts are no longer exact: refused, all or nothing.
    const huge = LatencyHistogram.mergeEncoded(Array.from({ length: 32 }, () => atOneMs(2 ** 48 - 1)));
    expect(() => huge.addEncoded(atOneMs(2 ** 48 - 1))).toThrow(RangeError);
    expect(huge.count).toBe(32 * (2 ** 48 - 1));
  });

  it('rejects an encoding that is not a histogram', () => {
    expect(() => LatencyHistogram.decode('garbage!')).toThrow();
  });

  it("reads the same distribution from its own encoding as from HdrHistogram's compressed one", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 60_000_000 }), { minLength: 1, maxLength: 400 }), (micros) => {
        const ours = new LatencyHistogram();
        // The reference: hdr-histogram-js itself, same layout, compressed form (what 0.1.0 sent).
        const reference = hdr.build({
          bitBucketSize: 32,
          lowestDiscernibleValue: 1,
          highestTrackableValue: 2,
          numberOfSignificantValueDigits: 3,
          autoResize: true,
        });
        for (const us of micros) {
          ours.record(us / 1000);
          reference.recordValue(us);
        }
        const fromCompressed = LatencyHistogram.decode(hdr.encodeIntoCompressedBase64(reference));
        expect(LatencyHistogram.decode(ours.encode()).percentiles()).toEqual(fromCompressed.percentiles());
      }),
      { numRuns: 60 },
    );
  });

  it('gives the same percentiles in one pass as one at a time', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 600_000, noNaN: true }), { maxLength: 500 }), (values) => {
        const h = new LatencyHistogram();
        for (const v of values) h.record(v);
        const all = h.percentiles();
        expect([all.p50, all.p90, all.p95, all.p99, all.p999]).toEqual(
          [50, 90, 95, 99, 99.9].map((p) => h.percentile(p)),
        );
      }),
      { numRuns: 100 },
    );
  });

  it('changes nothing when an encoding is cut short or corrupt', () => {
    const target = new LatencyHistogram();
    target.record(5);
    const source = new LatencyHistogram();
    for (let ms = 1; ms <= 200; ms++) source.record(ms);
    const bytes = Buffer.from(source.encode(), 'base64');
    const cut = bytes.subarray(0, bytes.length - 3);
    const corrupt = Buffer.from(bytes);
    corrupt.fill(0xff, 44); // words that never end
    for (const bad of [cut, corrupt]) {
      expect(() => target.addEncoded(bad.toString('base64'))).toThrow(/HdrHistogram/);
      expect(target.count).toBe(1);
      expect(target.percentile(100)).toBeCloseTo(5, 2);
    }
  });

  it('encodes what it holds after every kind of change (the encoding is cached)', () => {
    const h = new LatencyHistogram();
    const other = new LatencyHistogram();
    other.record(3);
    const counts: number[] = [];
    const seen = () => counts.push(LatencyHistogram.decode(h.encode()).count);
    seen();
    h.record(1);
    seen();
    seen();
    h.merge(other);
    seen();
    h.addEncoded(other.encode());
    seen();
    h.subtract(other);
    seen();
    h.reset();
    seen();
    expect(counts).toEqual([0, 1, 1, 2, 3, 2, 0]);
  });
});

describe('SPEC_SLOS', () => {
  it('holds the spec targets, e.g. JTBD 1 P99 <= 45 ms with a 60 ms critical alert', () => {
    expect(SPEC_SLOS.find((s) => s.id === 'receipt-latency-p99')).toMatchObject({
      sli: { kind: 'latency', percentile: 99, thresholdMs: 45 },
      objective: 0.99,
      alert: { severity: 'critical', threshold: 60 },
    });
  });

  it('gives the queue wait line the JTBD 5 table\'s severity: "P99 queue wait > 1 second | WARNING"', () => {
    expect(SPEC_SLOS.find((s) => s.id === 'queue-wait-p99')?.alert).toEqual({
      severity: 'warning',
      threshold: 1000,
      action: 'Check handler performance',
    });
    const rule = generatedAlerts(SPEC_SLOS).find(
      (a) => a.sloId === 'queue-wait-p99' && a.alert === 'UnrdfSloThreshold',
    );
    expect(rule?.labels.severity).toBe('warning');
  });
});
