/**
 * The receipt: what one operation did, bound to its place in one ledger. Encoded as
 * RFC 8785 (JCS) canonical JSON so an auditor in any language reproduces the bytes;
 * hashed with a domain tag so a receipt hash can never be confused with any other
 * SHA-256 in the system (a Merkle node, a member hash, a checkpoint).
 */
import canonicalize from 'canonicalize';
import { nanoid } from 'nanoid';
import { z } from 'zod';
import { InvalidInputError } from './errors.js';
import { concatBytes, fromHex, toHex, utf8 } from './internal/bytes.js';
import { platformSha256, platformSha256Text } from './internal/platform.js';
import { hashLeaf, inclusionProof, merkleRoot, verifyInclusion } from './merkle.js';

/** The `format` field of every version-1 receipt. */
export const RECEIPT_FORMAT = 'unrdf-receipt/v1';

/** Domain tags, NUL-terminated (canonical JSON never contains a raw NUL). */
const RECEIPT_TAG_TEXT = 'unrdf-receipt/v1\0';
const RECEIPT_TAG = utf8(RECEIPT_TAG_TEXT);
const MEMBER_TAG_TEXT = 'unrdf-receipt-member/v1\0';
const MEMBER_TAG = utf8(MEMBER_TAG_TEXT);

/** Bound on receipt JSON accepted from outside, far above any honest receipt. */
export const MAX_RECEIPT_JSON_BYTES = 64 * 1024;

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits (a SHA-256)');
const Millis = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** nanoid's URL-safe alphabet; 21 characters by default, up to 64 accepted. */
const OperationId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'expected a nanoid (URL-safe, 1-64 chars)');
/** RFC 8785 works on I-JSON (RFC 7493): strings must be well-formed Unicode. */
const wellFormed = { message: 'must be well-formed Unicode (no lone surrogates)' };
const Label = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => s.isWellFormed(), wellFormed);

/**
 * The operation's type: the spec's create, update and delete, or any other operation
 * type name the daemon runs (letters, digits and `._:-`, as in @unrdf/queue). `batch`
 * is reserved for batch receipts (below).
 */
const SingleType = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/, 'expected an operation type (letters, digits and ._:-, 1-100 chars)')
  .refine((t) => t !== 'batch', { message: '"batch" is the type of batch receipts' });

const Outcome = z.discriminatedUnion('status', [
  z.strictObject({ status: z.literal('succeeded') }),
  z.strictObject({
    status: z.literal('failed'),
    errorCode: z.string().regex(/^[A-Z0-9_]{1,128}$/, 'expected an upper-case error code'),
  }),
]);

const BodyShape = {
  operationId: OperationId,
  subject: Label,
  inputDigest: Hex32,
  /** The digest of what the operation produced; null when it produced nothing (a failure, a delete). */
  outputDigest: Hex32.nullable(),
  outcome: Outcome,
  /** Attempts the operation made (0: it was cancelled before it ever ran). */
  attempt: z.number().int().min(0).max(1_000_000),
  submittedAt: Millis,
  startedAt: Millis,
  finishedAt: Millis,
  nodeId: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'expected a node id (A-Z a-z 0-9 . _ : -, 1-128 chars)'),
};

const BatchMembers = z.strictObject({
  count: z.number().int().min(1).max(1_000_000),
  /** RFC 9162 root over hashLeaf(memberHash) of each member, in order. */
  root: Hex32,
});

const timesInOrder = (b: { submittedAt: number; startedAt: number; finishedAt: number }) =>
  b.submittedAt <= b.startedAt && b.startedAt <= b.finishedAt;
const TIMES_MESSAGE = { message: 'timestamps must satisfy submittedAt <= startedAt <= finishedAt' };

/**
 * A batch applies all its members or none: one that succeeded commits to its members,
 * one that failed (or was cancelled) has no member outcomes to commit to, and carries
 * none; its inputDigest still commits to what was asked.
 */
const membersIffSucceeded = (b: { outcome: { status: string }; members?: unknown }) =>
  (b.members !== undefined) === (b.outcome.status === 'succeeded');
const MEMBERS_MESSAGE = {
  message: 'a batch that succeeded carries members, and one that failed carries none',
  path: ['members'],
};

/** A create, update or delete: also the shape of a batch's members. */
export const SingleBodySchema = z.strictObject({ ...BodyShape, type: SingleType }).refine(timesInOrder, TIMES_MESSAGE);

