import type {
  BatchMember,
  DaemonHandlerContext,
  HandlerDefinition,
  PreparedDigest,
  SubmitDefinition,
} from '@unrdf/daemon';
import { InvalidInputError } from '@unrdf/daemon/wire';
import { UnrecoverableError } from '@unrdf/queue/errors';
import { z } from 'zod';
import {
  BATCH_DIGEST_TAG,
  BATCH_OUTPUT_DIGEST_TAG,
  type CanonicalDescription,
  canonicalDescription,
  changeDigest,
  DEFAULT_LIMITS,
  type DescriptionLimits,
  entityDigest,
  isAbsoluteIri,
  RDF_FORMATS,
  sha256,
  toHex,
} from './canonical.js';
import type { ChangeOutcome, EntityChange, EntityStore } from './entity-store.js';
import { EntityExistsError, EntityNotFoundError } from './errors.js';

/** The most operations one batch may hold. */
export const MAX_BATCH_OPERATIONS = 1000;

const SubjectIri = z
  .string()
  .min(1)
  .max(1024)
  .refine(isAbsoluteIri, 'must be an absolute IRI (e.g. https://example.org/thing/1)');

/** create / update input: the entity's whole new description. */
export const DescriptionInputSchema = z.strictObject({
  /** Turtle or N-Triples; every triple's subject is the entity or a blank node reachable from it. */
  data: z
    .string()
    .min(1)
    .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)'),
  /** Default `text/turtle` (which also reads N-Triples). */
  format: z.enum(RDF_FORMATS).optional(),
});
export type DescriptionInput = z.infer<typeof DescriptionInputSchema>;

/** delete input: nothing (undefined, null or `{}`). */
export const DeleteInputSchema = z.union([z.undefined(), z.null(), z.strictObject({})]);

const BatchOperationSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('create'), subject: SubjectIri, input: DescriptionInputSchema }),
  z.strictObject({ type: z.literal('update'), subject: SubjectIri, input: DescriptionInputSchema }),
  z.strictObject({ type: z.literal('delete'), subject: SubjectIri, input: DeleteInputSchema.optional() }),
]);

/** batch input: up to 1000 changes applied atomically, in order. */
export const BatchInputSchema = z.strictObject({
  operations: z.array(BatchOperationSchema).min(1).max(MAX_BATCH_OPERATIONS),
});
export type BatchInput = z.infer<typeof BatchInputSchema>;

/** The output of create, update and delete (kept small: no N-Quads unless they are short). */
export interface EntityOutput {
  readonly subject: string;
  readonly version: number;
  readonly triples: number;
  /** Hex SHA-256 of the entity's canonical N-Quads after the change (the receipt's outputDigest); null after delete. */
  readonly sha256: string | null;
  /** The canonical N-Quads, only when at most `maxOutputNquadsBytes` long. */
  readonly nquads?: string;
}

/** The output of batch: one entry per operation, in order (never with `nquads`). */
export interface BatchOutput {
  readonly operations: readonly (EntityOutput & { readonly type: 'create' | 'update' | 'delete' })[];
}

const RdfHandlersOptionsSchema = z.strictObject({
  /** Largest `data` of one description, UTF-8 bytes (default 1 MiB). */
  maxDataBytes: z
    .number()
    .int()
    .min(1)
    .max(64 * 1024 * 1024)
    .optional(),
  /** Most triples in one description (default 10 000). */
  maxTriples: z.number().int().min(1).max(1_000_000).optional(),
  /** Largest total `data` of one batch, UTF-8 bytes (default 4 MiB). */
  maxBatchDataBytes: z
    .number()
    .int()
    .min(1)
    .max(256 * 1024 * 1024)
    .optional(),
  /** Give up canonicalizing one description after this long (default 1000 ms); it is refused as too complex. */
  canonicalizeTimeoutMs: z.number().int().min(1).max(60_000).optional(),
  /** Outputs carry `nquads` when they are at most this many bytes (default 4096; 0 never). */
  maxOutputNquadsBytes: z.number().int().min(0).optional(),
  /** Policy of the four types (defaults: 30 s, 5 attempts). */
  timeoutMs: z.number().int().min(1).max(2_147_483_647).optional(),
  maxAttempts: z.number().int().min(1).max(1000).optional(),
});
export type RdfHandlersOptions = z.input<typeof RdfHandlersOptionsSchema>;

/** The four operation types on RDF entities. */
export type RdfOperationType = 'create' | 'update' | 'delete' | 'batch';

interface ResolvedOptions extends DescriptionLimits {
  readonly maxBatchDataBytes: number;
  readonly maxOutputNquadsBytes: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
}

/** A description canonicalized at submit, with the hex SHA-256 of its N-Quads (the entity digest). */
interface PreparedDescription extends CanonicalDescription {
  readonly sha256: string;
}

