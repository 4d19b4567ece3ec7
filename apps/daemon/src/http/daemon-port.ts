// What the HTTP API asks of the daemon, as one asynchronous interface with two
// implementations: the daemon itself (same thread), and a proxy over a MessagePort for
// an HTTP front on a worker thread. The front then spends its CPU (sockets, HTTP
// parsing, routing, auth, zod validation, JSON) on the machine's other core, and the
// daemon's thread runs only the queue, the ledger and the handlers.
import type { MessagePort } from 'node:worker_threads';
import type { ConsistencyAnswer, Daemon, DaemonState, OperationView } from '@unrdf/daemon';
// Values from the light entry points: the HTTP front's thread loads only these of the packages.
import {
  InvalidInputError,
  NotRunningError,
  type PreparedSubmission,
  prepareSubmission,
  type SubmitDefinition,
  type SubmitRequest,
  UnknownTypeError,
} from '@unrdf/daemon/wire';
import type { DiagnosticReport, HealthAnswer, LogPage, LogQuery, SloStatus } from '@unrdf/diagnostics';
import { DIAGNOSTICS_PATHS } from '@unrdf/diagnostics/wire';
import type { Verdict } from '@unrdf/receipts';
import type { ReceiptBundle } from '@unrdf/receipts/ledger';
import type { Telemetry } from '../telemetry.js';
import type { TrustedKeysBody } from './schemas.js';

