import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { InvalidInputError } from '@unrdf/daemon';
import { z } from 'zod';
import { countLines, entityDigest, toHex } from './canonical.js';
import { EntityExistsError, EntityNotFoundError, EntityStoreClosedError, StaleTokenError } from './errors.js';

/** One entity as stored. */
export interface StoredEntity {
  readonly subject: string;
  /** RDFC-1.0 canonical N-Quads of its description. */
  readonly nquads: string;
  readonly triples: number;
  /** 1 at the first create; +1 at every later create, update or delete (a re-created entity continues). */
  readonly version: number;
  /** Hex SHA-256 of `nquads` (the outputDigest of the change that wrote it). */
  readonly sha256: string;
  readonly lastOperationId: string;
  readonly lastOperationToken: number;
}

/** One change to one entity; `nquads` must already be canonical (see canonicalDescription). */
export type EntityChange =
  | { readonly type: 'create' | 'update'; readonly subject: string; readonly nquads: string }
  | { readonly type: 'delete'; readonly subject: string };

/** What one change did. */
export interface ChangeOutcome {
  readonly type: 'create' | 'update' | 'delete';
  readonly subject: string;
  /** The entity's version after the change (a delete bumps it too). */
  readonly version: number;
  /** Triples after the change (0 after delete). */
  readonly triples: number;
  /** Hex SHA-256 of the canonical N-Quads after the change; null after delete. */
  readonly sha256: string | null;
}

/** What `apply` did: the outcome of each change, in order. */
export interface ApplyResult {
  /** True when the operation had already been applied and its stored outcome was returned. */
  readonly replayed: boolean;
  readonly outcomes: readonly ChangeOutcome[];
}

/** An operation's changes: applied all together or not at all. */
export interface ApplyRequest {
  /** The queue operation's id: applying one id twice returns the first outcome. */
  readonly operationId: string;
  /** The attempt's fencing token: lower than the one that applied the operation is refused. */
  readonly token: number;
  readonly changes: readonly EntityChange[];
}

/** An open entity store. */
export interface EntityStore extends AsyncDisposable {
  readonly path: string;
  /** The entity, or undefined when it does not exist (never created, or deleted). */
  get(subject: string): StoredEntity | undefined;
  /**
   * Applies every change in one durable transaction, or none.
   * @throws {EntityExistsError} create of an existing entity.
   * @throws {EntityNotFoundError} update or delete of a missing one.
   * @throws {StaleTokenError} the operation was applied by an attempt with a higher token.
   */
  apply(request: ApplyRequest): ApplyResult;
  /**
   * Forgets the outcomes of operations applied before `appliedBefore` (epoch ms); returns how many.
   * Only prune operations the queue can no longer retry (final, or older than its retention):
   * a retry of a forgotten operation would be applied again.
   */
  pruneOperations(appliedBefore: number): number;
  close(): void;
}

