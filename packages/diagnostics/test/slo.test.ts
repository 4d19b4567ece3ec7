import { writeFileSync } from 'node:fs';
import { tempDir } from '@unrdf/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createMetrics,
  evaluateSlos,
  generatedAlerts,
  type IndicatorData,
  LatencyHistogram,
  parseSloDefinitions,
  prometheusRules,
  type SloDefinition,
  SPEC_SLOS,
} from '../src/index.js';
import { ensurePromtool, promtool } from './support/promtool.js';

beforeAll(() => ensurePromtool(), 300_000);

const slo = (id: string): SloDefinition => {
  const found = SPEC_SLOS.find((s) => s.id === id);
  if (!found) throw new Error(id);
  return found;
};

/** Same counts in every window (a steady state), failures `bad` out of `total`. */
function steady(total: number, bad: number, thresholdsMs: number[] = [], good?: number[]): IndicatorData {
  const counts = { total, failures: bad, good: good ?? thresholdsMs.map(() => total - bad) };
  return {
    thresholdsMs,
    windows: { '5m': counts, '30m': counts, '1h': counts, '6h': counts, '3d': counts, '30d': counts },
    recent: undefined,
  };
}

describe('evaluateSlos', () => {
  it('says unknown, never 100%, when there is no data', () => {
    const [status] = evaluateSlos([slo('receipt-success')], {});
    expect(status).toMatchObject({ status: 'unknown', compliance: null, errorBudgetRemaining: null, current: null });
    const [empty] = evaluateSlos([slo('receipt-success')], { receipt: steady(0, 0) });
    expect(empty?.status).toBe('unknown');
  });

  it('computes compliance, budget left and burn rates of a success SLO', () => {
    // 99.98% success against 99.95%: 40% of the budget spent.
    const [s] = evaluateSlos([slo('receipt-success')], { receipt: steady(100_000, 20) });
    expect(s?.status).toBe('met');
    expect(s?.compliance).toBeCloseTo(0.9998, 6);
    expect(s?.errorBudgetRemaining).toBeCloseTo(0.6, 6);
    expect(s?.burnRates['1h']).toBeCloseTo(0.4, 6);
    expect(s?.alerts.every((a) => !a.firing)).toBe(true);
  });

  it('pages on a fast burn in both windows, and reports the violation', () => {
    const [s] = evaluateSlos([slo('receipt-success')], { receipt: steady(10_000, 100) }); // 1% errors: burn 20
    expect(s?.status).toBe('violated');
    expect(s?.alerts.filter((a) => a.firing).map((a) => `${a.severity}:${a.longWindow}`)).toEqual([
      'page:1h',
      'page:6h',
      'ticket:3d',
    ]);
    expect(s?.thresholdAlert).toMatchObject({ severity: 'critical', threshold: 0.999, firing: true });
  });

  it('does not page for a single error at low traffic', () => {
    const [s] = evaluateSlos([slo('receipt-success')], { receipt: steady(20, 1) }); // burn 100, but one event
    expect(s?.burnRates['1h']).toBeCloseTo(100, 6);
    expect(s?.alerts.some((a) => a.firing)).toBe(false);
    expect(s?.thresholdAlert?.firing).toBe(false);
  });

  it('does not page when only the long window burns (the short window says it is over)', () => {
    const data = steady(10_000, 100);
    const calm = { total: 1000, failures: 0, good: [] };
    const [s] = evaluateSlos([slo('receipt-success')], {
      receipt: { ...data, windows: { ...data.windows, '5m': calm, '30m': calm } },
    });
    expect(s?.alerts.find((a) => a.longWindow === '1h')?.firing).toBe(false);
  });

  it('evaluates latency SLOs as good events under the threshold, with the current percentile from HDR', () => {
    const recent = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) recent.record(i / 10); // 0.1 .. 100 ms
    const data: IndicatorData = { ...steady(1000, 0, [15, 45], [150, 450]), recent };
    const [p99, p95] = evaluateSlos([slo('receipt-latency-p99'), slo('receipt-latency-p95')], { receipt: data });
    expect(p99?.compliance).toBeCloseTo(0.45, 6);
    expect(p99?.status).toBe('violated');
    expect(p99?.current?.value).toBeCloseTo(99, 0);
    expect(p99?.thresholdAlert?.firing).toBe(true); // p99 99 ms > 60 ms
    expect(p95?.compliance).toBeCloseTo(0.15, 6);
  });

  it('does not judge a p99 from too few samples', () => {
    const recent = new LatencyHistogram();
    for (let i = 0; i < 10; i++) recent.record(500);
    const [s] = evaluateSlos([slo('receipt-latency-p99')], { receipt: { ...steady(10, 0, [15, 45], [0, 0]), recent } });
    expect(s?.thresholdAlert?.firing).toBeNull();
    expect(s?.notes[0]).toMatch(/too few for a p99/);
  });

  it('measures throughput over the time the 5-minute window really covers', () => {
    const start = Date.UTC(2026, 0, 1); // a minute boundary
    let now = start;
    const metrics = createMetrics({ clock: () => now });
    // A steady 40 ops/s (above the 33 ops/s target) for 10 minutes.
    for (let t = 0; t < 600_000; t += 25) {
      now = start + t;
      metrics.observe('operation', { durationMs: 1, ok: true });
    }
    // Half a second into the next minute the window holds 4 full minutes and 0.5 s, not 300 s.
    now = start + 600_500;
    const op = metrics.snapshot().indicators.operation;
    expect(op?.windows['5m']).toMatchObject({ total: 9600, spanMs: 240_500 });
    const [s] = evaluateSlos([slo('operation-throughput')], {
      operation: { thresholdsMs: op?.thresholdsMs ?? [], windows: op?.windows ?? {}, recent: undefined },
    });
    expect(s?.current?.value).toBeCloseTo(9600 / 240.5, 6);
    expect(s?.status).toBe('met');
  });
});

