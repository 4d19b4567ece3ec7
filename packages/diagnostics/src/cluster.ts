import { z } from 'zod';
import { NodeQueryError } from './errors.js';
import type { DiagnosticNode } from './http-node.js';
import { INDICATOR_NAMES, type IndicatorName, type SliWindow } from './indicators.js';
import { parseOptions } from './internal/parse.js';
import { LatencyHistogram } from './latency-histogram.js';
import { type LogCompleteness, mergeLogs, type NodeLogInput } from './log-merge.js';
import type { LogRecord } from './logger.js';
import type { Metrics } from './metrics.js';
import { type DiagnosticReport, REPORT_SCHEMA } from './report-schema.js';
import { type EvaluateSlosOptions, evaluateSlos, type IndicatorData, type SloDefinition, SPEC_SLOS } from './slo.js';
import {
  type LogsResponse,
  LogsResponseSchema,
  type NodeSnapshot,
  NodeSnapshotSchema,
  type SnapshotRequest,
} from './snapshot.js';

export type NodeOutcome<T> =
  | { readonly nodeId: string; readonly status: 'ok'; readonly latencyMs: number; readonly value: T }
  | {
      readonly nodeId: string;
      readonly status: 'timeout' | 'unreachable' | 'too_large' | 'invalid' | 'http_error';
      readonly latencyMs: number;
      readonly error: string;
    };

/** Asks one node with a deadline and validates the answer; never throws. */
async function ask<T>(
  node: DiagnosticNode,
  request: SnapshotRequest,
  timeoutMs: number,
  schema: z.ZodType<T>,
): Promise<NodeOutcome<T>> {
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const latency = () => performance.now() - started;
  let onAbort: (() => void) | undefined;
  try {
    // The node may ignore the signal (a buggy in-process implementation): race it too.
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () => reject(new NodeQueryError(node.id, 'timeout', `${timeoutMs} ms`));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    const raw = await Promise.race([node.fetchSnapshot(request, signal), timedOut]).finally(() => {
      // Node keeps a timeout signal with listeners alive until it fires; through this
      // listener it would keep the race, and so the whole answer, alive as long.
      if (onAbort) signal.removeEventListener('abort', onAbort);
    });
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const first = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      return { nodeId: node.id, status: 'invalid', latencyMs: latency(), error: first.join('; ') };
    }
    const answeredAs = (parsed.data as { nodeId?: unknown }).nodeId;
    if (answeredAs !== node.id) {
      return {
        nodeId: node.id,
        status: 'invalid',
        latencyMs: latency(),
        error: `answered as node ${String(answeredAs)}`,
      };
    }
    return { nodeId: node.id, status: 'ok', latencyMs: latency(), value: parsed.data };
  } catch (error) {
    if (error instanceof NodeQueryError) {
      return { nodeId: node.id, status: error.reason, latencyMs: latency(), error: error.detail };
    }
    return { nodeId: node.id, status: 'unreachable', latencyMs: latency(), error: String(error) };
  }
}

const CollectorOptionsSchema = z.object({
  nodes: z.array(z.custom<DiagnosticNode>((v) => typeof v === 'object' && v !== null && 'fetchSnapshot' in v)).min(1),
  timeoutMs: z.number().int().positive().optional(),
  /** Records asked for per request; a node with more is paged through. */
  pageLimit: z.number().int().positive().optional(),
  /** Pages per node per poll at most (bounds one poll). */
  maxPagesPerPoll: z.number().int().positive().optional(),
  /** Where the first poll starts (wall ms); everything the nodes still have when omitted. */
  sinceWallMs: z.number().optional(),
  /** Records kept per node (the newest); older ones are let go and the view says so (`truncatedBefore`). */
  maxRecordsPerNode: z.number().int().positive().optional(),
  /** The collecting node's metrics: each poll's duration is the `log_aggregation` SLI. */
  metrics: z.custom<Metrics>((v) => typeof v === 'object' && v !== null && 'observe' in v).optional(),
});
export type LogCollectorOptions = z.input<typeof CollectorOptionsSchema>;

/** Streams every node's log by seq cursor, surviving node failures, with completeness. */
export interface LogCollector {
  /** Fetches what each node wrote since the last poll, in parallel. */
  poll(): Promise<void>;
  /** The merged view so far. */
  view(): { records: LogRecord[]; duplicatesDropped: number; completeness: LogCompleteness[] };
}

export const DEFAULT_NODE_TIMEOUT_MS = 2000;
export const DEFAULT_PAGE_LIMIT = 10_000;