const BatchBodySchema = z
  .strictObject({ ...BodyShape, type: z.literal('batch'), members: BatchMembers.optional() })
  .refine(timesInOrder, TIMES_MESSAGE)
  .refine(membersIffSucceeded, MEMBERS_MESSAGE);

/** What the caller states about an operation: every field comes in, nothing is read from a clock. */
export const ReceiptBodySchema = z.union([BatchBodySchema, SingleBodySchema]);
export type ReceiptBody = z.infer<typeof ReceiptBodySchema>;
export type SingleReceiptBody = z.infer<typeof SingleBodySchema>;
export type OperationType = ReceiptBody['type'];

/**
 * Internal: the origin rule, shared by the receipt schema, its fast path and the ledger's
 * options. One line, no "+" (C2SP tlog-checkpoint: the origin is also the key name), not
 * starting with a space, and no ASCII control character (U+0000-U+001F, U+007F): the
 * origin line is signed-note text, which may hold no control character but newline
 * (C2SP signed-note; Go's note.Sign refuses it, and so does signNote).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
export const ORIGIN = /^[^\s+\u0000-\u001f\u007f][^+\u0000-\u001f\u007f]*$/u;
export const ORIGIN_MESSAGE = 'an origin is one line, without "+" or control characters, not starting with a space';

const Origin = z
  .string()
  .min(1)
  .max(256)
  .regex(ORIGIN, ORIGIN_MESSAGE)
  .refine((s) => s.isWellFormed(), wellFormed);

const PositionShape = {
  format: z.literal(RECEIPT_FORMAT),
  /** The ledger's C2SP checkpoint origin: binds the receipt to one ledger. */
  origin: Origin,
  leafIndex: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** receiptHash of leaf leafIndex-1 in the same ledger; null for leaf 0. */
  previousReceiptHash: Hex32.nullable(),
};

const chainShape = (r: { leafIndex: number; previousReceiptHash: string | null }) =>
  (r.leafIndex === 0) === (r.previousReceiptHash === null);
const CHAIN_MESSAGE = { message: 'previousReceiptHash is null exactly for leafIndex 0' };

/** A receipt as it appears in the ledger (validate anything from outside with {@link parseReceipt}). */
export const ReceiptSchema = z.union([
  z
    .strictObject({ ...PositionShape, ...BodyShape, type: SingleType })
    .refine(timesInOrder, TIMES_MESSAGE)
    .refine(chainShape, CHAIN_MESSAGE),
  z
    .strictObject({ ...PositionShape, ...BodyShape, type: z.literal('batch'), members: BatchMembers.optional() })
    .refine(timesInOrder, TIMES_MESSAGE)
    .refine(membersIffSucceeded, MEMBERS_MESSAGE)
    .refine(chainShape, CHAIN_MESSAGE),
]);
export type Receipt = z.infer<typeof ReceiptSchema>;

const HEX32 = /^[0-9a-f]{64}$/;
const OPERATION_ID = /^[A-Za-z0-9_-]{1,64}$/;
const OPERATION_TYPE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;
const NODE_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const ERROR_CODE = /^[A-Z0-9_]{1,128}$/;
const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
const isHex32 = (v: unknown): v is string => typeof v === 'string' && v.length === 64 && HEX32.test(v);
const isText = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length >= 1 && v.length <= max && v.isWellFormed();

/**
 * Internal: fast paths for {@link ReceiptSchema} (the verifier's hot path) and
 * {@link ReceiptBodySchema} (the ledger's append). They accept only plain objects (what
 * JSON.parse and object literals make) that the schema accepts too, and return a fresh
 * copy read field by field once, as zod would; anything else (including what the schema
 * might accept in a form these do not recognise) gives undefined, and the caller falls
 * back to the schema. So they change how fast an answer comes, never the answer: a
 * property test checks them against the schemas on valid and mutated input.
 */
export const readValidReceipt = (value: unknown): Receipt | undefined => readValid(value, true) as Receipt | undefined;

/** Internal: as {@link readValidReceipt}, for a receipt body (no ledger position). */
export const readValidBody = (value: unknown): ReceiptBody | undefined =>
  readValid(value, false) as ReceiptBody | undefined;

const BODY_KEYS = 11;
const POSITION_KEYS = 4;