/** The daemon as the HTTP API sees it: every call may cross a thread. */
export interface DaemonPort {
  readonly kind: 'daemon-port';
  readonly nodeId: string;
  submit(request: SubmitRequest): Promise<OperationView>;
  /**
   * Submits, then waits up to `waitMs` for the final state and durable receipt: one
   * crossing instead of two. `final` is undefined when the wait ran out or `signal`
   * aborted (the submission stands either way).
   */
  submitAndWait(
    request: SubmitRequest,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<{ readonly accepted: OperationView; readonly final: OperationView | undefined }>;
  get(id: string): Promise<OperationView | undefined>;
  /** The final view, or undefined once `timeoutMs` ran out or `signal` aborted. */
  waitFor(id: string, timeoutMs: number, signal?: AbortSignal): Promise<OperationView | undefined>;
  cancel(id: string): Promise<boolean>;
  receipt(id: string): Promise<ReceiptBundle | undefined>;
  verify(bundle: unknown): Promise<Verdict>;
  checkpoint(): Promise<string | undefined>;
  consistency(fromSize: number, toSize?: number): Promise<ConsistencyAnswer>;
  /** The `/v1/keys` answer: the ledger's origin and its public verifier keys. */
  keys(): Promise<TrustedKeysBody>;
  /** The answer to a `/livez` or `/readyz` request target; undefined for other paths. */
  health(target: string): Promise<HealthAnswer | undefined>;
  report(): Promise<DiagnosticReport>;
  logs(query: LogQuery): Promise<LogPage>;
  slo(): Promise<SloStatus[]>;
  /** The Prometheus text exposition of every metric. */
  metricsText(): Promise<string>;
  /** Records a request that failed inside the daemon (the API answers 500). */
  logError(fields: Record<string, unknown>, message: string): void;
  /** The server is closing: waits end at once (and later ones do not wait), so long polls do not hold it up. */
  endWaits(): void;
}

/** What only crosses the channel: submissions the front already checked and digested. */
interface PreparedCalls {
  submitPrepared(prepared: PreparedSubmission): Promise<OperationView>;
  submitPreparedAndWait(
    prepared: PreparedSubmission,
    waitMs: number,
    signal?: AbortSignal,
  ): ReturnType<DaemonPort['submitAndWait']>;
}

/** The port of a daemon on this thread. */
export function localDaemonPort(daemon: Daemon, telemetry: Telemetry): DaemonPort & PreparedCalls {
  let ended = false;
  // The waits in progress, each ended at once (undefined) by endWaits. A Promise.race with
  // one long-lived "ended" promise would leave a reaction on it per wait, kept until close
  // (measured: ~650 bytes and a promise per ?wait request, all in the old generation).
  const waiting = new Set<() => void>();
  const waitFor = (id: string, timeoutMs: number, signal?: AbortSignal): Promise<OperationView | undefined> => {
    if (!(timeoutMs > 0) || ended) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const end = () => resolve(undefined);
      // a synchronous throw rejects this promise
      const view = daemon.waitFor(id, signal === undefined ? { timeoutMs } : { timeoutMs, signal });
      waiting.add(end);
      view.then(
        (view) => {
          waiting.delete(end);
          resolve(view);
        },
        (error: unknown) => {
          waiting.delete(end);
          reject(error);
        },
      );
    });
  };
  // Once final, the final view stands for the accepted one too: one object crosses the port, not two.
  const acceptedAndFinal = async (accepted: OperationView, waitMs: number, signal: AbortSignal | undefined) => {
    const final = await waitFor(accepted.id, waitMs, signal);
    return { accepted: final ?? accepted, final };
  };
  return {
    kind: 'daemon-port',
    get nodeId() {
      return daemon.nodeId;
    },
    submit: (request) => daemon.submit(request),
    submitAndWait: async (request, waitMs, signal) => acceptedAndFinal(await daemon.submit(request), waitMs, signal),
    submitPrepared: (prepared) => daemon.submitPrepared(prepared),
    submitPreparedAndWait: async (prepared, waitMs, signal) =>
      acceptedAndFinal(await daemon.submitPrepared(prepared), waitMs, signal),
    get: async (id) => daemon.get(id),
    waitFor,
    cancel: (id) => daemon.cancel(id),
    receipt: async (id) => daemon.receipt(id),
    verify: async (bundle) => daemon.verify(bundle),
    checkpoint: async () => daemon.checkpoint(),
    consistency: async (from, to) => daemon.consistency(from, to),
    keys: async () => ({
      origin: daemon.origin,
      keys: daemon.trustedKeys.flatMap((key) =>
        typeof key.verifierKey === 'string'
          ? [
              {
                verifierKey: key.verifierKey,
                ...(key.fromSize === undefined ? {} : { fromSize: key.fromSize }),
                ...(key.untilSize === undefined ? {} : { untilSize: key.untilSize }),
              },
            ]
          : [],
      ),
    }),
    async health(target) {
      const diagnostics = daemon.diagnostics; // throws NotRunningError (503) unless running or closing
      if (target.split('?', 1)[0] === DIAGNOSTICS_PATHS.readyz && daemon.state !== 'running') {
        // The cached checks stop refreshing once the daemon closes: do not report a stale "ready".
        return { status: 503, body: `[-]queue failed: daemon is ${daemon.state}\nreadyz check failed\n` };
      }
      return diagnostics.healthAnswer(target);
    },
    report: () => daemon.report(),
    logs: (query) => daemon.logs(query),
    slo: () => daemon.slo(),
    metricsText: () => telemetry.metricsText(),
    logError(fields, message) {
      try {
        daemon.logger.logger.error(fields, message);
      } catch {
        // The daemon is not running: nothing to log to.
      }
    },
    endWaits() {
      ended = true;
      for (const end of waiting) end();
      waiting.clear();
    },
  };
}

type Method = Exclude<keyof (DaemonPort & PreparedCalls), 'kind' | 'nodeId' | 'logError' | 'endWaits'>;
/** Calls that wait, and take an AbortSignal as their third argument; it crosses as an `abort` message. */
const ABORTABLE: ReadonlySet<string> = new Set<Method>(['submitAndWait', 'submitPreparedAndWait', 'waitFor']);
const METHODS: readonly Method[] = [
  'submit',
  'submitAndWait',
  'submitPrepared',
  'submitPreparedAndWait',
  'get',
  'waitFor',
  'cancel',
  'receipt',
  'verify',
  'checkpoint',
  'consistency',
  'keys',
  'health',
  'report',
  'logs',
  'slo',
  'metricsText',
];
const METHOD_SET: ReadonlySet<string> = new Set(METHODS);