/**
 * Creates a log collector: each poll asks every node for the records after its
 * cursor (in pages), so a node that dies keeps what was collected before, and the
 * view reports it as unavailable with the seqs it had written but we never got.
 * @throws InvalidOptionsError on bad options.
 */
export function createLogCollector(options: LogCollectorOptions): LogCollector {
  const opts = parseOptions(CollectorOptionsSchema, options, 'log collector options');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  const pageLimit = opts.pageLimit ?? DEFAULT_PAGE_LIMIT;
  const maxPages = opts.maxPagesPerPoll ?? 100;
  const state = opts.nodes.map((node) => ({
    node,
    cursor: undefined as number | undefined,
    expectedFirstSeq: undefined as number | undefined,
    records: [] as LogRecord[],
    nodeLastSeq: null as number | null,
    error: null as string | null,
    truncatedBefore: false,
  }));
  const maxRecords = opts.maxRecordsPerNode ?? DEFAULT_MAX_LOG_RECORDS_PER_NODE;

  const pollNode = async (s: (typeof state)[number]) => {
    for (let page = 0; page < maxPages; page++) {
      // Every request pages forward, oldest first: with a cursor, or from seq 0 (with the
      // time horizon on the first poll). Without a cursor a node answers with its newest
      // records, which would drop the older part of the horizon once it exceeds a page.
      const request: SnapshotRequest = { logsOnly: true, limit: pageLimit, afterSeq: s.cursor ?? 0 };
      if (s.cursor === undefined && opts.sinceWallMs !== undefined) request.sinceWallMs = opts.sinceWallMs;
      const outcome = await ask<LogsResponse>(s.node, request, timeoutMs, LogsResponseSchema);
      if (outcome.status !== 'ok') {
        s.error = `${outcome.status}: ${outcome.error}`;
        return;
      }
      s.error = null;
      const { logs } = outcome.value;
      s.nodeLastSeq = logs.lastSeq;
      const first = logs.records[0];
      if (s.expectedFirstSeq === undefined) {
        // From a cursor of 0, everything from seq 1 is expected: what the node no longer
        // has (rotated out) is a gap. From a time horizon, the first record found starts it.
        s.expectedFirstSeq = request.sinceWallMs === undefined ? 1 : (first?.seq ?? logs.lastSeq + 1);
      }
      for (const record of logs.records) s.records.push(record);
      if (s.records.length > maxRecords) {
        // Bounded memory: keep the newest; what was let go is not a gap, and is said.
        s.records = s.records.slice(-maxRecords);
        s.expectedFirstSeq = s.records[0]?.seq ?? s.expectedFirstSeq;
        s.truncatedBefore = true;
      }
      const last = logs.records.at(-1);
      if (last) s.cursor = last.seq;
      else if (s.cursor === undefined) s.cursor = logs.lastSeq;
      if (!logs.truncated) return;
    }
  };

  return {
    async poll() {
      const started = performance.now();
      await Promise.all(state.map(pollNode));
      opts.metrics?.observe('log_aggregation', {
        durationMs: performance.now() - started,
        ok: state.every((s) => s.error === null),
      });
    },
    view() {
      return mergeLogs(
        state.map(
          (s): NodeLogInput => ({
            nodeId: s.node.id,
            records: s.records,
            nodeLastSeq: s.nodeLastSeq,
            ...(s.expectedFirstSeq === undefined ? {} : { expectedFirstSeq: s.expectedFirstSeq }),
            truncatedBefore: s.truncatedBefore,
            error: s.error,
          }),
        ),
      );
    },
  };
}

const ReportOptionsSchema = z.object({
  nodes: z.array(z.custom<DiagnosticNode>((v) => typeof v === 'object' && v !== null && 'fetchSnapshot' in v)).min(1),
  /** Per-node deadline: a node that has not answered by then is reported, not waited for. */
  timeoutMs: z.number().int().positive().optional(),
  /** The log snapshot covers this much time back. */
  logWindowMs: z.number().int().positive().optional(),
  /** At most this many log records per node (the newest). */
  maxLogRecordsPerNode: z.number().int().positive().optional(),
  /** At least this many of each node's newest records, even older than the window ("or the last 1,000"). */
  minLogRecordsPerNode: z.number().int().nonnegative().optional(),
  slos: z.array(z.custom<SloDefinition>()).optional(),
  sloOptions: z.custom<EvaluateSlosOptions>().optional(),
  /** The aggregating node's metrics: the report's own duration is an SLI of JTBD 4. */
  metrics: z.custom<Metrics>((v) => typeof v === 'object' && v !== null && 'observe' in v).optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
});
export type ReportOptions = z.input<typeof ReportOptionsSchema>;

