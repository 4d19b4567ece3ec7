import { existsSync, mkdirSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  collectDiagnosticReport,
  createHealth,
  createHlc,
  createMetrics,
  createNodeDiagnostics,
  createNodeLogger,
  type DiagnosticReport,
  eventLoopCheck,
  type Health,
  type HealthResponse,
  type LogPage,
  type LogQuery,
  localDiagnosticNode,
  type Metrics,
  type NodeDiagnostics,
  type NodeLogger,
  pingCheck,
  queueAcceptingCheck,
  raftLeaderCheck,
  type SloStatus,
  storageWritableCheck,
} from '@unrdf/diagnostics';
import {
  type HandlerContext,
  type Operation,
  type OperationState,
  openQueue,
  type Queue,
  type QueueEvent,
  InvalidInputError as QueueInvalidInputError,
  type TypeOptions,
} from '@unrdf/queue';
import {
  type ConsistencyProofJson,
  createReceiptVerifier,
  type Receipt,
  type ReceiptVerifier,
  receiptHash,
  type TrustedKey,
  type Verdict,
} from '@unrdf/receipts';
import type { AppendedReceipt, ReceiptBundle } from '@unrdf/receipts/ledger';
import { customAlphabet } from 'nanoid';
import { InvalidInputError, NotRunningError, UnknownTypeError } from './errors.js';
import { hex, jsonDigest, type PayloadEnvelope, type ResultEnvelope } from './internal/envelope.js';
import { loadOrCreateSigningKeys } from './keys.js';
import { lockDataDir } from './lock.js';
import {
  type DaemonHandler,
  type DaemonOptions,
  type HandlerDefinition,
  HandlerDefinitionSchema,
  type HandlerPolicy,
  OperationTypeName,
  ReceiptBundleSchema,
  type ResolvedDaemonOptions,
  resolveDaemonOptions,
  type SubmitRequest,
} from './options.js';
import { CANCELLED_CODE, createReceiptExtension, type ReceiptExtension } from './receipt-extension.js';
import { type PreparedSubmission, prepareSubmission } from './submission.js';

/** An operation as the daemon shows it. */
export interface OperationView {
  readonly id: string;
  readonly type: string;
  readonly subject: string;
  /** `completed`, `dead` (failed for good: dead letter) and `cancelled` are final. */
  readonly state: OperationState;
  /** For a final state: how it ended. */
  readonly outcome: 'succeeded' | 'failed' | 'cancelled' | null;
  readonly input: unknown;
  readonly output: unknown;
  readonly error: { readonly name: string; readonly message: string; readonly code?: string } | null;
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly idempotencyKey: string | null;
  readonly submittedAt: number;
  readonly runAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  /** Where its receipt is, once the receipt is durable. */
  readonly receipt: { readonly leafIndex: number; readonly receiptHash: string } | null;
}

/** Consistency between two signed checkpoints of this ledger. */
export interface ConsistencyAnswer {
  readonly from: { readonly treeSize: number; readonly checkpoint: string };
  readonly to: { readonly treeSize: number; readonly checkpoint: string };
  readonly proof: ConsistencyProofJson;
}

export type DaemonState = 'created' | 'starting' | 'running' | 'closing' | 'closed';

/** Options of `waitFor`. */
export interface WaitOptions {
  /** Give up (undefined) after this many ms; none: until final or close(). */
  readonly timeoutMs?: number;
  /** Give up (undefined) when this aborts, e.g. when the client that waits goes away. */
  readonly signal?: AbortSignal;
}

