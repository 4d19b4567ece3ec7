import { resolve } from 'node:path';
import type { Meter } from '@opentelemetry/api';
import { SloDefinitionSchema } from '@unrdf/diagnostics/wire';
import type { ApplyExtension } from '@unrdf/queue';
import { z } from 'zod';
import { InvalidInputError } from './errors.js';

/** What a daemon handler receives besides its input. */
export interface DaemonHandlerContext {
  readonly id: string;
  readonly type: string;
  /** The entity the operation acts on. */
  readonly subject: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The attempt's fencing token (only grows): pass it to what you write so it can refuse stale writers. */
  readonly token: number;
  /** Stable across attempts: the operation's idempotency key, or its id. */
  readonly idempotencyKey: string;
  readonly nodeId: string;
  /** Hex of the input digest computed at submit (the one the receipt commits to). */
  readonly inputDigest: string;
  /**
   * What the type's `inputDigest` prepared at submit (see {@link PreparedDigest}), when this
   * process accepted the operation and still holds it: undefined after a restart, for a
   * retried attempt, or once evicted. A handler must work without it.
   */
  readonly prepared?: unknown;
  /** Aborts on timeout, cancel and shutdown: stop promptly when it fires. */
  readonly signal: AbortSignal;
  /**
   * Hands JSON data to the daemon's `extensions`: applied in the same durable commit as this
   * attempt's completion and receipt, or not at all (see @unrdf/queue `setEffects`).
   */
  setEffects(effects: unknown): void;
}

/**
 * What an `inputDigest` may return instead of the bare digest: the digest with work done
 * on the way (e.g. the canonical form it hashed), handed to the handler as `ctx.prepared`
 * so it need not redo it. `prepared` must follow from the digest (two inputs of one type
 * with one digest may swap their prepared values) and be structured-cloneable; `bytes`
 * (its approximate size) bounds what the daemon keeps.
 */
export interface PreparedDigest {
  readonly digest: Uint8Array;
  readonly prepared: unknown;
  readonly bytes: number;
}

/** Runs one operation; its resolved value (JSON) is the output. Throw to fail the attempt. */
// biome-ignore lint/suspicious/noExplicitAny: each handler chooses its input type (validate it with inputSchema)
export type DaemonHandler = (input: any, context: DaemonHandlerContext) => unknown;

/** One member of a batch operation, as its receipt commits to it. */
export interface BatchMember {
  /** The member's own operation type (e.g. create, update, delete). */
  readonly type: string;
  readonly subject: string;
  readonly inputDigest: Uint8Array;
  readonly outputDigest: Uint8Array | null;
}

const isFunction = (v: unknown) => typeof v === 'function';
const MAX_TIMER_MS = 2_147_483_647;
const positiveInt = (max: number) => z.number().int().min(1).max(max);
/** Retry delays: exponential from baseMs, capped at maxMs, with full jitter (see @unrdf/queue). */
const Backoff = z.strictObject({
  baseMs: z.number().int().min(0).max(MAX_TIMER_MS).optional(),
  maxMs: z.number().int().min(0).max(MAX_TIMER_MS).optional(),
});

/**
 * How the daemon runs and proves one operation type. Digests default to SHA-256 of the
 * RFC 8785 canonical JSON of the input and of the output.
 */
export const HandlerPolicySchema = z.strictObject({
  /** Validates the input at submit: a failure is an InvalidInputError and nothing is written. */
  inputSchema: z.custom<z.ZodType>((v) => v instanceof z.ZodType, 'must be a zod schema').optional(),
  /**
   * The receipt's inputDigest: computed once at submit, with the operation's subject and
   * type (it may throw InvalidInputError to refuse the input).
   */
  inputDigest: z
    .custom<
      (input: unknown, operation?: { readonly subject: string; readonly type: string }) => Uint8Array | PreparedDigest
    >(isFunction)
    .optional(),
  /** The receipt's outputDigest from the handler's output; null when it produced nothing. */
  outputDigest: z.custom<(output: unknown) => Uint8Array | null>(isFunction).optional(),
  /** Makes the receipt a batch receipt committing to these members (from the input and output). */
  batchMembers: z.custom<(input: unknown, output: unknown) => readonly BatchMember[]>(isFunction).optional(),
  /**
   * `subject`: operations on one subject run one at a time, in submission order, across
   * every type serialised by subject (each starts once the previous outcome is committed;
   * subjects are served round-robin).
   */
  serialize: z.enum(['none', 'subject']).optional(),
  concurrency: positiveInt(100_000).optional(),
  timeoutMs: positiveInt(MAX_TIMER_MS).optional(),
  maxAttempts: positiveInt(1000).optional(),
  backoff: Backoff.optional(),
  /** What happens to an operation that was running when the process died (default `retry`). */
  crashPolicy: z.enum(['retry', 'fail']).optional(),
  /**
   * The handler acts on nothing outside the daemon's store (its only effects are its output
   * and `setEffects`): it may start before its submission commits, and a quick one commits
   * its outcome and receipt with it, one commit per operation (see @unrdf/queue `storeOnly`).
   * Needs crashPolicy `retry`.
   */
  storeOnly: z.boolean().optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
});
export type HandlerPolicy = z.input<typeof HandlerPolicySchema>;

