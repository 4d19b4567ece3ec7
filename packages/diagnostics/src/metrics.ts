import {
  type Attributes,
  type BatchObservableCallback,
  type Histogram,
  type Meter,
  type ObservableCounter,
  type ObservableGauge,
  metrics as otelMetrics,
} from '@opentelemetry/api';
import { z } from 'zod';
import { InvalidObservationError } from './errors.js';
import {
  counterName,
  histogramName,
  INDICATOR_NAMES,
  INDICATORS,
  type IndicatorName,
  SLI_WINDOW_NAMES,
  SLI_WINDOWS,
  type SliWindow,
} from './indicators.js';
import { flushOnExit } from './internal/exit-flush.js';
import { parseOptions } from './internal/parse.js';
import { openSliStore } from './internal/sli-store.js';
import { LatencyHistogram } from './latency-histogram.js';
import { type SloDefinition, SPEC_SLOS } from './slo.js';
import type { ConsensusView } from './snapshot.js';

/** Longest id, type, error type and error message an operation record keeps (longer ones are cut). */
export const OPERATION_RECORD_LIMITS = { id: 256, type: 128, errorType: 128, errorMessage: 1024 } as const;

/**
 * A string cut to `max` characters. `recordOperation` already cuts, so a node's own
 * records always fit; a reader still cuts rather than refuses, so one overlong
 * record (e.g. from an older node) never makes a whole node snapshot `invalid`.
 */
const cut = (max: number) => z.string().transform((text) => (text.length > max ? text.slice(0, max) : text));

/** One completed (or failed) operation, as kept for "last 100 operations and failures". */
export const OperationRecordSchema = z.object({
  id: cut(OPERATION_RECORD_LIMITS.id),
  type: cut(OPERATION_RECORD_LIMITS.type),
  ok: z.boolean(),
  durationMs: z.number().nonnegative(),
  finishedAt: z.number(),
  errorType: cut(OPERATION_RECORD_LIMITS.errorType).optional(),
  errorMessage: cut(OPERATION_RECORD_LIMITS.errorMessage).optional(),
  /**
   * Cancelled by a user: listed among the recent operations, but neither a success nor a
   * failure of the service (the `operation` indicator, failures and error types skip it).
   */
  cancelled: z.literal(true).optional(),
});
export type OperationRecord = z.infer<typeof OperationRecordSchema>;

/** Counts of one SLI over one window; `good[i]` counts events at or under `thresholdsMs[i]`. */
export const SliCountsSchema = z.object({
  total: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
  good: z.array(z.number().int().nonnegative()),
  /**
   * The time the counts really cover, ms: the window's full minutes before the current
   * one plus the elapsed part of the current minute, no more than the node has counted
   * for. Absent from nodes before 0.1.1 (then the window's nominal length).
   */
  spanMs: z.number().nonnegative().optional(),
});
export type SliCounts = z.infer<typeof SliCountsSchema>;

/** What a node's metrics contribute to a report: mergeable counts and HDR histograms. */
export const MetricsSnapshotSchema = z.object({
  takenAt: z.number(),
  indicators: z.record(
    z.string(),
    z.object({
      success: z.number().int().nonnegative(),
      failure: z.number().int().nonnegative(),
      /** HDR histogram since start: HdrHistogram V2 encoding, base64 (mergeable). */
      lifetime: z.string().max(1_000_000),
      /** HDR histogram of the last 5 minutes. */
      recent: z.string().max(1_000_000),
      thresholdsMs: z.array(z.number().positive()),
      windows: z.record(z.string(), SliCountsSchema),
    }),
  ),
  recentOperations: z.array(OperationRecordSchema).max(1000),
  recentFailures: z.array(OperationRecordSchema).max(1000),
  errorTypes: z
    .array(
      z.object({
        type: z.string(),
        count: z.number().int().nonnegative(),
        lastAt: z.number(),
        lastMessage: z.string(),
      }),
    )
    .max(1000),
});
export type MetricsSnapshot = z.infer<typeof MetricsSnapshotSchema>;

