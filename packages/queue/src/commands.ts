import { z } from 'zod';

// Every state change of the queue is one of these commands. A command carries all
// the time and identity it needs (`at`, ids, the computed retry time), so applying
// it is a pure function of the store: the same sequence of commands gives the same
// state on every replica (the state-machine approach, Schneider 1990; the Raft log
// carries these commands in cluster mode).

/** Milliseconds since the Unix epoch (wall clock of the proposer, carried in the command). */
const EpochMs = z.number().int().nonnegative().max(8_640_000_000_000_000);
const OperationId = z.string().min(1).max(128);
/** An operation type name: letters, digits and `._:-`, like a metric name. */
export const TypeName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'use letters, digits and . _ : - (starting with a letter or digit)');
const FencingToken = z.number().int().positive();
/** Serialised JSON text (a payload, a result, an error). */
const JsonText = z.string().max(16 * 1024 * 1024);

export const EnqueueCommand = z.object({
  kind: z.literal('enqueue'),
  at: EpochMs,
  id: OperationId,
  type: TypeName,
  payload: JsonText,
  priority: z.number().int().min(-1000).max(1000),
  runAt: EpochMs,
  groupKey: z.string().min(1).max(200).nullable(),
  idempotencyKey: z.string().min(1).max(500).nullable(),
  maxAttempts: z.number().int().min(1).max(1000),
});

export const ClaimCommand = z.object({
  kind: z.literal('claim'),
  at: EpochMs,
  id: OperationId,
  /** The boot epoch of the executor taking the lease. */
  epoch: z.number().int().positive(),
});

export const CompleteCommand = z.object({
  kind: z.literal('complete'),
  at: EpochMs,
  id: OperationId,
  token: FencingToken,
  result: JsonText,
  /**
   * The operation's type, if the proposer knows it (the executor does): lets `apply`
   * finish the attempt with one guarded write instead of a read and a write. Optional
   * and checked: a wrong or missing type gives the same outcome, the slower way.
   */
  type: TypeName.optional(),
  /**
   * What the handler asked the store's extensions to apply with this completion, in the same
   * transaction (JSON; `HandlerContext.setEffects`). Not stored with the operation: the
   * extensions read it from the command, so it travels with the command through a log.
   */
  effects: JsonText.optional(),
});

export const FailCommand = z.object({
  kind: z.literal('fail'),
  at: EpochMs,
  id: OperationId,
  token: FencingToken,
  error: JsonText,
  /** When to try again; null = no retry (dead letter). Ignored once attempts are used up. */
  retryAt: EpochMs.nullable(),
});

/** Gives a lease back without spending the attempt (graceful shutdown). */
export const ReleaseCommand = z.object({
  kind: z.literal('release'),
  at: EpochMs,
  id: OperationId,
  token: FencingToken,
});

export const CancelCommand = z.object({ kind: z.literal('cancel'), at: EpochMs, id: OperationId });

export const RedriveCommand = z.object({
  kind: z.literal('redrive'),
  at: EpochMs,
  id: OperationId,
  runAt: EpochMs,
});

export const PauseCommand = z.object({ kind: z.literal('pause'), at: EpochMs, type: TypeName });
export const ResumeCommand = z.object({ kind: z.literal('resume'), at: EpochMs, type: TypeName });

/** Starts a new boot epoch: leases of older epochs belong to a process that is gone. */
export const BootCommand = z.object({ kind: z.literal('boot'), at: EpochMs });

export const UpsertScheduleCommand = z.object({
  kind: z.literal('upsert-schedule'),
  at: EpochMs,
  name: z.string().min(1).max(200),
  type: TypeName,
  cron: z.string().min(1).max(200),
  timezone: z.string().min(1).max(100).nullable(),
  payload: JsonText,
  priority: z.number().int().min(-1000).max(1000),
  maxAttempts: z.number().int().min(1).max(1000),
  nextRunAt: EpochMs.nullable(),
});

export const RemoveScheduleCommand = z.object({
  kind: z.literal('remove-schedule'),
  at: EpochMs,
  name: z.string().min(1).max(200),
});

/** Enqueues the run of a schedule due at `runAt` (once: keyed by name and runAt) and moves it on. */
export const FireScheduleCommand = z.object({
  kind: z.literal('fire-schedule'),
  at: EpochMs,
  name: z.string().min(1).max(200),
  id: OperationId,
  runAt: EpochMs,
  nextRunAt: EpochMs.nullable(),
});

/** Retention: deletes up to `limit` final operations that finished before `finishedBefore`. */
export const PurgeCommand = z.object({
  kind: z.literal('purge'),
  at: EpochMs,
  finishedBefore: EpochMs,
  limit: z.number().int().min(1).max(100_000),
});