export const DEFAULT_LOG_WINDOW_MS = 5 * 60_000;
export const DEFAULT_MAX_LOG_RECORDS_PER_NODE = 100_000;
export const DEFAULT_MIN_LOG_RECORDS_PER_NODE = 1000;
const RECENT_OPERATIONS = 100;
const TOP_ERRORS = 10;

/**
 * Collects the full diagnostic report from every node in parallel, each bounded by
 * its deadline: health, metrics (merged HDR percentiles), resources, recent
 * operations and failures, consensus state (leader, term, indexes, lag, failure
 * tolerance), top errors, SLO status and the merged log snapshot. A member that does
 * not answer is reported; the report is never `healthy` while one is down.
 * @throws InvalidOptionsError on bad options (never for a node's failure).
 * @example
 * const report = await collectDiagnosticReport({ nodes, timeoutMs: 2000 });
 * console.log(renderReportMarkdown(report));
 */
export async function collectDiagnosticReport(options: ReportOptions): Promise<DiagnosticReport> {
  const opts = parseOptions(ReportOptionsSchema, options, 'report options');
  const clock = opts.clock ?? Date.now;
  const started = performance.now();
  const generatedAt = clock();
  const sinceWallMs = generatedAt - (opts.logWindowMs ?? DEFAULT_LOG_WINDOW_MS);
  const atLeast = opts.minLogRecordsPerNode ?? DEFAULT_MIN_LOG_RECORDS_PER_NODE;
  const request: SnapshotRequest = {
    sinceWallMs,
    limit: opts.maxLogRecordsPerNode ?? DEFAULT_MAX_LOG_RECORDS_PER_NODE,
    ...(atLeast > 0 ? { atLeast } : {}),
  };
  const timeoutMs = opts.timeoutMs ?? DEFAULT_NODE_TIMEOUT_MS;
  const outcomes = await Promise.all(
    opts.nodes.map((n) => ask<NodeSnapshot>(n, request, timeoutMs, NodeSnapshotSchema)),
  );
  const answered = outcomes.flatMap((o) => (o.status === 'ok' ? [o.value] : []));

  const logs = mergeLogs(
    outcomes.map((o): NodeLogInput => {
      if (o.status !== 'ok')
        return { nodeId: o.nodeId, records: [], nodeLastSeq: null, error: `${o.status}: ${o.error}` };
      const l = o.value.logs;
      return { nodeId: o.nodeId, records: l.records, nodeLastSeq: l.lastSeq, truncatedBefore: l.truncated };
    }),
  );

  const cluster = clusterState(outcomes);
  const metrics = mergeMetrics(answered);
  const slos = evaluateSlos(opts.slos ?? SPEC_SLOS, metrics.sloData, opts.sloOptions);

  const reasons: string[] = [];
  for (const o of outcomes)
    if (o.status !== 'ok') reasons.push(`node ${o.nodeId} did not answer: ${o.status} (${o.error})`);
  for (const s of answered) {
    if (!s.health.livez.ok) reasons.push(`node ${s.nodeId} is not live`);
    if (!s.health.readyz.ok) {
      const failed = s.health.readyz.checks.filter((c) => !c.ok && !c.excluded).map((c) => `${c.name}: ${c.message}`);
      reasons.push(`node ${s.nodeId} is not ready (${failed.join('; ')})`);
    }
  }
  for (const m of cluster.members)
    if (!m.queried) reasons.push(`member ${m.id} is in the configuration but was not queried`);
  reasons.push(...cluster.problems);
  const quorumLost = cluster.voters > 0 && cluster.healthyVoters < cluster.quorum;
  const status: DiagnosticReport['status'] =
    cluster.critical || quorumLost || answered.length === 0 ? 'critical' : reasons.length > 0 ? 'degraded' : 'healthy';
  if (quorumLost)
    reasons.push(`quorum lost: ${cluster.healthyVoters} healthy voters of ${cluster.voters}, need ${cluster.quorum}`);

  const report: DiagnosticReport = {
    schema: REPORT_SCHEMA,
    generatedAt: new Date(generatedAt).toISOString(),
    durationMs: 0,
    status,
    reasons,
    cluster: {
      leaderId: cluster.leaderId,
      term: cluster.term,
      voters: cluster.voters,
      quorum: cluster.quorum,
      healthyVoters: cluster.healthyVoters,
      failureTolerance: Math.max(0, cluster.healthyVoters - cluster.quorum),
      members: cluster.members,
    },
    nodes: outcomes.map((o) => {
      const contributed = logs.completeness.find((c) => c.nodeId === o.nodeId)?.received ?? 0;
      if (o.status !== 'ok') {
        return {
          nodeId: o.nodeId,
          outcome: o.status,
          error: o.error,
          latencyMs: o.latencyMs,
          version: null,
          livez: null,
          readyz: null,
          resources: null,
          consensus: null,
          logRecords: 0,
        };
      }
      const s = o.value;
      const checks = (h: typeof s.health.livez) => ({
        ok: h.ok,
        checks: h.checks.map((c) => ({ name: c.name, ok: c.ok, message: c.message })),
      });
      return {
        nodeId: o.nodeId,
        outcome: 'ok' as const,
        error: null,
        latencyMs: o.latencyMs,
        version: s.version,
        livez: checks(s.health.livez),
        readyz: checks(s.health.readyz),
        resources: s.resources,
        consensus: s.consensus,
        logRecords: contributed,
      };
    }),
    metrics: metrics.summary,
    operations: metrics.operations,
    errors: metrics.errors,
    slos,
    logs: {
      sinceWallMs,
      totalRecords: logs.records.length,
      duplicatesDropped: logs.duplicatesDropped,
      completeness: logs.completeness,
      records: logs.records,
    },
  };
  report.durationMs = performance.now() - started;
  opts.metrics?.observe('diagnostic_report', {
    durationMs: report.durationMs,
    ok: answered.length === outcomes.length,
  });
  // Built from validated parts and typed by the schema; the tests validate whole reports.
  return report;
}

