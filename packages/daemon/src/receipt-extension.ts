// The receipt of every final state, written by the queue's own transaction: the
// operation's final row, its receipt and the ledger's new leaves and nodes (and now and
// then a signed checkpoint) commit together or not at all, so no operation is ever final
// without its receipt, whatever instant the process dies at.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ApplyContext, ApplyExtension } from '@unrdf/queue';
import { buildBatchBody, type ReceiptBody, type SingleReceiptBody } from '@unrdf/receipts';
import { type AppendedReceipt, type Ledger, type OpenLedgerOptions, openLedgerSync } from '@unrdf/receipts/ledger';
import { errorCodeOf, type MemberEnvelope } from './internal/envelope.js';

/**
 * The error code of a cancelled operation's receipt (`outcome.status` is `failed`),
 * reserved: a handler's own error with this code is recorded as `HANDLER_CANCELLED`, so a
 * receipt tells a user's cancel from a handler that failed with that code.
 */
export const CANCELLED_CODE = 'CANCELLED';
const HANDLER_CANCELLED_CODE = 'HANDLER_CANCELLED';

/** The receipt's error code of a failure that is not a cancel. */
const failureCode = (errorJson: string | null): string => {
  const code = errorCodeOf(errorJson);
  return code === CANCELLED_CODE ? HANDLER_CANCELLED_CODE : code;
};

/** A committed batch of receipts, waiting for its fsync to make it durable. */
interface CommittedReceipts {
  readonly treeSize: number;
}

/** The receipts side of the daemon's store. */
export interface ReceiptExtension extends ApplyExtension {
  /** The ledger on the queue's handle (after the queue opened the store). */
  readonly ledger: Ledger;
  /** Leaves known to be on disk: every receipt below this index is durable. */
  durableSize(): number;
  /** The queue released a final transition of `operationId` (its batch is on disk); returns its receipt if known. */
  released(operationId: string): AppendedReceipt | undefined;
  /**
   * Every batch committed so far is on disk (the queue's start awaited its commits, such as
   * crash recovery's): marks them durable and returns their receipts, whose transitions
   * were published before anyone listened.
   */
  releaseAll(): AppendedReceipt[];
}

/**
 * What a receipt needs of the operation's row. SQLite picks the fields out of the payload
 * and result envelopes (`json_extract`, in C): parsing the whole payload in JavaScript
 * would copy the caller's input (kilobytes of RDF) once more per operation, to read two
 * short strings. `json_extract` returns the same strings as `JSON.parse` for well-formed
 * Unicode, which submit requires of a subject (a lone surrogate comes back as U+FFFD characters).
 */
interface Row {
  type: string;
  subject: unknown;
  inputDigest: unknown;
  /** The result envelope's, when it has one (`outputDigest` present, even null). */
  hasOutputDigest: number;
  outputDigest: string | null;
  /** JSON text of the result envelope's members (a batch), or null. */
  members: string | null;
  error: string | null;
  attempts: number;
  createdAt: number;
  startedAt: number | null;
}

/**
 * Creates the extension that appends a receipt for each operation reaching
 * `completed`, `dead` or `cancelled`. It is deterministic: everything in a receipt comes
 * from the stored operation and the command (times, ids), plus this node's id, so
 * replicas applying the same commands build the same ledger.
 */