/**
 * Every state change of the queue, as data: what a replicated log carries. Parse a
 * command read back from a log with `Command.parse(json)`.
 * @throws z.ZodError from `parse` when the value is not a command
 */
export const Command = z.discriminatedUnion('kind', [
  EnqueueCommand,
  ClaimCommand,
  CompleteCommand,
  FailCommand,
  ReleaseCommand,
  CancelCommand,
  RedriveCommand,
  PauseCommand,
  ResumeCommand,
  BootCommand,
  UpsertScheduleCommand,
  RemoveScheduleCommand,
  FireScheduleCommand,
  PurgeCommand,
]);
export type Command = z.infer<typeof Command>;
export type CommandKind = Command['kind'];
export type CommandOf<K extends CommandKind> = Extract<Command, { kind: K }>;

/** Where an operation is in its life. `completed`, `dead` and `cancelled` are final. */
export type OperationState = 'pending' | 'running' | 'completed' | 'dead' | 'cancelled';
export const FINAL_STATES: ReadonlySet<OperationState> = new Set(['completed', 'dead', 'cancelled']);

/** An operation as stored: JSON fields still as text. */
export interface OperationRow {
  readonly seq: number;
  readonly id: string;
  readonly type: string;
  readonly state: OperationState;
  readonly payload: string;
  readonly priority: number;
  readonly groupKey: string | null;
  readonly idempotencyKey: string | null;
  readonly runAt: number;
  readonly createdAt: number;
  readonly maxAttempts: number;
  /** Attempts since enqueue or the last redrive. */
  readonly attempts: number;
  /** The fencing token of the latest claim (0: never claimed); only increases. */
  readonly token: number;
  /** The boot epoch that holds the current lease (running only). */
  readonly epoch: number | null;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly result: string | null;
  readonly error: string | null;
  readonly schedule: string | null;
}

/** What a successful claim returns: what the executor needs to run the attempt. */
export interface ClaimedOperation {
  readonly id: string;
  readonly type: string;
  readonly payload: string;
  readonly groupKey: string | null;
  readonly idempotencyKey: string | null;
  readonly maxAttempts: number;
  /** This attempt's number (1-based, since enqueue or the last redrive). */
  readonly attempts: number;
  /** This attempt's fencing token. */
  readonly token: number;
  /** When it was due (wait time = claim time - runAt). */
  readonly runAt: number;
}

/** Why a command changed nothing. */
export type Rejection =
  | 'not-found'
  | 'not-pending'
  | 'not-due'
  | 'not-running'
  | 'stale-token'
  | 'not-dead'
  | 'already-final';

export interface CommandResults {
  enqueue: { readonly created: boolean; readonly operation: OperationRow };
  claim:
    | { readonly claimed: true; readonly operation: ClaimedOperation }
    | { readonly claimed: false; readonly rejection: Rejection };
  complete: { readonly applied: boolean; readonly rejection?: Rejection };
  fail: { readonly applied: boolean; readonly state?: 'pending' | 'dead'; readonly rejection?: Rejection };
  release: { readonly applied: boolean; readonly rejection?: Rejection };
  cancel: { readonly applied: boolean; readonly previous?: OperationState; readonly rejection?: Rejection };
  redrive: { readonly applied: boolean; readonly rejection?: Rejection };
  pause: { readonly applied: boolean };
  resume: { readonly applied: boolean };
  boot: { readonly epoch: number };
  'upsert-schedule': { readonly created: boolean };
  'remove-schedule': { readonly applied: boolean };
  'fire-schedule': { readonly applied: boolean; readonly created: boolean; readonly operationId: string | null };
  purge: { readonly deleted: number };
}
export type ResultOf<K extends CommandKind> = CommandResults[K];
export type CommandResult = CommandResults[CommandKind];

/** A committed change of one operation (or type), emitted after the transaction commits. */
export type Transition =
  | {
      readonly kind: 'enqueued' | 'retry-scheduled' | 'redriven' | 'released';
      readonly at: number;
      readonly id: string;
      readonly type: string;
      readonly seq: number;
      readonly priority: number;
      readonly groupKey: string | null;
      readonly runAt: number;
      readonly createdAt: number;
      readonly attempts: number;
      readonly error?: string;
    }
  | {
      readonly kind: 'claimed';
      readonly at: number;
      readonly id: string;
      readonly type: string;
      readonly token: number;
      readonly attempt: number;
      readonly runAt: number;
      readonly groupKey: string | null;
    }
  | {
      readonly kind: 'completed' | 'dead' | 'cancelled';
      readonly at: number;
      readonly id: string;
      readonly type: string;
      readonly token: number;
      readonly previous: OperationState;
      readonly error?: string;
    }
  | { readonly kind: 'paused' | 'resumed'; readonly at: number; readonly type: string };

export type TransitionKind = Transition['kind'];
