import { z } from 'zod';
import { INDICATOR_NAMES, type IndicatorName, SLI_WINDOWS, type SliWindow } from './indicators.js';
import { parseOptions } from './internal/parse.js';
import type { LatencyHistogram } from './latency-histogram.js';
import type { SliCounts } from './metrics.js';

const Indicator = z.enum(INDICATOR_NAMES as [IndicatorName, ...IndicatorName[]]);

/** A fixed alert from the spec's "Alert Threshold" tables: the SLI's current value crossing a line. */
const ThresholdAlertSchema = z.object({
  severity: z.enum(['critical', 'warning']),
  /** In the SLO's unit: ms for latency, a fraction for success, ops/s for throughput. */
  threshold: z.number().nonnegative(),
  action: z.string(),
});

/**
 * One SLO as data. Latency SLOs are event-based ("p99 <= 45 ms" = 99% of events take
 * <= 45 ms), so they have an error budget like success-rate SLOs (SRE workbook ch. 2).
 */
export const SloDefinitionSchema = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  jtbd: z.number().int().min(1).max(6),
  title: z.string(),
  indicator: Indicator,
  sli: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('latency'), percentile: z.number().gt(0).lt(100), thresholdMs: z.number().positive() }),
    z.object({ kind: z.literal('success') }),
    z.object({ kind: z.literal('throughput'), minPerSecond: z.number().positive() }),
  ]),
  /** Fraction of good events over the window (latency: percentile/100). Unused for throughput. */
  objective: z.number().gt(0).lt(1),
  /** The compliance window; 30 days, as the spec measures. */
  windowDays: z.literal(30),
  alert: ThresholdAlertSchema.optional(),
});
export type SloDefinition = z.infer<typeof SloDefinitionSchema>;
export type SloDefinitionInput = z.input<typeof SloDefinitionSchema>;

/** Parses SLO definitions (e.g. loaded from a config file). @throws InvalidOptionsError with `path: message` lines. */
export function parseSloDefinitions(input: unknown): SloDefinition[] {
  const list = parseOptions(z.array(SloDefinitionSchema), input, 'SLO definitions');
  const ids = list.map((s) => s.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) parseOptions(z.never(), dup, `SLO definitions (duplicate id ${dup})`);
  return list;
}

/**
 * The SLOs of ../shared/SLO-SPEC.md the daemon can observe in itself, with the
 * spec's targets and its "Alert Threshold" rows. JTBD 6 (deployment) is measured by
 * CI, not the daemon, so it is not here.
 */
