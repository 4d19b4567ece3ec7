/**
 * The ledger: an append-only RFC 9162 Merkle log of receipts on SQLite (node:sqlite,
 * WAL), with every complete subtree hash stored so any proof at any size is O(log n)
 * point reads, group commit, and one signed C2SP checkpoint per batch.
 *
 * Two ways to write:
 * - `append(body)`: the ledger owns the transaction; concurrent calls are grouped into
 *   one transaction, and each promise resolves only once that transaction is on disk,
 *   with the receipt, its leaf index and the checkpoint that covers it. By default
 *   (`durability: 'fsync-after-commit'`) SQLite commits without syncing
 *   (synchronous=NORMAL) and the ledger fdatasyncs the WAL after COMMIT: right away for
 *   a small batch while the disk is fast, else on the libuv thread pool so the event
 *   loop does not wait for the disk;
 *   WAL checkpoints run on a worker thread. `'fsync-in-commit'` is SQLite's own
 *   synchronous=FULL.
 * - `appendInTransaction(bodies)`: inside a transaction the caller already holds on the
 *   same DatabaseSync handle, so the caller's state change, the receipts, their leaves
 *   and the checkpoint commit or roll back together. Nothing is durable until the caller
 *   commits; after a rollback the ledger re-reads its state, nothing is cached across calls.
 */
import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { NODE_SYNC_IO, type SyncIo, WalSync } from '@unrdf/wal-sync';
import { z } from 'zod';
import { type Checkpoint, parseCheckpoint, signCheckpoint, type TrustedKey } from '../checkpoint.js';
import { InvalidInputError, LedgerError } from '../errors.js';
import { bytesEqual, toHex } from '../internal/bytes.js';
import { platformTree as nodeTree } from '../internal/sha256.js';
import { consistencyPath, inclusionPath, type SubtreeHash, splitPoint } from '../internal/tree.js';
import { encodeVerifierKey, type NoteSigner, noteSignatureKeys } from '../note.js';
import {
  assembleReceipt,
  canonicalText,
  ORIGIN,
  ORIGIN_MESSAGE,
  parseReceiptBody,
  type Receipt,
  type ReceiptBody,
  receiptDigestOfText,
} from '../receipt.js';
import type { ConsistencyProofJson, InclusionProofJson } from '../verify.js';
import { startWalCheckpointer, type WalCheckpointer } from './checkpointer.js';
import { nodeSigner } from './node-crypto.js';

const DEFAULT_MAX_BATCH = 4096;
/**
 * How often an append stores a signed checkpoint (the first append of an empty log
 * always does). Every other size is signed when someone asks for it: Ed25519 (RFC 8032)
 * is deterministic and a checkpoint has no timestamp, so the note of a size is always
 * the same text. Signing every transaction cost ~6 % of the daemon's thread at 1,000
 * operations/s; at this interval it is ~10 signatures a second.
 */
const DEFAULT_STORE_CHECKPOINT_EVERY_MS = 100;
/** Signed notes kept in memory, by tree size (the newest serve most requests). */
const SIGNED_NOTES_KEPT = 16;
/** With fsync-after-commit: checkpoint the WAL into the database once it exceeds this. */
const DEFAULT_CHECKPOINT_BYTES = 4 * 2 ** 20; // SQLite's own automatic checkpoint is at ~4 MB (1000 pages)
/**
 * Internal: the file syncs an owned ledger makes (fsync-after-commit), injectable so a
 * test can make the disk fail under a real ledger. Node's own by default.
 */
export type LedgerSyncIo = SyncIo;

const SignerSchema = z.strictObject({
  /** `PRIVATE+KEY+…` text, or a signer (e.g. from `loadSignerKeyFile`). */
  signer: z.union([z.string(), z.custom<NoteSigner>((v) => typeof v === 'object' && v !== null && 'sign' in v)]),
  /** First tree size this key signs; the key signs until the next key's fromSize. */
  fromSize: z.number().int().min(0).default(0),
});

/** Options of {@link openLedger}: exactly one of `path` and `database`. */
export const OpenLedgerOptionsSchema = z
  .strictObject({
    /** A SQLite file the ledger opens and owns (WAL mode; see `durability`). */
    path: z.string().min(1).optional(),
    /** A handle the caller owns (and closes), e.g. the daemon's, to share its transactions. */
    database: z.custom<DatabaseSync>((v) => v instanceof DatabaseSync).optional(),
    /** The ledger's C2SP origin line, also written into every receipt. */
    origin: z
      .string()
      .min(1)
      .max(256)
      .regex(ORIGIN, ORIGIN_MESSAGE) // signed-note text: no control character (C2SP signed-note)
      .refine((s) => s.isWellFormed(), 'must be well-formed Unicode'),
    /** Signing keys with the tree size each takes over at (rotation by tree size). */
    signers: z.array(SignerSchema).min(1),
    /** Most receipts in one group commit. */
    maxBatch: z.number().int().min(1).max(1_000_000).optional(),
    /**
     * How an owned ledger (`path`) makes a batch durable before resolving its appends:
     * - `'fsync-after-commit'` (default): SQLite synchronous=NORMAL (no sync at COMMIT);
     *   after COMMIT the WAL is fdatasynced (a small batch at once while the disk answers
     *   within 1 ms, anything else on the libuv thread pool while the event loop keeps
     *   running) and the batch is released once that returns. SQLite itself syncs around
     *   WAL checkpoints (the bulk on a worker thread) and the header of a restarted WAL.
     *   A failed fsync is final: the ledger refuses all further appends.
     * - `'fsync-in-commit'`: SQLite synchronous=FULL, COMMIT fsyncs on the event loop.
     * Not for `database`: there the caller's COMMIT and its synchronous setting decide.
     */
    durability: z.enum(['fsync-after-commit', 'fsync-in-commit']).optional(),
    /**
     * Store a signed checkpoint with an append at most this often (default 100 ms; 0: with
     * every batch). Sizes between stored ones are signed when asked for, always to the same
     * note. At open, the stored tree must hash to the latest stored checkpoint's root.
     */
    storeCheckpointEveryMs: z.number().int().min(0).max(3_600_000).optional(),
    /** With fsync-after-commit: checkpoint the WAL (synced by SQLite) beyond this many bytes. */
    checkpointBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .optional(),
  })
  .refine((o) => (o.path === undefined) !== (o.database === undefined), {
    message: 'give exactly one of path and database',
  })
  .refine((o) => o.database === undefined || (o.durability === undefined && o.checkpointBytes === undefined), {
    message:
      "durability and checkpointBytes are for a ledger opened by path; with database, the caller's COMMIT decides",
  });
