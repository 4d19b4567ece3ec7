import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  type Attributes,
  type Histogram,
  metrics,
  type ObservableCounter,
  type ObservableGauge,
  type ObservableResult,
} from '@opentelemetry/api';
import { Cron } from 'croner';
import type { z } from 'zod';
import type {
  ClaimedOperation,
  CommandKind,
  CommandOf,
  OperationRow,
  OperationState,
  ResultOf,
  Transition,
} from './commands.js';
import { type CommitPath, createGroupCommitPath } from './commit-path.js';
import {
  CompletionRefusedError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  OperationAbortedError,
  OperationTimeoutError,
  QueueClosedError,
  UnknownTypeError,
  UnrecoverableError,
} from './errors.js';
import { type Backoff, backoffDelay } from './internal/backoff.js';
import { type ReadyEntry, ReadyIndex } from './internal/ready-index.js';
import { uuidV7 } from './internal/uuid-v7.js';
import {
  type Clock,
  type CloseOptions,
  CloseOptionsSchema,
  type EnqueueOptions,
  EnqueueOptionsSchema,
  type Handler,
  type HandlerContext,
  type QueueOptions,
  QueueOptionsSchema,
  type ReconcileDecision,
  type ReconcileHook,
  RedriveOptionsSchema,
  type ScheduleOptions,
  ScheduleOptionsSchema,
} from './options.js';
import { createStateMachine, type PendingRow, type StateMachine } from './state-machine.js';

/** An operation as the public API shows it (JSON fields parsed). */
export interface Operation {
  readonly id: string;
  readonly type: string;
  readonly state: OperationState;
  readonly payload: unknown;
  readonly priority: number;
  readonly groupKey: string | null;
  readonly idempotencyKey: string | null;
  /** When it is (or was) due, epoch ms. */
  readonly runAt: number;
  readonly createdAt: number;
  readonly maxAttempts: number;
  readonly attempts: number;
  /** Fencing token of the latest claim; for a completed operation, the attempt that won. */
  readonly token: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly result: unknown;
  readonly error: { readonly name: string; readonly message: string; readonly code?: string } | null;
  /** The schedule that enqueued it, if any. */
  readonly schedule: string | null;
}

/** Every committed transition, as emitted to listeners (after the commit). */
export type QueueEvent = Transition;

/** A point-in-time view for diagnostics and benchmarks. */
export interface QueueStats {
  readonly epoch: number;
  /** Due and waiting for a slot. */
  readonly ready: number;
  /** Not yet due (delays, retry backoff). */
  readonly delayed: number;
  /** Handlers running (not yet settled, even past their timeout). */
  readonly inFlight: number;
  /** Leases held: claims being committed, claimed operations about to start, running handlers. */
  readonly leased: number;
  /** Transitions since open, by kind. */
  readonly totals: Readonly<
    Record<'enqueued' | 'completed' | 'retried' | 'dead' | 'cancelled' | 'staleOutcomes', number>
  >;
  /** Event-loop delay P99 since open, ms. */
  readonly eventLoopDelayP99Ms: number;
}

export interface ScheduleInfo {
  readonly name: string;
  readonly type: string;
  readonly cron: string;
  readonly nextRunAt: number | null;
}

/** A durable embedded operation queue. See `openQueue`. */
export interface Queue extends AsyncDisposable {
  /** The boot epoch of this instance (leases of older epochs were recovered at open). */
  readonly epoch: number;
  /**
   * Adds an operation; resolves once it is durable. With an `idempotencyKey` already
   * used for this type, resolves with the original operation instead.
   * @throws InvalidInputError (bad options or payload; nothing written), UnknownTypeError, QueueClosedError
   */
  enqueue(type: string, payload?: unknown, options?: EnqueueOptions): Promise<Operation>;
  /** Reads an operation from the store. */
  get(id: string): Operation | undefined;
  /** Reads only an operation's state (cheaper than `get`: no payload or result). */
  state(id: string): OperationState | undefined;
  /** Cancels a pending or running operation (a running handler's signal aborts). Resolves false if already final. @throws NotFoundError */
  cancel(id: string): Promise<boolean>;
  /** Moves a dead operation back to pending with fresh attempts. @throws NotFoundError, InvalidStateError */
  redrive(id: string, options?: { readonly delayMs?: number }): Promise<void>;
  /** Stops claiming operations of `type` (running ones finish); persisted. */
  pause(type: string): Promise<void>;
  resume(type: string): Promise<void>;
  /** Creates or replaces a recurring schedule. @throws InvalidInputError (bad cron), UnknownTypeError */
  schedule(name: string, options: ScheduleOptions): Promise<ScheduleInfo>;
  unschedule(name: string): Promise<boolean>;
  /** Hears every committed transition. Returns the unsubscribe. */
  onEvent(listener: (event: QueueEvent) => void): () => void;
  stats(): QueueStats;
  /**
   * Stops claiming, lets running handlers finish for `drainMs`, aborts the rest and
   * gives their leases back (they run again later), commits everything, closes the store.
   */
  close(options?: CloseOptions): Promise<void>;
}

interface ResolvedType {
  readonly name: string;
  readonly handler: Handler;
  readonly concurrency: number;
  readonly groupConcurrency: number;
  /** The ready lane: the type's name, or NUL + its `lane` option (no type name starts with NUL). */
  readonly lane: string;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly crashPolicy: 'retry' | 'reconcile' | 'fail';
  readonly reconcile: ReconcileHook | undefined;
  readonly storeOnly: boolean;
  readonly payloadSchema: z.ZodType | undefined;
  readonly priority: number;
}

interface ResolvedQueueOptions {
  readonly path: string;
  readonly types: ReadonlyMap<string, ResolvedType>;
  readonly concurrency: number;
  readonly retentionMs: number;
  readonly maintenanceIntervalMs: number;
  readonly groupCommitWindowMs: number;
  readonly abortGraceMs: number;
  readonly durability: 'fsync' | 'fsync-in-commit' | 'none';
  readonly clock: Clock;
  readonly random: () => number;
  readonly generateId: (() => string) | undefined;
  readonly onSettleError: QueueOptions['onSettleError'];
}

interface RunningOperation {
  readonly token: number;
  readonly controller: AbortController;
  /** The queue gave the lease back during close; the handler's outcome no longer counts. */
  abandoned: boolean;
}

export const DEFAULT_CONCURRENCY = 1000;
export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, maxMs: 300_000 };
const DEFAULT_RETENTION_MS = 7 * 86_400_000;
const DEFAULT_MAINTENANCE_MS = 60_000;
const DEFAULT_DRAIN_MS = 10_000;
const DEFAULT_ABORT_GRACE_MS = 1000;
/**
 * Rows per retention purge. Small, so that each batch (its own transaction among the
 * traffic) holds the event loop for a millisecond or two, not tens.
 */
const PURGE_BATCH = 500;
/** A maintenance pass purges for at most this share of its interval; the next pass carries on. */
const PURGE_SHARE_OF_INTERVAL = 0.5;
const MAX_TIMER_MS = 2_147_483_647;
const MAX_ERROR_MESSAGE = 4096;
/** A refused schedule fire is tried again after this long, doubling up to SCHEDULE_RETRY_MAX_MS. */
const SCHEDULE_RETRY_MS = 1000;
const SCHEDULE_RETRY_MAX_MS = 60_000;