/** Consensus view across nodes: etcd's `endpoint status` table plus Consul autopilot's failure tolerance. */
function clusterState(outcomes: readonly NodeOutcome<NodeSnapshot>[]) {
  const problems: string[] = [];
  let critical = false;
  const reachable = new Map(outcomes.flatMap((o) => (o.status === 'ok' ? [[o.nodeId, o.value] as const] : [])));
  const views = [...reachable.values()].flatMap((s) => (s.consensus ? [{ nodeId: s.nodeId, ...s.consensus }] : []));
  // Membership: what the nodes say, plus every node we were told to query.
  const voters = new Map<string, boolean>();
  for (const v of views) for (const m of v.members) voters.set(m.id, (voters.get(m.id) ?? false) || m.voter);
  for (const o of outcomes) if (!voters.has(o.nodeId)) voters.set(o.nodeId, true);
  const queried = new Set(outcomes.map((o) => o.nodeId));

  const standalone = views.length > 0 && views.every((v) => v.role === 'standalone');
  const maxTerm = views.reduce((t, v) => Math.max(t, v.term), 0);
  const leaders = views.filter((v) => v.role === 'leader');
  const currentLeaders = leaders.filter((v) => v.term === maxTerm);
  if (currentLeaders.length > 1) {
    critical = true;
    problems.push(`two leaders in term ${maxTerm}: ${currentLeaders.map((l) => l.nodeId).join(', ')}`);
  }
  const claimed = new Set(views.filter((v) => v.term === maxTerm && v.leaderId !== null).map((v) => v.leaderId));
  if (claimed.size > 1) {
    critical = true;
    problems.push(`members disagree on the leader of term ${maxTerm}: ${[...claimed].join(', ')}`);
  }
  const leader = currentLeaders[0];
  const leaderId = leader?.nodeId ?? [...claimed][0] ?? null;
  if (views.length > 0 && !standalone && leaderId === null) {
    critical = true;
    problems.push(`no leader known in term ${maxTerm}`);
  }
  const leaderCommit = leader?.commitIndex ?? null;
  const members = [...voters].map(([id, voter]) => {
    const s = reachable.get(id);
    const v = s?.consensus ?? null;
    return {
      id,
      queried: queried.has(id),
      reachable: s !== undefined,
      voter,
      role: v?.role ?? null,
      term: v?.term ?? null,
      commitIndex: v?.commitIndex ?? null,
      appliedIndex: v?.appliedIndex ?? null,
      lag: v && leaderCommit !== null ? Math.max(0, leaderCommit - v.appliedIndex) : null,
    };
  });
  const voterCount = members.filter((m) => m.voter).length;
  const healthyVoters = members.filter((m) => {
    const s = reachable.get(m.id);
    return m.voter && s?.health.livez.ok === true && s.health.readyz.ok;
  }).length;
  return {
    leaderId: standalone ? (views[0]?.nodeId ?? null) : leaderId,
    term: views.length ? maxTerm : null,
    voters: voterCount,
    quorum: Math.floor(voterCount / 2) + 1,
    healthyVoters,
    members,
    problems,
    critical,
  };
}