/** A batch operation checked and canonicalized. */
interface PreparedMember {
  readonly change: EntityChange;
  readonly inputDigest: Uint8Array;
}

function resolveOptions(options: RdfHandlersOptions): ResolvedOptions {
  const parsed = RdfHandlersOptionsSchema.safeParse(options);
  if (!parsed.success) throw InvalidInputError.fromZod('RDF handler options', parsed.error);
  const o = parsed.data;
  return Object.freeze({
    maxDataBytes: o.maxDataBytes ?? DEFAULT_LIMITS.maxDataBytes,
    maxTriples: o.maxTriples ?? DEFAULT_LIMITS.maxTriples,
    canonicalizeTimeoutMs: o.canonicalizeTimeoutMs ?? DEFAULT_LIMITS.canonicalizeTimeoutMs,
    maxBatchDataBytes: o.maxBatchDataBytes ?? 4 * 1024 * 1024,
    maxOutputNquadsBytes: o.maxOutputNquadsBytes ?? 4096,
    timeoutMs: o.timeoutMs ?? 30_000,
    maxAttempts: o.maxAttempts ?? 5,
  });
}

/** The approximate size of what a digest prepared for its handler (the N-Quads dominate). */
const preparedBytes = (members: readonly PreparedMember[]) =>
  members.reduce((n, m) => n + 128 + ('nquads' in m.change ? m.change.nquads.length : 0), 0);

/** What submit does for the four types: check and canonicalize the input, digest the change. */
function submitSide(resolved: ResolvedOptions) {
  // Issue paths start at `input.`, as the daemon reports inputSchema issues.
  const refuse = (type: RdfOperationType, issues: readonly string[], cause?: unknown) =>
    new InvalidInputError(`input of '${type}'`, issues, cause === undefined ? undefined : { cause });
  const zodIssues = (error: z.ZodError) =>
    error.issues.map((issue) => `${['input', ...issue.path.map(String)].join('.')}: ${issue.message}`);

  const describe = (type: 'create' | 'update', input: unknown, subject?: string): CanonicalDescription => {
    const shape = DescriptionInputSchema.safeParse(input);
    if (!shape.success) throw refuse(type, zodIssues(shape.error), shape.error);
    const result = canonicalDescription(shape.data.data, shape.data.format ?? 'text/turtle', resolved, 'input.data');
    if (!result.ok) throw refuse(type, result.issues);
    if (subject !== undefined && result.value.subject !== subject) {
      throw refuse(type, [`input.data: describes <${result.value.subject}>, not the operation's subject <${subject}>`]);
    }
    return result.value;
  };

  const prepareBatch = (input: unknown): readonly PreparedMember[] => {
    const shape = BatchInputSchema.safeParse(input);
    if (!shape.success) throw refuse('batch', zodIssues(shape.error), shape.error);
    const issues: string[] = [];
    let totalBytes = 0;
    const members: PreparedMember[] = [];
    shape.data.operations.forEach((op, i) => {
      if (op.type === 'delete') {
        members.push({ change: { type: 'delete', subject: op.subject }, inputDigest: changeDigest('delete', '') });
        return;
      }
      totalBytes += Buffer.byteLength(op.input.data, 'utf8');
      if (totalBytes > resolved.maxBatchDataBytes) return;
      const path = `input.operations.${i}.input.data`;
      const result = canonicalDescription(op.input.data, op.input.format ?? 'text/turtle', resolved, path);
      if (!result.ok) {
        issues.push(...result.issues);
        return;
      }
      if (result.value.subject !== op.subject) {
        issues.push(`${path}: describes <${result.value.subject}>, not the operation's subject <${op.subject}>`);
        return;
      }
      members.push({
        change: {
          type: op.type,
          subject: op.subject,
          nquads: result.value.nquads,
          sha256: toHex(entityDigest(result.value.nquads)),
        },
        inputDigest: changeDigest(op.type, result.value.nquads),
      });
    });
    if (totalBytes > resolved.maxBatchDataBytes) {
      issues.unshift(
        `input.operations: the data total ${totalBytes} bytes; at most ${resolved.maxBatchDataBytes} are allowed`,
      );
    }
    if (issues.length > 0) throw refuse('batch', issues.slice(0, 50));
    return members;
  };

  const batchDigest = (members: readonly PreparedMember[]): Uint8Array => {
    let text = `${BATCH_DIGEST_TAG}\0`;
    for (const member of members) {
      text += `${member.change.type}\0${member.change.subject}\0${toHex(member.inputDigest)}\n`;
    }
    return sha256(text);
  };

  const policy = {
    serialize: 'subject',
    timeoutMs: resolved.timeoutMs,
    maxAttempts: resolved.maxAttempts,
    // Re-running after a crash is safe: the store applies one operation id once.
    crashPolicy: 'retry',
    // Nothing is written but through the completion's effects: a handler may start before
    // its submission commits, and its outcome then commits with it.
    storeOnly: true,
  } as const;

  const describeDefinition = (type: 'create' | 'update') => ({
    serialize: policy.serialize,
    inputSchema: DescriptionInputSchema,
    // The optional second argument lets a caller that knows the subject refuse a mismatch at
    // submit. The handler gets the canonical description back as ctx.prepared.
    inputDigest: (input: unknown, operation?: { readonly subject?: string }): PreparedDigest => {
      const description = describe(type, input, operation?.subject);
      // The entity's digest after the change too: the handler's plan need not hash it again.
      const prepared: PreparedDescription = { ...description, sha256: toHex(entityDigest(description.nquads)) };
      return { digest: changeDigest(type, description.nquads), prepared, bytes: 192 + description.nquads.length };
    },
  });

  const definitions = {
    create: describeDefinition('create'),
    update: describeDefinition('update'),
    delete: {
      serialize: policy.serialize,
      inputSchema: DeleteInputSchema,
      inputDigest: (input: unknown, operation?: { readonly subject?: string }) => {
        const shape = DeleteInputSchema.safeParse(input);
        if (!shape.success) throw refuse('delete', zodIssues(shape.error), shape.error);
        // The entity is named by the subject (create and update check it against their data).
        const subject = SubjectIri.safeParse(operation?.subject);
        if (operation?.subject !== undefined && !subject.success) {
          throw new InvalidInputError(`subject of 'delete'`, [
            `subject: ${subject.error.issues[0]?.message ?? 'must be an absolute IRI'}`,
          ]);
        }
        return changeDigest('delete', '');
      },
    },
    batch: {
      serialize: policy.serialize,
      inputSchema: BatchInputSchema,
      inputDigest: (input: unknown): PreparedDigest => {
        const members = prepareBatch(input);
        return { digest: batchDigest(members), prepared: members, bytes: preparedBytes(members) };
      },
    },
  } satisfies Record<RdfOperationType, SubmitDefinition>;
  return { definitions, describe, prepareBatch, policy };
}