export type OpenLedgerOptions = z.input<typeof OpenLedgerOptionsSchema>;

/** A receipt the ledger has appended. */
export interface AppendedReceipt {
  readonly receipt: Receipt;
  /** Hex receipt hash (the next receipt's previousReceiptHash). */
  readonly receiptHash: string;
  readonly leafIndex: number;
  /** The signed checkpoint of the batch that included it (tree size > leafIndex); signed when first read. */
  readonly checkpoint: string;
  readonly treeSize: number;
}

/** A receipt with its inclusion proof and the signed checkpoint the proof leads to. */
export interface ReceiptBundle {
  readonly receipt: Receipt;
  readonly proof: InclusionProofJson;
  readonly checkpoint: string;
}

/** An open ledger. Disposable: `await using ledger = await openLedger(…)`. */
export interface Ledger extends AsyncDisposable {
  readonly origin: string;
  /** The verifier keys with the tree-size windows they sign: what verifiers should trust. */
  readonly trustedKeys: readonly TrustedKey[];
  /**
   * Appends one receipt through group commit; resolves once its batch is durable.
   * Rejects with InvalidInputError for a bad body, and with LedgerError for an operation
   * that already has a receipt, once close() was called, or when the write failed.
   */
  append(body: ReceiptBody): Promise<AppendedReceipt>;
  /** Appends inside the caller's open transaction on the shared handle (see module doc). */
  appendInTransaction(bodies: readonly ReceiptBody[]): AppendedReceipt[];
  /**
   * Leaves an owned ledger holds durably (a batch counts once its appends resolved), or,
   * on a shared handle, leaves committed or written in the caller's open transaction.
   * Every read below sees exactly this prefix of the log.
   */
  size(): number;
  /** RFC 9162 root of the first `treeSize` leaves (default all). */
  root(treeSize?: number): Uint8Array;
  receipt(leafIndex: number): Receipt | undefined;
  receiptByOperationId(operationId: string): Receipt | undefined;
  /**
   * Everything an offline verifier needs for one receipt (by leaf index or operation id):
   * the receipt, its proof and a signed checkpoint the proof is for: the newest one already
   * signed that covers the receipt, else one of the whole log. `atMostTreeSize` keeps the
   * checkpoint within a prefix (e.g. what the caller knows durable).
   */
  receiptBundle(leafIndexOrOperationId: number | string, atMostTreeSize?: number): ReceiptBundle | undefined;
  /** The signed checkpoint of the whole log (`size()`), or undefined for an empty ledger. */
  latestCheckpoint(): string | undefined;
  /** The signed checkpoint of exactly `treeSize` (1 to `size()`), else undefined. */
  checkpointAt(treeSize: number): string | undefined;
  /** Inclusion proof of a leaf in the tree of `treeSize` leaves (default `size()`). */
  inclusionProof(leafIndex: number, treeSize?: number): InclusionProofJson;
  /** Consistency proof between two tree sizes (newSize default `size()`). */
  consistencyProof(oldSize: number, newSize?: number): ConsistencyProofJson;
  /** Resolves when every append issued so far is durable (or has failed). */
  flush(): Promise<void>;
  /**
   * Refuses further appends, flushes the ones already made, then closes the database if
   * the ledger opened it. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS receipts_ledger_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS receipts_leaves (
  leaf_index INTEGER PRIMARY KEY,
  leaf_hash BLOB NOT NULL,
  receipt_hash BLOB NOT NULL,
  operation_id TEXT NOT NULL UNIQUE,
  receipt TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS receipts_nodes (
  level INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  hash BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS receipts_checkpoints (
  tree_size INTEGER PRIMARY KEY,
  note TEXT NOT NULL
) STRICT;
`;

interface Statements {
  size: StatementSync;
  leafHash: StatementSync;
  node: StatementSync;
  lastReceiptHash: StatementSync;
  insertLeaf: StatementSync;
  insertNode: StatementSync;
  insertCheckpoint: StatementSync;
  receipt: StatementSync;
  receiptByOp: StatementSync;
  latestCheckpoint: StatementSync;
  checkpointAt: StatementSync;
  knownOperationIds: StatementSync;
}

interface Pending {
  readonly body: ReceiptBody;
  readonly resolve: (r: AppendedReceipt) => void;
  readonly reject: (e: unknown) => void;
}

/** What one append gets from its batch's COMMIT: its receipt or its error. */
type Outcome =
  | { readonly pending: Pending; readonly result: AppendedReceipt }
  | { readonly pending: Pending; readonly error: unknown; readonly result?: undefined };

/** The right edge of the log: what the next append builds on. */
interface RightEdge {
  readonly size: number;
  /** The complete subtree for each set bit of size, low level first. */
  readonly frontier: readonly (Uint8Array | undefined)[];
  /** The last receipt's hash (hex), null for an empty log. */
  readonly previous: string | null;
}

/** A committed flush waiting for an fsync (fsync-after-commit). */
interface Unsynced {
  /** The log size once it is durable. */
  readonly treeSize: number;
  readonly outcomes: readonly Outcome[];
}

/** log2(width) when width is a power of two, else -1 (no 32-bit bit tricks: sizes reach 2^53). */
function exactLog2(width: number): number {
  let level = 0;
  let w = 1;
  while (w < width) {
    w *= 2;
    level++;
  }
  return w === width ? level : -1;
}

const asBytes = (v: unknown): Uint8Array => {
  if (!(v instanceof Uint8Array)) throw new LedgerError('Corrupt ledger: a stored hash is not a blob.');
  return v;
};

/** An append of an operation that already has a receipt (an at-least-once retry): that receipt stands. */
const duplicateOperation = (operationId: string): LedgerError =>
  new LedgerError(
    `The operation ${operationId} already has a receipt in the ledger; nothing was appended for it (read that receipt with receiptByOperationId()).`,
  );

/** What a failed append() rejects with: a LedgerError (SQLite's error as its cause). */
const appendFailure = (cause: unknown): LedgerError =>
  cause instanceof LedgerError
    ? cause
    : new LedgerError(`Appending failed and nothing was appended: ${(cause as Error).message}`, { cause });

/**
 * Opens (creating if needed) a ledger on a SQLite file or on a handle the caller holds.
 * @throws {InvalidInputError} for bad options; {@link LedgerError} when the database
 *   belongs to another origin.
 * @example
 * await using ledger = await openLedger({ path: 'ledger.db', origin: 'example.com/ledger', signers: [{ signer: skey }] });
 * const { receipt, checkpoint } = await ledger.append(body);
 */
export async function openLedger(options: OpenLedgerOptions): Promise<Ledger> {
  return openLedgerSync(options);
}

/**
 * {@link openLedger} without the promise: opening does no asynchronous work, and a
 * caller that attaches the ledger to a handle inside a synchronous hook (the daemon's
 * queue extension, at store open) cannot await.
 * @throws as {@link openLedger}
 */
export function openLedgerSync(options: OpenLedgerOptions): Ledger {
  return openLedgerWithSyncIo(options, NODE_SYNC_IO);
}

/** Internal (tests): {@link openLedgerSync} with injected file syncs. */
export function openLedgerWithSyncIo(options: OpenLedgerOptions, io: LedgerSyncIo): Ledger {
  const parsed = OpenLedgerOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new InvalidInputError(
      'ledger options',
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const resolved = parsed.data;
  const origin = resolved.origin;
  const maxBatch = resolved.maxBatch ?? DEFAULT_MAX_BATCH;
  const schedule = resolved.signers
    .map((s) => ({ signer: typeof s.signer === 'string' ? nodeSigner(s.signer) : s.signer, fromSize: s.fromSize }))
    .sort((a, b) => a.fromSize - b.fromSize);
  if (schedule[0]?.fromSize !== 0) throw new InvalidInputError('ledger options', ['signers: one key must start at 0']);
  if (new Set(schedule.map((s) => s.fromSize)).size !== schedule.length) {
    throw new InvalidInputError('ledger options', ['signers: two keys take over at the same tree size']);
  }
  // A key signs one window. Listed twice (A, then B, then A again) it would sign two, but
  // a verifier knows a key once (openNote matches a signature to the first verifier of
  // that name and key ID), so the ledger's own trustedKeys would reject the later window.
  const keyWindows = new Map<string, number>();
  for (const { signer, fromSize } of schedule) {
    const key = `${signer.name}+${signer.keyId.toString(16).padStart(8, '0')}`;
    const earlier = keyWindows.get(key);
    if (earlier !== undefined) {
      throw new InvalidInputError('ledger options', [
        `signers: the key ${key} is listed twice (from size ${earlier} and from size ${fromSize}); list each key once, a key signs one window of tree sizes`,
      ]);
    }
    keyWindows.set(key, fromSize);
  }
  const trustedKeys: TrustedKey[] = schedule.map((s, i) => {
    const next = schedule[i + 1];
    const verifierKey = encodeVerifierKey(s.signer.name, s.signer.publicKey);
    // Bound to this ledger's origin whatever the key is named (a key of another name signs for it too).
    return next
      ? { verifierKey, fromSize: s.fromSize, untilSize: next.fromSize, origin }
      : { verifierKey, fromSize: s.fromSize, origin };
  });
  const signerFor = (treeSize: number): NoteSigner => {
    let chosen = schedule[0]?.signer as NoteSigner;
    for (const s of schedule) if (s.fromSize <= treeSize) chosen = s.signer;
    return chosen;
  };

  const ownsDatabase = resolved.path !== undefined;
  const db = resolved.database ?? new DatabaseSync(resolved.path as string);
  const syncAfterCommit = ownsDatabase && (resolved.durability ?? 'fsync-after-commit') === 'fsync-after-commit';
  const checkpointBytes = resolved.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES;
  /** The WAL's descriptor, only ever fdatasynced (fsync-after-commit). */
  let walFd: number | undefined;
  if (ownsDatabase) {
    // A 32 MiB page cache keeps the upper tree and the operation-id index in memory at
    // millions of leaves.
    db.exec('PRAGMA busy_timeout=5000; PRAGMA cache_size=-32768;');
    const mode = db.prepare('PRAGMA journal_mode=WAL').get()?.journal_mode;
    if (mode !== 'wal') {
      db.close();
      throw new LedgerError(`The ledger needs a file SQLite can run in WAL mode; ${resolved.path} runs "${mode}".`);
    }
    if (syncAfterCommit) {
      // synchronous=NORMAL, not OFF (https://sqlite.org/pragma.html#pragma_synchronous):
      // in WAL mode NORMAL does not sync at COMMIT (the ledger fdatasyncs the WAL itself
      // after each COMMIT), but SQLite still syncs the WAL before a checkpoint copies it,
      // the database after, and the header of a WAL it starts over before writing frames
      // after it. OFF skips that last sync too, and then one fdatasync may put a restarted
      // WAL's new frames on disk without its new header: after a power cut the old header
      // validates old frames still in the file, recovery replays them over the newer
      // database and corrupts it, acknowledged receipts included (wal.c, sqlite3WalFrames:
      // "Sync the header (unless SQLITE_IOCAP_SEQUENTIAL is true or unless all syncing is
      // turned off by PRAGMA synchronous=OFF). Otherwise an out-of-order write following a
      // WAL restart could result in database corruption", ticket ff5be73dee). That sync
      // is one fsync inside the first COMMIT of each restarted WAL, every checkpointBytes.
      // No automatic checkpoints: they would run inside COMMIT on the event loop; the
      // ledger checkpoints on a worker thread instead (maybeCheckpoint).
      db.exec(
        `PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=${2 * checkpointBytes};`,
      );
      // 'a' creates the WAL if SQLite has not yet (SQLite opens the same file); the
      // directory is synced once so the WAL's name survives a power cut too.
      walFd = openSync(`${resolved.path as string}-wal`, 'a');
      const dirFd = openSync(dirname(resolved.path as string), 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    } else {
      db.exec('PRAGMA synchronous=FULL;'); // COMMIT fsyncs the WAL before it returns
    }
  }
  /**
   * Closes what the ledger opened, leaving the database synced: SQLite checkpoints the
   * WAL on close, syncing it and the database (synchronous NORMAL or FULL).
   */
  const closeOwned = (): void => {
    if (walFd !== undefined) {
      closeSync(walFd);
      walFd = undefined;
    }
    if (shmFd !== undefined) {
      closeSync(shmFd);
      shmFd = undefined;
    }
    if (!ownsDatabase || !db.isOpen) return;
    db.close();
  };
  /**
   * Copies the WAL into the database and restarts it. Under synchronous=NORMAL SQLite
   * syncs the WAL, then the database, before the next writer starts the WAL over, and
   * that writer syncs the new WAL header before its first frame: afterwards everything
   * committed is on disk (https://sqlite.org/pragma.html#pragma_synchronous,
   * https://sqlite.org/pragma.html#pragma_wal_checkpoint). RESTART, not TRUNCATE: the
   * WAL keeps its blocks and new frames overwrite them, so the fdatasync after each
   * COMMIT flushes data only; on a WAL that grows, every fdatasync also commits the
   * file's new size to the filesystem journal (measured here: P99 at 1,000/s three to
   * ten times worse).
   */
  const syncCheckpoint = (): void => {
    db.exec('PRAGMA wal_checkpoint(RESTART)');
  };
  /**
   * Bytes of WAL in use: mxFrame, the last valid frame, from the wal-index header that
   * SQLite keeps in the -shm file (https://sqlite.org/walformat.html §2.1: a native
   * byte-order u32 at offset 16), times the frame size (page + 24-byte frame header).
   * The WAL file's own size says nothing once frames overwrite a restarted WAL.
   */
  let shmFd: number | undefined;
  const frameBytes = Number(db.prepare('PRAGMA page_size').get()?.page_size ?? 4096) + 24;
  const mxFrame = new Uint32Array(1);
  const walBytesInUse = (): number => {
    if (shmFd === undefined) return 0;
    const read = readSync(shmFd, new Uint8Array(mxFrame.buffer), 0, 4, 16);
    return read === 4 ? 32 + (mxFrame[0] as number) * frameBytes : 0;
  };
  const prepareSchema = () => {
    db.exec(SCHEMA);
    const row = db.prepare("SELECT value FROM receipts_ledger_meta WHERE key = 'origin'").get();
    if (row === undefined) {
      db.prepare("INSERT INTO receipts_ledger_meta (key, value) VALUES ('origin', ?)").run(origin);
    } else if (row.value !== origin) {
      throw new LedgerError(`This database holds the ledger "${String(row.value)}", not "${origin}".`);
    }
  };
  if (db.isTransaction) {
    prepareSchema(); // inside the caller's transaction: it commits the schema with its work
  } else {
    try {
      db.exec('BEGIN IMMEDIATE');
      prepareSchema();
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      closeOwned();
      throw error;
    }
  }

  const st: Statements = {
    size: db.prepare('SELECT coalesce(max(leaf_index) + 1, 0) AS n FROM receipts_leaves'),
    leafHash: db.prepare('SELECT leaf_hash AS h FROM receipts_leaves WHERE leaf_index = ?'),
    node: db.prepare('SELECT hash AS h FROM receipts_nodes WHERE level = ? AND idx = ?'),
    lastReceiptHash: db.prepare('SELECT receipt_hash AS h FROM receipts_leaves WHERE leaf_index = ?'),
    insertLeaf: db.prepare(
      'INSERT INTO receipts_leaves (leaf_index, leaf_hash, receipt_hash, operation_id, receipt) VALUES (?, ?, ?, ?, ?)',
    ),
    insertNode: db.prepare('INSERT INTO receipts_nodes (level, idx, hash) VALUES (?, ?, ?)'),
    insertCheckpoint: db.prepare('INSERT OR REPLACE INTO receipts_checkpoints (tree_size, note) VALUES (?, ?)'),
    receipt: db.prepare('SELECT receipt FROM receipts_leaves WHERE leaf_index = ?'),
    receiptByOp: db.prepare('SELECT leaf_index, receipt FROM receipts_leaves WHERE operation_id = ?'),
    latestCheckpoint: db.prepare(
      'SELECT tree_size, note FROM receipts_checkpoints WHERE tree_size <= ? ORDER BY tree_size DESC LIMIT 1',
    ),
    checkpointAt: db.prepare('SELECT note FROM receipts_checkpoints WHERE tree_size = ?'),
    // One statement for a whole batch, whatever its size (json_each: https://sqlite.org/json1.html#jeach).
    knownOperationIds: db.prepare(
      'SELECT operation_id AS id FROM receipts_leaves WHERE operation_id IN (SELECT value FROM json_each(?))',
    ),
  };

  const currentSize = (): number => Number(st.size.get()?.n ?? 0);

  /** The stored hash of the complete subtree at (level, idx); level 0 is the leaf hash. */
  const completeNode = (level: number, idx: number): Uint8Array => {
    const row = level === 0 ? st.leafHash.get(idx) : st.node.get(level, idx);
    if (row === undefined) throw new LedgerError(`Corrupt ledger: missing subtree (${level}, ${idx}).`);
    return asBytes(row.h);
  };

  /** MTH(D[start:end]) from stored complete subtrees: O(log n) reads (RFC 9162 §2.1.1). */
  const storedMth: SubtreeHash = (start, end) => {
    const width = end - start;
    const level = exactLog2(width);
    if (level >= 0 && start % width === 0) return completeNode(level, start / width);
    const k = splitPoint(width);
    return nodeTree.children(storedMth(start, start + k), storedMth(start + k, end));
  };

  /** The right edge of the tree: the complete subtree for each set bit of `size`, low level first. */
  const readFrontier = (size: number): (Uint8Array | undefined)[] => {
    const frontier: (Uint8Array | undefined)[] = [];
    for (let level = 0, rest = size; rest > 0; level++, rest = Math.floor(rest / 2)) {
      frontier[level] = rest % 2 === 1 ? completeNode(level, rest - 1) : undefined;
    }
    return frontier;
  };

  const rootOf = (size: number): Uint8Array => {
    if (size === 0) return nodeTree.emptyRoot;
    return storedMth(0, size);
  };

  /** The log's right edge as stored: its size, frontier and last receipt hash (O(log n) reads). */
  const readEdge = (): RightEdge => {
    const size = currentSize();
    return {
      size,
      frontier: readFrontier(size),
      previous: size === 0 ? null : toHex(asBytes(st.lastReceiptHash.get(size - 1)?.h)),
    };
  };
  /**
   * On a database the ledger owns (so it is the only writer), the right edge after the
   * last committed batch, so the next batch reads nothing before it writes (at low rates,
   * one or two receipts a batch, those reads were about a tenth of the CPU per receipt).
   * Dropped whenever a batch fails (its transaction rolled back). Never kept on a shared
   * handle: the caller's rollbacks are invisible to the ledger.
   */
  let committedEdge: RightEdge | undefined;
  /**
   * On a shared handle, the edge the last appendInTransaction left. The caller may roll
   * its transaction back without telling the ledger, so it is used only while the stored
   * size still equals its size: a rollback takes the size back below it, and nothing
   * else writes leaves (one query instead of the frontier's O(log n) reads).
   */
  let writtenEdge: RightEdge | undefined;

  const storeEveryMs = resolved.storeCheckpointEveryMs ?? DEFAULT_STORE_CHECKPOINT_EVERY_MS;
  let lastStoredAt = Number.NEGATIVE_INFINITY;
  /**
   * Signed notes of committed sizes, oldest first. Only notes signed outside a transaction
   * go in: a size written in a transaction that is then rolled back may later hold other
   * receipts, and its note another root.
   */
  const signedNotes = new Map<number, string>();
  const noteFor = (size: number, root: Uint8Array): string =>
    signCheckpoint({ origin, size, root } satisfies Checkpoint, [signerFor(size)]);
  /**
   * True when a note the ledger stored has one signature, by `signer` (key name and C2SP
   * key ID, https://github.com/C2SP/C2SP/blob/main/signed-note.md). Ed25519 (RFC 8032) is
   * deterministic, so that note is byte for byte what signing it now would give.
   */
  const signedOnlyBy = (note: string, signer: NoteSigner): boolean => {
    const keys = noteSignatureKeys(note);
    return keys?.length === 1 && keys[0]?.name === signer.name && keys[0].keyId === signer.keyId;
  };

  /**
   * Writes receipts for `bodies` at the end of the log, and now and then a signed
   * checkpoint of the new size. Runs inside a transaction someone else opened and will commit. Starts from
   * `from` (default: read from the database) and reports the edge it leaves.
   */
  const writeBatch = (
    bodies: readonly ReceiptBody[],
    from: RightEdge = readEdge(),
  ): { appended: AppendedReceipt[]; edge: RightEdge } => {
    let size = from.size;
    const frontier = [...from.frontier];
    let previous = from.previous;
    const written: Omit<AppendedReceipt, 'checkpoint' | 'treeSize'>[] = [];
    for (const body of bodies) {
      const leafIndex = size;
      // Bodies were validated on the way in (parseReceiptBody); the position is our own.
      const receipt = assembleReceipt(body, { origin, leafIndex, previousReceiptHash: previous });
      const text = canonicalText(receipt);
      const digest = receiptDigestOfText(text);
      const leafHash = nodeTree.leaf(digest);
      st.insertLeaf.run(leafIndex, leafHash, digest, receipt.operationId, text);
      // Carry up the tree: every odd index completes a subtree with its left sibling.
      let hash = leafHash;
      let idx = leafIndex;
      let level = 0;
      while (idx % 2 === 1) {
        const left = frontier[level];
        if (!left) throw new LedgerError('Corrupt ledger: frontier out of step with size.');
        frontier[level] = undefined;
        hash = nodeTree.children(left, hash);
        level++;
        idx = (idx - 1) / 2;
        st.insertNode.run(level, idx, hash);
      }
      frontier[level] = hash;
      size++;
      previous = toHex(digest);
      written.push({ receipt, receiptHash: previous, leafIndex });
    }
    // Root from the frontier: fold the complete subtrees from the right edge leftwards.
    let root: Uint8Array | undefined;
    for (const node of frontier) if (node) root = root ? nodeTree.children(node, root) : node;
    const head = root ?? nodeTree.emptyRoot;
    const now = performance.now();
    if (from.size === 0 || now - lastStoredAt >= storeEveryMs) {
      // A rolled-back transaction takes its row with it; the next batch of an empty log stores again.
      st.insertCheckpoint.run(size, noteFor(size, head));
      lastStoredAt = now;
    }
    const treeSize = size;
    let note: string | undefined;
    const checkpoint = () => {
      note ??= noteFor(treeSize, head);
      return note;
    };
    return {
      appended: written.map((w) => ({
        ...w,
        treeSize,
        get checkpoint() {
          return checkpoint();
        },
      })),
      edge: { size, frontier, previous },
    };
  };

  /**
   * At open: the latest signed checkpoint must describe exactly what is stored (same
   * size, same root recomputed from the stored subtrees, O(log n) reads), or the file
   * was damaged or edited behind the ledger's back.
   */
  const checkIntegrity = (): void => {
    const row = st.latestCheckpoint.get(Number.MAX_SAFE_INTEGER);
    if (!row) {
      if (currentSize() > 0) throw new LedgerError('Corrupt ledger: leaves without any signed checkpoint.');
      return;
    }
    const note = String(row.note);
    const body = parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1));
    const size = currentSize();
    // Stored checkpoints are periodic: the latest may be behind the log, never ahead of it.
    if (body.origin !== origin || body.size !== Number(row.tree_size) || body.size > size) {
      throw new LedgerError(
        `Corrupt ledger: the latest checkpoint is for size ${body.size}, the log holds ${size} leaves.`,
      );
    }
    if (!bytesEqual(rootOf(body.size), body.root)) {
      throw new LedgerError('Corrupt ledger: the stored tree does not hash to the latest signed root.');
    }
  };
  try {
    checkIntegrity();
    // What an earlier run committed may still sit unsynced in the OS: put it on disk
    // before serving any of it as durable.
    if (syncAfterCommit) {
      syncCheckpoint();
      shmFd = openSync(`${resolved.path as string}-shm`, 'r'); // exists: the schema step opened the WAL
    }
  } catch (error) {
    closeOwned();
    throw error instanceof LedgerError
      ? error
      : new LedgerError('Corrupt ledger: unreadable checkpoint.', { cause: error });
  }

  let closed = false;
  /** close() has begun: appends already queued are flushed, later ones are refused. */
  let closing = false;
  let closingDone: Promise<void> | undefined;
  let queue: Pending[] = [];
  let scheduled: Promise<void> | undefined;
  /** With fsync-after-commit, the log prefix known durable: all that reads serve. */
  let durableSize = currentSize();
  const visibleSize = (): number => (syncAfterCommit ? durableSize : currentSize());
  /** A failed fdatasync: final, every later append is refused with it. */
  let syncFailure: LedgerError | undefined;
  /** Appends are waiting for the fsync in flight to return before they commit. */
  let heldForSync = false;

  /**
   * Commits one batch in its own transaction; pushes what each append gets. An operation
   * id already in the ledger (an at-least-once client retrying) or twice in the batch
   * fails alone, and its batch-mates still commit as one transaction (one fsync): twice in
   * the batch is seen before writing; already in the ledger makes the write fail (the
   * UNIQUE index), and then one query finds every such id and the rest is written again,
   * once. (Looking them up before every write instead cost 26 µs of a receipt's ~300 µs
   * of CPU at one receipt a batch.) Any other failure while writing splits the batch in
   * halves and retries each, so a receipt that cannot be written costs O(log n)
   * transactions, not one per receipt; a failure of the transaction itself (BEGIN,
   * COMMIT: a busy or failing database) fails the whole batch, not its receipts.
   */
  const commitBatch = (batch: readonly Pending[], outcomes: Outcome[], ledgerChecked = false): void => {
    if (batch.length === 0) return;
    if (!db.isOpen) {
      // The caller closed its shared handle under the ledger.
      const error = new LedgerError('The database handle is closed; nothing was appended. Append before closing it.');
      for (const pending of batch) outcomes.push({ pending, error });
      return;
    }
    if (db.isTransaction) {
      const error = new LedgerError(
        'The shared database handle is inside a transaction; use appendInTransaction() within it.',
      );
      for (const pending of batch) outcomes.push({ pending, error });
      return;
    }
    // The same operation twice in one batch: the first append stands.
    let fresh: readonly Pending[] = batch;
    if (batch.length > 1) {
      const seen = new Set<string>();
      const unique: Pending[] = [];
      for (const pending of batch) {
        const id = pending.body.operationId;
        if (seen.has(id)) outcomes.push({ pending, error: duplicateOperation(id) });
        else {
          seen.add(id);
          unique.push(pending);
        }
      }
      fresh = unique;
    }
    let results: AppendedReceipt[];
    let writing = false;
    const storedAt = lastStoredAt;
    try {
      db.exec('BEGIN IMMEDIATE');
      writing = true;
      const written = writeBatch(
        fresh.map((p) => p.body),
        committedEdge,
      );
      writing = false;
      db.exec('COMMIT'); // fsync-in-commit: durable when this returns; else once the WAL is synced
      results = written.appended;
      if (ownsDatabase) committedEdge = written.edge;
      writtenEdge = undefined;
    } catch (cause) {
      committedEdge = undefined;
      writtenEdge = undefined;
      lastStoredAt = storedAt; // a checkpoint row written in this transaction is gone with it
      if (db.isOpen && db.isTransaction) db.exec('ROLLBACK');
      if (writing && !ledgerChecked) {
        // Most likely operations that already have a receipt: one query finds them all.
        const known = new Set(
          st.knownOperationIds.all(JSON.stringify(fresh.map((p) => p.body.operationId))).map((r) => String(r.id)),
        );
        if (known.size > 0) {
          const rest: Pending[] = [];
          for (const pending of fresh) {
            const id = pending.body.operationId;
            if (known.has(id)) outcomes.push({ pending, error: duplicateOperation(id) });
            else rest.push(pending);
          }
          commitBatch(rest, outcomes, true);
          return;
        }
      }
      if (writing && fresh.length > 1) {
        // Not a duplicate: bisect, so only the culprit fails.
        const half = Math.ceil(fresh.length / 2);
        commitBatch(fresh.slice(0, half), outcomes, true);
        commitBatch(fresh.slice(half), outcomes, true);
      } else {
        for (const pending of fresh) outcomes.push({ pending, error: appendFailure(cause) });
      }
      return;
    }
    fresh.forEach((pending, i) => {
      outcomes.push({ pending, result: results[i] as AppendedReceipt });
    });
  };

  const settle = (outcomes: readonly Outcome[]): void => {
    for (const o of outcomes) {
      if (o.result) o.pending.resolve(o.result);
      else o.pending.reject(o.error);
    }
  };

  /**
   * Once the WAL holds more than checkpointBytes, checkpoint it. The bulk runs on a
   * worker thread (checkpointer.ts), so the event loop keeps committing meanwhile (on
   * the event loop it stalled every append for the copy and two syncs: 13 ms median,
   * 130 ms worst per 4 MiB on this shared machine under load). Then the few frames
   * committed during it are checkpointed here (RESTART, synced), so the next writer restarts
   * the WAL from its start. Without a worker (it failed) all of it runs here, on a later
   * turn than the fsync that triggered it, so the appends that fsync released resolve first.
   */
  let checkpointer: WalCheckpointer | undefined;
  let checkpointInFlight = false;
  const catchUpCheckpoint = (): void => {
    checkpointInFlight = false;
    if (closed || !db.isOpen || db.isTransaction || syncFailure !== undefined) return;
    try {
      syncCheckpoint();
    } catch {
      // A reader in another process can hold the WAL; the next checkpoint catches up.
    }
  };
  const maybeCheckpoint = (): void => {
    if (checkpointInFlight || closed || walBytesInUse() <= checkpointBytes) return;
    checkpointInFlight = true;
    try {
      checkpointer ??= startWalCheckpointer(resolved.path as string);
    } catch {
      setImmediate(catchUpCheckpoint);
      return;
    }
    void checkpointer.checkpoint().then(catchUpCheckpoint);
  };

  /**
   * fsync-after-commit: each committed flush waits for an fdatasync of the WAL that
   * started after its COMMIT (@unrdf/wal-sync), then its appends resolve. After a failed
   * fsync nothing written since the last good one can be known durable, so the ledger
   * stops: reopening recovers the last durable state.
   */
  const walSync =
    walFd === undefined
      ? undefined
      : new WalSync<Unsynced>({
          fd: walFd,
          io,
          onDurable: (u) => {
            durableSize = Math.max(durableSize, u.treeSize);
            settle(u.outcomes);
          },
          onFailure: (cause, batches) => {
            syncFailure ??= new LedgerError(
              'Syncing the ledger to disk failed; close it and reopen (it recovers its last durable state).',
              { cause },
            );
            for (const u of batches) for (const o of u.outcomes) o.pending.reject(syncFailure);
          },
          afterRelease: () => maybeCheckpoint(),
          // Group commit paced by the disk: appends held while the fsync ran commit now.
          afterSync: () => {
            if (heldForSync && walSync?.inFlight === 0) {
              heldForSync = false;
              void scheduleFlush();
            }
          },
        });

  const flushQueue = (batch: readonly Pending[]): void => {
    const outcomes: Outcome[] = [];
    commitBatch(batch, outcomes);
    // fsync-in-commit (or the caller's handle): durable at COMMIT.
    if (walSync === undefined) settle(outcomes);
    else walSync.committed({ treeSize: committedEdge?.size ?? currentSize(), outcomes }, batch.length);
  };

  const scheduleFlush = (): Promise<void> => {
    scheduled ??= new Promise<void>((resolve) => {
      // Everything appended during this event-loop turn joins one transaction (group
      // commit); a backlog larger than maxBatch drains one batch per turn, so the event
      // loop keeps turning under load.
      setImmediate(() => {
        scheduled = undefined;
        if (closed) {
          // Nothing can commit any more (an owned handle is closed); settle, never throw here.
          const batch = queue;
          queue = [];
          for (const p of batch) p.reject(new LedgerError('The ledger is closed.'));
          resolve();
          return;
        }
        if ((walSync?.inFlight ?? 0) > 0 && queue.length < maxBatch && syncFailure === undefined) {
          // Group commit paced by the disk: while an fsync runs, appends gather into the
          // next batch, committed the moment it returns. Committing each turn instead
          // would write a transaction and a signed checkpoint per turn, and under a slow
          // disk every fsync would have more to flush. A full batch gains nothing by
          // waiting: it commits now (a backlog keeps the CPU busy while the disk syncs).
          heldForSync = true;
          resolve();
          return;
        }
        const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
        queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
        if (syncFailure) for (const p of batch) p.reject(syncFailure);
        else flushQueue(batch);
        if (queue.length > 0) void scheduleFlush();
        resolve();
      });
    });
    return scheduled;
  };

  const ensureOpen = () => {
    if (closed) throw new LedgerError('The ledger is closed.');
  };
  /** Writes are refused from the moment close() starts. */
  const ensureWritable = () => {
    ensureOpen();
    if (closing) throw new LedgerError('The ledger is closing; it takes no more appends.');
  };

  const checkSize = (name: string, value: number, min: number, max: number) => {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new InvalidInputError('ledger query', [`${name}: an integer in [${min}, ${max}], got ${value}`]);
    }
  };