/** A window's counts while nodes are summed into it (a MergedSliCounts). */
interface WindowSum {
  total: number;
  failures: number;
  good: number[];
  thresholdTotals: number[];
  spanMs?: number;
}

/** Merges node metrics: counters summed, HDR histograms merged, SLI window counts summed. */
function mergeMetrics(snapshots: readonly NodeSnapshot[]) {
  const summary: DiagnosticReport['metrics'] = {};
  const sloData: Partial<Record<IndicatorName, IndicatorData>> = {};
  for (const name of INDICATOR_NAMES) {
    const parts = snapshots.flatMap((s) => {
      const m = s.metrics.indicators[name];
      return m ? [{ nodeId: s.nodeId, ...m }] : [];
    });
    if (parts.length === 0) continue;
    const lifetime = new LatencyHistogram();
    const recent = new LatencyHistogram();
    const nodes: string[] = [];
    for (const p of parts) {
      try {
        // Each addEncoded is all or nothing; decoding `recent` first keeps the pair so.
        const nodeRecent = LatencyHistogram.decode(p.recent);
        lifetime.addEncoded(p.lifetime);
        recent.merge(nodeRecent);
        nodes.push(p.nodeId);
      } catch {
        // An undecodable histogram is left out; `nodes` says whose data is in.
      }
    }
    summary[name] = {
      success: parts.reduce((n, p) => n + p.success, 0),
      failure: parts.reduce((n, p) => n + p.failure, 0),
      lifetimeMs: lifetime.percentiles(),
      recentMs: recent.percentiles(),
      nodes,
    };
    // Window counts are sums. A threshold's good events are a fraction of the events
    // of the nodes that count it only: a node configured without that SLO has no good
    // count for it, which is not the same as none of its events being good.
    const thresholdsMs = [...new Set(parts.flatMap((p) => p.thresholdsMs))].sort((a, b) => a - b);
    const windows: Partial<Record<SliWindow, WindowSum>> = {};
    for (const p of parts) {
      for (const [w, counts] of Object.entries(p.windows)) {
        const target = windows[w as SliWindow] ?? {
          total: 0,
          failures: 0,
          good: thresholdsMs.map(() => 0),
          thresholdTotals: thresholdsMs.map(() => 0),
        };
        windows[w as SliWindow] = target;
        target.total += counts.total;
        target.failures += counts.failures;
        // Every node's window ends now: together they cover the longest span.
        if (counts.spanMs !== undefined) target.spanMs = Math.max(target.spanMs ?? 0, counts.spanMs);
        p.thresholdsMs.forEach((t, i) => {
          const j = thresholdsMs.indexOf(t);
          target.good[j] = (target.good[j] ?? 0) + (counts.good[i] ?? 0);
          target.thresholdTotals[j] = (target.thresholdTotals[j] ?? 0) + counts.total;
        });
      }
    }
    sloData[name] = { thresholdsMs, windows, recent };
  }

  const withNode = <T>(nodeId: string, list: readonly T[]) => list.map((r) => ({ ...r, nodeId }));
  const recent = snapshots
    .flatMap((s) => withNode(s.nodeId, s.metrics.recentOperations))
    .sort((a, b) => a.finishedAt - b.finishedAt)
    .slice(-RECENT_OPERATIONS);
  const failures = snapshots
    .flatMap((s) => withNode(s.nodeId, s.metrics.recentFailures))
    .sort((a, b) => a.finishedAt - b.finishedAt)
    .slice(-RECENT_OPERATIONS);

  const errors = new Map<
    string,
    { type: string; count: number; nodes: string[]; lastAt: number; lastMessage: string }
  >();
  for (const s of snapshots) {
    for (const e of s.metrics.errorTypes) {
      const entry = errors.get(e.type) ?? { type: e.type, count: 0, nodes: [], lastAt: 0, lastMessage: '' };
      entry.count += e.count;
      entry.nodes.push(s.nodeId);
      if (e.lastAt >= entry.lastAt) {
        entry.lastAt = e.lastAt;
        entry.lastMessage = e.lastMessage;
      }
      errors.set(e.type, entry);
    }
  }
  const topErrors = [...errors.values()]
    .sort((a, b) => b.count - a.count || a.type.localeCompare(b.type))
    .slice(0, TOP_ERRORS);
  return { summary, sloData, operations: { recent, failures }, errors: topErrors };
}