/**
 * What submit needs of the four RDF types (schemas and digests, no store): to check and
 * digest submissions off the daemon's thread with `prepareSubmission` (the HTTP front does).
 * Give the options the handlers were made with.
 * @throws {InvalidInputError} bad options.
 */
export function createRdfSubmitDefinitions(
  options: RdfHandlersOptions = {},
): Readonly<Record<RdfOperationType, SubmitDefinition>> {
  return submitSide(resolveOptions(options)).definitions;
}

/**
 * The create / update / delete / batch handlers over an entity store, ready to pass as the
 * daemon's `handlers` option.
 *
 * - `create` `{ data, format? }`: the entity must not exist; `update` `{ data, format? }`
 *   replaces its whole description (no patch); `delete` takes no input. The operation's
 *   `subject` is the entity IRI, and `data` must describe exactly it.
 * - `batch` `{ operations: [{ type, subject, input }] }`: applied in order, all or none.
 * - inputDigest = SHA-256("unrdf-rdf-change/v1" 0x00 type 0x00 RDFC-1.0 N-Quads) (empty N-Quads
 *   for delete); outputDigest = SHA-256(canonical N-Quads after) or null after delete.
 *   Batch: SHA-256("unrdf-rdf-batch/v1" 0x00 then per operation `type 0x00 subject 0x00 hex(inputDigest) \n`),
 *   output SHA-256("unrdf-rdf-batch-output/v1" 0x00 then per operation `subject 0x00 (hex(sha256) | "-") \n`),
 *   and one batch member per operation with its own digests.
 * @throws {InvalidInputError} bad options.
 * @example
 * const store = createEntityStore();
 * const daemon = createDaemon({ dataDir, handlers: createRdfHandlers(store), extensions: [store.extension] });
 */