describe('parseSloDefinitions', () => {
  it('rejects bad SLOs with path: message lines', () => {
    expect(() =>
      parseSloDefinitions([
        { id: 'x', jtbd: 9, title: 't', indicator: 'nope', sli: { kind: 'success' }, objective: 2, windowDays: 30 },
      ]),
    ).toThrow(/0\.jtbd: .*\n.*0\.indicator: /s);
  });
});

describe('prometheusRules', () => {
  it('passes promtool check rules for every spec SLO', async () => {
    await using dir = await tempDir('diag-rules');
    writeFileSync(dir.join('rules.yml'), prometheusRules(SPEC_SLOS));
    const result = promtool(['check', 'rules', dir.join('rules.yml')]);
    expect(result.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  it('fires and stays quiet as evaluateSlos does, on synthetic series (promtool test rules)', async () => {
    await using dir = await tempDir('diag-rules');
    const slos = [slo('receipt-success'), slo('receipt-latency-p99'), slo('verification-success')];
    writeFileSync(dir.join('rules.yml'), prometheusRules(slos));
    const expected = (sloId: string, alert: string, longWindows: string[]) =>
      generatedAlerts(slos)
        .filter((a) => a.sloId === sloId && a.alert === alert && longWindows.includes(a.labels.long_window ?? ''))
        .map((a) => ({ exp_labels: a.labels, exp_annotations: a.annotations }));
    const tests = {
      rule_files: ['rules.yml'],
      evaluation_interval: '1m',
      tests: [
        {
          // 10% of receipts fail for 2 hours: both page pairs fire, as does the ticket.
          interval: '1m',
          input_series: [
            { series: 'unrdf_receipts_total{outcome="success"}', values: '0+90x120' },
            { series: 'unrdf_receipts_total{outcome="failure"}', values: '0+10x120' },
          ],
          alert_rule_test: [
            {
              eval_time: '60m',
              alertname: 'UnrdfSloBurnRatePage',
              exp_alerts: expected('receipt-success', 'UnrdfSloBurnRatePage', ['1h', '6h']),
            },
            {
              eval_time: '60m',
              alertname: 'UnrdfSloBurnRateTicket',
              exp_alerts: expected('receipt-success', 'UnrdfSloBurnRateTicket', ['3d']),
            },
            {
              eval_time: '60m',
              alertname: 'UnrdfSloThreshold',
              exp_alerts: generatedAlerts(slos)
                .filter((a) => a.sloId === 'receipt-success' && a.alert === 'UnrdfSloThreshold')
                .map((a) => ({ exp_labels: a.labels, exp_annotations: a.annotations })),
            },
          ],
          promql_expr_test: [
            {
              expr: 'unrdf_slo:error_ratio:rate5m{slo_id="receipt-success"}',
              eval_time: '30m',
              exp_samples: [{ labels: 'unrdf_slo:error_ratio:rate5m{slo_id="receipt-success"}', value: 0.1 }],
            },
          ],
        },
        {
          // One verification fails at minute 30 at 1 op/min: a huge ratio (1/34 by PromQL's
          // extrapolated rates, 34x the budget), one event: nobody is paged.
          interval: '1m',
          input_series: [
            { series: 'unrdf_verifications_total{outcome="success"}', values: '0+1x120' },
            { series: 'unrdf_verifications_total{outcome="failure"}', values: '0x30 1x90' },
          ],
          alert_rule_test: [
            { eval_time: '33m', alertname: 'UnrdfSloBurnRatePage', exp_alerts: [] },
            { eval_time: '33m', alertname: 'UnrdfSloThreshold', exp_alerts: [] },
          ],
          promql_expr_test: [
            {
              expr: 'unrdf_slo:error_ratio:rate1h{slo_id="verification-success"} > 0.0144',
              eval_time: '33m',
              exp_samples: [{ labels: 'unrdf_slo:error_ratio:rate1h{slo_id="verification-success"}', value: 1 / 34 }],
            },
          ],
        },
        {
          // Elections at minutes 10 and 40 on one node: two failovers within the hour.
          interval: '1m',
          input_series: [
            { series: 'unrdf_raft_term{instance="n1"}', values: '3x9 4x30 5x80' },
            { series: 'unrdf_raft_has_leader{instance="n1"}', values: '1x60 0x10 1x50' },
            { series: 'unrdf_raft_has_leader{instance="n2"}', values: '1x60 0x10 1x50' },
          ],
          alert_rule_test: [
            { eval_time: '30m', alertname: 'UnrdfRepeatedFailovers', exp_alerts: [] },
            {
              eval_time: '45m',
              alertname: 'UnrdfRepeatedFailovers',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical' },
                  exp_annotations: {
                    summary: 'More than one leader election in the last hour',
                    action: 'Check infrastructure health',
                  },
                },
              ],
            },
            { eval_time: '61m', alertname: 'UnrdfNoLeader', exp_alerts: [] },
            {
              eval_time: '65m',
              alertname: 'UnrdfNoLeader',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical' },
                  exp_annotations: {
                    summary: 'No node of the cluster knows a leader',
                    action: 'Check ledger health + network',
                  },
                },
              ],
            },
          ],
        },
        {
          // Half the receipts take longer than 45 ms, p99 above 60 ms: the latency SLO pages.
          interval: '1m',
          input_series: [
            { series: 'unrdf_receipt_duration_seconds_bucket{outcome="success",le="0.045"}', values: '0+50x120' },
            { series: 'unrdf_receipt_duration_seconds_bucket{outcome="success",le="0.06"}', values: '0+60x120' },
            { series: 'unrdf_receipt_duration_seconds_bucket{outcome="success",le="0.1"}', values: '0+100x120' },
            { series: 'unrdf_receipt_duration_seconds_bucket{outcome="success",le="+Inf"}', values: '0+100x120' },
            { series: 'unrdf_receipt_duration_seconds_count{outcome="success"}', values: '0+100x120' },
          ],
          alert_rule_test: [
            {
              eval_time: '60m',
              alertname: 'UnrdfSloBurnRatePage',
              exp_alerts: expected('receipt-latency-p99', 'UnrdfSloBurnRatePage', ['1h', '6h']),
            },
            {
              eval_time: '60m',
              alertname: 'UnrdfSloThreshold',
              exp_alerts: generatedAlerts(slos)
                .filter((a) => a.sloId === 'receipt-latency-p99' && a.alert === 'UnrdfSloThreshold')
                .map((a) => ({ exp_labels: a.labels, exp_annotations: a.annotations })),
            },
          ],
        },
      ],
    };
    writeFileSync(dir.join('tests.yml'), JSON.stringify(tests, null, 2)); // JSON is YAML
    const result = promtool(['test', 'rules', dir.join('tests.yml')]);
    expect(result.output).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });
});
