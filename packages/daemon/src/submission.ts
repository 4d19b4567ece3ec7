// What `submit` does before the queue, as a pure function of the request and the type's
// definition: check the request and the input, compute the receipt's input digest. The
// daemon runs it itself in `submit`; a caller on another thread (the reference app's HTTP
// front) runs it there with the same definitions and hands the result to `submitPrepared`,
// so the daemon's thread spends nothing on parsing or canonicalizing inputs.
import { InvalidInputError, UnknownTypeError } from './errors.js';
import { hex, jsonDigest } from './internal/envelope.js';
import { type HandlerPolicy, type PreparedDigest, SubmitSchema } from './options.js';

/** The parts of a handler definition that submit uses (no handler: they run anywhere). */
export type SubmitDefinition = Pick<HandlerPolicy, 'inputSchema' | 'inputDigest' | 'serialize'>;

/**
 * A submit request checked and digested by {@link prepareSubmission}: what
 * `Daemon.submitPrepared` takes. Structured-cloneable (it may cross a MessagePort) as long
 * as the definition's `prepared` value is.
 */
export interface PreparedSubmission {
  readonly type: string;
  readonly subject: string;
  /** The input as the type's inputSchema returned it (null when none was given). */
  readonly input: unknown;
  /** Hex of the receipt's inputDigest. */
  readonly inputDigest: string;
  /** What the definition's inputDigest handed over for the handler (see {@link PreparedDigest}). */
  readonly prepared?: unknown;
  readonly preparedBytes?: number;
  readonly priority?: number;
  /** Epoch ms. */
  readonly runAt?: number;
  readonly groupKey?: string;
  readonly idempotencyKey?: string;
  readonly maxAttempts?: number;
}

const isPreparedDigest = (value: unknown): value is PreparedDigest =>
  typeof value === 'object' && value !== null && !(value instanceof Uint8Array) && 'digest' in value;

/**
 * Checks a submit request against the definitions and computes its input digest.
 * @param definitionOf the definition of a registered type, undefined for an unknown one.
 * @param knownTypes for the UnknownTypeError's message.
 * @throws {InvalidInputError} for a malformed request or input; {@link UnknownTypeError}.
 * @example
 * const prepared = prepareSubmission(request, (type) => definitions[type], () => Object.keys(definitions));
 * await daemon.submitPrepared(prepared); // on the daemon's thread
 */
export function prepareSubmission(
  request: unknown,
  definitionOf: (type: string) => SubmitDefinition | undefined,
  knownTypes: () => readonly string[],
): PreparedSubmission {
  const parsed = SubmitSchema.safeParse(request);
  if (!parsed.success) throw InvalidInputError.fromZod('operation', parsed.error);
  const r = parsed.data;
  const definition = definitionOf(r.type);
  if (definition === undefined) throw new UnknownTypeError(r.type, [...knownTypes()]);
  let input: unknown = r.input ?? null;
  if (definition.inputSchema) {
    const checked = definition.inputSchema.safeParse(input);
    if (!checked.success) {
      const lines = InvalidInputError.fromZod('input', checked.error).issues.map((l) => `input.${l}`);
      throw new InvalidInputError(`input of '${r.type}'`, lines);
    }
    input = checked.data;
  }
  let digest: Uint8Array | PreparedDigest;
  try {
    digest = definition.inputDigest
      ? definition.inputDigest(input, { subject: r.subject, type: r.type })
      : jsonDigest(input);
  } catch (error) {
    if (error instanceof InvalidInputError) throw error;
    throw new InvalidInputError(`input of '${r.type}'`, [`input: ${(error as Error).message}`], { cause: error });
  }
  const runAt = typeof r.runAt === 'string' ? Date.parse(r.runAt) : r.runAt;
  // A type serialised by subject is grouped by its subject, whatever else a caller asks:
  // another group key would let two operations on one subject run at once.
  const bySubject = definition.serialize === 'subject' ? r.subject.slice(0, 200) : undefined;
  if (bySubject !== undefined && r.groupKey !== undefined && r.groupKey !== bySubject) {
    throw new InvalidInputError(`operation of '${r.type}'`, [
      `groupKey: '${r.type}' runs one operation per subject at a time, grouped by its subject; leave groupKey out`,
    ]);
  }
  const groupKey = bySubject ?? r.groupKey;
  return {
    type: r.type,
    subject: r.subject,
    input,
    ...(isPreparedDigest(digest)
      ? { inputDigest: hex(digest.digest), prepared: digest.prepared, preparedBytes: digest.bytes }
      : { inputDigest: hex(digest) }),
    ...(r.priority === undefined ? {} : { priority: r.priority }),
    ...(runAt === undefined ? {} : { runAt }),
    ...(groupKey === undefined ? {} : { groupKey }),
    ...(r.idempotencyKey === undefined ? {} : { idempotencyKey: r.idempotencyKey }),
    ...(r.maxAttempts === undefined ? {} : { maxAttempts: r.maxAttempts }),
  };
}
