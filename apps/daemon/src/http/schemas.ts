// The wire schemas of the HTTP API: the server validates requests with them, the
// OpenAPI document is generated from them, and clients (the CLI, the benchmarks)
// parse answers with them.
import { OperationTypeName, ReceiptBundleSchema, SubmitSchema } from '@unrdf/daemon/wire';
import { z } from 'zod';

/** Every 4xx/5xx body: a stable code, a message that says what to do, and `path: message` lines. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.string()),
    /** For an unknown operation type: the types this daemon runs. */
    known: z.array(z.string()).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

/** An operation type name (letters, digits and `._:-`), as @unrdf/daemon checks it. */
export const OperationTypeNameSchema = OperationTypeName;

/** `POST /v1/operations`: @unrdf/daemon's SubmitSchema (type, subject, input, idempotencyKey, priority, runAt, groupKey, maxAttempts). */
export const SubmitBodySchema = SubmitSchema;
export type SubmitBody = z.input<typeof SubmitBodySchema>;

const epochMs = z.number().int();

/** An operation as the daemon shows it (`OperationView` of @unrdf/daemon). */
export const OperationViewSchema = z.object({
  id: z.string(),
  type: z.string(),
  subject: z.string(),
  /** `completed`, `dead` (failed for good) and `cancelled` are final. */
  state: z.enum(['pending', 'running', 'completed', 'dead', 'cancelled']),
  outcome: z.enum(['succeeded', 'failed', 'cancelled']).nullable(),
  input: z.unknown(),
  output: z.unknown(),
  error: z.object({ name: z.string(), message: z.string(), code: z.string().optional() }).nullable(),
  attempts: z.number().int(),
  maxAttempts: z.number().int(),
  priority: z.number().int(),
  idempotencyKey: z.string().nullable(),
  submittedAt: epochMs,
  runAt: epochMs,
  startedAt: epochMs.nullable(),
  finishedAt: epochMs.nullable(),
  receipt: z.object({ leafIndex: z.number().int(), receiptHash: z.string() }).nullable(),
});
export type OperationViewBody = z.infer<typeof OperationViewSchema>;

/** Path parameter of the operation routes. */
export const OperationParamsSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, 'an operation id: 1-200 letters, digits and . _ : -'),
});

/** Longest `?wait=` long poll, in milliseconds. */
export const MAX_WAIT_MS = 30_000;

/**
 * `GET /v1/operations/:id?wait=<ms>` and `POST /v1/operations?wait=<ms>`: wait up to that
 * long for the final state and its durable receipt.
 */
export const GetOperationQuerySchema = z.object({
  wait: z.coerce.number().int().min(0).max(MAX_WAIT_MS).optional(),
});
/** `POST /v1/operations?wait=<ms>`: submit, then wait as `GET …?wait` does (one round trip). */
export const SubmitQuerySchema = GetOperationQuerySchema;

/** `DELETE /v1/operations/:id` and `POST /v1/operations/:id/cancel`. */
export const CancelResultSchema = z.object({
  /** False when the operation was already final. */
  cancelled: z.boolean(),
  operation: OperationViewSchema,
});

/** A receipt, its inclusion proof (RFC 9162 §2.1.3) and the signed checkpoint the proof leads to. */
export const ReceiptBundleBodySchema = ReceiptBundleSchema;
export type ReceiptBundleBody = z.infer<typeof ReceiptBundleBodySchema>;

/** The answer of `POST /v1/verify`: `valid`, or why not. */
export const VerdictSchema = z.object({
  status: z.enum(['valid', 'invalid', 'inconclusive']),
  reason: z.string().optional(),
});

const treeSize = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** `GET /v1/checkpoint/consistency?from=&to=` (to: default the latest checkpoint). */
export const ConsistencyQuerySchema = z.object({ from: treeSize, to: treeSize.optional() });

/** A consistency proof (RFC 9162 §2.1.4) between two signed checkpoints. */
export const ConsistencyAnswerSchema = z.object({
  from: z.object({ treeSize: z.number().int(), checkpoint: z.string() }),
  to: z.object({ treeSize: z.number().int(), checkpoint: z.string() }),
  proof: z.object({ oldSize: z.number().int(), newSize: z.number().int(), hashes: z.array(z.string()) }),
});

/** `GET /v1/keys`: what an offline verifier trusts, with the tree sizes each key may sign. */
export const TrustedKeysSchema = z.object({
  origin: z.string(),
  keys: z.array(
    z.object({
      /** C2SP signed-note verifier key `name+hex(keyID)+base64(0x01||pub)`. */
      verifierKey: z.string(),
      fromSize: z.number().int().exactOptional(),
      untilSize: z.number().int().exactOptional(),
    }),
  ),
});
export type TrustedKeysBody = z.infer<typeof TrustedKeysSchema>;

/** `GET /v1/diagnostics?format=json|md|tar`. */
export const DiagnosticsQuerySchema = z.object({ format: z.enum(['json', 'md', 'tar']).default('json') });

/** `GET /v1/logs`: records after `afterSeq`, or since `sinceMs` (wall clock, epoch ms). */
export const LogsQuerySchema = z.object({
  sinceMs: z.coerce.number().int().min(0).optional(),
  afterSeq: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

/** A page of the node's log (`LogPage` of @unrdf/diagnostics). */
export const LogPageSchema = z
  .object({
    node: z.string(),
    records: z.array(z.record(z.string(), z.unknown())),
    lastSeq: z.number().int(),
    oldestAvailableSeq: z.number().int(),
    truncated: z.boolean(),
  })
  .loose();

/** `GET /v1/slo`: each SLO's status and burn rates (`SloStatus` of @unrdf/diagnostics). */
export const SloAnswerSchema = z.object({ slos: z.array(z.record(z.string(), z.unknown())) });

/** `GET /v1/cluster`: who leads and how far the log is; a single node is its own leader. */
export const ClusterViewSchema = z.object({
  nodeId: z.string(),
  mode: z.enum(['standalone', 'cluster']),
  role: z.enum(['standalone', 'leader', 'follower', 'candidate']),
  leaderId: z.string().nullable(),
  term: z.number().int(),
  /** Locally: the ledger's durable tree size. */
  commitIndex: z.number().int(),
  appliedIndex: z.number().int(),
  members: z.array(
    z.object({
      id: z.string(),
      role: z.string(),
      voter: z.boolean(),
      reachable: z.boolean(),
      commitIndex: z.number().int().nullable(),
      appliedIndex: z.number().int().nullable(),
    }),
  ),
  quorum: z.number().int(),
  /** How many voters may fail with the cluster still committing. */
  failureTolerance: z.number().int(),
});
export type ClusterView = z.infer<typeof ClusterViewSchema>;