  /**
   * The signed note of `treeSize` (1 to the visible size): the stored one when the key the
   * schedule gives that size signed it, else signed now. A note stored under an earlier
   * schedule (the ledger reopened with other signers or windows) is signed again with
   * today's key, over the same root, so the ledger serves only notes its own trustedKeys
   * accept; on a file it owns it stores that note in place of the old one (never on a
   * caller's handle: a read does not write to the caller's database).
   */
  const checkpointOf = (treeSize: number): string | undefined => {
    if (!Number.isSafeInteger(treeSize) || treeSize < 1 || treeSize > visibleSize()) return undefined;
    const known = signedNotes.get(treeSize);
    if (known !== undefined) return known;
    const row = st.checkpointAt.get(treeSize);
    const stored = row === undefined ? undefined : String(row.note);
    const signer = signerFor(treeSize);
    let note: string;
    if (stored !== undefined && signedOnlyBy(stored, signer)) note = stored;
    else {
      note = noteFor(treeSize, rootOf(treeSize));
      if (stored !== undefined && ownsDatabase && !db.isTransaction) {
        try {
          st.insertCheckpoint.run(treeSize, note);
        } catch {
          // Storing only saves signing it again after the next restart.
        }
      }
    }
    if (!db.isTransaction) {
      signedNotes.set(treeSize, note);
      if (signedNotes.size > SIGNED_NOTES_KEPT) signedNotes.delete(signedNotes.keys().next().value as number);
    }
    return note;
  };
  /** The newest note already signed that covers `leafIndex` (up to `limit`), else one signed for `limit`. */
  const noteCovering = (leafIndex: number, limit: number): { treeSize: number; note: string } | undefined => {
    let best: number | undefined;
    for (const size of signedNotes.keys()) if (size > leafIndex && size <= limit && size > (best ?? 0)) best = size;
    const treeSize = best ?? limit;
    const note = checkpointOf(treeSize);
    return note === undefined ? undefined : { treeSize, note };
  };

