import { z } from 'zod';
import { LogCompletenessSchema } from './log-merge.js';
import { LogRecordArraySchema } from './logger.js';
import { OperationRecordSchema } from './metrics.js';
import { SloStatusSchema } from './slo.js';
import { ConsensusViewSchema, ResourceUsageSchema } from './snapshot.js';

/** Version tag of the report; bump on any incompatible change. */
export const REPORT_SCHEMA = 'unrdf.diagnostics.report/v1';

const Percentiles = z.object({
  count: z.number().int().nonnegative(),
  min: z.number(),
  p50: z.number(),
  p90: z.number(),
  p95: z.number(),
  p99: z.number(),
  p999: z.number(),
  max: z.number(),
});

const CheckSchema = z.object({ name: z.string(), ok: z.boolean(), message: z.string() });

export const NodeOutcomeStatus = z.enum(['ok', 'timeout', 'unreachable', 'too_large', 'invalid', 'http_error']);

const NodeSectionSchema = z.object({
  nodeId: z.string(),
  outcome: NodeOutcomeStatus,
  error: z.string().nullable(),
  latencyMs: z.number().nonnegative(),
  version: z.string().nullable(),
  livez: z.object({ ok: z.boolean(), checks: z.array(CheckSchema) }).nullable(),
  readyz: z.object({ ok: z.boolean(), checks: z.array(CheckSchema) }).nullable(),
  resources: ResourceUsageSchema.nullable(),
  consensus: ConsensusViewSchema.nullable(),
  /** How many log records the node contributed to this report. */
  logRecords: z.number().int().nonnegative(),
});

/** The full diagnostic report: versioned, validated before it leaves the library. */
export const DiagnosticReportSchema = z.object({
  schema: z.literal(REPORT_SCHEMA),
  generatedAt: z.iso.datetime(),
  durationMs: z.number().nonnegative(),
  /** healthy only when every member answered and is live, ready and in a cluster with a leader. */
  status: z.enum(['healthy', 'degraded', 'critical']),
  reasons: z.array(z.string()),
  cluster: z.object({
    leaderId: z.string().nullable(),
    term: z.number().nullable(),
    voters: z.number().int().nonnegative(),
    quorum: z.number().int().nonnegative(),
    healthyVoters: z.number().int().nonnegative(),
    /** Voters that may fail before quorum is lost (Consul autopilot's FailureTolerance). */
    failureTolerance: z.number().int().nonnegative(),
    members: z.array(
      z.object({
        id: z.string(),
        queried: z.boolean(),
        reachable: z.boolean(),
        voter: z.boolean(),
        role: z.string().nullable(),
        term: z.number().nullable(),
        commitIndex: z.number().nullable(),
        appliedIndex: z.number().nullable(),
        /** Leader's commit index minus this member's applied index. */
        lag: z.number().nullable(),
      }),
    ),
  }),
  nodes: z.array(NodeSectionSchema),
  metrics: z.record(
    z.string(),
    z.object({
      success: z.number().int().nonnegative(),
      failure: z.number().int().nonnegative(),
      /** Merged HDR percentiles (ms) since each node started, and over the last 5 minutes. */
      lifetimeMs: Percentiles,
      recentMs: Percentiles,
      nodes: z.array(z.string()),
    }),
  ),
  operations: z.object({
    recent: z.array(OperationRecordSchema.extend({ nodeId: z.string() })),
    failures: z.array(OperationRecordSchema.extend({ nodeId: z.string() })),
  }),
  errors: z.array(
    z.object({
      type: z.string(),
      count: z.number(),
      nodes: z.array(z.string()),
      lastAt: z.number(),
      lastMessage: z.string(),
    }),
  ),
  slos: z.array(SloStatusSchema),
  logs: z.object({
    sinceWallMs: z.number(),
    totalRecords: z.number().int().nonnegative(),
    duplicatesDropped: z.number().int().nonnegative(),
    completeness: z.array(LogCompletenessSchema),
    records: LogRecordArraySchema,
  }),
});
export type DiagnosticReport = z.infer<typeof DiagnosticReportSchema>;