export function createRdfHandlers(
  store: EntityStore,
  options: RdfHandlersOptions = {},
): Record<RdfOperationType, HandlerDefinition> {
  const resolved = resolveOptions(options);
  const { definitions, describe, prepareBatch: checkBatch, policy } = submitSide(resolved);

  // Members already canonicalized (at submit, or by the handler), by the input object the
  // daemon hands both the handler and batchMembers at completion; a miss just recomputes.
  const preparedBatches = new WeakMap<object, readonly PreparedMember[]>();
  const prepareBatch = (input: unknown): readonly PreparedMember[] => {
    const cached = typeof input === 'object' && input !== null ? preparedBatches.get(input) : undefined;
    if (cached !== undefined) return cached;
    const members = checkBatch(input);
    if (typeof input === 'object' && input !== null) preparedBatches.set(input, members);
    return members;
  };

  const run = (ctx: DaemonHandlerContext, changes: readonly EntityChange[]): readonly ChangeOutcome[] => {
    ctx.signal.throwIfAborted();
    try {
      // Nothing is written here: the completion applies the plan's effects in its own commit,
      // with the receipt, and refuses them (the attempt runs again) if an entity moved meanwhile.
      const { outcomes, effects } = store.plan(changes);
      ctx.setEffects(effects);
      return outcomes;
    } catch (error) {
      // Existence is a fact about the store, not a transient fault: retrying cannot help.
      if (error instanceof EntityExistsError || error instanceof EntityNotFoundError) {
        throw new UnrecoverableError(error.message, { cause: error });
      }
      throw error;
    }
  };

  const output = (outcome: ChangeOutcome, nquads: string | undefined): EntityOutput => {
    const base = {
      subject: outcome.subject,
      version: outcome.version,
      triples: outcome.triples,
      sha256: outcome.sha256,
    };
    return nquads !== undefined && Buffer.byteLength(nquads, 'utf8') <= resolved.maxOutputNquadsBytes
      ? { ...base, nquads }
      : base;
  };

  const entityOutputDigest = (out: unknown): Uint8Array | null => {
    const digest = (out as { sha256?: unknown } | null)?.sha256;
    if (digest === null) return null;
    if (typeof digest !== 'string' || !/^[0-9a-f]{64}$/.test(digest)) {
      throw new TypeError('RDF handler output has no sha256 digest');
    }
    return new Uint8Array(Buffer.from(digest, 'hex'));
  };

  const describeHandler = (type: 'create' | 'update'): HandlerDefinition => ({
    ...policy,
    ...definitions[type],
    outputDigest: entityOutputDigest,
    handler: async (input: unknown, ctx: DaemonHandlerContext): Promise<EntityOutput> => {
      // What submit canonicalized, when this process accepted the operation (else recompute).
      let description = ctx.prepared as (CanonicalDescription & { readonly sha256?: string }) | undefined;
      if (description !== undefined && description.subject !== ctx.subject) description = undefined;
      try {
        description ??= describe(type, input);
      } catch (error) {
        throw new UnrecoverableError(error instanceof Error ? error.message : String(error), { cause: error });
      }
      if (description.subject !== ctx.subject) {
        throw new UnrecoverableError(
          `The data describes <${description.subject}>, not the operation's subject <${ctx.subject}>; submit it with subject ${description.subject}.`,
        );
      }
      const change: EntityChange = { type, subject: ctx.subject, nquads: description.nquads };
      const [outcome] = run(ctx, [
        description.sha256 === undefined ? change : { ...change, sha256: description.sha256 },
      ]);
      return output(outcome as ChangeOutcome, description.nquads);
    },
  });

  return {
    create: describeHandler('create'),
    update: describeHandler('update'),
    delete: {
      ...policy,
      ...definitions.delete,
      outputDigest: () => null,
      handler: async (_input: unknown, ctx: DaemonHandlerContext): Promise<EntityOutput> => {
        const [outcome] = run(ctx, [{ type: 'delete', subject: ctx.subject }]);
        return output(outcome as ChangeOutcome, undefined);
      },
    },
    batch: {
      // Serialises on the batch's own submit subject (a caller-chosen group IRI), not on each
      // member's subject; members stay consistent because the store applies them in one transaction.
      ...policy,
      ...definitions.batch,
      outputDigest: (out: unknown) => {
        let text = `${BATCH_OUTPUT_DIGEST_TAG}\0`;
        for (const op of (out as BatchOutput).operations) text += `${op.subject}\0${op.sha256 ?? '-'}\n`;
        return sha256(text);
      },
      batchMembers: (input: unknown, out: unknown): readonly BatchMember[] => {
        const members = prepareBatch(input);
        const results = (out as BatchOutput).operations;
        return members.map((member, i) => ({
          type: member.change.type,
          subject: member.change.subject,
          inputDigest: member.inputDigest,
          outputDigest: entityOutputDigest(results[i]),
        }));
      },
      handler: async (input: unknown, ctx: DaemonHandlerContext): Promise<BatchOutput> => {
        let members = ctx.prepared as readonly PreparedMember[] | undefined;
        try {
          if (members === undefined) members = prepareBatch(input);
          // batchMembers gets this same input object at completion.
          else if (typeof input === 'object' && input !== null) preparedBatches.set(input, members);
        } catch (error) {
          throw new UnrecoverableError(error instanceof Error ? error.message : String(error), { cause: error });
        }
        const outcomes = run(
          ctx,
          members.map((m) => m.change),
        );
        return {
          // No N-Quads here: a batch's output stays small whatever its size.
          operations: outcomes.map((outcome) => ({ type: outcome.type, ...output(outcome, undefined) })),
        };
      },
    },
  };
}