interface Call {
  readonly id: number;
  /** `abort`: args[0] is the id of a waiting call whose client went away. */
  readonly method: Method | 'logError' | 'endWaits' | 'abort';
  readonly args: unknown[];
}
type Reply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: WireError };

/** The daemon's typed errors cross as data and are rebuilt on the other side (the API maps them to 4xx/503). */
interface WireError {
  readonly name: string;
  readonly message: string;
  readonly what?: string;
  readonly issues?: readonly string[];
  readonly type?: string;
  readonly known?: readonly string[];
  readonly state?: DaemonState | string;
}

function toWire(error: unknown): WireError {
  if (error instanceof InvalidInputError) {
    return { name: error.name, message: error.message, what: error.what, issues: [...error.issues] };
  }
  if (error instanceof UnknownTypeError) {
    return { name: error.name, message: error.message, type: error.type, known: [...error.known] };
  }
  if (error instanceof NotRunningError) return { name: error.name, message: error.message, state: error.state };
  return {
    name: error instanceof Error ? error.name : 'Error',
    message: error instanceof Error ? error.message : String(error),
  };
}

function fromWire(wire: WireError): Error {
  if (wire.name === 'InvalidInputError') return new InvalidInputError(wire.what ?? 'input', wire.issues ?? []);
  if (wire.name === 'UnknownTypeError') return new UnknownTypeError(wire.type ?? '', wire.known ?? []);
  if (wire.name === 'NotRunningError') return new NotRunningError(wire.state ?? 'closed');
  const error = new Error(wire.message);
  error.name = wire.name;
  return error;
}

/**
 * Answers the calls of a {@link remoteDaemonPort} on `channel` with `local` (on the
 * daemon's thread). Returns a function that stops answering.
 */
export function serveDaemonPort(channel: MessagePort, local: DaemonPort & PreparedCalls): () => void {
  // The waiting calls' signals, by call id, until they answer.
  const aborts = new Map<number, AbortController>();
  const onMessage = (call: Call) => {
    if (call.method === 'abort') {
      aborts.get(call.args[0] as number)?.abort();
      return;
    }
    if (call.method === 'logError') {
      local.logError(call.args[0] as Record<string, unknown>, String(call.args[1]));
      return;
    }
    if (call.method === 'endWaits') {
      local.endWaits();
      return;
    }
    if (!METHOD_SET.has(call.method)) {
      channel.postMessage({ id: call.id, ok: false, error: { name: 'Error', message: `no method ${call.method}` } });
      return;
    }
    let result: Promise<unknown>;
    let args = call.args;
    if (ABORTABLE.has(call.method)) {
      const controller = new AbortController();
      aborts.set(call.id, controller);
      args = [call.args[0], call.args[1], controller.signal];
    }
    try {
      result = (local[call.method] as (...args: unknown[]) => Promise<unknown>)(...args);
    } catch (error) {
      result = Promise.reject(error);
    }
    const reply = (answer: Reply) => {
      aborts.delete(call.id);
      try {
        channel.postMessage(answer);
      } catch (error) {
        // An answer that cannot be cloned (DataCloneError) fails its call, not the process.
        channel.postMessage({ id: call.id, ok: false, error: toWire(error) } satisfies Reply);
      }
    };
    result.then(
      (value) => reply({ id: call.id, ok: true, value }),
      (error: unknown) => reply({ id: call.id, ok: false, error: toWire(error) }),
    );
  };
  channel.on('message', onMessage);
  return () => channel.off('message', onMessage);
}

/** Thrown to callers still waiting when the channel closes. */
const closedError = () => new NotRunningError('closed');