const EntityStoreOptionsSchema = z.strictObject({
  /** SQLite file (created with its directory if missing). */
  path: z.string().min(1),
  /** Wall clock (epoch ms) for `applied_at`; injected by tests. */
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
});
export type EntityStoreOptions = z.input<typeof EntityStoreOptionsSchema>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS rdf_entity (
  subject TEXT PRIMARY KEY,
  nquads TEXT NOT NULL,
  triples INTEGER NOT NULL,
  version INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  last_op_id TEXT NOT NULL,
  last_op_token INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS rdf_operation (
  op_id TEXT PRIMARY KEY,
  token INTEGER NOT NULL,
  outcomes TEXT NOT NULL,
  applied_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS rdf_operation_applied_at ON rdf_operation (applied_at);
`;

interface EntityRow {
  subject: string;
  nquads: string;
  triples: number;
  version: number;
  deleted: number;
  last_op_id: string;
  last_op_token: number;
}

/**
 * Opens (or creates) the SQLite store of RDF entities: one row per entity holding its canonical
 * N-Quads, version and the last operation (id + fencing token) applied to it. WAL with
 * `synchronous=FULL`, so an applied change survives a crash.
 * @throws {InvalidInputError} bad options.
 * @example
 * await using store = openEntityStore({ path: 'data/entities.db' });
 * store.apply({ operationId: 'op-1', token: 1, changes: [{ type: 'create', subject, nquads }] });
 */
export function openEntityStore(options: EntityStoreOptions): EntityStore {
  const parsed = EntityStoreOptionsSchema.safeParse(options);
  if (!parsed.success) throw InvalidInputError.fromZod('entity store options', parsed.error);
  const path = resolve(parsed.data.path);
  const clock = parsed.data.clock ?? Date.now;
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  let open = true;
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
    db.exec(SCHEMA);
  } catch (error) {
    db.close();
    throw error;
  }
  const selectEntity = db.prepare('SELECT * FROM rdf_entity WHERE subject = ?');
  const upsertEntity = db.prepare(
    `INSERT INTO rdf_entity (subject, nquads, triples, version, deleted, last_op_id, last_op_token)
     VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (subject) DO UPDATE SET nquads = excluded.nquads, triples = excluded.triples,
       version = excluded.version, deleted = excluded.deleted, last_op_id = excluded.last_op_id,
       last_op_token = excluded.last_op_token`,
  );
  const selectOperation = db.prepare('SELECT token, outcomes FROM rdf_operation WHERE op_id = ?');
  const insertOperation = db.prepare(
    'INSERT INTO rdf_operation (op_id, token, outcomes, applied_at) VALUES (?, ?, ?, ?)',
  );
  const raiseOperationToken = db.prepare('UPDATE rdf_operation SET token = ? WHERE op_id = ? AND token < ?');
  const deleteOperations = db.prepare('DELETE FROM rdf_operation WHERE applied_at < ?');

  const live = () => {
    if (!open) throw new EntityStoreClosedError();
  };
  const row = (subject: string) => selectEntity.get(subject) as EntityRow | undefined;

  const applyChanges = (request: ApplyRequest): ApplyResult => {
    const previous = selectOperation.get(request.operationId) as { token: number; outcomes: string } | undefined;
    if (previous !== undefined) {
      // A retry after a crash between this write and the queue's completion: same outcome, no second write.
      if (request.token < previous.token) throw new StaleTokenError(request.operationId, request.token, previous.token);
      raiseOperationToken.run(request.token, request.operationId, request.token);
      return { replayed: true, outcomes: JSON.parse(previous.outcomes) as ChangeOutcome[] };
    }
    const outcomes: ChangeOutcome[] = [];
    const batched = request.changes.length > 1;
    request.changes.forEach((change, index) => {
      const at = batched ? index : undefined;
      const current = row(change.subject);
      const exists = current !== undefined && current.deleted === 0;
      if (change.type === 'create' && exists) throw new EntityExistsError(change.subject, at);
      if (change.type !== 'create' && !exists) throw new EntityNotFoundError(change.subject, at);
      const version = (current?.version ?? 0) + 1;
      if (change.type === 'delete') {
        upsertEntity.run(change.subject, '', 0, version, 1, request.operationId, request.token);
        outcomes.push({ type: 'delete', subject: change.subject, version, triples: 0, sha256: null });
        return;
      }
      const triples = countLines(change.nquads);
      upsertEntity.run(change.subject, change.nquads, triples, version, 0, request.operationId, request.token);
      outcomes.push({
        type: change.type,
        subject: change.subject,
        version,
        triples,
        sha256: toHex(entityDigest(change.nquads)),
      });
    });
    insertOperation.run(request.operationId, request.token, JSON.stringify(outcomes), clock());
    return { replayed: false, outcomes };
  };

  const close = () => {
    if (!open) return;
    open = false;
    db.close();
  };

  return Object.freeze({
    path,
    get(subject: string): StoredEntity | undefined {
      live();
      const r = row(subject);
      if (r === undefined || r.deleted !== 0) return undefined;
      return Object.freeze({
        subject: r.subject,
        nquads: r.nquads,
        triples: r.triples,
        version: r.version,
        sha256: toHex(entityDigest(r.nquads)),
        lastOperationId: r.last_op_id,
        lastOperationToken: r.last_op_token,
      });
    },
    apply(request: ApplyRequest): ApplyResult {
      live();
      if (request.changes.length === 0) throw new RangeError('apply needs at least one change');
      // node:sqlite is synchronous: nothing else runs on this connection between BEGIN and COMMIT.
      db.exec('BEGIN IMMEDIATE');
      try {
        const result = applyChanges(request);
        db.exec('COMMIT');
        return result;
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    pruneOperations(appliedBefore: number): number {
      live();
      return Number(deleteOperations.run(appliedBefore).changes);
    },
    close,
    async [Symbol.asyncDispose]() {
      close();
    },
  });
}