export function createReceiptExtension(options: {
  readonly nodeId: string;
  readonly origin: string;
  readonly signers: OpenLedgerOptions['signers'];
}): ReceiptExtension {
  let ledger: Ledger | undefined;
  let read: StatementSync | undefined;
  let readWhole: StatementSync | undefined;
  let bodies: ReceiptBody[] = [];
  const committed: CommittedReceipts[] = [];
  /** Appended in committed batches whose transitions have not been released yet. */
  const unreleased = new Map<string, { appended: AppendedReceipt; batch: CommittedReceipts }>();
  /** Appended by the open transaction, before its COMMIT. */
  let staged: AppendedReceipt[] = [];
  let durable = 0;

  const bodyOf = (id: string, kind: 'completed' | 'dead' | 'cancelled', at: number, row: Row): ReceiptBody => {
    if (typeof row.subject !== 'string' || typeof row.inputDigest !== 'string') {
      throw new Error('an operation payload is not a daemon envelope (was it enqueued by another program?)');
    }
    const result =
      kind === 'completed' && row.hasOutputDigest === 1
        ? {
            outputDigest: row.outputDigest,
            members:
              row.members === null ? undefined : (JSON.parse(row.members) as readonly MemberEnvelope[] | undefined),
          }
        : undefined;
    const startedAt = Math.max(row.createdAt, Math.min(row.startedAt ?? at, at));
    const finishedAt = Math.max(startedAt, at);
    const outcome =
      kind === 'completed'
        ? { status: 'succeeded' as const }
        : { status: 'failed' as const, errorCode: kind === 'cancelled' ? CANCELLED_CODE : failureCode(row.error) };
    const facts = {
      operationId: id,
      subject: row.subject,
      inputDigest: row.inputDigest,
      outputDigest: result?.outputDigest ?? null,
      outcome,
      attempt: row.attempts,
      submittedAt: row.createdAt,
      startedAt,
      finishedAt,
      nodeId: options.nodeId,
    };
    if (result?.members !== undefined) {
      // Members share the batch's facts; each is named after its position in the batch.
      const members: SingleReceiptBody[] = result.members.map((m, i) => ({
        ...facts,
        operationId: `${id}_${i}`.slice(0, 64),
        type: m.type,
        subject: m.subject,
        inputDigest: m.inputDigest,
        outputDigest: m.outputDigest,
      }));
      return buildBatchBody(facts, members);
    }
    return { ...facts, type: row.type } as ReceiptBody;
  };

  /**
   * The row's receipt fields. SQLite's JSON functions refuse nesting deeper than 1000
   * levels ("malformed JSON"; JSON_MAX_DEPTH in sqlite3's json.c), which JSON.parse reads:
   * such a payload or result is parsed here instead, or its operation could never become final.
   */
  const rowOf = (id: string): Row | undefined => {
    try {
      return read?.get(id) as Row | undefined;
    } catch (error) {
      if (!/malformed JSON/i.test(String(error))) throw error;
    }
    const whole = readWhole?.get(id) as
      | (Omit<Row, 'subject' | 'inputDigest' | 'hasOutputDigest' | 'outputDigest' | 'members'> & {
          payload: string;
          result: string | null;
        })
      | undefined;
    if (whole === undefined) return undefined;
    const { payload, result, ...rest } = whole;
    const input = JSON.parse(payload) as { subject?: unknown; inputDigest?: unknown } | null;
    const output = result === null ? null : (JSON.parse(result) as Record<string, unknown> | null);
    const hasOutputDigest = typeof output === 'object' && output !== null && Object.hasOwn(output, 'outputDigest');
    return {
      ...rest,
      subject: input?.subject,
      inputDigest: input?.inputDigest,
      hasOutputDigest: hasOutputDigest ? 1 : 0,
      outputDigest: hasOutputDigest ? ((output?.outputDigest ?? null) as string | null) : null,
      members: Array.isArray(output?.members) ? JSON.stringify(output.members) : null,
    };
  };

  const extension: ReceiptExtension = {
    name: 'receipts',
    watches: ['complete', 'fail', 'cancel'],
    get ledger(): Ledger {
      if (ledger === undefined) throw new Error('the receipt ledger opens with the queue store');
      return ledger;
    },
    init(db: DatabaseSync) {
      ledger = openLedgerSync({ database: db, origin: options.origin, signers: options.signers });
      read = db.prepare(`SELECT type, json_extract(payload, '$.subject') AS subject,
          json_extract(payload, '$.inputDigest') AS inputDigest,
          json_type(result, '$.outputDigest') IS NOT NULL AS hasOutputDigest,
          json_extract(result, '$.outputDigest') AS outputDigest,
          CASE json_type(result, '$.members') WHEN 'array' THEN json_extract(result, '$.members') END AS members,
          error, attempts, created_at AS createdAt, started_at AS startedAt FROM operations WHERE id = ?`);
      readWhole = db.prepare(`SELECT type, payload, result, error, attempts, created_at AS createdAt,
          started_at AS startedAt FROM operations WHERE id = ?`);
      durable = ledger.size();
    },
    afterApply({ transitions }: ApplyContext) {
      for (const t of transitions) {
        if (t.kind !== 'completed' && t.kind !== 'dead' && t.kind !== 'cancelled') continue;
        const row = rowOf(t.id);
        if (row === undefined) throw new Error(`operation ${t.id} vanished inside its own transaction`);
        bodies.push(bodyOf(t.id, t.kind, t.at, row));
      }
    },
    beforeCommit() {
      staged = bodies.length === 0 ? [] : extension.ledger.appendInTransaction(bodies);
      bodies = [];
    },
    afterCommit() {
      if (staged.length === 0) return;
      const last = staged.at(-1) as AppendedReceipt;
      const batch = { treeSize: last.treeSize };
      committed.push(batch);
      for (const a of staged) unreleased.set(a.receipt.operationId, { appended: a, batch });
      staged = [];
    },
    afterRollback() {
      bodies = [];
      staged = [];
    },
    durableSize: () => durable,
    released(operationId) {
      const entry = unreleased.get(operationId);
      if (entry === undefined) return undefined;
      // The commit path releases batches in commit order, each once it is on disk: this
      // one and every batch committed before it are durable now, and no later one. (Its
      // batch may be gone already, released with another of its operations: tree sizes
      // grow with commit order, so compare them; never shift past this batch.)
      const upTo = entry.batch.treeSize;
      while (committed.length > 0 && (committed[0] as CommittedReceipts).treeSize <= upTo) committed.shift();
      durable = Math.max(durable, upTo);
      unreleased.delete(operationId);
      return entry.appended;
    },
    releaseAll() {
      const all = [...unreleased.values()].map((entry) => entry.appended);
      for (const batch of committed) durable = Math.max(durable, batch.treeSize);
      committed.length = 0;
      unreleased.clear();
      return all;
    },
  };
  return extension;
}