/**
 * A DaemonPort on another thread, reached over `channel` (whose other end runs
 * {@link serveDaemonPort}). `close()` fails the calls still waiting.
 *
 * With `definitions` (the submit side of types the daemon registered, e.g. the RDF
 * handlers'), submissions of those types are checked and digested here with
 * `prepareSubmission`, and the daemon's thread only enqueues them; other types cross as
 * they came and the daemon checks them.
 */
export function remoteDaemonPort(
  channel: MessagePort,
  nodeId: string,
  definitions: Readonly<Record<string, SubmitDefinition>> = {},
): DaemonPort & { close(): void } {
  const known = new Map(Object.entries(definitions));
  const waiting = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void; done?(): void }>();
  let nextId = 1;
  let closed = false;
  channel.on('message', (reply: Reply) => {
    const call = waiting.get(reply.id);
    if (call === undefined) return;
    waiting.delete(reply.id);
    call.done?.();
    if (reply.ok) call.resolve(reply.value);
    else call.reject(fromWire(reply.error));
  });
  // A type this side does not know is the daemon's to check (and to refuse as unknown).
  const prepareHere = (request: SubmitRequest): PreparedSubmission | undefined => {
    const type = (request as { type?: unknown } | null)?.type;
    if (typeof type !== 'string' || !known.has(type)) return undefined;
    return prepareSubmission(
      request,
      (t) => known.get(t),
      () => [...known.keys()],
    );
  };
  /**
   * Posts a call and resolves with its answer. A waiting call's signal (not cloneable)
   * stays on this side; when it aborts, an `abort` message names the call.
   */
  const invokeWait = <T>(method: Method, signal: AbortSignal | undefined, ...args: unknown[]): Promise<T> => {
    if (closed) return Promise.reject(closedError());
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      const abort = () => {
        if (!closed) channel.postMessage({ id: 0, method: 'abort', args: [id] } satisfies Call);
      };
      const done = signal === undefined ? undefined : () => signal.removeEventListener('abort', abort);
      waiting.set(id, {
        resolve: resolve as (value: unknown) => void,
        reject,
        ...(done === undefined ? {} : { done }),
      });
      channel.postMessage({ id, method, args } satisfies Call);
      if (signal?.aborted) abort();
      else signal?.addEventListener('abort', abort, { once: true });
    });
  };
  const invoke = <T>(method: Method, ...args: unknown[]): Promise<T> => invokeWait(method, undefined, ...args);
  return {
    kind: 'daemon-port',
    nodeId,
    async submit(request) {
      const prepared = prepareHere(request);
      return prepared === undefined ? invoke('submit', request) : invoke('submitPrepared', prepared);
    },
    async submitAndWait(request, waitMs, signal) {
      const prepared = prepareHere(request);
      return prepared === undefined
        ? invokeWait('submitAndWait', signal, request, waitMs)
        : invokeWait('submitPreparedAndWait', signal, prepared, waitMs);
    },
    get: (id) => invoke('get', id),
    waitFor: (id, timeoutMs, signal) => invokeWait('waitFor', signal, id, timeoutMs),
    cancel: (id) => invoke('cancel', id),
    receipt: (id) => invoke('receipt', id),
    verify: (bundle) => invoke('verify', bundle),
    checkpoint: () => invoke('checkpoint'),
    consistency: (from, to) => invoke('consistency', from, to),
    keys: () => invoke('keys'),
    health: (target) => invoke('health', target),
    report: () => invoke('report'),
    logs: (query) => invoke('logs', query),
    slo: () => invoke('slo'),
    metricsText: () => invoke('metricsText'),
    logError(fields, message) {
      if (!closed) channel.postMessage({ id: 0, method: 'logError', args: [fields, message] } satisfies Call);
    },
    endWaits() {
      if (!closed) channel.postMessage({ id: 0, method: 'endWaits', args: [] } satisfies Call);
    },
    close() {
      closed = true;
      for (const call of waiting.values()) {
        call.done?.();
        call.reject(closedError());
      }
      waiting.clear();
      channel.close();
    },
  };
}