function readValid(value: unknown, positioned: boolean): Receipt | ReceiptBody | undefined {
  if (!isPlain(value)) return undefined;
  const type = value.type;
  // A batch carries members exactly when it succeeded (checked below with the outcome).
  const hasMembers = type === 'batch' && Object.hasOwn(value, 'members');
  if (typeof type !== 'string' || !OPERATION_TYPE.test(type)) return undefined;
  let keys = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return undefined;
    keys++;
  }
  // With the count right, every expected key must hold a valid value below, so no
  // unknown key can hide in place of a missing one.
  if (keys !== BODY_KEYS + (positioned ? POSITION_KEYS : 0) + (hasMembers ? 1 : 0)) return undefined;
  let position: (LedgerPosition & { format: typeof RECEIPT_FORMAT }) | undefined;
  if (positioned) {
    const { format, origin, leafIndex, previousReceiptHash } = value;
    if (format !== RECEIPT_FORMAT) return undefined;
    if (!isText(origin, 256) || !ORIGIN.test(origin)) return undefined;
    if (!isInt(leafIndex, 0, Number.MAX_SAFE_INTEGER)) return undefined;
    if (previousReceiptHash === null ? leafIndex !== 0 : leafIndex === 0 || !isHex32(previousReceiptHash)) {
      return undefined;
    }
    position = { format, origin, leafIndex, previousReceiptHash: previousReceiptHash as string | null };
  }
  const {
    operationId,
    subject,
    inputDigest,
    outputDigest,
    outcome,
    attempt,
    submittedAt,
    startedAt,
    finishedAt,
    nodeId,
  } = value;
  if (typeof operationId !== 'string' || !OPERATION_ID.test(operationId)) return undefined;
  if (!isText(subject, 1024) || !isHex32(inputDigest)) return undefined;
  if (outputDigest !== null && !isHex32(outputDigest)) return undefined;
  if (!isInt(attempt, 0, 1_000_000)) return undefined;
  if (!isInt(submittedAt, 0, Number.MAX_SAFE_INTEGER) || !isInt(startedAt, 0, Number.MAX_SAFE_INTEGER))
    return undefined;
  if (!isInt(finishedAt, 0, Number.MAX_SAFE_INTEGER)) return undefined;
  if (!(submittedAt <= startedAt && startedAt <= finishedAt)) return undefined;
  if (typeof nodeId !== 'string' || !NODE_ID.test(nodeId)) return undefined;
  if (!isPlain(outcome)) return undefined;
  let copiedOutcome: Receipt['outcome'];
  const status = outcome.status;
  if (status === 'succeeded' && Object.keys(outcome).length === 1) copiedOutcome = { status };
  else if (status === 'failed' && Object.keys(outcome).length === 2) {
    const errorCode = outcome.errorCode;
    if (typeof errorCode !== 'string' || !ERROR_CODE.test(errorCode)) return undefined;
    copiedOutcome = { status, errorCode };
  } else return undefined;
  const facts = {
    ...position,
    operationId,
    subject,
    inputDigest,
    outputDigest: outputDigest as string | null,
    outcome: copiedOutcome,
    attempt,
    submittedAt,
    startedAt,
    finishedAt,
    nodeId,
  };
  if (type === 'batch' && hasMembers !== (status === 'succeeded')) return undefined;
  if (!hasMembers) return { ...facts, type } as Receipt | ReceiptBody;
  const members = value.members;
  if (!isPlain(members) || Object.keys(members).length !== 2) return undefined;
  const { count, root } = members;
  if (!isInt(count, 1, 1_000_000) || !isHex32(root)) return undefined;
  return { ...facts, type, members: { count, root } } as Receipt | ReceiptBody;
}

/** Where a receipt sits: assigned by the ledger. */
export interface LedgerPosition {
  readonly origin: string;
  readonly leafIndex: number;
  readonly previousReceiptHash: string | null;
}

function zodIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
}

/**
 * Parses and validates a receipt from outside (a JSON string or an already-parsed value).
 * @throws {InvalidInputError} with `path: message` issues for anything malformed,
 *   oversized or not valid JSON; never anything else.
 */
export function parseReceipt(input: unknown): Receipt {
  let value = input;
  if (typeof input === 'string') {
    if (input.length > MAX_RECEIPT_JSON_BYTES) {
      throw new InvalidInputError('receipt', [`(root): longer than ${MAX_RECEIPT_JSON_BYTES} characters`]);
    }
    try {
      value = JSON.parse(input);
    } catch (cause) {
      throw new InvalidInputError('receipt', ['(root): not valid JSON'], { cause });
    }
  }
  const parsed = ReceiptSchema.safeParse(value);
  if (!parsed.success) throw new InvalidInputError('receipt', zodIssues(parsed.error), { cause: parsed.error });
  return parsed.data;
}

/**
 * Validates a receipt body (the operation's facts) supplied by a caller.
 * @throws {InvalidInputError} with `path: message` issues.
 */