export const SPEC_SLOS: readonly SloDefinition[] = parseSloDefinitions([
  // JTBD 1: Receipt Generation Latency
  {
    id: 'receipt-latency-p99',
    jtbd: 1,
    title: 'P99 receipt latency <= 45 ms',
    indicator: 'receipt',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 45 },
    objective: 0.99,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 60, action: 'Page on-call immediately' },
  },
  {
    id: 'receipt-latency-p95',
    jtbd: 1,
    title: 'P95 receipt latency <= 15 ms',
    indicator: 'receipt',
    sli: { kind: 'latency', percentile: 95, thresholdMs: 15 },
    objective: 0.95,
    windowDays: 30,
    alert: { severity: 'warning', threshold: 30, action: 'Investigate within 1 hour' },
  },
  {
    id: 'receipt-success',
    jtbd: 1,
    title: 'Receipt generation success >= 99.95%',
    indicator: 'receipt',
    sli: { kind: 'success' },
    objective: 0.9995,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 0.999, action: 'Stop deployments, investigate root cause' },
  },
  // JTBD 2: Verification Latency
  {
    id: 'verification-latency-p99',
    jtbd: 2,
    title: 'P99 verification latency <= 120 s',
    indicator: 'verification',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 120_000 },
    objective: 0.99,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 150_000, action: 'Check ledger health + network' },
  },
  {
    id: 'verification-success',
    jtbd: 2,
    title: 'Verification success >= 99.9%',
    indicator: 'verification',
    sli: { kind: 'success' },
    objective: 0.999,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 0.995, action: 'Stop accepting new operations' },
  },
  // JTBD 3: Failover Recovery Time
  {
    id: 'failover-recovery',
    jtbd: 3,
    title: 'Full failover recovery <= 45 s',
    indicator: 'failover',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 45_000 },
    objective: 0.99,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 60_000, action: 'Investigate root cause' },
  },
  {
    id: 'failover-success',
    jtbd: 3,
    title: 'Failover success >= 99.99%',
    indicator: 'failover',
    sli: { kind: 'success' },
    objective: 0.9999,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 0.9995, action: 'Audit Raft implementation' },
  },
  // JTBD 4: Diagnostic Latency
  {
    id: 'health-check-latency',
    jtbd: 4,
    title: 'Health check response <= 50 ms',
    indicator: 'health_check',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 50 },
    objective: 0.99,
    windowDays: 30,
    alert: { severity: 'warning', threshold: 200, action: 'Check node load + network' },
  },
  {
    id: 'diagnostic-report-latency',
    jtbd: 4,
    title: 'Full diagnostic report <= 30 s',
    indicator: 'diagnostic_report',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 30_000 },
    objective: 0.99,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 60_000, action: 'Investigate slowness' },
  },
  {
    id: 'log-aggregation-latency',
    jtbd: 4,
    title: 'Log aggregation <= 45 s',
    indicator: 'log_aggregation',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 45_000 },
    objective: 0.99,
    windowDays: 30,
  },
  // JTBD 5: Throughput Under Concurrency
  {
    id: 'operation-throughput',
    jtbd: 5,
    title: 'Sustained throughput >= 33 ops/s',
    indicator: 'operation',
    sli: { kind: 'throughput', minPerSecond: 33 },
    objective: 0.99,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 25, action: 'Batch jobs run slow' },
  },
  {
    id: 'queue-wait-p99',
    jtbd: 5,
    title: 'P99 queue wait <= 500 ms',
    indicator: 'queue_wait',
    sli: { kind: 'latency', percentile: 99, thresholdMs: 500 },
    objective: 0.99,
    windowDays: 30,
    // The JTBD 5 alert table: "P99 queue wait > 1 second | WARNING | Check handler performance".
    alert: { severity: 'warning', threshold: 1000, action: 'Check handler performance' },
  },
  {
    id: 'operation-success',
    jtbd: 5,
    title: 'Operation failure rate < 0.5%',
    indicator: 'operation',
    sli: { kind: 'success' },
    objective: 0.995,
    windowDays: 30,
    alert: { severity: 'critical', threshold: 0.99, action: 'Unreliable batch processing' },
  },
]);

/**
 * A multi-window burn-rate alert (Google SRE workbook, "Alerting on SLOs", table 5-8):
 * fires when both the long and the short window burn the budget at least `burnRate`
 * times faster than sustainable; the short window makes it reset quickly once fixed.
 */
export interface BurnRatePolicy {
  readonly severity: 'page' | 'ticket';
  readonly longWindow: SliWindow;
  readonly shortWindow: SliWindow;
  readonly burnRate: number;
}

/** 2% of a 30-day budget in 1 h, 5% in 6 h (page); 10% in 3 days (ticket). */
export const DEFAULT_BURN_RATE_POLICIES: readonly BurnRatePolicy[] = [
  { severity: 'page', longWindow: '1h', shortWindow: '5m', burnRate: 14.4 },
  { severity: 'page', longWindow: '6h', shortWindow: '30m', burnRate: 6 },
  { severity: 'ticket', longWindow: '3d', shortWindow: '6h', burnRate: 1 },
];

/**
 * A burn-rate alert also needs this many bad events in its long window: at low
 * traffic one error is a huge error *ratio*, and nobody should be paged for it
 * (the workbook's low-traffic caveat).
 */
export const DEFAULT_MIN_BAD_EVENTS = 5;

/**
 * Counts of one window as merged across nodes. `thresholdTotals[i]`, when present, is
 * the total of the nodes that count `thresholdsMs[i]` (nodes configured with other
 * SLOs count other thresholds); `total` is every node's.
 */