  const ledger: Ledger = {
    origin,
    trustedKeys,
    append(body) {
      let valid: ReceiptBody;
      try {
        ensureWritable();
        if (syncFailure) throw syncFailure;
        valid = parseReceiptBody(body);
      } catch (error) {
        return Promise.reject(error);
      }
      return new Promise<AppendedReceipt>((resolve, reject) => {
        queue.push({ body: valid, resolve, reject });
        void scheduleFlush();
      });
    },
    appendInTransaction(bodies) {
      ensureWritable();
      if (!db.isTransaction) {
        throw new LedgerError('appendInTransaction() needs an open transaction on the handle; BEGIN first.');
      }
      const valid = bodies.map((b) => parseReceiptBody(b));
      if (valid.length === 0) return [];
      // A savepoint: a failure undoes only the ledger's writes and leaves the caller's
      // transaction intact, to roll back or go on as it decides.
      db.exec('SAVEPOINT receipts_append');
      try {
        const known = writtenEdge !== undefined && writtenEdge.size === currentSize() ? writtenEdge : undefined;
        const { appended, edge } = writeBatch(valid, known);
        db.exec('RELEASE receipts_append');
        writtenEdge = edge;
        return appended;
      } catch (cause) {
        writtenEdge = undefined;
        db.exec('ROLLBACK TO receipts_append');
        db.exec('RELEASE receipts_append');
        const duplicate = /UNIQUE constraint failed: receipts_leaves\.operation_id/.test(String(cause));
        throw new LedgerError(
          duplicate
            ? 'An operation in this batch already has a receipt in the ledger; nothing was appended.'
            : `Appending failed and nothing was appended: ${(cause as Error).message}`,
          { cause },
        );
      }
    },
    size() {
      ensureOpen();
      return visibleSize();
    },
    root(treeSize) {
      ensureOpen();
      const size = visibleSize();
      const n = treeSize ?? size;
      checkSize('treeSize', n, 0, size);
      return Uint8Array.from(rootOf(n));
    },
    receipt(leafIndex) {
      ensureOpen();
      if (syncAfterCommit && !(leafIndex < durableSize)) return undefined;
      const row = st.receipt.get(leafIndex);
      return row ? (JSON.parse(String(row.receipt)) as Receipt) : undefined;
    },
    receiptByOperationId(operationId) {
      ensureOpen();
      const row = st.receiptByOp.get(operationId);
      if (!row || (syncAfterCommit && !(Number(row.leaf_index) < durableSize))) return undefined;
      return JSON.parse(String(row.receipt)) as Receipt;
    },
    receiptBundle(key, atMostTreeSize) {
      ensureOpen();
      const receipt = typeof key === 'number' ? ledger.receipt(key) : ledger.receiptByOperationId(key);
      const limit = Math.min(visibleSize(), atMostTreeSize ?? Number.POSITIVE_INFINITY);
      if (!receipt || receipt.leafIndex >= limit) return undefined;
      // Any signed size above the leaf proves it: reuse a recent note rather than sign anew.
      const covering = noteCovering(receipt.leafIndex, limit);
      if (covering === undefined) return undefined;
      return {
        receipt,
        proof: ledger.inclusionProof(receipt.leafIndex, covering.treeSize),
        checkpoint: covering.note,
      };
    },
    latestCheckpoint() {
      ensureOpen();
      return checkpointOf(visibleSize());
    },
    checkpointAt(treeSize) {
      ensureOpen();
      return checkpointOf(treeSize);
    },
    inclusionProof(leafIndex, treeSize) {
      ensureOpen();
      const size = visibleSize();
      const n = treeSize ?? size;
      checkSize('treeSize', n, 1, size);
      checkSize('leafIndex', leafIndex, 0, n - 1);
      const hashes = inclusionPath(leafIndex, n, storedMth).map(toHex);
      return { leafIndex, treeSize: n, hashes };
    },
    consistencyProof(oldSize, newSize) {
      ensureOpen();
      const size = visibleSize();
      const n = newSize ?? size;
      checkSize('newSize', n, 0, size);
      checkSize('oldSize', oldSize, 0, n);
      return { oldSize, newSize: n, hashes: consistencyPath(oldSize, n, storedMth).map(toHex) };
    },
    async flush() {
      for (;;) {
        if (walSync !== undefined && (walSync.inFlight > 0 || (walSync.unsynced > 0 && !walSync.failed))) {
          await walSync.settled();
        } else if (scheduled || queue.length > 0) {
          await (scheduled ?? scheduleFlush());
        } else return;
      }
    },
    close() {
      // From here on appends are refused: one accepted now would be queued behind the
      // flush below and find the database closed. Every call waits for the same close.
      closing = true;
      closingDone ??= (async () => {
        await ledger.flush();
        closed = true;
        await checkpointer?.close();
        closeOwned();
      })();
      return closingDone;
    },
    [Symbol.asyncDispose]: () => ledger.close(),
  };
  return ledger;
}
