import { z } from 'zod';
import { LogRecordArraySchema } from './logger.js';
import { MetricsSnapshotSchema } from './metrics.js';

/** Version tag of the node snapshot wire format. */
export const NODE_SNAPSHOT_SCHEMA = 'unrdf.diagnostics.node-snapshot/v1';

const HealthResponseSchema = z.object({
  ok: z.boolean(),
  checks: z
    .array(
      z.object({
        name: z.string(),
        ok: z.boolean(),
        message: z.string(),
        checkedAt: z.number().nullable(),
        durationMs: z.number().nullable(),
        stale: z.boolean(),
        excluded: z.boolean(),
      }),
    )
    .max(100),
});

/** Process resources, as `etcdctl endpoint status` and `consul debug` collect them. */
export const ResourceUsageSchema = z.object({
  uptimeSec: z.number().nonnegative(),
  /** CPU time since the previous sample over wall time, 100 = one core. */
  cpuPercent: z.number().nonnegative(),
  cpuUserSec: z.number().nonnegative(),
  cpuSystemSec: z.number().nonnegative(),
  rssBytes: z.number().nonnegative(),
  heapUsedBytes: z.number().nonnegative(),
  heapTotalBytes: z.number().nonnegative(),
  externalBytes: z.number().nonnegative(),
  eventLoopDelayP50Ms: z.number().nonnegative(),
  eventLoopDelayP99Ms: z.number().nonnegative(),
  eventLoopDelayMaxMs: z.number().nonnegative(),
  eventLoopUtilization: z.number().min(0).max(1),
  /** Free and total bytes of the data directory's filesystem; null when not configured. */
  diskFreeBytes: z.number().nonnegative().nullable(),
  diskTotalBytes: z.number().nonnegative().nullable(),
  /** Active libuv handles and requests by type (sockets, timers, files...). */
  openHandles: z.number().int().nonnegative(),
  handlesByType: z.record(z.string(), z.number().int().nonnegative()),
});
export type ResourceUsage = z.infer<typeof ResourceUsageSchema>;

/** One node's view of the consensus group (etcd `endpoint status`, Consul `operator raft list-peers`). */
export const ConsensusViewSchema = z.object({
  role: z.enum(['leader', 'follower', 'candidate', 'learner', 'standalone']),
  term: z.number().int().nonnegative(),
  leaderId: z.string().nullable(),
  commitIndex: z.number().int().nonnegative(),
  appliedIndex: z.number().int().nonnegative(),
  lastLogIndex: z.number().int().nonnegative(),
  /** The membership this node knows (ids and whether they vote). */
  members: z.array(z.object({ id: z.string(), voter: z.boolean() })).max(1000),
});
export type ConsensusView = z.infer<typeof ConsensusViewSchema>;

/** Everything one node contributes to a diagnostic report. */
export const NodeSnapshotSchema = z.object({
  schema: z.literal(NODE_SNAPSHOT_SCHEMA),
  nodeId: z.string().min(1),
  version: z.string(),
  /** The node's HLC and wall clock when it answered. */
  hlc: z.string(),
  wallMs: z.number(),
  health: z.object({ livez: HealthResponseSchema, readyz: HealthResponseSchema }),
  metrics: MetricsSnapshotSchema,
  resources: ResourceUsageSchema,
  consensus: ConsensusViewSchema.nullable(),
  logs: z.object({
    records: LogRecordArraySchema,
    lastSeq: z.number().int().nonnegative(),
    oldestAvailableSeq: z.number().int().nonnegative(),
    truncated: z.boolean(),
  }),
});
export type NodeSnapshot = z.infer<typeof NodeSnapshotSchema>;

/** What to include from the node's logs: a cursor, a time horizon, a cap. */
export const SnapshotRequestSchema = z.object({
  afterSeq: z.number().int().nonnegative().optional(),
  sinceWallMs: z.number().optional(),
  limit: z.number().int().positive().max(1_000_000).optional(),
  /** At least this many of the newest records, even if older than sinceWallMs ("last 5 minutes or last 1,000"). */
  atLeast: z.number().int().positive().max(1_000_000).optional(),
  /** Only the logs (the collector's polling), not the rest of the snapshot. */
  logsOnly: z.boolean().optional(),
});
export type SnapshotRequest = z.infer<typeof SnapshotRequestSchema>;

/** A logs-only answer (for the collector's polling). */
export const LogsResponseSchema = z.object({
  schema: z.literal(NODE_SNAPSHOT_SCHEMA),
  nodeId: z.string().min(1),
  logs: NodeSnapshotSchema.shape.logs,
});
export type LogsResponse = z.infer<typeof LogsResponseSchema>;