export interface MergedSliCounts extends SliCounts {
  readonly thresholdTotals?: readonly number[];
}

/** The merged data one indicator offers SLO evaluation. */
export interface IndicatorData {
  readonly thresholdsMs: readonly number[];
  readonly windows: Partial<Record<SliWindow, MergedSliCounts>>;
  /** Last-5-minutes HDR histogram (for current percentile values). */
  readonly recent: LatencyHistogram | undefined;
}

const BurnAlertSchema = z.object({
  severity: z.enum(['page', 'ticket']),
  longWindow: z.string(),
  shortWindow: z.string(),
  burnRate: z.number(),
  longBurn: z.number().nullable(),
  shortBurn: z.number().nullable(),
  badEventsInLongWindow: z.number(),
  firing: z.boolean(),
});

/** Where one SLO stands. `unknown` means no data: never reported as 100%. */
export const SloStatusSchema = z.object({
  id: z.string(),
  jtbd: z.number(),
  title: z.string(),
  status: z.enum(['met', 'at_risk', 'violated', 'unknown']),
  objective: z.number(),
  current: z.object({ value: z.number(), unit: z.enum(['ms', 'ratio', 'ops/s']), events: z.number() }).nullable(),
  compliance: z.number().nullable(),
  windowEvents: z.number(),
  errorBudgetRemaining: z.number().nullable(),
  burnRates: z.record(z.string(), z.number().nullable()),
  alerts: z.array(BurnAlertSchema),
  thresholdAlert: z
    .object({
      severity: z.enum(['critical', 'warning']),
      threshold: z.number(),
      action: z.string(),
      firing: z.boolean().nullable(),
    })
    .nullable(),
  notes: z.array(z.string()),
});

export type SloStatus = z.infer<typeof SloStatusSchema>;
export type BurnRateAlertState = z.infer<typeof BurnAlertSchema>;

export interface EvaluateSlosOptions {
  readonly policies?: readonly BurnRatePolicy[];
  readonly minBadEvents?: number;
}

/** Events counted good/bad for one SLO over one window, or undefined without the counts. */
function goodBad(slo: SloDefinition, data: IndicatorData, window: SliWindow) {
  const counts = data.windows[window];
  if (!counts) return undefined;
  if (slo.sli.kind === 'latency') {
    const i = data.thresholdsMs.indexOf(slo.sli.thresholdMs);
    if (i < 0) return undefined;
    const good = counts.good[i] ?? 0;
    const total = counts.thresholdTotals?.[i] ?? counts.total;
    return { total, bad: total - good };
  }
  return { total: counts.total, bad: counts.failures };
}

/**
 * Evaluates SLOs from merged per-window counts: current value, compliance over the
 * window, error budget left, multi-window burn-rate alerts and the spec's fixed
 * alert. No events means `unknown`, never "100%".
 */
