import type { Meter } from '@opentelemetry/api';
import { z } from 'zod';
import { TypeName } from './commands.js';
import type { CommitPath } from './commit-path.js';
import type { ApplyExtension, StateMachine } from './state-machine.js';

/** What a handler receives besides its payload. */
export interface HandlerContext {
  readonly id: string;
  readonly type: string;
  /** 1 for the first attempt (since enqueue or the last redrive). */
  readonly attempt: number;
  readonly maxAttempts: number;
  /**
   * The fencing token of this attempt: it only grows per operation. Pass it to the
   * systems you write to so they can refuse a write from an older attempt.
   */
  readonly token: number;
  /** A stable key for your side effects: the operation's idempotency key, or its id. */
  readonly idempotencyKey: string;
  readonly groupKey: string | null;
  /** When this attempt was due (epoch ms, the queue's clock): it waited from then until now. */
  readonly runAt: number;
  /** Aborts on timeout, on cancel and when the queue closes: stop promptly when it fires. */
  readonly signal: AbortSignal;
  /**
   * Hands JSON data to the store's extensions: it rides on this attempt's `complete` command
   * (`effects`) and is applied in the same transaction as the completion, or not at all. An
   * extension may refuse it with `CompletionRefusedError`; the attempt then fails. The last call
   * wins; a failed attempt's effects are dropped.
   */
  setEffects(effects: unknown): void;
}

/** Runs one operation; its resolved value (JSON) becomes the result. Throw to fail the attempt. */
// biome-ignore lint/suspicious/noExplicitAny: handlers choose their own payload type
export type Handler = (payload: any, context: HandlerContext) => unknown;

/** What a reconcile hook decides about an operation that was running when the process died. */
export type ReconcileDecision =
  | { readonly outcome: 'completed'; readonly result?: unknown }
  | { readonly outcome: 'retry' }
  | { readonly outcome: 'failed'; readonly message?: string };

/** Stored fields of an operation a reconcile hook may look at. */
export interface ReconcileInput {
  readonly id: string;
  readonly type: string;
  readonly payload: unknown;
  readonly token: number;
  readonly attempt: number;
  readonly idempotencyKey: string;
}

export type ReconcileHook = (operation: ReconcileInput) => ReconcileDecision | Promise<ReconcileDecision>;

/** A wall clock in epoch milliseconds; injected so tests and simulations control time. */
export interface Clock {
  now(): number;
}

const isFunction = (value: unknown): boolean => typeof value === 'function';
const positiveInt = (max: number) => z.number().int().min(1).max(max);
const MAX_TIMER_MS = 2_147_483_647;

export const TypeOptionsSchema = z
  .strictObject({
    handler: z.custom<Handler>(isFunction, 'must be a function (payload, context) => result'),
    /** At most this many of this type run at once (default: the global limit). */
    concurrency: positiveInt(100_000).optional(),
    /** At most this many per group key run at once (default: no limit; groups are served round-robin). */
    groupConcurrency: positiveInt(100_000).optional(),
    /**
     * Types with the same lane share their group keys: one group's operations are served
     * in enqueue order whatever their type (within a priority), and its groupConcurrency,
     * which must be the same for every type of the lane, counts them together. E.g.
     * create and update of one entity, grouped by its id, with groupConcurrency 1: the
     * update runs after the create's outcome is committed. Default: the type's own lane.
     */
    lane: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/, 'expected a lane name (letters, digits and ._:-, 1-100 chars)')
      .optional(),
    /** Abort the handler's signal after this long (default 60 s). */
    timeoutMs: positiveInt(MAX_TIMER_MS).optional(),
    /** Attempts before the dead-letter state (default 5). */
    maxAttempts: positiveInt(1000).optional(),
    backoff: z
      .strictObject({
        baseMs: z.number().int().min(0).max(MAX_TIMER_MS).optional(),
        maxMs: z.number().int().min(0).max(MAX_TIMER_MS).optional(),
      })
      .optional(),
    /** What happens to an operation that was running when the process died (default `retry`). */
    crashPolicy: z.enum(['retry', 'reconcile', 'fail']).optional(),
    reconcile: z.custom<ReconcileHook>(isFunction, 'must be a function').optional(),
    /**
     * The handler acts on nothing outside the store: its only effects are its result and
     * what it hands `setEffects`. Its operations may then start before their enqueue
     * commits (claimed on enqueue, without an idempotency key), and a handler that settles
     * within that turn commits its outcome in the same transaction: one commit and one
     * fsync per operation. A crash before that commit leaves no trace. Needs crashPolicy
     * `retry` (default false).
     */
    storeOnly: z.boolean().optional(),
    /** Validates payloads at enqueue: a failure is an InvalidInputError and nothing is written. */
    payloadSchema: z.custom<z.ZodType>((value) => value instanceof z.ZodType, 'must be a zod schema').optional(),
    /** Default priority of this type's operations (higher runs first). */
    priority: z.number().int().min(-1000).max(1000).optional(),
  })
  .refine((o) => o.crashPolicy !== 'reconcile' || o.reconcile !== undefined, {
    message: "crashPolicy 'reconcile' needs a reconcile hook",
    path: ['reconcile'],
  })
  .refine((o) => o.storeOnly !== true || (o.crashPolicy ?? 'retry') === 'retry', {
    message: "storeOnly needs crashPolicy 'retry' (its handler may run for an operation a crash then loses)",
    path: ['storeOnly'],
  });