/** Backs a schedule's next fire attempt off after a refusal (1 s, doubling, at most a minute). */
function backOff(entry: { retryAt?: number | undefined; retryMs?: number | undefined }, now: number): void {
  entry.retryMs = Math.min((entry.retryMs ?? SCHEDULE_RETRY_MS / 2) * 2, SCHEDULE_RETRY_MAX_MS);
  entry.retryAt = now + entry.retryMs;
}

/** Leases may run this many times the handler limits ahead (see #dispatch). */
const LEASE_LOOKAHEAD = 2;

/**
 * How far a type's leases may run ahead of its limits. A claim waiting for a slot is in
 * the store an attempt that began: after a crash, its crash policy applies to it. Under
 * `retry` it runs again; a type that must not re-run (`fail`, `reconcile`) is claimed only
 * when it can start, so only an attempt that really began is failed or reconciled.
 */
const lookaheadOf = (type: ResolvedType): number => (type.crashPolicy === 'retry' ? LEASE_LOOKAHEAD : 1);

/** Counts per type and per (lane, group), for slots and leases. */
class SlotCounts {
  total = 0;
  readonly #laneOf: (type: string) => string;
  readonly #byType = new Map<string, number>();
  readonly #byGroup = new Map<string, number>();

  constructor(laneOf: (type: string) => string) {
    this.#laneOf = laneOf;
  }

  ofType(type: string): number {
    return this.#byType.get(type) ?? 0;
  }

  /** Operations of `group` in the lane of `type`, of any type of that lane. */
  ofGroup(type: string, group: string): number {
    return this.#byGroup.get(`${this.#laneOf(type)}\u0000${group}`) ?? 0;
  }

  add(type: string, group: string): void {
    this.total++;
    this.#byType.set(type, this.ofType(type) + 1);
    if (group !== '') {
      const key = `${this.#laneOf(type)}\u0000${group}`;
      this.#byGroup.set(key, (this.#byGroup.get(key) ?? 0) + 1);
    }
  }

  remove(type: string, group: string): void {
    this.total--;
    this.#byType.set(type, this.ofType(type) - 1);
    if (group !== '') {
      const key = `${this.#laneOf(type)}\u0000${group}`;
      const n = (this.#byGroup.get(key) ?? 1) - 1;
      if (n <= 0) this.#byGroup.delete(key);
      else this.#byGroup.set(key, n);
    }
  }
}

function resolveOptions(input: QueueOptions): ResolvedQueueOptions {
  const parsed = QueueOptionsSchema.safeParse(input);
  if (!parsed.success) throw InvalidInputError.fromZod('queue options', parsed.error);
  const o = parsed.data;
  const concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
  const types = new Map<string, ResolvedType>();
  for (const [name, t] of Object.entries(o.types)) {
    types.set(
      name,
      Object.freeze({
        name,
        handler: t.handler,
        concurrency: Math.min(t.concurrency ?? concurrency, concurrency),
        groupConcurrency: t.groupConcurrency ?? Number.POSITIVE_INFINITY,
        lane: t.lane === undefined ? name : `\u0000${t.lane}`,
        timeoutMs: t.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxAttempts: t.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        backoff: Object.freeze({
          baseMs: t.backoff?.baseMs ?? DEFAULT_BACKOFF.baseMs,
          maxMs: t.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs,
        }),
        crashPolicy: t.crashPolicy ?? 'retry',
        reconcile: t.reconcile,
        storeOnly: t.storeOnly ?? false,
        payloadSchema: t.payloadSchema,
        priority: t.priority ?? 0,
      }),
    );
  }
  const laneLimits = new Map<string, ResolvedType>();
  for (const type of types.values()) {
    const first = laneLimits.get(type.lane);
    if (first === undefined) laneLimits.set(type.lane, type);
    else if (first.groupConcurrency !== type.groupConcurrency) {
      const message = `the types of lane "${type.lane.slice(1)}" share their groups, so their groupConcurrency must be equal (${first.name}: ${first.groupConcurrency}, ${type.name}: ${type.groupConcurrency})`;
      const issue = customIssue(message, ['types', type.name, 'groupConcurrency']);
      throw new InvalidInputError('queue options', [issue], `types.${type.name}.groupConcurrency: ${message}`);
    }
  }
  return Object.freeze({
    path: o.path,
    types,
    concurrency,
    retentionMs: o.retentionMs ?? DEFAULT_RETENTION_MS,
    maintenanceIntervalMs: o.maintenanceIntervalMs ?? DEFAULT_MAINTENANCE_MS,
    groupCommitWindowMs: o.groupCommitWindowMs ?? 0,
    abortGraceMs: o.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS,
    durability: o.durability ?? 'fsync',
    clock: o.clock ?? { now: Date.now },
    random: o.random ?? Math.random,
    generateId: o.generateId,
    onSettleError: o.onSettleError,
  });
}

/** Serialises what a handler threw (anything, not only Errors) into the stored error JSON. */
function errorJson(error: unknown): string {
  let name = 'NonError';
  let message: string;
  let code: string | undefined;
  if (error instanceof Error) {
    name = error.name;
    message = error.message;
    const c = (error as { code?: unknown }).code;
    if (typeof c === 'string') code = c;
  } else {
    try {
      message = typeof error === 'string' ? error : (JSON.stringify(error) ?? String(error));
    } catch {
      message = Object.prototype.toString.call(error);
    }
  }
  if (message.length > MAX_ERROR_MESSAGE) message = `${message.slice(0, MAX_ERROR_MESSAGE)}…`;
  return JSON.stringify(code === undefined ? { name, message } : { name, message, code });
}

function parseJson(text: string | null): unknown {
  return text === null ? null : JSON.parse(text);
}

function toOperation(row: OperationRow, payload?: { value: unknown }): Operation {
  return {
    id: row.id,
    type: row.type,
    state: row.state,
    payload: payload ? payload.value : parseJson(row.payload),
    priority: row.priority,
    groupKey: row.groupKey,
    idempotencyKey: row.idempotencyKey,
    runAt: row.runAt,
    createdAt: row.createdAt,
    maxAttempts: row.maxAttempts,
    attempts: row.attempts,
    token: row.token,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    result: parseJson(row.result),
    error: parseJson(row.error) as Operation['error'],
    schedule: row.schedule,
  };
}

const customIssue = (message: string, path: PropertyKey[] = []) => ({
  code: 'custom' as const,
  path,
  message,
  input: undefined,
});

/**
 * Opens a durable operation queue on a SQLite file: recovers what a previous
 * process left running (by each type's crash policy), rebuilds the in-memory ready
 * index, and starts running handlers.
 * @throws InvalidInputError when the options are invalid (zod issues as `path: message` lines)
 * @example
 * await using queue = await openQueue({
 *   path: './data/queue.db',
 *   types: { 'send-email': { handler: async (payload, { signal }) => send(payload, { signal }), timeoutMs: 10_000 } },
 * });
 * const op = await queue.enqueue('send-email', { to: 'a@example.org' }, { idempotencyKey: 'welcome:42' });
 */
export async function openQueue(options: QueueOptions): Promise<Queue> {
  const resolved = resolveOptions(options);
  const extensions = options.extensions ?? [];
  // With the default commit path and `fsync`, SQLite does not sync: the path fsyncs the WAL
  // itself off the event loop and checkpoints under synchronous=FULL (see commit-path.ts).
  const ownSync = options.commitPath === undefined && resolved.durability === 'fsync';
  const stateMachine = createStateMachine({
    path: resolved.path,
    synchronous: resolved.durability === 'fsync-in-commit' ? 'full' : 'off',
    autoCheckpoint: !ownSync,
    extensions,
  });
  let commitPath: CommitPath;
  try {
    commitPath = options.commitPath
      ? options.commitPath(stateMachine)
      : createGroupCommitPath(stateMachine, { windowMs: resolved.groupCommitWindowMs, syncWal: ownSync });
  } catch (error) {
    stateMachine.close();
    throw error;
  }
  const queue = new DurableQueue(resolved, stateMachine, commitPath, options.meter);
  try {
    await queue.boot();
  } catch (error) {
    await queue.close({ drainMs: 0 }).catch(() => undefined);
    throw error;
  }
  return queue;
}

class DurableQueue implements Queue {
  readonly #o: ResolvedQueueOptions;
  readonly #sm: StateMachine;
  readonly #commit: CommitPath;
  readonly #index = new ReadyIndex((type) => this.#laneOf(type));
  readonly #listeners = new Set<(event: QueueEvent) => void>();
  readonly #running = new Map<string, RunningOperation>();
  /** Handlers running, by type and group. */
  readonly #slots = new SlotCounts((type) => this.#laneOf(type));
  /** Leases held: claims in flight, claimed operations waiting for a slot, running handlers. */
  readonly #leases = new SlotCounts((type) => this.#laneOf(type));
  /**
   * Grouped handlers that returned and whose outcome is being committed: the group's next
   * handler waits for it, so it starts on a store holding this one's outcome and effects.
   */
  readonly #settling = new SlotCounts((type) => this.#laneOf(type));
  /** Claimed, waiting for a handler slot (oldest first). */
  readonly #claimed: { operation: ClaimedOperation; group: string }[] = [];
  readonly #cancelledWhileWaiting = new Set<string>();
  /** Ids whose claim is being committed: a cancel committed in the same batch must stop their start. */
  readonly #claiming = new Set<string>();
  /**
   * Per group of a shared lane, the ids holding a lease, in claim order: one starts only
   * after those before it (claims of different types resolve in different orders).
   */
  readonly #groupOrder = new Map<string, string[]>();
  readonly #paused = new Set<string>();
  readonly #outstanding = new Set<Promise<unknown>>();
  /** Schedules by name; `retryAt`: a refused fire is tried again no sooner (backing off). */
  readonly #schedules = new Map<
    string,
    { info: ScheduleInfo; cron: Cron; retryAt?: number | undefined; retryMs?: number | undefined }
  >();
  /** Ready lanes (see the `lane` type option), served round-robin. */
  readonly #laneNames: string[];
  /** The lanes given by the `lane` option (which several types may share). */
  readonly #sharedLanes = new Set<string>();
  readonly #eventLoop: ReturnType<typeof monitorEventLoopDelay>;
  readonly #unsubscribe: () => void;
  readonly #metrics: QueueMetrics;
  readonly #totals = { enqueued: 0, completed: 0, retried: 0, dead: 0, cancelled: 0, staleOutcomes: 0 };
  #epoch = 0;
  #typeCursor = 0;
  #started = false;
  #closing = false;
  /** The store is closed: reads refuse with QueueClosedError. */
  #closed = false;
  #dispatching = false;
  #maintaining = false;
  #claimsInFlight = 0;
  #closePromise: Promise<void> | undefined;
  #idleWaiters: (() => void)[] = [];
  #delayTimer: NodeJS.Timeout | undefined;
  #delayTimerAt = Number.POSITIVE_INFINITY;
  #scheduleTimer: NodeJS.Timeout | undefined;
  #maintenanceTimer: NodeJS.Timeout | undefined;