/** A running daemon. Disposable: `await using daemon = createDaemon(…)`. */
export interface Daemon extends AsyncDisposable {
  readonly nodeId: string;
  readonly origin: string;
  readonly dataDir: string;
  readonly state: DaemonState;
  /** The definition registered for `type` (by option, `handle` or a module), as given. */
  definitionOf(type: string): HandlerDefinition | undefined;
  /** Registers a handler for `type` (before start). */
  handle(type: string, handler: DaemonHandler, policy?: HandlerPolicy): Daemon;
  /** Opens the store, loads keys and handler modules, recovers crashed operations, starts running. */
  start(): Promise<void>;
  /**
   * Submits an operation; resolves once it is durable (a duplicate idempotency key
   * resolves with the original).
   * @throws {InvalidInputError} for a malformed request or input; {@link UnknownTypeError}; {@link NotRunningError}.
   */
  submit(request: SubmitRequest): Promise<OperationView>;
  /**
   * Submits what {@link prepareSubmission} made from a request with this daemon's handler
   * definitions, e.g. on another thread: the checks and the digest are not repeated, so
   * only trusted code in this process may call it.
   * @throws {UnknownTypeError}; {@link InvalidInputError} when inputDigest is not hex SHA-256; {@link NotRunningError}.
   */
  submitPrepared(prepared: PreparedSubmission): Promise<OperationView>;
  get(id: string): OperationView | undefined;
  /** Resolves with the operation once it is final and its receipt durable (or undefined after timeoutMs). */
  waitFor(id: string, options?: WaitOptions): Promise<OperationView | undefined>;
  /** Cancels a pending or running operation; false when it is already final. */
  cancel(id: string): Promise<boolean>;
  /** The receipt, its inclusion proof and the durable signed checkpoint the proof leads to. */
  receipt(id: string): ReceiptBundle | undefined;
  /** The latest durable signed checkpoint (undefined while the ledger is empty). */
  checkpoint(): string | undefined;
  /** A consistency proof between two durable signed checkpoints (to: default the latest). */
  consistency(fromSize: number, toSize?: number): ConsistencyAnswer;
  /** Verifies a bundle against this ledger's trusted keys (what an offline verifier does). */
  verify(bundle: unknown): Verdict;
  readonly trustedKeys: readonly TrustedKey[];
  /** Path of the current verifier key file. */
  readonly verifierKeyPath: string;
  health(): { readonly livez: HealthResponse; readonly readyz: HealthResponse };
  /** Node-side diagnostics: serves /livez, /readyz and the snapshot over HTTP. */
  readonly diagnostics: NodeDiagnostics;
  readonly metrics: Metrics;
  readonly logger: NodeLogger;
  logs(query?: LogQuery): Promise<LogPage>;
  report(): Promise<DiagnosticReport>;
  slo(): Promise<SloStatus[]>;
  /** Stops accepting, lets running handlers finish for drainMs (default 10 s), aborts the rest, closes. */
  close(options?: { readonly drainMs?: number }): Promise<void>;
}

const FINAL: ReadonlySet<OperationState> = new Set(['completed', 'dead', 'cancelled']);
/**
 * Operation ids: 22 letters and digits (~131 bits). No `-` or `_`: an id that starts with `-`
 * (1 in 64 of nanoid's default alphabet) reads as an option on a command line.
 */
const newOperationId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 22);
/** What submit's prepared values may hold for handlers: operations that run soon after submit. */
const PREPARED_LIMITS = { entries: 4096, bytes: 16 * 1024 * 1024 } as const;
/** Receipts of operations finished lately kept for their views (waits and reads follow soon after). */
const RECENT_RECEIPTS = 4096;
/** Longest drain close() takes, and longest waitFor timeout timed (a timer's limit, ~24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;
/** The queue lane shared by the types serialised by subject (their group key is the subject). */
const SUBJECT_LANE = 'subject';

/**
 * Creates the daemon: a durable operation queue whose every final state gets a receipt
 * in a signed RFC 9162 ledger in the same commit, with health, metrics, logs and SLOs.
 * Nothing touches the disk until `start()`.
 * @throws {InvalidInputError} for bad options.
 * @example
 * await using daemon = createDaemon({ dataDir: './data' });
 * daemon.handle('greet', async ({ name }) => ({ hello: name }));
 * await daemon.start();
 * const op = await daemon.submit({ type: 'greet', subject: 'urn:example:1', input: { name: 'Ada' } });
 * const done = await daemon.waitFor(op.id);
 * const bundle = daemon.receipt(op.id); // verify it offline with daemon.trustedKeys
 */
export function createDaemon(options: DaemonOptions): Daemon {
  return new UnrdfDaemon(resolveDaemonOptions(options));
}

interface Registered {
  readonly definition: HandlerDefinition;
}

class UnrdfDaemon implements Daemon {
  readonly #o: ResolvedDaemonOptions;
  readonly #types = new Map<string, Registered>();
  #state: DaemonState = 'created';
  /** The start in progress (or done): close() during it waits for it. */
  #starting: Promise<void> | undefined;
  #queue: Queue | undefined;
  #extension: ReceiptExtension | undefined;
  #verifier: ReceiptVerifier | undefined;
  #trustedKeys: readonly TrustedKey[] = [];
  #verifierKeyPath = '';
  #logger: NodeLogger | undefined;
  #metrics: Metrics | undefined;
  #health: Health | undefined;
  #eventLoop: (ReturnType<typeof eventLoopCheck> & { close(): void }) | undefined;
  #diagnostics: NodeDiagnostics | undefined;
  #unsubscribe: (() => void) | undefined;
  /** Releases the data directory's lock, while held. */
  #unlock: (() => void) | undefined;
  readonly #waiters = new Map<string, Set<(view: OperationView) => void>>();
  /** Receipts released lately, by operation id (oldest first): views of them need not read and hash them again. */
  readonly #recentReceipts = new Map<string, { readonly leafIndex: number; readonly receiptHash: string }>();
  /** What submit prepared for handlers, by `type \0 inputDigest` (oldest first). */
  readonly #prepared = new Map<string, { readonly value: unknown; readonly bytes: number }>();
  #preparedBytes = 0;
  #closePromise: Promise<void> | undefined;

