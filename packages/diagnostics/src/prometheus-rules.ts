import { counterName, histogramName, SLI_WINDOWS, type SliWindow } from './indicators.js';
import { type BurnRatePolicy, DEFAULT_BURN_RATE_POLICIES, DEFAULT_MIN_BAD_EVENTS, type SloDefinition } from './slo.js';

/** Burn-rate policies and the low-traffic guard, as given to `evaluateSlos`, and the rule group name. */
export interface PrometheusRulesOptions {
  readonly policies?: readonly BurnRatePolicy[];
  readonly minBadEvents?: number;
  readonly groupName?: string;
}

/** One alerting rule as generated (for tests that assert what fires). */
export interface GeneratedAlert {
  readonly alert: string;
  readonly sloId: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

// The le label value OTel's Prometheus exporter writes: String(boundary), e.g. 0.045, 120.
const le = (thresholdMs: number) => String(thresholdMs / 1000);
const windows = (policies: readonly BurnRatePolicy[]) =>
  [...new Set(policies.flatMap((p) => [p.shortWindow, p.longWindow]))].sort((a, b) => SLI_WINDOWS[a] - SLI_WINDOWS[b]);

/** PromQL for the bad and total event rates of an SLO over a window, mirroring `evaluateSlos`. */
function sliExpressions(slo: SloDefinition, window: SliWindow, fn: 'rate' | 'increase') {
  if (slo.sli.kind === 'latency') {
    const h = histogramName(slo.indicator);
    // A failed event is never good, however fast: only outcome="success" buckets count.
    const good = `sum(${fn}(${h}_bucket{outcome="success",le="${le(slo.sli.thresholdMs)}"}[${window}]))`;
    const total = `sum(${fn}(${h}_count[${window}]))`;
    return { bad: `(${total} - ${good})`, total };
  }
  const c = counterName(slo.indicator);
  return { bad: `sum(${fn}(${c}{outcome="failure"}[${window}]))`, total: `sum(${fn}(${c}[${window}]))` };
}

const q = (s: string) => JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar

/** The alerts `prometheusRules` generates, with their labels and annotations. */
export function generatedAlerts(
  slos: readonly SloDefinition[],
  options: PrometheusRulesOptions = {},
): GeneratedAlert[] {
  const policies = options.policies ?? DEFAULT_BURN_RATE_POLICIES;
  const out: GeneratedAlert[] = [];
  for (const slo of slos) {
    if (slo.sli.kind !== 'throughput') {
      for (const p of policies) {
        out.push({
          alert: p.severity === 'page' ? 'UnrdfSloBurnRatePage' : 'UnrdfSloBurnRateTicket',
          sloId: slo.id,
          labels: { severity: p.severity, slo_id: slo.id, long_window: p.longWindow, short_window: p.shortWindow },
          annotations: {
            summary: `${slo.title}: error budget burning at >= ${p.burnRate}x over ${p.longWindow} and ${p.shortWindow}`,
          },
        });
      }
    }
    if (slo.alert) {
      out.push({
        alert: 'UnrdfSloThreshold',
        sloId: slo.id,
        labels: { severity: slo.alert.severity, slo_id: slo.id },
        annotations: { summary: `${slo.title}: spec alert line crossed`, action: slo.alert.action },
      });
    }
  }
  return out;
}

/**
 * Prometheus recording and alerting rules equivalent to `evaluateSlos`: error
 * ratios per window (`unrdf_slo:error_ratio:rate<window>`), bad-event counts for the
 * low-traffic guard, multi-window multi-burn-rate alerts (SRE workbook, table 5-8)
 * and the spec's fixed alert lines. Check with `promtool check rules`. A latency rule
 * reads the `le="<threshold>"` bucket: give `createMetrics` the same SLOs, which makes
 * every threshold a bucket boundary of its histogram.
 */
export function prometheusRules(slos: readonly SloDefinition[], options: PrometheusRulesOptions = {}): string {
  const policies = options.policies ?? DEFAULT_BURN_RATE_POLICIES;
  const minBad = options.minBadEvents ?? DEFAULT_MIN_BAD_EVENTS;
  const alerts = generatedAlerts(slos, options);
  const lines = ['groups:', `  - name: ${q(options.groupName ?? 'unrdf-slos')}`, '    rules:'];
  const rule = (fields: [string, string][], labels?: Record<string, string>, annotations?: Record<string, string>) => {
    for (const [i, [k, v]] of fields.entries()) lines.push(`${i === 0 ? '      - ' : '        '}${k}: ${v}`);
    if (labels) {
      lines.push('        labels:');
      for (const [k, v] of Object.entries(labels)) lines.push(`          ${k}: ${q(v)}`);
    }
    if (annotations) {
      lines.push('        annotations:');
      for (const [k, v] of Object.entries(annotations)) lines.push(`          ${k}: ${q(v)}`);
    }
  };
  for (const slo of slos) {
    if (slo.sli.kind === 'throughput') continue;
    for (const w of windows(policies)) {
      const { bad, total } = sliExpressions(slo, w, 'rate');
      rule(
        [
          ['record', `unrdf_slo:error_ratio:rate${w}`],
          ['expr', q(`${bad} / ${total}`)],
        ],
        { slo_id: slo.id },
      );
    }
    for (const w of new Set(policies.map((p) => p.longWindow))) {
      rule(
        [
          ['record', `unrdf_slo:bad_events:increase${w}`],
          ['expr', q(sliExpressions(slo, w, 'increase').bad)],
        ],
        {
          slo_id: slo.id,
        },
      );
    }
  }
  for (const a of alerts) {
    const slo = slos.find((s) => s.id === a.sloId);
    if (!slo) continue;
    const sel = `{slo_id="${slo.id}"}`;
    if (a.alert !== 'UnrdfSloThreshold') {
      const p = policies.find((x) => x.longWindow === a.labels.long_window && x.shortWindow === a.labels.short_window);
      if (!p) continue;
      const limit = p.burnRate * (1 - slo.objective);
      const expr =
        `unrdf_slo:error_ratio:rate${p.longWindow}${sel} > ${limit}` +
        ` and unrdf_slo:error_ratio:rate${p.shortWindow}${sel} > ${limit}` +
        ` and unrdf_slo:bad_events:increase${p.longWindow}${sel} >= ${minBad}`;
      rule(
        [
          ['alert', a.alert],
          ['expr', q(expr)],
        ],
        a.labels,
        a.annotations,
      );
      continue;
    }
    if (!slo.alert) continue;
    let expr: string;
    if (slo.sli.kind === 'latency') {
      const h = histogramName(slo.indicator);
      expr = `histogram_quantile(${slo.sli.percentile / 100}, sum by (le) (rate(${h}_bucket[5m]))) > ${slo.alert.threshold / 1000}`;
    } else if (slo.sli.kind === 'success') {
      const { bad, total } = sliExpressions(slo, '5m', 'rate');
      expr = `(1 - ${bad} / ${total}) < ${slo.alert.threshold} and ${sliExpressions(slo, '5m', 'increase').bad} >= ${minBad}`;
    } else {
      // Passive throughput: no traffic is no demand, not an outage.
      const rate = `sum(rate(${counterName(slo.indicator)}[5m]))`;
      expr = `${rate} < ${slo.alert.threshold} and ${rate} > 0`;
    }
    rule(
      [
        ['alert', a.alert],
        ['expr', q(expr)],
        ['for', '5m'],
      ],
      a.labels,
      a.annotations,
    );
  }
  // Consensus health, from the gauges createMetrics exports (JTBD 3's alert table).
  rule(
    [
      ['alert', 'UnrdfNoLeader'],
      ['expr', q('max(unrdf_raft_has_leader) == 0')],
      ['for', '1m'],
    ],
    { severity: 'critical' },
    { summary: 'No node of the cluster knows a leader', action: 'Check ledger health + network' },
  );
  rule(
    [
      ['alert', 'UnrdfRepeatedFailovers'],
      // Each new term is an election; more than one in an hour is the spec's "multiple failovers".
      ['expr', q('max(changes(unrdf_raft_term[1h])) > 1')],
    ],
    { severity: 'critical' },
    { summary: 'More than one leader election in the last hour', action: 'Check infrastructure health' },
  );
  return `${lines.join('\n')}\n`;
}