  constructor(
    options: ResolvedQueueOptions,
    stateMachine: StateMachine,
    commitPath: CommitPath,
    meter: QueueOptions['meter'],
  ) {
    this.#o = options;
    this.#sm = stateMachine;
    this.#commit = commitPath;
    this.#laneNames = [...new Set([...options.types.values()].map((t) => t.lane))];
    for (const type of options.types.values()) if (type.lane !== type.name) this.#sharedLanes.add(type.lane);
    this.#eventLoop = monitorEventLoopDelay({ resolution: 10 });
    this.#eventLoop.enable();
    this.#metrics = new QueueMetrics(meter ?? metrics.getMeter('@unrdf/queue'), () => ({
      ready: this.#index.readyCount,
      delayed: this.#index.delayedCount,
      inFlight: this.#slots.total,
      eventLoopP99: this.#eventLoop.percentile(99) / 1e6,
    }));
    this.#unsubscribe = stateMachine.subscribe((transitions) => this.#onCommitted(transitions));
  }

  get epoch(): number {
    return this.#epoch;
  }

  #now(): number {
    return this.#o.clock.now();
  }

  /** The ready lane of a type (an unknown type: its own). */
  #laneOf(type: string): string {
    return this.#o.types.get(type)?.lane ?? type;
  }

  #newId(): string {
    return this.#o.generateId ? this.#o.generateId() : uuidV7(this.#now());
  }

  #submit<K extends CommandKind>(command: CommandOf<K>): Promise<ResultOf<K>> {
    return this.#commit.submit(command);
  }

  /** Tracks a promise close() must wait for. */
  #track<T>(promise: Promise<T>): Promise<T> {
    this.#outstanding.add(promise);
    const forget = () => this.#outstanding.delete(promise);
    promise.then(forget, forget);
    return promise;
  }

  // ---- boot and crash recovery --------------------------------------------------

  async boot(): Promise<void> {
    const { epoch } = await this.#submit({ kind: 'boot', at: this.#now() });
    this.#epoch = epoch;
    for (const type of this.#sm.pausedTypes()) this.#paused.add(type);
    const now = this.#now();
    for (const row of this.#sm.pending()) {
      if (this.#o.types.has(row.type)) this.#index.add(entryOf(row), now);
    }
    // Leases of older epochs belong to a process that is gone: apply each type's policy.
    const stale = this.#sm.running().filter((row) => row.epoch !== epoch && this.#o.types.has(row.type));
    await Promise.all(stale.map((row) => this.#recover(row)));
    for (const row of this.#sm.schedules())
      this.#trackSchedule(row.name, row.type, row.cron, row.timezone, row.nextRunAt);
    this.#armScheduleTimer();
    this.#maintenanceTimer = setInterval(() => void this.#maintain(), this.#o.maintenanceIntervalMs);
    this.#maintenanceTimer.unref();
    this.#started = true;
    this.#armDelayTimer();
    this.#dispatch();
  }

  async #recover(row: OperationRow): Promise<void> {
    const type = this.#o.types.get(row.type) as ResolvedType;
    const crashed = JSON.stringify({
      name: 'CrashedError',
      message: `The process running attempt ${row.attempts} (token ${row.token}) died.`,
    });
    let decision: ReconcileDecision = { outcome: type.crashPolicy === 'fail' ? 'failed' : 'retry' };
    if (type.crashPolicy === 'reconcile' && type.reconcile) {
      try {
        decision = await type.reconcile({
          id: row.id,
          type: row.type,
          payload: parseJson(row.payload),
          token: row.token,
          attempt: row.attempts,
          idempotencyKey: row.idempotencyKey ?? row.id,
        });
      } catch {
        decision = { outcome: 'retry' };
      }
    }
    const at = this.#now();
    let result: string | undefined;
    if (decision?.outcome === 'completed') {
      try {
        result = JSON.stringify(decision.result ?? null);
      } catch {
        // An unstorable result cannot mark the operation done: run it again instead.
      }
    }
    if (result !== undefined) {
      await this.#submit({ kind: 'complete', at, id: row.id, token: row.token, result, type: row.type });
    } else if (decision?.outcome === 'failed') {
      const error = decision.message
        ? JSON.stringify({ name: 'CrashedError', message: String(decision.message) })
        : crashed;
      await this.#submit({ kind: 'fail', at, id: row.id, token: row.token, error, retryAt: null });
    } else {
      await this.#submit({ kind: 'fail', at, id: row.id, token: row.token, error: crashed, retryAt: at });
    }
  }

  // ---- committed transitions ----------------------------------------------------

  #onCommitted(transitions: readonly Transition[]): void {
    const now = this.#now();
    let wake = false;
    for (let i = 0; i < transitions.length; i++) {
      const t = transitions[i] as Transition;
      switch (t.kind) {
        case 'enqueued':
        case 'retry-scheduled':
        case 'redriven':
        case 'released': {
          if (t.kind === 'enqueued') this.#totals.enqueued++;
          else if (t.kind === 'retry-scheduled') this.#totals.retried++;
          // Claimed on enqueue (the claim's transition follows in the same batch): never
          // in the ready index. Adding it and removing it at once would leave a removed
          // entry in its lane that only a later take() drops, and while every operation
          // is claimed on enqueue no take() runs: the lane grew by an entry per operation
          // (~160 bytes, a few hundred MB over minutes at 9,000/s: more heap to mark and
          // longer GC pauses), and the first take() then skipped them all in one go.
          const next = transitions[i + 1];
          const claimedNow = t.kind === 'enqueued' && next?.kind === 'claimed' && next.id === t.id;
          if (!claimedNow && this.#o.types.has(t.type)) {
            this.#index.add(
              {
                id: t.id,
                type: t.type,
                priority: t.priority,
                group: t.groupKey ?? '',
                runAt: t.runAt,
                removed: false,
                ready: false,
              },
              now,
            );
            if (t.runAt > now) {
              if (t.runAt < this.#delayTimerAt) this.#armDelayTimer();
            } else wake = true;
          }
          break;
        }
        case 'claimed':
          this.#index.remove(t.id);
          break;
        case 'completed':
        case 'dead':
        case 'cancelled':
          if (t.kind === 'completed') this.#totals.completed++;
          else if (t.kind === 'dead') this.#totals.dead++;
          else {
            this.#totals.cancelled++;
            this.#index.remove(t.id);
            this.#running.get(t.id)?.controller.abort(new OperationAbortedError('cancelled'));
            // Claimed and waiting for a slot, or its claim committed in this same batch
            // and not yet handed over: it must not start.
            if (this.#claiming.has(t.id)) this.#cancelledWhileWaiting.add(t.id);
            else if (this.#claimed.some((w) => w.operation.id === t.id)) {
              this.#cancelledWhileWaiting.add(t.id);
              this.#startClaimed();
            }
          }
          break;
        case 'paused':
          this.#paused.add(t.type);
          break;
        case 'resumed':
          this.#paused.delete(t.type);
          wake = true;
          break;
      }
      this.#metrics.countTransition(t.type, t.kind);
      for (const listener of this.#listeners) {
        try {
          listener(t);
        } catch (error) {
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    }
    if (wake) this.#dispatch();
  }

  // ---- dispatch -----------------------------------------------------------------

  /**
   * Claims due operations while leases are free. Handlers run within the limits
   * (global, per type, per group); leases may run ahead of them up to the same limit
   * again (LEASE_LOOKAHEAD), so the claim's commit overlaps running handlers instead of
   * adding to every slot's cycle: when a handler settles, an already-claimed operation
   * starts at once.
   */
  #dispatch(): void {
    if (!this.#started || this.#closing || this.#dispatching) return;
    this.#dispatching = true;
    try {
      const lanes = this.#laneNames;
      const leases = this.#leases;
      while (leases.total < this.#o.concurrency * LEASE_LOOKAHEAD && this.#index.readyCount > 0) {
        let taken: ReadyEntry | undefined;
        // Round-robin between lanes (types, unless they share one) so one busy type cannot starve the others.
        for (let k = 0; k < lanes.length && taken === undefined; k++) {
          const lane = lanes[(this.#typeCursor + k) % lanes.length] as string;
          if (!this.#sharedLanes.has(lane)) {
            // A type's own lane: its limits are checked once, then only its groups'.
            const type = this.#o.types.get(lane) as ResolvedType;
            if (!this.#mayLease(type, '')) continue;
            const ahead = lookaheadOf(type);
            taken = this.#index.take(
              lane,
              (head) => head.group === '' || this.#groupLeases(lane, head.group, ahead) < type.groupConcurrency * ahead,
            );
          } else {
            // A shared lane: each group's head is checked against its own type's limits.
            taken = this.#index.take(lane, (head) => this.#mayLease(this.#o.types.get(head.type), head.group));
          }
          if (taken !== undefined) this.#typeCursor = (this.#typeCursor + k + 1) % lanes.length;
        }
        if (taken === undefined) break;
        this.#claim(taken);
      }
    } finally {
      this.#dispatching = false;
    }
  }

  /** Whether the limits of its type and group let an operation of `type` take a lease (ignoring what waits). */
  #mayLease(type: ResolvedType | undefined, group: string): boolean {
    if (type === undefined || this.#paused.has(type.name)) return false;
    const ahead = lookaheadOf(type);
    const leases = this.#leases;
    return (
      leases.total < this.#o.concurrency * ahead &&
      leases.ofType(type.name) < type.concurrency * ahead &&
      (group === '' || this.#groupLeases(type.name, group, ahead) < type.groupConcurrency * ahead)
    );
  }

  /**
   * What counts against a group's limit when leasing: its leases, and for a type claimed
   * only when it can start (no look-ahead) also the group's outcomes being committed,
   * which hold its next start back.
   */
  #groupLeases(type: string, group: string, ahead: number): number {
    return this.#leases.ofGroup(type, group) + (ahead === 1 ? this.#settling.ofGroup(type, group) : 0);
  }

  /** Whether an operation of `type` may be claimed right now without passing anything waiting in its lane. */
  #canLeaseNow(type: ResolvedType, group: string): boolean {
    return this.#started && !this.#closing && this.#index.readyOf(type.lane) === 0 && this.#mayLease(type, group);
  }

  /** The key of a group of a shared lane (whose start order spans types), else undefined. */
  #groupOrderKey(type: string, group: string): string | undefined {
    if (group === '') return undefined;
    const t = this.#o.types.get(type);
    return t === undefined || t.lane === t.name ? undefined : `${t.lane}\u0000${group}`;
  }

  #joinGroupOrder(id: string, type: string, group: string): void {
    const key = this.#groupOrderKey(type, group);
    if (key === undefined) return;
    const order = this.#groupOrder.get(key);
    if (order === undefined) this.#groupOrder.set(key, [id]);
    else order.push(id);
  }

  #leaveGroupOrder(id: string, type: string, group: string): void {
    const key = this.#groupOrderKey(type, group);
    const order = key === undefined ? undefined : this.#groupOrder.get(key);
    if (order === undefined) return;
    const at = order.indexOf(id);
    if (at >= 0) order.splice(at, 1);
    if (order.length === 0) this.#groupOrder.delete(key as string);
  }

  /** Whether no operation claimed before this one in its group of a shared lane waits to start. */
  #nextInGroupOrder(id: string, type: string, group: string): boolean {
    const key = this.#groupOrderKey(type, group);
    return key === undefined || this.#groupOrder.get(key)?.[0] === id;
  }

  /** Drops a lease (claim refused, released, or its handler settled) and refills. */
  #unlease(type: string, group: string): void {
    this.#leases.remove(type, group);
    if (this.#leases.total === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
    this.#dispatch();
  }

  #claim(entry: ReadyEntry): void {
    this.#leases.add(entry.type, entry.group);
    this.#joinGroupOrder(entry.id, entry.type, entry.group);
    this.#claiming.add(entry.id);
    // Not tracked: the lease it holds is what close() waits for.
    // Under the retry policy the handler may start once the claim is committed, before
    // its fsync: if a power cut loses the claim, the attempt just runs again, which is
    // what the policy does anyway (a killed process loses nothing: the page cache keeps
    // the claim). Types that must not re-run wait for the claim to be durable.
    const beforeSync = this.#o.types.get(entry.type)?.crashPolicy === 'retry';
    this.#claimsInFlight++;
    void this.#commit.submit({ kind: 'claim', at: this.#now(), id: entry.id, epoch: this.#epoch }, { beforeSync }).then(
      (result) => {
        this.#claimsInFlight--;
        this.#claiming.delete(entry.id);
        if (!result.claimed) {
          this.#cancelledWhileWaiting.delete(entry.id);
          this.#leaveGroupOrder(entry.id, entry.type, entry.group);
          this.#unlease(entry.type, entry.group);
          return;
        }
        if (this.#closing) {
          this.#cancelledWhileWaiting.delete(entry.id);
          this.#giveBack(result.operation, entry.group);
          return;
        }
        this.#claimed.push({ operation: result.operation, group: entry.group });
        this.#startClaimed();
      },
      () => {
        this.#claimsInFlight--;
        this.#claiming.delete(entry.id);
        this.#cancelledWhileWaiting.delete(entry.id);
        this.#leaveGroupOrder(entry.id, entry.type, entry.group);
        // The store refused the claim (I/O error): the operation is still pending there.
        this.#unlease(entry.type, entry.group);
        if (!this.#closing)
          this.#index.add({ ...entry, removed: false, ready: false, runAt: this.#now() + 1000 }, this.#now());
        this.#armDelayTimer();
      },
    );
  }

  /**
   * Claim on enqueue for a `storeOnly` type, started without waiting for the commit: a
   * fresh operation's claim is known before it commits (attempt 1, token 1, as the state
   * machine writes it). A handler that settles within this turn (synchronous work, as the
   * daemon's RDF handlers do) puts its outcome into the same transaction as the enqueue and
   * the claim: one commit and one fsync per operation instead of two. If the store then
   * fails to write the enqueue (or the process dies first), the outcome goes with it, and
   * a storeOnly handler touched nothing else. Without an idempotency key only: a duplicate
   * must not run its handler at all.
   */
  #claimAndStart(entry: ReadyEntry, operation: ClaimedOperation): void {
    this.#leases.add(entry.type, entry.group);
    this.#joinGroupOrder(entry.id, entry.type, entry.group);
    this.#claimsInFlight++;
    const settled = () => {
      this.#claimsInFlight--;
    };
    // The claim goes to the commit path before the handler's outcome can: it commits first.
    void this.#commit
      .submit({ kind: 'claim', at: this.#now(), id: entry.id, epoch: this.#epoch })
      .then(settled, settled);
    this.#claimed.push({ operation, group: entry.group });
    this.#startClaimed();
  }

  /** Gives a lease that never ran back to the store (close, or cancelled while waiting). */
  #giveBack(operation: ClaimedOperation, group: string): void {
    this.#leaveGroupOrder(operation.id, operation.type, group);
    void this.#track(
      this.#settleCommand({ kind: 'release', at: this.#now(), id: operation.id, token: operation.token }),
    ).finally(() => this.#unlease(operation.type, group));
  }

  /** Starts claimed operations, oldest first, while their handler limits allow. */
  #startClaimed(): void {
    const claimed = this.#claimed;
    const slots = this.#slots;
    for (let i = 0; i < claimed.length && slots.total < this.#o.concurrency; ) {
      const waiting = claimed[i] as { operation: ClaimedOperation; group: string };
      const { operation, group } = waiting;
      if (this.#cancelledWhileWaiting.delete(operation.id)) {
        claimed.splice(i, 1);
        this.#leaveGroupOrder(operation.id, operation.type, group);
        this.#unlease(operation.type, group);
        continue;
      }
      const type = this.#o.types.get(operation.type) as ResolvedType;
      if (
        !this.#nextInGroupOrder(operation.id, operation.type, group) ||
        slots.ofType(operation.type) >= type.concurrency ||
        (group !== '' &&
          slots.ofGroup(operation.type, group) + this.#settling.ofGroup(operation.type, group) >= type.groupConcurrency)
      ) {
        i++;
        continue;
      }
      claimed.splice(i, 1);
      this.#run(operation, group);
    }
  }

  #run(row: ClaimedOperation, group: string): void {
    this.#leaveGroupOrder(row.id, row.type, group);
    this.#slots.add(row.type, group);
    // The wait is due time to handler start, the time claimed ahead waiting for a slot included.
    this.#metrics.wait.record(Math.max(0, this.#now() - row.runAt) / 1000, this.#metrics.attrs(row.type, 'started'));
    const type = this.#o.types.get(row.type) as ResolvedType;
    const controller = new AbortController();
    const running: RunningOperation = { token: row.token, controller, abandoned: false };
    this.#running.set(row.id, running);
    const timer = setTimeout(() => controller.abort(new OperationTimeoutError(type.timeoutMs)), type.timeoutMs);
    const started = performance.now();
    let payload: unknown;
    try {
      payload = JSON.parse(row.payload);
    } catch {
      payload = null;
    }
    let effects: { value: unknown } | undefined;
    const context: HandlerContext = {
      id: row.id,
      type: row.type,
      attempt: row.attempts,
      maxAttempts: row.maxAttempts,
      token: row.token,
      idempotencyKey: row.idempotencyKey ?? row.id,
      groupKey: row.groupKey,
      runAt: row.runAt,
      signal: controller.signal,
      setEffects: (value) => {
        effects = { value };
      },
    };
    const invoke = async (): Promise<{ ok: true; value: unknown } | { ok: false; error: unknown }> => {
      try {
        return { ok: true, value: await type.handler(payload, context) };
      } catch (error) {
        return { ok: false, error };
      }
    };
    void invoke().then(async (outcome) => {
      clearTimeout(timer);
      this.#running.delete(row.id);
      this.#metrics.run.record(
        (performance.now() - started) / 1000,
        this.#metrics.attrs(row.type, outcome.ok ? 'completed' : 'failed'),
      );
      // The slot is held until the handler settled, even past its timeout: no zombie overlaps a retry.
      this.#slots.remove(row.type, group);
      const settling = group !== '' && !running.abandoned;
      // A group's next handler also waits for this one's outcome to be committed (#settling).
      if (settling) this.#settling.add(row.type, group);
      this.#startClaimed();
      this.#unlease(row.type, group);
      if (running.abandoned) return;
      // Tracked so close() commits the outcome before the store closes. The handler
      // itself is not tracked: one that ignores its signal must not hang close().
      await this.#track(this.#finish(row, type, controller.signal, outcome, effects));
      if (settling) {
        this.#settling.remove(row.type, group);
        this.#startClaimed();
      }
    });
  }

  async #finish(
    row: ClaimedOperation,
    type: ResolvedType,
    signal: AbortSignal,
    outcome: { ok: true; value: unknown } | { ok: false; error: unknown },
    effects: { value: unknown } | undefined,
  ): Promise<void> {
    const at = this.#now();
    let failure: unknown;
    if (signal.aborted) {
      const reason: unknown = signal.reason;
      if (reason instanceof OperationAbortedError) {
        // Cancelled: the state is final already. Shutdown: the lease goes back unspent.
        // Even a handler that resolved after its abort may have bailed out early, so an
        // aborted attempt's result never counts as done.
        if (reason.reason === 'shutdown')
          await this.#settleCommand({ kind: 'release', at, id: row.id, token: row.token });
        return;
      }
      failure = reason;
    } else if (outcome.ok) {
      let result: string | undefined;
      let effectsText: string | undefined;
      try {
        result = JSON.stringify(outcome.value ?? null);
        if (effects !== undefined) effectsText = JSON.stringify(effects.value ?? null);
      } catch (error) {
        result = undefined;
        failure = new UnrecoverableError(`The handler's result or effects are not JSON-serialisable: ${String(error)}`);
      }
      if (result !== undefined) {
        const refused = await this.#settleCommand({
          kind: 'complete',
          at,
          id: row.id,
          token: row.token,
          result,
          type: row.type,
          ...(effectsText === undefined ? {} : { effects: effectsText }),
        });
        if (refused === undefined) return;
        failure = refused;
      }
    } else {
      failure = outcome.error;
    }
    const unrecoverable =
      failure instanceof UnrecoverableError || (failure instanceof CompletionRefusedError && !failure.retry);
    const retryAt =
      unrecoverable || row.attempts >= row.maxAttempts
        ? null
        : at + backoffDelay(row.attempts, type.backoff, this.#o.random);
    await this.#settleCommand({ kind: 'fail', at, id: row.id, token: row.token, error: errorJson(failure), retryAt });
  }

  /**
   * Commits an outcome; a stale one (the fencing token moved on) is counted, not applied.
   * Returns the error of a completion an extension refused (the caller fails the attempt).
   */
  async #settleCommand(
    command: CommandOf<'complete'> | CommandOf<'fail'> | CommandOf<'release'>,
  ): Promise<CompletionRefusedError | undefined> {
    try {
      const result = await this.#commit.submit(command);
      if (!result.applied) this.#totals.staleOutcomes++;
    } catch (error) {
      if (error instanceof CompletionRefusedError && command.kind === 'complete') return error;
      // The store refused (I/O error, or closed) or an extension threw: the lease stays in
      // the store and is recovered at the next boot by the type's crash policy.
      this.#totals.staleOutcomes++;
      try {
        this.#o.onSettleError?.(error, { id: command.id, kind: command.kind });
      } catch {
        // A reporting hook must not turn a lost outcome into an unhandled rejection.
      }
    }
    return undefined;
  }

  // ---- timers -------------------------------------------------------------------

  #armDelayTimer(): void {
    if (this.#delayTimer !== undefined) clearTimeout(this.#delayTimer);
    this.#delayTimer = undefined;
    this.#delayTimerAt = Number.POSITIVE_INFINITY;
    if (this.#closing) return;
    const next = this.#index.nextDueAt();
    if (next === undefined) return;
    this.#delayTimerAt = next;
    const wait = Math.min(Math.max(0, next - this.#now()), MAX_TIMER_MS);
    this.#delayTimer = setTimeout(() => {
      this.#delayTimer = undefined;
      this.#delayTimerAt = Number.POSITIVE_INFINITY;
      this.#index.promoteDue(this.#now());
      this.#dispatch();
      this.#armDelayTimer();
    }, wait);
  }

  #trackSchedule(name: string, type: string, pattern: string, timezone: string | null, nextRunAt: number | null): void {
    const cron = new Cron(pattern, { paused: true, ...(timezone === null ? {} : { timezone }) });
    this.#schedules.set(name, { info: { name, type, cron: pattern, nextRunAt }, cron });
  }

  #armScheduleTimer(): void {
    if (this.#scheduleTimer !== undefined) clearTimeout(this.#scheduleTimer);
    this.#scheduleTimer = undefined;
    if (this.#closing) return;
    let next = Number.POSITIVE_INFINITY;
    for (const { info, retryAt } of this.#schedules.values()) {
      if (info.nextRunAt !== null) next = Math.min(next, Math.max(info.nextRunAt, retryAt ?? 0));
    }
    if (next === Number.POSITIVE_INFINITY) return;
    const wait = Math.min(Math.max(0, next - this.#now()), MAX_TIMER_MS);
    this.#scheduleTimer = setTimeout(() => void this.#fireSchedules(), wait);
  }

  async #fireSchedules(): Promise<void> {
    this.#scheduleTimer = undefined;
    const now = this.#now();
    const fires: Promise<unknown>[] = [];
    for (const [name, entry] of this.#schedules) {
      const due = entry.info.nextRunAt;
      if (due === null || due > now || (entry.retryAt ?? 0) > now) continue;
      // Missed runs (the process was down) collapse into one: the next run is after now.
      const nextRunAt = entry.cron.nextRun(new Date(Math.max(now, due)))?.getTime() ?? null;
      const fire = this.#submit({
        kind: 'fire-schedule',
        at: now,
        name,
        id: this.#newId(),
        runAt: due,
        nextRunAt,
      }).then(
        (result) => {
          if (this.#schedules.get(name) !== entry) return;
          entry.info = {
            ...entry.info,
            nextRunAt: result.applied ? nextRunAt : (this.#sm.schedule(name)?.nextRunAt ?? null),
          };
          if (result.applied) {
            entry.retryAt = undefined;
            entry.retryMs = undefined;
          } else backOff(entry, now); // stale (another fire won) or refused: the stored next run says
        },
        // The store refused (an I/O error, an extension threw): try again later, not at once.
        () => backOff(entry, now),
      );
      fires.push(this.#track(fire));
    }
    await Promise.all(fires);
    this.#armScheduleTimer();
  }

  /**
   * Retention, then (only when the queue is quiet) a WAL truncate. Purging keeps up with
   * any completion rate: batches follow each other until nothing past retention is
   * left (a fixed number of batches per pass would let the store grow without bound
   * under a steady load above that many rows per interval). Freed pages are reused, so
   * the file stops growing once retention is reached.
   */
  async #maintain(): Promise<void> {
    if (this.#closing || this.#maintaining) return;
    this.#maintaining = true;
    try {
      const finishedBefore = Math.max(0, this.#now() - this.#o.retentionMs);
      const deadline = performance.now() + this.#o.maintenanceIntervalMs * PURGE_SHARE_OF_INTERVAL;
      while (!this.#closing) {
        const { deleted } = await this.#track(
          this.#submit({ kind: 'purge', at: this.#now(), finishedBefore, limit: PURGE_BATCH }),
        );
        if (deleted < PURGE_BATCH || performance.now() >= deadline) break;
      }
      // A TRUNCATE checkpoint copies the whole WAL and cuts the file on the event loop
      // (20-45 ms for 8 MiB here): only when nothing runs, waits or is being committed.
      // Under load the WAL stays bounded anyway: the commit path checkpoints it past
      // `checkpointBytes` and reuses the file (or SQLite's auto-checkpoint does, for the
      // other durability modes), so disk use is bounded busy or idle.
      if (!this.#closing && this.#quiet()) this.#sm.checkpoint();
    } catch {
      // Maintenance retries on its next tick; a failing store shows up in the callers' commands.
    } finally {
      this.#maintaining = false;
    }
  }

  /** Nothing leased, ready, being claimed or being committed: a stall now delays no one. */
  #quiet(): boolean {
    return (
      this.#leases.total === 0 &&
      this.#index.readyCount === 0 &&
      this.#claimsInFlight === 0 &&
      this.#outstanding.size === 0
    );
  }

  // ---- public API ----------------------------------------------------------------

  /**
   * A payload as stored: checked with the type's payloadSchema (`value`, as parsed), then JSON (`text`).
   * @throws InvalidInputError
   */
  #payloadOf(type: ResolvedType, payload: unknown): { value: unknown; text: string } {
    let value = payload;
    if (type.payloadSchema) {
      const parsed = type.payloadSchema.safeParse(value);
      if (!parsed.success) throw InvalidInputError.fromZod(`payload of '${type.name}'`, parsed.error);
      value = parsed.data;
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      const issue = customIssue(`not JSON-serialisable: ${String(error)}`);
      throw new InvalidInputError('payload', [issue], `(root): ${issue.message}`, { cause: error });
    }
    if (text === undefined) {
      const issue = customIssue('not JSON-serialisable (a function, symbol or undefined)');
      throw new InvalidInputError('payload', [issue], `(root): ${issue.message}`);
    }
    return { value, text };
  }

  async enqueue(typeName: string, payload?: unknown, options?: EnqueueOptions): Promise<Operation> {
    if (this.#closing) throw new QueueClosedError();
    const type = this.#o.types.get(typeName);
    if (type === undefined) throw new UnknownTypeError(typeName);
    let opts: z.output<typeof EnqueueOptionsSchema> = {};
    if (options !== undefined) {
      const parsed = EnqueueOptionsSchema.safeParse(options);
      if (!parsed.success) throw InvalidInputError.fromZod('enqueue options', parsed.error);
      opts = parsed.data;
    }
    const { value, text } = this.#payloadOf(type, payload ?? null);
    const now = this.#now();
    const runAt = opts.runAt instanceof Date ? opts.runAt.getTime() : (opts.runAt ?? now + (opts.delayMs ?? 0));
    const id = this.#newId();
    const priority = opts.priority ?? type.priority;
    const group = opts.groupKey ?? '';
    const enqueued = this.#submit({
      kind: 'enqueue',
      at: now,
      id,
      type: typeName,
      payload: text,
      priority,
      runAt,
      groupKey: opts.groupKey ?? null,
      idempotencyKey: opts.idempotencyKey ?? null,
      maxAttempts: opts.maxAttempts ?? type.maxAttempts,
    });
    // Claim on enqueue: when the operation is due, nothing of its type waits ahead of it
    // and a lease is free, its claim joins the same transaction as its enqueue: one
    // commit and one fsync before the handler starts instead of two. (A duplicate
    // enqueue makes the claim a harmless not-found.)
    if (runAt <= now && this.#canLeaseNow(type, group)) {
      const entry = { id, type: typeName, priority, group, runAt, removed: false, ready: false };
      if (type.storeOnly && opts.idempotencyKey === undefined) {
        this.#claimAndStart(entry, {
          id,
          type: typeName,
          payload: text,
          groupKey: opts.groupKey ?? null,
          idempotencyKey: null,
          maxAttempts: opts.maxAttempts ?? type.maxAttempts,
          attempts: 1,
          token: 1,
          runAt,
        });
      } else this.#claim(entry);
    }
    const result = await enqueued;
    return result.created ? toOperation(result.operation, { value }) : toOperation(result.operation);
  }

  get(id: string): Operation | undefined {
    if (this.#closed) throw new QueueClosedError();
    const row = this.#sm.get(id);
    return row === undefined ? undefined : toOperation(row);
  }

  state(id: string): OperationState | undefined {
    if (this.#closed) throw new QueueClosedError();
    return this.#sm.stateOf(id);
  }

  async cancel(id: string): Promise<boolean> {
    if (this.#closing) throw new QueueClosedError();
    const result = await this.#submit({ kind: 'cancel', at: this.#now(), id });
    if (result.rejection === 'not-found') throw new NotFoundError('operation', id);
    return result.applied;
  }

  async redrive(id: string, options?: { readonly delayMs?: number }): Promise<void> {
    if (this.#closing) throw new QueueClosedError();
    const parsed = RedriveOptionsSchema.safeParse(options ?? {});
    if (!parsed.success) throw InvalidInputError.fromZod('redrive options', parsed.error);
    const delayMs = parsed.data.delayMs ?? 0;
    const now = this.#now();
    const result = await this.#submit({ kind: 'redrive', at: now, id, runAt: now + delayMs });
    if (result.rejection === 'not-found') throw new NotFoundError('operation', id);
    if (result.rejection === 'not-dead') throw new InvalidStateError(id, this.#sm.get(id)?.state ?? 'unknown', 'dead');
  }

  async pause(type: string): Promise<void> {
    if (!this.#o.types.has(type)) throw new UnknownTypeError(type);
    await this.#submit({ kind: 'pause', at: this.#now(), type });
  }

  async resume(type: string): Promise<void> {
    if (!this.#o.types.has(type)) throw new UnknownTypeError(type);
    await this.#submit({ kind: 'resume', at: this.#now(), type });
  }

  async schedule(name: string, options: ScheduleOptions): Promise<ScheduleInfo> {
    if (this.#closing) throw new QueueClosedError();
    const parsed = ScheduleOptionsSchema.safeParse(options);
    if (!parsed.success) throw InvalidInputError.fromZod('schedule options', parsed.error);
    const o = parsed.data;
    const type = this.#o.types.get(o.type);
    if (type === undefined) throw new UnknownTypeError(o.type);
    if (name.length === 0 || name.length > 200) {
      const issue = customIssue('must be 1-200 characters', ['name']);
      throw new InvalidInputError('schedule name', [issue], `name: ${issue.message}`);
    }
    const now = this.#now();
    let cron: Cron;
    let nextRunAt: number | null;
    try {
      cron = new Cron(o.cron, { paused: true, ...(o.timezone === undefined ? {} : { timezone: o.timezone }) });
      // croner checks a timezone only when it computes a run: do it here, inside the try.
      nextRunAt = cron.nextRun(new Date(now))?.getTime() ?? null;
    } catch (error) {
      const path = o.timezone !== undefined && /time ?zone/i.test(String(error)) ? 'timezone' : 'cron';
      const issue = customIssue(error instanceof Error ? error.message : String(error), [path]);
      throw new InvalidInputError('schedule options', [issue], `${path}: ${issue.message}`, { cause: error });
    }
    // What each run enqueues must be what enqueue() accepts.
    const payload = this.#payloadOf(type, o.payload ?? null).text;
    await this.#submit({
      kind: 'upsert-schedule',
      at: now,
      name,
      type: o.type,
      cron: o.cron,
      timezone: o.timezone ?? null,
      payload,
      priority: o.priority ?? type.priority,
      maxAttempts: o.maxAttempts ?? type.maxAttempts,
      nextRunAt,
    });
    // Re-registering an unchanged schedule (at every start, typically) keeps its stored next
    // run, so a run missed while the process was down still fires.
    const info: ScheduleInfo = {
      name,
      type: o.type,
      cron: o.cron,
      nextRunAt: this.#sm.schedule(name)?.nextRunAt ?? nextRunAt,
    };
    this.#schedules.set(name, { info, cron });
    this.#armScheduleTimer();
    return info;
  }

  async unschedule(name: string): Promise<boolean> {
    const { applied } = await this.#submit({ kind: 'remove-schedule', at: this.#now(), name });
    this.#schedules.delete(name);
    this.#armScheduleTimer();
    return applied;
  }

  onEvent(listener: (event: QueueEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  stats(): QueueStats {
    return {
      epoch: this.#epoch,
      ready: this.#index.readyCount,
      delayed: this.#index.delayedCount,
      inFlight: this.#slots.total,
      leased: this.#leases.total,
      totals: { ...this.#totals },
      eventLoopDelayP99Ms: this.#eventLoop.percentile(99) / 1e6,
    };
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.#closePromise ??= this.#close(options);
    return this.#closePromise;
  }

  async #close(options: CloseOptions): Promise<void> {
    const parsed = CloseOptionsSchema.safeParse(options);
    const drainMs = parsed.success ? (parsed.data.drainMs ?? DEFAULT_DRAIN_MS) : DEFAULT_DRAIN_MS;
    this.#closing = true;
    for (const timer of [this.#delayTimer, this.#scheduleTimer]) if (timer !== undefined) clearTimeout(timer);
    if (this.#maintenanceTimer !== undefined) clearInterval(this.#maintenanceTimer);
    // Claimed but not started: straight back to pending, unspent.
    for (const { operation, group } of this.#claimed.splice(0)) this.#giveBack(operation, group);
    // 1. Drain: running handlers get drainMs to finish on their own.
    await this.#waitIdle(drainMs);
    // 2. Abort the rest; give them abortGraceMs to settle (their leases go back unspent).
    const left = [...this.#running.entries()];
    for (const [, running] of left) running.controller.abort(new OperationAbortedError('shutdown'));
    if (left.length > 0) await this.#waitIdle(this.#o.abortGraceMs);
    // 3. Handlers that ignore their signal: give their leases back now; the token fences
    //    whatever they do later, and their outcome is dropped.
    for (const [id, running] of this.#running) {
      running.abandoned = true;
      this.#track(this.#settleCommand({ kind: 'release', at: this.#now(), id, token: running.token }));
    }
    // 4. Claims still being committed settle (and are given back); then every outcome and
    //    release in flight is committed before the store closes.
    while (this.#claimsInFlight > 0) await new Promise((resolve) => setImmediate(resolve));
    while (this.#outstanding.size > 0) await Promise.allSettled([...this.#outstanding]);
    await this.#commit.close();
    this.#unsubscribe();
    this.#metrics.close();
    this.#eventLoop.disable();
    this.#closed = true;
    this.#sm.close();
  }

  /** Resolves when no slot is taken, or after `ms`. */
  #waitIdle(ms: number): Promise<void> {
    if (this.#leases.total === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#idleWaiters.push(done);
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function entryOf(row: PendingRow): ReadyEntry {
  return {
    id: row.id,
    type: row.type,
    priority: row.priority,
    group: row.groupKey ?? '',
    runAt: row.runAt,
    removed: false,
    ready: false,
  };
}

/** OpenTelemetry instruments (API only: the app wires an SDK and exporter). */
class QueueMetrics {
  readonly wait: Histogram;
  readonly run: Histogram;
  readonly #gauges: ObservableGauge[];
  readonly #observe: (result: ObservableResult, which: 'depth' | 'inFlight' | 'eventLoop') => void;
  readonly #callbacks: ((result: ObservableResult) => void)[];
  readonly #attrs = new Map<string, Map<string, Attributes>>();
  /**
   * Transitions counted here and read by the SDK when it collects (an observable
   * counter): several per operation, and a synchronous counter's `add` costs a few µs
   * each (attribute hashing) on the commit path.
   */
  readonly #transitionCounts = new Map<Attributes, number>();
  readonly #transitions: ObservableCounter;
  readonly #observeTransitions = (result: ObservableResult) => {
    for (const [attrs, count] of this.#transitionCounts) result.observe(count, attrs);
  };

  constructor(
    meter: NonNullable<QueueOptions['meter']>,
    snapshot: () => { ready: number; delayed: number; inFlight: number; eventLoopP99: number },
  ) {
    this.#transitions = meter.createObservableCounter('unrdf.queue.transitions', {
      description: 'Committed operation transitions, by operation type and transition kind',
    });
    this.#transitions.addCallback(this.#observeTransitions);
    // Seconds, the base unit of OpenTelemetry's duration conventions and of Prometheus (and of
    // the diagnostics package's indicators), with buckets to match.
    this.wait = meter.createHistogram('unrdf.queue.wait.duration', {
      unit: 's',
      description: 'From when an operation was due to when its handler started',
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60] },
    });
    this.run = meter.createHistogram('unrdf.queue.run.duration', {
      unit: 's',
      description: 'Handler run time',
      advice: { explicitBucketBoundaries: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] },
    });
    const depth = meter.createObservableGauge('unrdf.queue.depth', {
      description: 'Pending operations (ready or delayed)',
    });
    const inFlight = meter.createObservableGauge('unrdf.queue.in_flight', { description: 'Slots taken' });
    const eventLoop = meter.createObservableGauge('unrdf.queue.event_loop.delay', {
      unit: 's',
      description: 'Event-loop delay P99 since open',
    });
    this.#gauges = [depth, inFlight, eventLoop];
    this.#observe = (result, which) => {
      const s = snapshot();
      if (which === 'depth') {
        result.observe(s.ready, { state: 'ready' });
        result.observe(s.delayed, { state: 'delayed' });
      } else if (which === 'inFlight') result.observe(s.inFlight);
      else result.observe(s.eventLoopP99 / 1000);
    };
    this.#callbacks = [
      (r) => this.#observe(r, 'depth'),
      (r) => this.#observe(r, 'inFlight'),
      (r) => this.#observe(r, 'eventLoop'),
    ];
    this.#gauges.forEach((gauge, i) => {
      gauge.addCallback(this.#callbacks[i] as (r: ObservableResult) => void);
    });
  }

  /** Counts one committed transition. */
  countTransition(type: string, kind: string): void {
    const attrs = this.attrs(type, kind);
    this.#transitionCounts.set(attrs, (this.#transitionCounts.get(attrs) ?? 0) + 1);
  }

  /** Cached attribute objects, so the hot path allocates none. */
  attrs(type: string, kind: string): Attributes {
    let ofType = this.#attrs.get(type);
    if (ofType === undefined) {
      ofType = new Map();
      this.#attrs.set(type, ofType);
    }
    let attrs = ofType.get(kind);
    if (attrs === undefined) {
      attrs = Object.freeze({ 'operation.type': type, transition: kind });
      ofType.set(kind, attrs);
    }
    return attrs;
  }

  close(): void {
    this.#transitions.removeCallback(this.#observeTransitions);
    this.#gauges.forEach((gauge, i) => {
      gauge.removeCallback(this.#callbacks[i] as (r: ObservableResult) => void);
    });
  }
}