const MetricsOptionsSchema = z.object({
  /** An OTel meter (the app wires the SDK); defaults to the global API's, a no-op until an SDK is registered. */
  meter: z.custom<Meter>((v) => typeof v === 'object' && v !== null && 'createHistogram' in v).optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
  /** SLOs whose latency thresholds are counted exactly per minute. */
  slos: z.array(z.custom<SloDefinition>()).optional(),
  /** Operation types allowed as a label value; anything else is `other` (bounded cardinality). */
  operationTypes: z
    .array(z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/))
    .max(100)
    .optional(),
  /** Distinct error types tracked; later ones count as `other`. */
  maxErrorTypes: z.number().int().positive().max(1000).optional(),
  /** How many recent operations and failures are kept. */
  recentLimit: z.number().int().positive().max(1000).optional(),
  /** SQLite file keeping the per-minute SLI counts across restarts (the 30-day window); memory only when omitted. */
  sliDatabase: z.string().min(1).optional(),
  /** The consensus view, exported as gauges (etcd's `etcd_server_has_leader` and friends). */
  consensus: z.custom<() => ConsensusView | null>((v) => typeof v === 'function').optional(),
});
export type MetricsOptions = z.input<typeof MetricsOptionsSchema>;

export const DEFAULT_OPERATION_TYPES = ['create', 'update', 'delete', 'batch', 'sleep'];
export const DEFAULT_MAX_ERROR_TYPES = 50;
export const DEFAULT_RECENT_LIMIT = 100;
const RECENT_MINUTES = 5;
const MINUTE_MS = 60_000;

/** Observing one event of an indicator. */
export interface Observation {
  readonly durationMs: number;
  readonly ok: boolean;
  /** Extra low-cardinality labels (only `type` and `endpoint` are kept). */
  readonly type?: string;
  readonly endpoint?: 'livez' | 'readyz';
}

/** A node's metrics: OTel instruments for Prometheus plus HDR histograms and SLI counts for SLOs. */
export interface Metrics {
  /**
   * Records one event of `indicator`.
   * @throws InvalidObservationError when `durationMs` is not a finite number >= 0 (nothing is recorded).
   */
  observe(indicator: IndicatorName, observation: Observation): void;
  /**
   * Records an operation: the `operation` indicator, the recent lists and the error
   * summary; an operation with `cancelled: true` (and `ok: false`) only joins the recent
   * operations, since a user's cancel is no failure of the service. Strings longer than
   * OPERATION_RECORD_LIMITS are cut; the error type is kept to letters, digits and `_.:-`.
   * @throws InvalidObservationError on a bad duration or a field of the wrong type (nothing is recorded).
   */
  recordOperation(operation: Omit<OperationRecord, 'finishedAt'> & { queueWaitMs?: number }): void;
  /** Mergeable snapshot for the cluster report. */
  snapshot(): MetricsSnapshot;
  /** Writes the SLI counts to `sliDatabase` (also done each minute and on process exit). */
  flush(): void;
  close(): void;
}

interface MinuteBucket {
  total: number;
  failures: number;
  good: number[];
}

interface IndicatorState {
  readonly name: IndicatorName;
  readonly histogram: Histogram;
  /** Read at collection from `counts` (an `add` per event would hash its attributes each time). */
  readonly counter: ObservableCounter;
  /** By label combination (the key of `attributesOf`). */
  readonly counts: Map<string, { readonly attributes: Attributes; count: number }>;
  readonly thresholdsMs: number[];
  readonly lifetime: LatencyHistogram;
  /** Per-minute HDR histograms of the last RECENT_MINUTES minutes, and their running sum. */
  readonly recentByMinute: Map<number, LatencyHistogram>;
  readonly recent: LatencyHistogram;
  /** Per-minute SLI counts over the longest window. */
  readonly minutes: Map<number, MinuteBucket>;
  success: number;
  failure: number;
}