  constructor(options: ResolvedDaemonOptions) {
    this.#o = options;
    for (const [type, definition] of Object.entries(options.handlers)) this.#register(type, definition);
  }

  get nodeId() {
    return this.#o.nodeId;
  }
  get origin() {
    return this.#o.origin;
  }
  get dataDir() {
    return this.#o.dataDir;
  }
  get state() {
    return this.#state;
  }
  get trustedKeys() {
    return this.#trustedKeys;
  }
  get verifierKeyPath() {
    return this.#verifierKeyPath;
  }
  get diagnostics(): NodeDiagnostics {
    return this.#need(this.#diagnostics);
  }
  get metrics(): Metrics {
    return this.#need(this.#metrics);
  }
  get logger(): NodeLogger {
    return this.#need(this.#logger);
  }

  #need<T>(value: T | undefined): T {
    if (value === undefined) throw new NotRunningError(this.#state === 'created' ? 'not started' : this.#state);
    return value;
  }

  definitionOf(type: string): HandlerDefinition | undefined {
    return this.#types.get(type)?.definition;
  }

  #register(type: string, definition: HandlerDefinition): void {
    const name = OperationTypeName.safeParse(type);
    if (!name.success) throw InvalidInputError.fromZod(`operation type '${type}'`, name.error);
    const parsed = HandlerDefinitionSchema.safeParse(definition);
    if (!parsed.success) throw InvalidInputError.fromZod(`handler of '${type}'`, parsed.error);
    if (type === 'batch' && definition.batchMembers === undefined) {
      throw new InvalidInputError(`handler of 'batch'`, [
        'batchMembers: the type "batch" makes batch receipts, which commit to members: give batchMembers',
      ]);
    }
    this.#types.set(type, { definition });
  }

  handle(type: string, handler: DaemonHandler, policy: HandlerPolicy = {}): Daemon {
    if (this.#state !== 'created') throw new NotRunningError(`${this.#state}: register handlers before start()`);
    this.#register(type, { ...policy, handler });
    return this;
  }

  start(): Promise<void> {
    if (this.#state !== 'created') return Promise.reject(new NotRunningError(`${this.#state}: start() runs once`));
    this.#state = 'starting';
    this.#starting = (async () => {
      try {
        await this.#start();
        this.#state = 'running';
      } catch (error) {
        await this.#teardown();
        this.#state = 'closed';
        throw error;
      }
    })();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const o = this.#o;
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    this.#unlock = lockDataDir(this.#o.dataDir, this.#o.lockPath);
    for (const module of o.handlerModules) await this.#loadModule(module);
    if (this.#types.size === 0) {
      throw new InvalidInputError('daemon options', ['handlers: register at least one handler (handle() or handlers)']);
    }
    const keys = await loadOrCreateSigningKeys(o.keysDir, o.origin);
    this.#trustedKeys = keys.trustedKeys;
    this.#verifierKeyPath = keys.verifierKeyPath;
    this.#verifier = createReceiptVerifier({ trustedKeys: keys.trustedKeys });

    const hlc = createHlc({ clock: o.clock });
    const diag = o.diagnostics;
    this.#logger = createNodeLogger({
      nodeId: o.nodeId,
      hlc,
      clock: o.clock,
      segmentDir: o.logDir,
      ...(diag.logLevel === undefined ? {} : { level: diag.logLevel }),
      ...(diag.logRingSize === undefined ? {} : { ringSize: diag.logRingSize }),
      ...(diag.logRetentionMs === undefined ? {} : { retentionMs: diag.logRetentionMs }),
      ...(diag.echo === undefined ? {} : { echo: diag.echo }),
    });
    const types = [...this.#types.keys()];
    this.#metrics = createMetrics({
      clock: o.clock,
      sliDatabase: o.sliPath,
      operationTypes: types.filter((t) => /^[a-zA-Z0-9_.-]{1,64}$/.test(t)).slice(0, 100),
      ...(o.meter === undefined ? {} : { meter: o.meter }),
      ...(diag.slos === undefined ? {} : { slos: diag.slos }),
    });
    this.#eventLoop = eventLoopCheck();
    this.#health = createHealth({
      checks: [
        pingCheck(),
        this.#eventLoop,
        storageWritableCheck(o.dataDir),
        // Single node: ready with no election to wait for. Cluster mode reports the Raft leader here.
        raftLeaderCheck(() => ({ singleNode: true, leaderId: o.nodeId, term: 0 })),
        queueAcceptingCheck(() =>
          this.#state === 'running' ? { accepting: true } : { accepting: false, reason: `daemon is ${this.#state}` },
        ),
      ],
    });

    this.#extension = createReceiptExtension({ nodeId: o.nodeId, origin: o.origin, signers: [...keys.signers] });
    const queueTypes: Record<string, TypeOptions> = {};
    for (const [type, { definition }] of this.#types) queueTypes[type] = this.#queueType(type, definition);
    this.#queue = await openQueue({
      path: o.storePath,
      types: queueTypes,
      concurrency: o.concurrency,
      durability: o.durability,
      clock: { now: o.clock },
      generateId: o.generateId ?? newOperationId,
      extensions: [this.#extension, ...o.extensions],
      ...(o.retentionMs === undefined ? {} : { retentionMs: o.retentionMs }),
      ...(o.meter === undefined ? {} : { meter: o.meter }),
      onSettleError: (error, { id, kind }) =>
        this.#logger?.logger.error(
          { err: error, operationId: id, outcome: kind },
          'an outcome could not be committed; the operation stays running until the next start finishes it',
        ),
    });
    this.#unsubscribe = this.#queue.onEvent((event) => this.#onEvent(event));
    // What the queue's start finished (crash recovery dead-letters an operation whose
    // attempts ran out) is on disk, receipt included, but was published before we listened.
    for (const appended of this.#extension.releaseAll()) this.#recovered(appended);

    this.#diagnostics = createNodeDiagnostics({
      nodeId: o.nodeId,
      version: o.version,
      logger: this.#logger,
      health: this.#health,
      metrics: this.#metrics,
      dataDir: o.dataDir,
      consensus: () => null,
    });
    this.#state = 'running'; // the readiness check reads it
    await this.#health.refresh();
    this.#logger.logger.info(
      { dataDir: o.dataDir, origin: o.origin, types, treeSize: this.#extension.ledger.size() },
      'daemon started',
    );
  }

  async #loadModule(specifier: string): Promise<void> {
    const isPath = isAbsolute(specifier) || specifier.startsWith('.');
    const url = isPath ? pathToFileURL(resolve(specifier)).href : specifier;
    let module: { handlers?: unknown; default?: unknown };
    try {
      module = (await import(url)) as typeof module;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw cause;
      // A bare name is a package to Node, as in `import`: `handlers.mjs` is not ./handlers.mjs.
      const bareFile = !isPath && !specifier.startsWith('file:') && existsSync(specifier);
      throw new InvalidInputError(
        `handler module ${specifier}`,
        [
          `(root): ${(cause as Error).message.split('\n')[0]}`,
          ...(bareFile
            ? [`(root): '${specifier}' is read as a package name; for the file here, write ./${specifier}`]
            : []),
        ],
        { cause },
      );
    }
    const handlers = module.handlers ?? module.default;
    if (typeof handlers !== 'object' || handlers === null) {
      throw new InvalidInputError(`handler module ${specifier}`, [
        '(root): export `handlers` (or a default export): a record of { handler, ...policy } by operation type',
      ]);
    }
    for (const [type, definition] of Object.entries(handlers)) this.#register(type, definition as HandlerDefinition);
  }

  #queueType(type: string, definition: HandlerDefinition): TypeOptions {
    const defaults = this.#o.defaults;
    const nodeId = this.#o.nodeId;
    const timeoutMs = definition.timeoutMs ?? defaults.timeoutMs;
    const maxAttempts = definition.maxAttempts ?? defaults.maxAttempts;
    const backoff = definition.backoff ?? defaults.backoff;
    const handler = async (payload: PayloadEnvelope, context: HandlerContext): Promise<ResultEnvelope> => {
      // The spec's queue wait (JTBD 5): from when the operation was due to when its handler
      // starts, time spent claimed ahead of a free slot included.
      this.#metrics?.observe('queue_wait', { durationMs: Math.max(0, this.#o.clock() - context.runAt), ok: true });
      const output =
        (await definition.handler(payload.input, {
          id: context.id,
          type,
          subject: payload.subject,
          attempt: context.attempt,
          token: context.token,
          idempotencyKey: context.idempotencyKey,
          nodeId,
          inputDigest: payload.inputDigest,
          prepared: this.#takePrepared(type, payload.inputDigest),
          signal: context.signal,
          setEffects: context.setEffects,
        })) ?? null;
      const digest = definition.outputDigest ? definition.outputDigest(output) : jsonDigest(output);
      const members = definition.batchMembers?.(payload.input, output);
      return {
        output,
        outputDigest: digest === null ? null : hex(digest),
        ...(members === undefined
          ? {}
          : {
              members: members.map((m) => ({
                type: m.type,
                subject: m.subject,
                inputDigest: hex(m.inputDigest),
                outputDigest: m.outputDigest === null ? null : hex(m.outputDigest),
              })),
            }),
      };
    };
    return {
      handler,
      ...(definition.concurrency === undefined ? {} : { concurrency: definition.concurrency }),
      // One lane for every type serialised by subject: a create and then an update of one
      // subject run in that order, the update once the create's outcome is committed.
      ...(definition.serialize === 'subject' ? { groupConcurrency: 1, lane: SUBJECT_LANE } : {}),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
      ...(backoff === undefined ? {} : { backoff }),
      ...(definition.crashPolicy === undefined ? {} : { crashPolicy: definition.crashPolicy }),
      ...(definition.storeOnly === undefined ? {} : { storeOnly: definition.storeOnly }),
      ...(definition.priority === undefined ? {} : { priority: definition.priority }),
    };
  }

  #running(): Queue {
    if (this.#state !== 'running' || this.#queue === undefined) {
      throw new NotRunningError(this.#state === 'created' ? 'not started' : this.#state);
    }
    return this.#queue;
  }

  async submit(request: SubmitRequest): Promise<OperationView> {
    this.#running();
    return this.#enqueue(
      prepareSubmission(
        request,
        (type) => this.#types.get(type)?.definition,
        () => [...this.#types.keys()],
      ),
    );
  }

  async submitPrepared(prepared: PreparedSubmission): Promise<OperationView> {
    this.#running();
    if (!this.#types.has(prepared.type)) throw new UnknownTypeError(prepared.type, [...this.#types.keys()]);
    if (!/^[0-9a-f]{64}$/.test(prepared.inputDigest)) {
      throw new InvalidInputError('prepared submission', ['inputDigest: 64 lowercase hex digits']);
    }
    return this.#enqueue(prepared);
  }

  async #enqueue(p: PreparedSubmission): Promise<OperationView> {
    const queue = this.#running();
    if (p.prepared !== undefined) this.#keepPrepared(p.type, p.inputDigest, p.prepared, p.preparedBytes ?? 0);
    const envelope: PayloadEnvelope = { subject: p.subject, input: p.input, inputDigest: p.inputDigest };
    let operation: Operation;
    try {
      operation = await queue.enqueue(p.type, envelope, {
        ...(p.priority === undefined ? {} : { priority: p.priority }),
        ...(p.runAt === undefined ? {} : { runAt: p.runAt }),
        ...(p.groupKey === undefined ? {} : { groupKey: p.groupKey }),
        ...(p.idempotencyKey === undefined ? {} : { idempotencyKey: p.idempotencyKey }),
        ...(p.maxAttempts === undefined ? {} : { maxAttempts: p.maxAttempts }),
      });
    } catch (error) {
      if (error instanceof QueueInvalidInputError) {
        throw new InvalidInputError('operation', error.message.split('\n').slice(1), { cause: error });
      }
      throw error;
    }
    return this.#view(operation);
  }

  /**
   * Keeps what submit prepared for the handler, by type and input digest (the operation's
   * id is not known yet: a handler claimed with its enqueue may start before that resolves).
   * Bounded in entries and bytes, oldest out first; a handler takes its entry once.
   */
  #keepPrepared(type: string, digest: string, value: unknown, bytes: number): void {
    // A size that is not a count (negative, NaN) would defeat the bound: not kept.
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > PREPARED_LIMITS.bytes) return;
    const key = `${type}\0${digest}`;
    const old = this.#prepared.get(key);
    if (old !== undefined) {
      this.#prepared.delete(key);
      this.#preparedBytes -= old.bytes;
    }
    this.#prepared.set(key, { value, bytes });
    this.#preparedBytes += bytes;
    for (const [oldest, entry] of this.#prepared) {
      if (this.#prepared.size <= PREPARED_LIMITS.entries && this.#preparedBytes <= PREPARED_LIMITS.bytes) break;
      this.#prepared.delete(oldest);
      this.#preparedBytes -= entry.bytes;
    }
  }

  #takePrepared(type: string, digest: string): unknown {
    const key = `${type}\0${digest}`;
    const entry = this.#prepared.get(key);
    if (entry === undefined) return undefined;
    this.#prepared.delete(key);
    this.#preparedBytes -= entry.bytes;
    return entry.value;
  }

  /** `appended`: the receipt just released for it, when known (saves reading it back). */
  #view(operation: Operation, appended?: AppendedReceipt): OperationView {
    const payload = operation.payload as Partial<PayloadEnvelope> | null;
    const envelope = typeof payload?.subject === 'string' ? payload : undefined;
    const result = operation.result as ResultEnvelope | null;
    const final = FINAL.has(operation.state);
    let receipt: OperationView['receipt'] = null;
    if (appended !== undefined) receipt = { leafIndex: appended.leafIndex, receiptHash: appended.receiptHash };
    else if (final) {
      const stored = this.#recentReceipts.get(operation.id) ?? this.#durableReceipt(operation.id);
      if (stored) receipt = { leafIndex: stored.leafIndex, receiptHash: stored.receiptHash };
    }
    return {
      id: operation.id,
      type: operation.type,
      subject: envelope?.subject ?? '',
      state: operation.state,
      outcome:
        operation.state === 'completed'
          ? 'succeeded'
          : operation.state === 'dead'
            ? 'failed'
            : operation.state === 'cancelled'
              ? 'cancelled'
              : null,
      input: envelope?.input ?? null,
      output: operation.state === 'completed' ? (result?.output ?? null) : null,
      error: operation.error,
      attempts: operation.attempts,
      maxAttempts: operation.maxAttempts,
      priority: operation.priority,
      idempotencyKey: operation.idempotencyKey,
      submittedAt: operation.createdAt,
      runAt: operation.runAt,
      startedAt: operation.startedAt,
      finishedAt: operation.finishedAt,
      receipt,
    };
  }

  #durableReceipt(id: string): { leafIndex: number; receiptHash: string; receipt: Receipt } | undefined {
    const extension = this.#extension;
    if (extension === undefined) return undefined;
    const receipt = extension.ledger.receiptByOperationId(id);
    if (receipt === undefined || receipt.leafIndex >= extension.durableSize()) return undefined;
    return { leafIndex: receipt.leafIndex, receiptHash: receiptHash(receipt), receipt };
  }

  get(id: string): OperationView | undefined {
    if (this.#state === 'closed') throw new NotRunningError('closed');
    const operation = this.#queue?.get(id);
    return operation === undefined ? undefined : this.#view(operation);
  }

  waitFor(id: string, options: WaitOptions = {}): Promise<OperationView | undefined> {
    const { timeoutMs, signal } = options;
    if (timeoutMs !== undefined && !(timeoutMs >= 0)) {
      return Promise.reject(new InvalidInputError('waitFor options', ['timeoutMs: expected a number of ms >= 0']));
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      return Promise.reject(new InvalidInputError('waitFor options', ['signal: expected an AbortSignal']));
    }
    try {
      return this.#waitFor(id, timeoutMs, signal);
    } catch (error) {
      return Promise.reject(error); // e.g. NotRunningError once closed: a rejection, never a throw
    }
  }

  #waitFor(id: string, timeoutMs: number | undefined, signal?: AbortSignal): Promise<OperationView | undefined> {
    if (this.#state === 'closed') throw new NotRunningError('closed');
    // Finished lately (a quick operation is often final by the time its submit resolves),
    // else the state alone first: a wait that starts before the operation is final would
    // throw away the whole row (payload, result) and its receipt. A view has a receipt
    // only once final with the receipt durable.
    const recent = this.#recentReceipts.has(id);
    const state = recent ? undefined : this.#queue?.state(id);
    if (!recent && state === undefined) return Promise.resolve(undefined);
    if (recent || FINAL.has(state as OperationState)) {
      const now = this.get(id);
      if (now === undefined || now.receipt !== null) return Promise.resolve(now);
    }
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolveWait) => {
      let timer: NodeJS.Timeout | undefined;
      const waiters = this.#waiters.get(id) ?? new Set();
      const aborted = () => done(undefined);
      const done = (view: OperationView | undefined) => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        waiters.delete(done);
        if (waiters.size === 0 && this.#waiters.get(id) === waiters) this.#waiters.delete(id);
        resolveWait(view);
      };
      waiters.add(done);
      this.#waiters.set(id, waiters);
      // Longer than a timer can hold (~24.8 days), or Infinity: no timeout (close() ends it).
      if (timeoutMs !== undefined && timeoutMs <= MAX_TIMER_MS) timer = setTimeout(() => done(undefined), timeoutMs);
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  #onEvent(event: QueueEvent): void {
    const metrics = this.#metrics;
    if (event.kind !== 'completed' && event.kind !== 'dead' && event.kind !== 'cancelled') return;
    // Transitions arrive once their commit is on disk: the receipt is durable now.
    const appended = this.#extension?.released(event.id);
    if (appended !== undefined) this.#remember(event.id, appended);
    const waiters = this.#waiters.get(event.id);
    // The receipt carries the submission time; the stored operation is read only when
    // someone waits for it or the receipt is missing (the hot path reads nothing).
    const operation = waiters !== undefined || appended === undefined ? this.#queue?.get(event.id) : undefined;
    const submittedAt = appended?.receipt.submittedAt ?? operation?.createdAt;
    if (submittedAt !== undefined && metrics !== undefined) {
      const ok = event.kind === 'completed';
      const error = ok ? null : (operation?.error ?? parseError(event.error));
      metrics.recordOperation({
        id: event.id,
        type: event.type,
        ok,
        durationMs: Math.max(0, event.at - submittedAt),
        ...(error === null ? {} : { errorType: error.code ?? error.name, errorMessage: error.message.slice(0, 1024) }),
        // A user's cancel is not a failure of the service: it burns no error budget.
        ...(event.kind === 'cancelled' ? { cancelled: true } : {}),
      });
      metrics.observe('receipt', {
        durationMs: Math.max(0, this.#o.clock() - submittedAt),
        ok: appended !== undefined,
      });
    }
    this.#logger?.logger.info(
      {
        op: event.id,
        type: event.type,
        outcome: event.kind,
        ...(appended === undefined ? {} : { leafIndex: appended.leafIndex, receiptHash: appended.receiptHash }),
      },
      'operation finished',
    );
    if (waiters !== undefined && operation !== undefined) {
      const view = this.#view(operation, appended);
      for (const waiter of [...waiters]) waiter(view);
    }
  }

  /** An operation that reached its final state during the queue's start: on record like any other. */
  #recovered(appended: AppendedReceipt): void {
    const { receipt } = appended;
    this.#remember(receipt.operationId, appended);
    const ok = receipt.outcome.status === 'succeeded';
    this.#metrics?.recordOperation({
      id: receipt.operationId,
      type: receipt.type,
      ok,
      durationMs: Math.max(0, receipt.finishedAt - receipt.submittedAt),
      ...(receipt.outcome.status === 'failed' ? { errorType: receipt.outcome.errorCode } : {}),
      ...(receipt.outcome.status === 'failed' && receipt.outcome.errorCode === CANCELLED_CODE
        ? { cancelled: true }
        : {}),
    });
    this.#logger?.logger.info(
      {
        op: receipt.operationId,
        type: receipt.type,
        outcome: receipt.outcome.status,
        leafIndex: appended.leafIndex,
        receiptHash: appended.receiptHash,
      },
      'operation finished while the daemon started',
    );
  }

  /** Keeps the last RECENT_RECEIPTS released receipts' positions, so a view needs no ledger lookup. */
  #remember(id: string, appended: AppendedReceipt): void {
    this.#recentReceipts.set(id, { leafIndex: appended.leafIndex, receiptHash: appended.receiptHash });
    if (this.#recentReceipts.size > RECENT_RECEIPTS) {
      this.#recentReceipts.delete(this.#recentReceipts.keys().next().value as string);
    }
  }

  async cancel(id: string): Promise<boolean> {
    return this.#running().cancel(id);
  }

  receipt(id: string): ReceiptBundle | undefined {
    const extension = this.#extension;
    if (extension === undefined) return undefined;
    // Within the durable prefix; a recent signed size that covers the receipt serves.
    return extension.ledger.receiptBundle(id, extension.durableSize());
  }

  checkpoint(): string | undefined {
    const extension = this.#extension;
    if (extension === undefined) return undefined;
    const size = extension.durableSize();
    return size === 0 ? undefined : extension.ledger.checkpointAt(size);
  }

  consistency(fromSize: number, toSize?: number): ConsistencyAnswer {
    const extension = this.#need(this.#extension);
    const durable = extension.durableSize();
    const to = toSize ?? durable;
    const bad: string[] = [];
    if (!Number.isSafeInteger(fromSize) || fromSize < 1) bad.push('from: a tree size of at least 1');
    if (!Number.isSafeInteger(to) || to < fromSize || to > durable) {
      bad.push(`to: a tree size between from and the latest checkpoint's (${durable})`);
    }
    const fromNote = bad.length === 0 ? extension.ledger.checkpointAt(fromSize) : undefined;
    const toNote = bad.length === 0 ? extension.ledger.checkpointAt(to) : undefined;
    if (bad.length === 0 && fromNote === undefined) bad.push(`from: no checkpoint was signed at tree size ${fromSize}`);
    if (bad.length === 0 && toNote === undefined) bad.push(`to: no checkpoint was signed at tree size ${to}`);
    if (bad.length > 0 || fromNote === undefined || toNote === undefined) {
      throw new InvalidInputError('consistency request', bad);
    }
    return {
      from: { treeSize: fromSize, checkpoint: fromNote },
      to: { treeSize: to, checkpoint: toNote },
      proof: extension.ledger.consistencyProof(fromSize, to),
    };
  }

  verify(bundle: unknown): Verdict {
    const verifier = this.#need(this.#verifier);
    const parsed = ReceiptBundleSchema.safeParse(bundle);
    if (!parsed.success) {
      return { status: 'invalid', reason: InvalidInputError.fromZod('bundle', parsed.error).issues.join('; ') };
    }
    const started = performance.now();
    const verdict = verifier.verify(parsed.data.receipt, parsed.data.proof, parsed.data.checkpoint);
    this.#metrics?.observe('verification', { durationMs: performance.now() - started, ok: verdict.status === 'valid' });
    return verdict;
  }

  health() {
    const health = this.#need(this.#health);
    return { livez: health.livez(), readyz: health.readyz() };
  }

  logs(query: LogQuery = {}): Promise<LogPage> {
    return this.#need(this.#logger).read(query);
  }

  async report(): Promise<DiagnosticReport> {
    const diagnostics = this.#need(this.#diagnostics);
    return collectDiagnosticReport({
      nodes: [localDiagnosticNode(diagnostics)],
      metrics: this.#need(this.#metrics),
      clock: this.#o.clock,
      ...(this.#o.diagnostics.slos === undefined ? {} : { slos: this.#o.diagnostics.slos }),
    });
  }

  async slo(): Promise<SloStatus[]> {
    const diagnostics = this.#need(this.#diagnostics);
    const report = await collectDiagnosticReport({
      nodes: [localDiagnosticNode(diagnostics)],
      clock: this.#o.clock,
      maxLogRecordsPerNode: 1,
      minLogRecordsPerNode: 0,
      ...(this.#o.diagnostics.slos === undefined ? {} : { slos: this.#o.diagnostics.slos }),
    });
    return report.slos;
  }

  close(options: { readonly drainMs?: number } = {}): Promise<void> {
    const drainMs = options.drainMs;
    if (drainMs !== undefined && (!Number.isSafeInteger(drainMs) || drainMs < 0 || drainMs > MAX_TIMER_MS)) {
      return Promise.reject(
        new InvalidInputError('close options', [`drainMs: expected an integer from 0 to ${MAX_TIMER_MS} (ms)`]),
      );
    }
    this.#closePromise ??= (async () => {
      if (this.#state === 'created') {
        this.#state = 'closed';
        return;
      }
      // Closed during start(): let it finish (or fail and clean up after itself) first, so
      // nothing it opens afterwards outlives the close, the lock included.
      if (this.#state === 'starting') await this.#starting?.catch(() => undefined);
      if (this.#state === 'closed') return;
      this.#state = 'closing';
      // Not ready from now on: readiness is read from cached check results.
      await this.#health?.refresh().catch(() => undefined);
      this.#logger?.logger.info({ drainMs: options.drainMs ?? null }, 'daemon closing');
      await this.#teardown(options.drainMs);
      this.#state = 'closed';
    })();
    return this.#closePromise;
  }

  async #teardown(drainMs?: number): Promise<void> {
    try {
      await this.#queue?.close(drainMs === undefined ? {} : { drainMs });
    } finally {
      this.#unsubscribe?.();
      for (const [, waiters] of this.#waiters) for (const waiter of [...waiters]) waiter(undefined as never);
      this.#waiters.clear();
      await this.#diagnostics?.close();
      await this.#health?.close();
      this.#eventLoop?.close();
      this.#metrics?.close();
      await this.#logger?.close();
      this.#unlock?.();
      this.#unlock = undefined;
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** A stored error (JSON text of `{ name, message, code? }`), or a stand-in when it is missing or not JSON. */
function parseError(text: string | undefined): { name: string; message: string; code?: string } {
  if (text === undefined) return { name: 'Cancelled', message: 'cancelled' };
  try {
    const e = JSON.parse(text) as { name?: unknown; message?: unknown; code?: unknown };
    return {
      name: typeof e.name === 'string' ? e.name : 'Error',
      message: typeof e.message === 'string' ? e.message : '',
      ...(typeof e.code === 'string' ? { code: e.code } : {}),
    };
  } catch {
    return { name: 'Error', message: text.slice(0, 1024) };
  }
}