export function evaluateSlos(
  slos: readonly SloDefinition[],
  indicators: Partial<Record<IndicatorName, IndicatorData>>,
  options: EvaluateSlosOptions = {},
): SloStatus[] {
  const policies = options.policies ?? DEFAULT_BURN_RATE_POLICIES;
  const minBadEvents = options.minBadEvents ?? DEFAULT_MIN_BAD_EVENTS;
  return slos.map((slo) => {
    const data = indicators[slo.indicator];
    const notes: string[] = [];
    const fixed = slo.alert ? { ...slo.alert, firing: null as boolean | null } : null;
    const windowName = windowForDays(slo.windowDays);
    const base = { id: slo.id, jtbd: slo.jtbd, title: slo.title, objective: slo.objective };
    const unknown = (why: string): SloStatus => ({
      ...base,
      status: 'unknown',
      current: null,
      compliance: null,
      windowEvents: 0,
      errorBudgetRemaining: null,
      burnRates: {},
      alerts: [],
      thresholdAlert: fixed,
      notes: [why],
    });
    if (!data) return unknown('no data: the indicator has no events');

    if (slo.sli.kind === 'throughput') {
      const recent = data.windows['5m'];
      if (!recent || recent.total === 0) return unknown('no operations in the last 5 minutes');
      // Over the time the counts really cover (see SliCounts.spanMs; at least 1 s, so a
      // node that just started reports no absurd rate), else the nominal 5 minutes.
      const perSecond = recent.total / Math.max(1, (recent.spanMs ?? SLI_WINDOWS['5m'] * 60_000) / 1000);
      const below = perSecond < slo.sli.minPerSecond;
      if (fixed) fixed.firing = perSecond < fixed.threshold;
      return {
        ...base,
        status: below ? 'at_risk' : 'met',
        current: { value: perSecond, unit: 'ops/s', events: recent.total },
        compliance: null,
        windowEvents: recent.total,
        errorBudgetRemaining: null,
        burnRates: {},
        alerts: [],
        thresholdAlert: fixed,
        notes: ['throughput is measured passively: below target can mean low demand rather than low capacity'],
      };
    }

    const whole = goodBad(slo, data, windowName);
    if (!whole) return unknown(`no counts for threshold ${JSON.stringify(slo.sli)}`);
    if (whole.total === 0) return unknown('no events in the SLO window');
    const budget = 1 - slo.objective;
    const burn = (w: SliWindow) => {
      const gb = goodBad(slo, data, w);
      return gb && gb.total > 0 ? gb.bad / gb.total / budget : null;
    };
    const burnRates: Partial<Record<SliWindow, number | null>> = {};
    for (const w of new Set(policies.flatMap((p) => [p.longWindow, p.shortWindow]))) burnRates[w] = burn(w);
    const alerts = policies.map((p) => {
      const longBurn = burn(p.longWindow);
      const shortBurn = burn(p.shortWindow);
      const bad = goodBad(slo, data, p.longWindow)?.bad ?? 0;
      const firing =
        longBurn !== null &&
        shortBurn !== null &&
        longBurn >= p.burnRate &&
        shortBurn >= p.burnRate &&
        bad >= minBadEvents;
      return { ...p, longBurn, shortBurn, badEventsInLongWindow: bad, firing };
    });

    // Current value over the last 5 minutes.
    let current: SloStatus['current'] = null;
    const recentCounts = goodBad(slo, data, '5m');
    if (slo.sli.kind === 'latency' && data.recent && data.recent.count > 0) {
      current = { value: data.recent.percentile(slo.sli.percentile), unit: 'ms', events: data.recent.count };
      // A percentile needs enough samples to mean anything: p99 needs 100.
      const enough = data.recent.count >= Math.ceil(100 / (100 - slo.sli.percentile));
      if (fixed) fixed.firing = enough ? current.value > fixed.threshold : null;
      if (!enough) notes.push(`only ${data.recent.count} events in 5 minutes: too few for a p${slo.sli.percentile}`);
    } else if (slo.sli.kind === 'success' && recentCounts && recentCounts.total > 0) {
      current = { value: 1 - recentCounts.bad / recentCounts.total, unit: 'ratio', events: recentCounts.total };
      if (fixed) fixed.firing = current.value < fixed.threshold && recentCounts.bad >= minBadEvents;
    }

    const compliance = 1 - whole.bad / whole.total;
    const errorBudgetRemaining = 1 - whole.bad / (budget * whole.total);
    const status: SloStatus['status'] =
      compliance < slo.objective ? 'violated' : alerts.some((a) => a.firing) || fixed?.firing ? 'at_risk' : 'met';
    notes.push(`window ${windowName} covers at most what the nodes kept (their uptime without sliDatabase)`);
    return {
      ...base,
      status,
      current,
      compliance,
      windowEvents: whole.total,
      errorBudgetRemaining,
      burnRates,
      alerts,
      thresholdAlert: fixed,
      notes,
    };
  });
}

function windowForDays(days: number): SliWindow {
  // Only the 30-day window is kept per minute; a shorter SLO window would need its own sums.
  if (days !== 30) throw new RangeError(`SLO windows other than 30 days are not supported (got ${days})`);
  return '30d';
}