export type TypeOptions = z.input<typeof TypeOptionsSchema>;

export const QueueOptionsSchema = z.strictObject({
  /** The SQLite file of the store (created if missing). */
  path: z.string().min(1),
  types: z.record(TypeName, TypeOptionsSchema).refine((t) => Object.keys(t).length > 0, 'register at least one type'),
  /** Operations running at once, all types together (default 1000). */
  concurrency: positiveInt(100_000).optional(),
  /** Keep final operations (and their idempotency keys) this long (default 7 days). */
  retentionMs: z.number().int().min(0).optional(),
  /** How often retention and WAL checkpoints run (default 60 s). */
  maintenanceIntervalMs: positiveInt(MAX_TIMER_MS).optional(),
  /** Group-commit window: 0 = one transaction per event-loop turn (default), up to 2 ms. */
  groupCommitWindowMs: z.number().int().min(0).max(2).optional(),
  /** How long close() lets abandoned handlers settle after aborting them (default 1 s). */
  abortGraceMs: z.number().int().min(0).max(60_000).optional(),
  /**
   * `fsync` (default): every acknowledged commit is on disk; the WAL is fsynced after
   * COMMIT on the thread pool, so the event loop never waits for the disk.
   * `fsync-in-commit`: SQLite synchronous=FULL, the fsync inside COMMIT (blocks the loop).
   * `none`: no fsync (survives a process crash, not a power cut); for tests and caches.
   */
  durability: z.enum(['fsync', 'fsync-in-commit', 'none']).optional(),
  clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null && isFunction((v as Clock).now)).optional(),
  /** Uniform [0, 1) for retry jitter (default Math.random). */
  random: z.custom<() => number>(isFunction).optional(),
  /** Operation ids (default UUIDv7). */
  generateId: z.custom<() => string>(isFunction).optional(),
  /** Replaces the local group-commit path (the daemon passes the Raft log here). */
  commitPath: z.custom<(stateMachine: StateMachine) => CommitPath>(isFunction).optional(),
  extensions: z
    .array(
      z.custom<ApplyExtension>(
        (v) => typeof v === 'object' && v !== null && isFunction((v as ApplyExtension).afterApply),
      ),
    )
    .optional(),
  /** OpenTelemetry meter (default: the global one, `@unrdf/queue`). */
  meter: z.custom<Meter>((v) => typeof v === 'object' && v !== null).optional(),
  /**
   * A handler's outcome could not be committed: the store failed (an I/O error, closed)
   * or an extension threw. The operation stays `running` in the store, and the next open
   * finishes it by its type's crash policy. For logs and alerts; it must not throw.
   */
  onSettleError: z
    .custom<(error: unknown, context: { readonly id: string; readonly kind: 'complete' | 'fail' | 'release' }) => void>(
      isFunction,
    )
    .optional(),
});
export type QueueOptions = z.input<typeof QueueOptionsSchema>;

/** A delay in ms, up to 10 years. */
const DelayMs = z
  .number()
  .int()
  .min(0)
  .max(10 * 365 * 86_400_000);

export const EnqueueOptionsSchema = z
  .strictObject({
    priority: z.number().int().min(-1000).max(1000).optional(),
    delayMs: DelayMs.optional(),
    runAt: z.union([z.date(), z.number().int().nonnegative()]).optional(),
    /** Operations with the same group key share the type's groupConcurrency, served round-robin. */
    groupKey: z.string().min(1).max(200).optional(),
    /** Unique per type while the operation is retained: a duplicate enqueue returns the original. */
    idempotencyKey: z.string().min(1).max(500).optional(),
    maxAttempts: positiveInt(1000).optional(),
  })
  .refine((o) => o.delayMs === undefined || o.runAt === undefined, 'give delayMs or runAt, not both');
export type EnqueueOptions = z.input<typeof EnqueueOptionsSchema>;

export const ScheduleOptionsSchema = z.strictObject({
  type: TypeName,
  /** A cron pattern (5 or 6 fields, croner syntax), e.g. `*\/5 * * * *`. */
  cron: z.string().min(1).max(200),
  timezone: z.string().min(1).max(100).optional(),
  payload: z.unknown().optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  maxAttempts: positiveInt(1000).optional(),
});
export type ScheduleOptions = z.input<typeof ScheduleOptionsSchema>;

export const RedriveOptionsSchema = z.strictObject({
  /** Run again this long from now (default 0), as enqueue's delayMs. */
  delayMs: DelayMs.optional(),
});

export const CloseOptionsSchema = z.strictObject({
  /** How long to let running handlers finish before aborting them (default 10 s). */
  drainMs: z.number().int().min(0).max(MAX_TIMER_MS).optional(),
});
export type CloseOptions = z.input<typeof CloseOptionsSchema>;