/** A handler with its policy: what `handlers` options and handler modules export. */
export const HandlerDefinitionSchema = HandlerPolicySchema.extend({
  handler: z.custom<DaemonHandler>(isFunction, 'must be a function (input, context) => output'),
});
export type HandlerDefinition = z.input<typeof HandlerDefinitionSchema>;

/** An operation type name: letters, digits and `._:-` (as in @unrdf/queue and the receipt format). */
export const OperationTypeName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'use letters, digits and . _ : - (starting with a letter or digit)');

const NodeId = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'use 1-128 letters, digits and . _ : -');

export const DaemonOptionsSchema = z.strictObject({
  /** Directory of the store, keys, logs and SLI counts (created if missing). */
  dataDir: z.string().min(1),
  /** This node's id in receipts, logs and metrics. */
  nodeId: NodeId.optional(),
  /** The ledger's C2SP origin line (default `unrdf-daemon/<nodeId>`); fixed for the life of the data directory. */
  origin: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\s+][^\n+]*$/u, 'one line, without "+", not starting with a space')
    .optional(),
  /** Directory of the ledger's signing keys (default `<dataDir>/keys`); a key is generated on first start. */
  keysDir: z.string().min(1).optional(),
  handlers: z.record(OperationTypeName, HandlerDefinitionSchema).optional(),
  /** Module paths (or file URLs) whose export `handlers` (or default export) is a record of handler definitions. */
  handlerModules: z.array(z.string().min(1)).optional(),
  /**
   * Code that runs inside the store's transaction of each command, with the receipts (see
   * @unrdf/queue `ApplyExtension`): keep data that must change in the same durable commit as an
   * operation's final state, such as what a handler's `setEffects` describes. Its tables live in
   * the daemon's store, so they travel with the commit path (the Raft log in cluster mode).
   */
  extensions: z
    .array(
      z.custom<ApplyExtension>(
        (v) => typeof v === 'object' && v !== null && isFunction((v as ApplyExtension).afterApply),
        'an ApplyExtension: { name, afterApply(context), … }',
      ),
    )
    .optional(),
  /** Handlers running at once, all types together (default 1000). */
  concurrency: positiveInt(100_000).optional(),
  /** Policy of every type unless the type sets its own. */
  defaults: z
    .strictObject({
      timeoutMs: positiveInt(MAX_TIMER_MS).optional(),
      maxAttempts: positiveInt(1000).optional(),
      backoff: Backoff.optional(),
    })
    .optional(),
  /** Keep finished operations (and idempotency keys) this long; receipts are kept forever (default 7 days). */
  retentionMs: z.number().int().min(0).optional(),
  /** See @unrdf/queue: `fsync` (default) syncs every acknowledged commit off the event loop. */
  durability: z.enum(['fsync', 'fsync-in-commit', 'none']).optional(),
  diagnostics: z
    .strictObject({
      logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
      /** Log records kept in memory. */
      logRingSize: z.number().int().positive().max(10_000_000).optional(),
      /** On-disk log segments older than this are deleted (default 10 minutes). */
      logRetentionMs: z.number().int().positive().optional(),
      /** SLOs evaluated by `slo()` and the report (default: SLO-SPEC.md). */
      slos: z
        .array(SloDefinitionSchema)
        .refine((list) => new Set(list.map((s) => s.id)).size === list.length, 'SLO ids must be unique')
        .optional(),
      /** Also write each log record (JSON line) here, e.g. process.stdout. */
      echo: z.custom<{ write(line: string): unknown }>((v) => typeof v === 'object' && v !== null).optional(),
    })
    .optional(),
  /** OpenTelemetry meter (default: the global API's; the app registers the SDK). */
  meter: z.custom<Meter>((v) => typeof v === 'object' && v !== null && 'createHistogram' in v).optional(),
  /** Wall clock (epoch ms) for commands, receipts and logs; injected by tests. */
  clock: z.custom<() => number>(isFunction).optional(),
  /** Operation ids (default: nanoid, 22 letters and digits, never starting with `-`). */
  generateId: z.custom<() => string>(isFunction).optional(),
  /** Software version reported in diagnostics. */
  version: z.string().min(1).max(64).optional(),
});
export type DaemonOptions = z.input<typeof DaemonOptionsSchema>;

