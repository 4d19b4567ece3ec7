import type { z } from 'zod';

/** The base class of every error this package throws; `code` is stable across versions. */
export class QueueError extends Error {
  override readonly name: string = 'QueueError';
  readonly code: string = 'UNRDF_QUEUE';
}

/** Formats zod issues as `path: message` lines, the way a CLI or HTTP 4xx shows them. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`)
    .join('\n');
}

/** Options, a payload or a command failed validation; nothing was written. */
export class InvalidInputError extends QueueError {
  override readonly name = 'InvalidInputError';
  override readonly code = 'UNRDF_QUEUE_INVALID_INPUT';
  readonly what: string;
  readonly issues: readonly z.core.$ZodIssue[];
  constructor(what: string, issues: readonly z.core.$ZodIssue[], message: string, options?: ErrorOptions) {
    super(`Invalid ${what}; nothing was written. Fix these and retry:\n${message}`, options);
    this.what = what;
    this.issues = issues;
  }

  static fromZod(what: string, error: z.ZodError): InvalidInputError {
    return new InvalidInputError(what, error.issues, formatIssues(error), { cause: error });
  }
}

/** An operation type that has no handler registered on this queue. */
export class UnknownTypeError extends QueueError {
  override readonly name = 'UnknownTypeError';
  override readonly code = 'UNRDF_QUEUE_UNKNOWN_TYPE';
  readonly type: string;
  constructor(type: string) {
    super(`No operation type '${type}' is registered; add it to the \`types\` option of openQueue.`);
    this.type = type;
  }
}

/** The queue is closing or closed and accepts no more work. */
export class QueueClosedError extends QueueError {
  override readonly name = 'QueueClosedError';
  override readonly code = 'UNRDF_QUEUE_CLOSED';
  constructor() {
    super('The queue is closed; open a new one to submit work.');
  }
}

/** No operation (or schedule) with that id exists, or it was removed by retention. */
export class NotFoundError extends QueueError {
  override readonly name = 'NotFoundError';
  override readonly code = 'UNRDF_QUEUE_NOT_FOUND';
  readonly kind: 'operation' | 'schedule';
  readonly id: string;
  constructor(kind: 'operation' | 'schedule', id: string) {
    super(`No ${kind} '${id}' exists (it may have been removed by the retention period).`);
    this.kind = kind;
    this.id = id;
  }
}

/** The operation is not in a state that allows the request (e.g. redrive of a completed one). */
export class InvalidStateError extends QueueError {
  override readonly name = 'InvalidStateError';
  override readonly code = 'UNRDF_QUEUE_INVALID_STATE';
  readonly id: string;
  readonly state: string;
  readonly wanted: string;
  constructor(id: string, state: string, wanted: string) {
    super(`Operation '${id}' is ${state}; only ${wanted} operations allow this.`);
    this.id = id;
    this.state = state;
    this.wanted = wanted;
  }
}

/**
 * Thrown by an `ApplyExtension` to refuse an attempt's completion inside its transaction
 * (e.g. a version check of the attempt's effects failed because another operation changed
 * the same data first). The attempt then fails with this error instead of completing:
 * retried by the type's policy, or dead at once when `retry` is false.
 */
export class CompletionRefusedError extends QueueError {
  override readonly name = 'CompletionRefusedError';
  override readonly code = 'UNRDF_QUEUE_COMPLETION_REFUSED';
  readonly retry: boolean;
  constructor(message: string, options: { readonly retry?: boolean; readonly cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.retry = options.retry ?? true;
  }
}

/**
 * Thrown by a handler to say retrying cannot help (bad input, a permanent refusal):
 * the operation goes straight to the dead-letter state, whatever attempts remain.
 */
export class UnrecoverableError extends QueueError {
  override readonly name = 'UnrecoverableError';
  override readonly code = 'UNRDF_QUEUE_UNRECOVERABLE';
}

/** The reason a handler's `signal` aborts when it ran past its type's `timeoutMs`. */
export class OperationTimeoutError extends QueueError {
  override readonly name = 'OperationTimeoutError';
  override readonly code = 'UNRDF_QUEUE_TIMEOUT';
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(`The handler ran longer than its timeout of ${timeoutMs} ms and was aborted.`);
    this.timeoutMs = timeoutMs;
  }
}

/** The reason a handler's `signal` aborts when its operation was cancelled or the queue closed. */
export class OperationAbortedError extends QueueError {
  override readonly name = 'OperationAbortedError';
  override readonly code = 'UNRDF_QUEUE_ABORTED';
  readonly reason: 'cancelled' | 'shutdown';
  constructor(reason: 'cancelled' | 'shutdown') {
    super(
      reason === 'cancelled'
        ? 'The operation was cancelled while its handler ran.'
        : 'The queue is closing and its drain period is over.',
    );
    this.reason = reason;
  }
}
