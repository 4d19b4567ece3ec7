import { z } from 'zod';
import { INDICATOR_NAMES, type IndicatorName } from './indicators.js';
import { parseOptions } from './internal/parse.js';

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
  windowDays: z.number().int().positive(),
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
    alert: { severity: 'critical', threshold: 1000, action: 'High latency variance' },
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