export function parseReceiptBody(input: unknown): ReceiptBody {
  const fast = readValidBody(input);
  if (fast) return fast;
  const parsed = ReceiptBodySchema.safeParse(input);
  if (!parsed.success) throw new InvalidInputError('receipt body', zodIssues(parsed.error), { cause: parsed.error });
  return parsed.data;
}

/** RFC 8785 canonical JSON, UTF-8. */
function jcs(value: unknown): Uint8Array {
  const text = canonicalize(value);
  if (text === undefined) throw new InvalidInputError('receipt', ['(root): cannot be canonicalized']);
  return utf8(text);
}

/**
 * Internal: the RFC 8785 text of a receipt that has been validated (only the schema's
 * fields, integers below 2^53). It builds the object with its keys already in RFC 8785
 * order (UTF-16 code-unit order) and lets JSON.stringify, whose string and integer
 * serialisation is exactly RFC 8785's, print it: several times faster than the general
 * library on the hot paths (ledger append, verification). A property test proves it
 * byte-identical to the `canonicalize` library on arbitrary valid receipts.
 */
export function canonicalText(r: Receipt): string {
  const outcome =
    r.outcome.status === 'failed'
      ? { errorCode: r.outcome.errorCode, status: r.outcome.status }
      : { status: r.outcome.status };
  return JSON.stringify({
    attempt: r.attempt,
    finishedAt: r.finishedAt,
    format: r.format,
    inputDigest: r.inputDigest,
    leafIndex: r.leafIndex,
    members: 'members' in r && r.members ? { count: r.members.count, root: r.members.root } : undefined, // undefined: omitted
    nodeId: r.nodeId,
    operationId: r.operationId,
    origin: r.origin,
    outcome,
    outputDigest: r.outputDigest,
    previousReceiptHash: r.previousReceiptHash,
    startedAt: r.startedAt,
    subject: r.subject,
    submittedAt: r.submittedAt,
    type: r.type,
  });
}

/** Internal: {@link canonicalText} for a validated batch member (a single-operation body). */
export function canonicalMemberText(m: SingleReceiptBody): string {
  const outcome =
    m.outcome.status === 'failed'
      ? { errorCode: m.outcome.errorCode, status: m.outcome.status }
      : { status: m.outcome.status };
  return JSON.stringify({
    attempt: m.attempt,
    finishedAt: m.finishedAt,
    inputDigest: m.inputDigest,
    nodeId: m.nodeId,
    operationId: m.operationId,
    outcome,
    outputDigest: m.outputDigest,
    startedAt: m.startedAt,
    subject: m.subject,
    submittedAt: m.submittedAt,
    type: m.type,
  });
}

/** Internal: the receipt hash of RFC 8785 text (from {@link canonicalText}). */
export function receiptDigestOfText(text: string): Uint8Array {
  return platformSha256Text(`${RECEIPT_TAG_TEXT}${text}`);
}

/** Internal: the leaf hash of a validated receipt through {@link canonicalText}. */
export function validatedLeafHash(receipt: Receipt): Uint8Array {
  return hashLeaf(platformSha256Text(`${RECEIPT_TAG_TEXT}${canonicalText(receipt)}`));
}

/** The canonical bytes of a receipt: RFC 8785 (JCS) JSON in UTF-8. */
export function encodeReceipt(receipt: Receipt): Uint8Array {
  return jcs(receipt);
}

/**
 * The receipt hash: `SHA-256("unrdf-receipt/v1" || 0x00 || JCS(receipt))`, hex. This is
 * what the next receipt's `previousReceiptHash` holds and what the ledger leaf commits
 * to: the Merkle leaf hash is `hashLeaf(receiptHash bytes)`.
 */
export function receiptHash(receipt: Receipt): string {
  return toHex(platformSha256(concatBytes(RECEIPT_TAG, jcs(receipt))));
}

/** The RFC 9162 leaf hash of a receipt: `SHA-256(0x00 || receiptHash)`. */
export function receiptLeafHash(receipt: Receipt): Uint8Array {
  return hashLeaf(platformSha256(concatBytes(RECEIPT_TAG, jcs(receipt))));
}

/**
 * Builds a receipt from an operation's facts and its ledger position. Pure and
 * deterministic: the same inputs give the same bytes on every replica.
 * @throws {InvalidInputError} when the body or position is invalid.
 * @example
 * const receipt = buildReceipt(body, { origin: 'example.com/ledger', leafIndex: 0, previousReceiptHash: null });
 */