const LONGEST_WINDOW_MIN = Math.max(...Object.values(SLI_WINDOWS));

/** `path: message` lines for a duration that cannot be recorded; none when it can. */
function durationIssues(path: string, ms: unknown): string[] {
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0
    ? []
    : [`${path}: expected a finite number of ms >= 0, got ${String(ms)}`];
}

/** An error type as a short token (also the key of the error summary). */
const cleanErrorType = (type: string) => type.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 64) || 'unknown';
/** Label combinations whose attribute objects are kept for reuse (beyond it, built per event). */
const MAX_ATTRIBUTE_SETS = 1024;

/**
 * Creates a node's metrics. Every indicator of INDICATORS becomes an OTel histogram
 * in seconds with boundaries sized for its range (passed as the instrument's advice,
 * so the SDK needs no view) and a `_total` counter; label values are bounded.
 * Alongside, HDR histograms give exact-to-0.1% percentiles and per-minute counts give
 * SLIs over every SLO window, both mergeable across nodes.
 * @throws InvalidOptionsError on bad options.
 * @example
 * const metrics = createMetrics({ meter: meterProvider.getMeter('unrdf') });
 * metrics.observe('receipt', { durationMs: 3.2, ok: true });
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const opts = parseOptions(MetricsOptionsSchema, options, 'metrics options');
  const meter = opts.meter ?? otelMetrics.getMeter('@unrdf/diagnostics');
  const clock = opts.clock ?? Date.now;
  const slos = opts.slos ?? SPEC_SLOS;
  const operationTypes = new Set(opts.operationTypes ?? DEFAULT_OPERATION_TYPES);
  const maxErrorTypes = opts.maxErrorTypes ?? DEFAULT_MAX_ERROR_TYPES;
  const recentLimit = opts.recentLimit ?? DEFAULT_RECENT_LIMIT;

  const states = new Map<IndicatorName, IndicatorState>();
  for (const name of INDICATOR_NAMES) {
    const spec = INDICATORS[name];
    const thresholdsMs = [
      ...new Set(slos.flatMap((s) => (s.indicator === name && s.sli.kind === 'latency' ? [s.sli.thresholdMs] : []))),
    ].sort((a, b) => a - b);
    // Every SLO threshold is a bucket boundary, so the generated rules' le="<threshold>"
    // series exist and count good events exactly (Prometheus, "Histograms and summaries":
    // for an Apdex-style SLI, configure a bucket with the target duration as its upper bound).
    const boundaries = [...new Set([...spec.bucketsSeconds, ...thresholdsMs.map((t) => t / 1000)])].sort(
      (a, b) => a - b,
    );
    states.set(name, {
      name,
      histogram: meter.createHistogram(histogramName(name), {
        description: spec.description,
        unit: 's',
        advice: { explicitBucketBoundaries: boundaries },
      }),
      counter: meter.createObservableCounter(counterName(name), {
        description: `${spec.description}: events by outcome`,
      }),
      counts: new Map(),
      thresholdsMs,
      lifetime: new LatencyHistogram(),
      recentByMinute: new Map(),
      recent: new LatencyHistogram(),
      minutes: new Map(),
      success: 0,
      failure: 0,
    });
  }

  const observeCounts: BatchObservableCallback = (result) => {
    for (const state of states.values()) {
      for (const { attributes, count } of state.counts.values()) result.observe(state.counter, count, attributes);
    }
  };
  const counters = [...states.values()].map((state) => state.counter);
  meter.addBatchObservableCallback(observeCounts, counters);

  // One frozen attribute set per label combination, reused by every observation (label
  // values are bounded: outcome, known type or "other", endpoint).
  const attributeSets = new Map<string, Attributes>();
  const attributesOf = (o: Observation): { readonly key: string; readonly attributes: Attributes } => {
    const type = o.type === undefined ? undefined : operationTypes.has(o.type) ? o.type : 'other';
    const key = `${o.ok ? 1 : 0}\0${type ?? ''}\0${o.endpoint ?? ''}`;
    let attributes = attributeSets.get(key);
    if (attributes === undefined) {
      const fresh: Attributes = { outcome: o.ok ? 'success' : 'failure' };
      if (type !== undefined) fresh.type = type;
      if (o.endpoint !== undefined) fresh.endpoint = o.endpoint;
      attributes = Object.freeze(fresh);
      if (attributeSets.size < MAX_ATTRIBUTE_SETS) attributeSets.set(key, attributes);
    }
    return { key, attributes };
  };

  // The running 5-minute sum loses each minute once, when it falls out: cheaper than
  // merging five histograms on every snapshot.
  const expireRecent = (state: IndicatorState, minute: number) => {
    for (const [m, h] of state.recentByMinute) {
      if (m > minute - RECENT_MINUTES) continue;
      state.recent.subtract(h);
      state.recentByMinute.delete(m);
    }
  };

  let observeConsensus: { callback: BatchObservableCallback; gauges: ObservableGauge[] } | undefined;
  if (opts.consensus) {
    const consensus = opts.consensus;
    const gauges = {
      hasLeader: meter.createObservableGauge('unrdf_raft_has_leader', {
        description: '1 when this node knows a leader (or runs alone), else 0',
      }),
      isLeader: meter.createObservableGauge('unrdf_raft_is_leader', { description: '1 when this node is the leader' }),
      term: meter.createObservableGauge('unrdf_raft_term', {
        description: 'Current Raft term (a change is an election)',
      }),
      commitIndex: meter.createObservableGauge('unrdf_raft_commit_index', {
        description: 'Highest log index known committed',
      }),
      appliedIndex: meter.createObservableGauge('unrdf_raft_applied_index', {
        description: 'Highest log index applied',
      }),
    };
    const callback: BatchObservableCallback = (result) => {
      const view = consensus();
      if (!view) return;
      result.observe(gauges.hasLeader, view.role === 'standalone' || view.leaderId !== null ? 1 : 0);
      result.observe(gauges.isLeader, view.role === 'leader' || view.role === 'standalone' ? 1 : 0);
      result.observe(gauges.term, view.term);
      result.observe(gauges.commitIndex, view.commitIndex);
      result.observe(gauges.appliedIndex, view.appliedIndex);
    };
    observeConsensus = { callback, gauges: Object.values(gauges) };
    meter.addBatchObservableCallback(callback, observeConsensus.gauges);
  }

  // Per-minute SLI counts survive restarts when a database is given.
  const store = opts.sliDatabase === undefined ? undefined : openSliStore(opts.sliDatabase);
  // Minutes changed since the last write, per indicator.
  const dirty = new Map<IndicatorState, Set<number>>();
  let currentDirtyMinute = Number.NEGATIVE_INFINITY;
  // Since when the counts cover time: creation, or the oldest minute restored from disk.
  let countedSince = clock();
  if (store) {
    const horizon = Math.floor(clock() / MINUTE_MS) - LONGEST_WINDOW_MIN;
    for (const row of store.load(horizon)) {
      const state = states.get(row.indicator as IndicatorName);
      // Restore only what still means the same thing: every current threshold was counted.
      const index = state?.thresholdsMs.map((t) => row.thresholdsMs.indexOf(t));
      if (!state || !index || index.some((i) => i < 0)) continue;
      countedSince = Math.min(countedSince, row.minute * MINUTE_MS);
      state.minutes.set(row.minute, {
        total: row.total,
        failures: row.failures,
        good: index.map((i) => row.good[i] ?? 0),
      });
    }
  }
  const flush = () => {
    if (!store || dirty.size === 0) return;
    const rows = [...dirty].flatMap(([state, minutes]) =>
      [...minutes].flatMap((minute) => {
        const b = state.minutes.get(minute);
        if (!b) return [];
        return [
          {
            indicator: state.name,
            minute,
            total: b.total,
            failures: b.failures,
            thresholdsMs: state.thresholdsMs,
            good: b.good,
          },
        ];
      }),
    );
    store.save(rows, Math.floor(clock() / MINUTE_MS) - LONGEST_WINDOW_MIN);
    dirty.clear();
  };
  const unregister = store ? flushOnExit({ flushSync: flush }) : undefined;

  const recentOperations: OperationRecord[] = [];
  const recentFailures: OperationRecord[] = [];
  const errorTypes = new Map<string, { count: number; lastAt: number; lastMessage: string }>();

  const observe = (indicator: IndicatorName, o: Observation) => {
    const state = states.get(indicator);
    if (!state) throw new RangeError(`unknown indicator ${indicator}`);
    // Checked before any update: a NaN would reach the OTel histogram's sum and the
    // counters, then fail in the HDR histogram, leaving them disagreeing.
    const issues = durationIssues('durationMs', o.durationMs);
    if (typeof o.ok !== 'boolean') issues.push(`ok: expected a boolean, got ${String(o.ok)}`);
    if (issues.length > 0) throw new InvalidObservationError(issues);
    const { key, attributes } = attributesOf(o);
    state.histogram.record(o.durationMs / 1000, attributes);
    const counted = state.counts.get(key);
    if (counted === undefined) state.counts.set(key, { attributes, count: 1 });
    else counted.count++;
    if (o.ok) state.success++;
    else state.failure++;
    state.lifetime.record(o.durationMs);

    const minute = Math.floor(clock() / MINUTE_MS);
    let recent = state.recentByMinute.get(minute);
    if (!recent) {
      recent = new LatencyHistogram();
      state.recentByMinute.set(minute, recent);
      expireRecent(state, minute);
    }
    recent.record(o.durationMs);
    state.recent.record(o.durationMs);

    let bucket = state.minutes.get(minute);
    if (store) {
      // A new minute: the previous ones are final, write them out.
      if (minute !== currentDirtyMinute && dirty.size > 0) flush();
      currentDirtyMinute = minute;
      const minutes = dirty.get(state) ?? new Set<number>();
      minutes.add(minute);
      dirty.set(state, minutes);
    }
    if (!bucket) {
      bucket = { total: 0, failures: 0, good: state.thresholdsMs.map(() => 0) };
      state.minutes.set(minute, bucket);
      // Maps iterate in insertion order, i.e. oldest minute first.
      for (const m of state.minutes.keys()) {
        if (m > minute - LONGEST_WINDOW_MIN) break;
        state.minutes.delete(m);
      }
    }
    bucket.total++;
    if (!o.ok) bucket.failures++;
    // A failed event is never "good" for a latency SLO, however fast it failed.
    if (o.ok) {
      for (let i = 0; i < state.thresholdsMs.length; i++) {
        if (o.durationMs <= (state.thresholdsMs[i] ?? 0)) bucket.good[i] = (bucket.good[i] ?? 0) + 1;
      }
    }
  };

  const pushBounded = (list: OperationRecord[], record: OperationRecord) => {
    list.push(record);
    if (list.length > recentLimit) list.shift();
  };

  const errorKey = (clean: string) => (errorTypes.has(clean) || errorTypes.size < maxErrorTypes ? clean : 'other');

  return {
    flush,
    close() {
      flush();
      meter.removeBatchObservableCallback(observeCounts, counters);
      if (observeConsensus) meter.removeBatchObservableCallback(observeConsensus.callback, observeConsensus.gauges);
      unregister?.();
      store?.close();
    },
    observe,
    recordOperation(operation) {
      const { id, type, ok, durationMs, errorType, errorMessage, queueWaitMs, cancelled } = operation;
      // All checked before anything is recorded: the record must fit MetricsSnapshotSchema,
      // or the node's whole snapshot would be refused as `invalid`.
      const issues = durationIssues('durationMs', durationMs);
      if (queueWaitMs !== undefined) issues.push(...durationIssues('queueWaitMs', queueWaitMs));
      if (typeof id !== 'string') issues.push(`id: expected a string, got ${typeof id}`);
      if (typeof type !== 'string') issues.push(`type: expected a string, got ${typeof type}`);
      if (typeof ok !== 'boolean') issues.push(`ok: expected a boolean, got ${typeof ok}`);
      if (errorType !== undefined && typeof errorType !== 'string')
        issues.push(`errorType: expected a string, got ${typeof errorType}`);
      if (errorMessage !== undefined && typeof errorMessage !== 'string')
        issues.push(`errorMessage: expected a string, got ${typeof errorMessage}`);
      if (cancelled !== undefined && (cancelled !== true || ok !== false))
        issues.push('cancelled: expected true, on an operation that is not ok');
      if (issues.length > 0) throw new InvalidObservationError(issues);

      if (cancelled !== true) observe('operation', { durationMs, ok, type });
      if (queueWaitMs !== undefined) observe('queue_wait', { durationMs: queueWaitMs, ok: true });
      const record: OperationRecord = {
        id: id.slice(0, OPERATION_RECORD_LIMITS.id),
        type: type.slice(0, OPERATION_RECORD_LIMITS.type),
        ok,
        durationMs,
        finishedAt: clock(),
      };
      if (errorType !== undefined) record.errorType = cleanErrorType(errorType);
      if (errorMessage !== undefined) record.errorMessage = errorMessage.slice(0, OPERATION_RECORD_LIMITS.errorMessage);
      if (cancelled === true) record.cancelled = true;
      pushBounded(recentOperations, record);
      if (!record.ok && cancelled !== true) {
        pushBounded(recentFailures, record);
        const key = errorKey(record.errorType ?? 'unknown');
        const entry = errorTypes.get(key) ?? { count: 0, lastAt: 0, lastMessage: '' };
        entry.count++;
        entry.lastAt = record.finishedAt;
        entry.lastMessage = record.errorMessage ?? '';
        errorTypes.set(key, entry);
      }
    },
    snapshot() {
      const now = clock();
      const currentMinute = Math.floor(now / MINUTE_MS);
      const indicators: MetricsSnapshot['indicators'] = {};
      for (const [name, state] of states) {
        if (state.success + state.failure === 0) continue;
        expireRecent(state, currentMinute);
        const windows: Record<string, SliCounts> = {};
        for (const w of SLI_WINDOW_NAMES) {
          // A window of N minutes sums the current, partial minute and the N - 1 before
          // it: it covers (N - 1) minutes plus the elapsed part of this one, not N (a
          // rate over N minutes would understate by up to 1/N).
          const windowStart = (currentMinute - SLI_WINDOWS[w] + 1) * MINUTE_MS;
          const spanMs = Math.max(0, now - Math.max(windowStart, countedSince));
          windows[w] = { total: 0, failures: 0, good: state.thresholdsMs.map(() => 0), spanMs };
        }
        for (const [minute, bucket] of state.minutes) {
          const age = currentMinute - minute; // 0 = the current, partial minute
          for (const w of SLI_WINDOW_NAMES) {
            if (age >= SLI_WINDOWS[w as SliWindow]) continue;
            const counts = windows[w];
            if (!counts) continue;
            counts.total += bucket.total;
            counts.failures += bucket.failures;
            for (let i = 0; i < bucket.good.length; i++) counts.good[i] = (counts.good[i] ?? 0) + (bucket.good[i] ?? 0);
          }
        }
        indicators[name] = {
          success: state.success,
          failure: state.failure,
          lifetime: state.lifetime.encode(),
          recent: state.recent.encode(),
          thresholdsMs: state.thresholdsMs,
          windows,
        };
      }
      return {
        takenAt: now,
        indicators,
        recentOperations: [...recentOperations],
        recentFailures: [...recentFailures],
        errorTypes: [...errorTypes].map(([type, e]) => ({ type, ...e })).sort((a, b) => b.count - a.count),
      };
    },
  };
}