export const DEFAULT_NODE_ID = 'node-1';
export const DEFAULT_CONCURRENCY = 1000;

/** Options with every default filled in, in one place. */
export interface ResolvedDaemonOptions {
  readonly dataDir: string;
  readonly nodeId: string;
  readonly origin: string;
  readonly keysDir: string;
  readonly storePath: string;
  readonly logDir: string;
  readonly sliPath: string;
  readonly lockPath: string;
  readonly handlers: Readonly<Record<string, HandlerDefinition>>;
  readonly handlerModules: readonly string[];
  readonly extensions: readonly ApplyExtension[];
  readonly concurrency: number;
  readonly defaults: NonNullable<DaemonOptions['defaults']>;
  readonly retentionMs: number | undefined;
  readonly durability: 'fsync' | 'fsync-in-commit' | 'none';
  readonly diagnostics: NonNullable<DaemonOptions['diagnostics']>;
  readonly meter: Meter | undefined;
  readonly clock: () => number;
  readonly generateId: (() => string) | undefined;
  readonly version: string;
}

/** The files of a data directory, relative to it. */
export const DATA_FILES = {
  store: 'daemon.db',
  keys: 'keys',
  logs: 'logs',
  sli: 'sli.db',
  lock: 'daemon.lock',
} as const;

/**
 * Parses daemon options once and fills in every default.
 * @throws {InvalidInputError} with `path: message` lines.
 */
export function resolveDaemonOptions(options: DaemonOptions): ResolvedDaemonOptions {
  const parsed = DaemonOptionsSchema.safeParse(options);
  if (!parsed.success) throw InvalidInputError.fromZod('daemon options', parsed.error);
  const o = parsed.data;
  const dataDir = resolve(o.dataDir);
  const nodeId = o.nodeId ?? DEFAULT_NODE_ID;
  return Object.freeze({
    dataDir,
    nodeId,
    origin: o.origin ?? `unrdf-daemon/${nodeId}`,
    keysDir: resolve(dataDir, o.keysDir ?? DATA_FILES.keys),
    storePath: resolve(dataDir, DATA_FILES.store),
    logDir: resolve(dataDir, DATA_FILES.logs),
    sliPath: resolve(dataDir, DATA_FILES.sli),
    lockPath: resolve(dataDir, DATA_FILES.lock),
    handlers: (options.handlers ?? {}) as Record<string, HandlerDefinition>,
    handlerModules: o.handlerModules ?? [],
    extensions: (options.extensions ?? []) as ApplyExtension[],
    concurrency: o.concurrency ?? DEFAULT_CONCURRENCY,
    defaults: o.defaults ?? {},
    retentionMs: o.retentionMs,
    durability: o.durability ?? 'fsync',
    diagnostics: o.diagnostics ?? {},
    meter: o.meter,
    clock: o.clock ?? Date.now,
    generateId: o.generateId,
    version: o.version ?? '0.1.0',
  });
}

/** What `submit` takes. */
export const SubmitSchema = z.strictObject({
  type: OperationTypeName,
  /** The entity the operation acts on (an IRI for the RDF handlers). */
  subject: z
    .string()
    .min(1)
    .max(1024)
    .refine((s) => s.isWellFormed(), 'must be well-formed Unicode'),
  input: z.unknown().optional(),
  /** Unique per type while the operation is retained: a duplicate submit returns the original. */
  idempotencyKey: z.string().min(1).max(500).optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  /** Run at or after this time (epoch ms or ISO 8601). */
  runAt: z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true })]).optional(),
  /** Operations with one group key share a fair round-robin slot (default: per subject for serialized types). */
  groupKey: z.string().min(1).max(200).optional(),
  maxAttempts: positiveInt(1000).optional(),
});
export type SubmitRequest = z.input<typeof SubmitSchema>;

/** What an offline verifier needs: a receipt, its inclusion proof, and the signed checkpoint it leads to. */
export const ReceiptBundleSchema = z.strictObject({
  receipt: z.unknown(),
  proof: z.unknown(),
  checkpoint: z
    .string()
    .min(1)
    .max(64 * 1024),
});