export function buildReceipt(body: ReceiptBody, position: LedgerPosition): Receipt {
  const draft = {
    format: RECEIPT_FORMAT,
    origin: position.origin,
    leafIndex: position.leafIndex,
    previousReceiptHash: position.previousReceiptHash,
    ...body,
  };
  const parsed = ReceiptSchema.safeParse(draft);
  if (!parsed.success) throw new InvalidInputError('receipt', zodIssues(parsed.error), { cause: parsed.error });
  return parsed.data;
}

/**
 * Internal, for the ledger: assembles a receipt from a body already validated by
 * {@link parseReceiptBody} and a position the ledger computed itself, skipping the
 * second validation on the append hot path. Field order is irrelevant (JCS sorts keys).
 */
export function assembleReceipt(body: ReceiptBody, position: LedgerPosition): Receipt {
  return {
    format: RECEIPT_FORMAT,
    origin: position.origin,
    leafIndex: position.leafIndex,
    previousReceiptHash: position.previousReceiptHash,
    ...body,
  } as Receipt;
}

/** `SHA-256("unrdf-receipt-member/v1" || 0x00 || JCS(member))`: a batch member's hash. */
export function memberHash(member: SingleReceiptBody): Uint8Array {
  return platformSha256(concatBytes(MEMBER_TAG, jcs(member)));
}

/**
 * The body of a batch receipt: commits to its member operations, in order, through the
 * RFC 9162 root over `hashLeaf(memberHash(m))`. The batch's own facts (subject, digests,
 * times, outcome) come from the caller like any other body.
 * @throws {InvalidInputError} when a member is invalid or there are none.
 */
export function buildBatchBody(
  batch: Omit<Extract<ReceiptBody, { type: 'batch' }>, 'members' | 'type'>,
  members: readonly SingleReceiptBody[],
): Extract<ReceiptBody, { type: 'batch' }> {
  if (members.length === 0) throw new InvalidInputError('batch', ['members: a batch has at least one member']);
  const leaves = members.map((m, i) => hashLeaf(memberHashOfText(canonicalMemberText(validMember(m, i)))));
  const root = merkleRoot(leaves);
  const body = { ...batch, type: 'batch' as const, members: { count: members.length, root: toHex(root) } };
  // The fast path (readValidBody) accepts exactly what the schema accepts; the schema
  // speaks only for what it refuses, with its issues.
  const fast = readValidBody(body);
  if (fast) return fast as Extract<ReceiptBody, { type: 'batch' }>;
  const parsed = BatchBodySchema.safeParse(body);
  if (!parsed.success) throw new InvalidInputError('batch', zodIssues(parsed.error), { cause: parsed.error });
  return parsed.data;
}

/** A batch member validated (fast path, else the schema, whose issues it reports). */
function validMember(m: unknown, i: number): SingleReceiptBody {
  const fast = readValidBody(m);
  if (fast && fast.type !== 'batch') return fast;
  const parsed = SingleBodySchema.safeParse(m);
  if (!parsed.success) {
    throw new InvalidInputError(
      'batch',
      zodIssues(parsed.error).map((s) => `members.${i}.${s}`),
    );
  }
  return parsed.data;
}

/** The member hash of a member's RFC 8785 text (from {@link canonicalMemberText}). */
const memberHashOfText = (text: string): Uint8Array => platformSha256Text(`${MEMBER_TAG_TEXT}${text}`);

/** The proof that `members[index]` is committed to by the batch receipt built from `members`. */
export function batchMemberProof(members: readonly SingleReceiptBody[], index: number): Uint8Array[] {
  return inclusionProof(
    members.map((m) => hashLeaf(memberHash(m))),
    index,
  );
}

/**
 * Checks that `member` is member `index` of a batch receipt. Total: false for anything
 * malformed, never throws. (Verify the batch receipt itself with `verifyReceipt`.)
 */
export function verifyBatchMember(
  member: unknown,
  index: number,
  proof: readonly Uint8Array[],
  batchReceipt: Receipt,
): boolean {
  try {
    if (batchReceipt.type !== 'batch' || !('members' in batchReceipt) || !batchReceipt.members) return false;
    const parsed = SingleBodySchema.safeParse(member);
    if (!parsed.success) return false;
    const root = fromHex(batchReceipt.members.root);
    if (!root) return false;
    return verifyInclusion(hashLeaf(memberHash(parsed.data)), index, batchReceipt.members.count, proof, root);
  } catch {
    return false;
  }
}

/** A fresh operation id (nanoid, 21 URL-safe characters, 126 random bits). Call it outside the deterministic path. */
export function createOperationId(): string {
  return nanoid();
}
