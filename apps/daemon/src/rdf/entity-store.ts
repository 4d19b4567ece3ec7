import { existsSync, renameSync, rmSync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { InvalidInputError } from '@unrdf/daemon/wire';
import type { ApplyContext, ApplyExtension } from '@unrdf/queue';
import { CompletionRefusedError } from '@unrdf/queue/errors';
import { z } from 'zod';
import { countLines, entityDigest, toHex } from './canonical.js';
import { EntityExistsError, EntityNotFoundError, EntityStoreClosedError } from './errors.js';

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
  /** The operation whose completion wrote it, and that attempt's fencing token. */
  readonly lastOperationId: string;
  readonly lastOperationToken: number;
}

/** One change to one entity; `nquads` must already be canonical (see canonicalDescription). */
export type EntityChange =
  | {
      readonly type: 'create' | 'update';
      readonly subject: string;
      readonly nquads: string;
      /** Hex SHA-256 of `nquads` when the caller has it already (computed at submit); else the plan computes it. */
      readonly sha256?: string;
    }
  | { readonly type: 'delete'; readonly subject: string };

/** What one change does. */
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

/** The effects an RDF handler hands to the daemon (`ctx.setEffects`): its changes, each with the version it makes. */
export interface EntityEffects {
  readonly kind: typeof EFFECTS_KIND;
  readonly changes: readonly (EntityChange & { readonly version: number })[];
}

/** A planned operation: what it will do, and the effects that do it when its completion commits. */
export interface EntityPlan {
  readonly outcomes: readonly ChangeOutcome[];
  readonly effects: EntityEffects;
}

/** Counters since the daemon's store opened. */
export interface EntityStoreStats {
  /** Completions whose changes were committed. */
  readonly applied: number;
  /**
   * Refusals of completions whose entities changed between plan and commit (a refused completion
   * that shared its transaction with other commands is refused again when replayed alone).
   */
  readonly refused: number;
  /** Entities copied from a stand-alone `entities.db` of an earlier version, at open. */
  readonly imported: number;
}

/**
 * The RDF entities of the reference daemon, kept in the daemon's own store: an `ApplyExtension`
 * applies each operation's changes inside the transaction of its completion, so an entity
 * changes in the same durable commit as the operation's final state and receipt, or not at
 * all, and the changes travel with the commit path (the Raft log in cluster mode).
 */
export interface EntityStore {
  /** Pass to `createDaemon({ extensions: [store.extension] })`. */
  readonly extension: ApplyExtension;
  /**
   * The entity, or undefined when it does not exist (never created, or deleted): the committed
   * state, which a completion changes before its fsync returns.
   * @throws {EntityStoreClosedError} before the daemon opened its store, or after it closed.
   */
  get(subject: string): StoredEntity | undefined;
  /**
   * Checks the changes, in order, against the committed entities and says what they will do;
   * nothing is written. The handler passes `effects` to `ctx.setEffects`: the completion applies
   * them, and refuses them (`CompletionRefusedError`, retried) if an entity's version moved on.
   * @throws {EntityExistsError} create of an existing entity.
   * @throws {EntityNotFoundError} update or delete of a missing one.
   * @throws {EntityStoreClosedError} the store is not open.
   */
  plan(changes: readonly EntityChange[]): EntityPlan;
  stats(): EntityStoreStats;
}

const EntityStoreOptionsSchema = z.strictObject({
  /**
   * A stand-alone entity store of an earlier version (`<dataDir>/entities.db`): copied in at
   * open when present, then renamed to `<path>.imported`.
   */
  importFrom: z.string().min(1).optional(),
});
export type EntityStoreOptions = z.input<typeof EntityStoreOptionsSchema>;

const EFFECTS_KIND = 'unrdf-rdf-entities/v1';

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

/** Version and existence of one entity while a plan or an apply walks its changes. */
interface Head {
  readonly version: number;
  readonly exists: boolean;
}

/** Walks changes in order from `headOf`; throws on a precondition; hands each change the version it makes. */
function walk<C extends EntityChange>(
  changes: readonly C[],
  headOf: (subject: string) => Head | undefined,
  onChange: (change: C, version: number) => void,
): void {
  const moved = new Map<string, Head>();
  const batched = changes.length > 1;
  changes.forEach((change, index) => {
    const at = batched ? index : undefined;
    const head = moved.get(change.subject) ?? headOf(change.subject);
    const exists = head?.exists ?? false;
    if (change.type === 'create' && exists) throw new EntityExistsError(change.subject, at);
    if (change.type !== 'create' && !exists) throw new EntityNotFoundError(change.subject, at);
    const version = (head?.version ?? 0) + 1;
    moved.set(change.subject, { version, exists: change.type !== 'delete' });
    onChange(change, version);
  });
}

/** The effects of a completion, checked by hand (they come from this module's own plan, through the log). */
function readEffects(text: string): EntityEffects | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const e = value as Partial<EntityEffects> | null;
  if (e === null || typeof e !== 'object' || e.kind !== EFFECTS_KIND || !Array.isArray(e.changes)) return undefined;
  for (const c of e.changes as unknown[]) {
    const change = c as Partial<EntityChange & { version: number; nquads: unknown }> | null;
    if (
      change === null ||
      typeof change !== 'object' ||
      typeof change.subject !== 'string' ||
      !Number.isSafeInteger(change.version) ||
      !(
        change.type === 'delete' ||
        ((change.type === 'create' || change.type === 'update') && typeof change.nquads === 'string')
      )
    ) {
      throw new CompletionRefusedError(`The RDF effects of this completion are malformed: ${JSON.stringify(c)}`, {
        retry: false,
      });
    }
  }
  return e as EntityEffects;
}

/**
 * Creates the RDF entity store of a daemon (see {@link EntityStore}). It opens with the daemon's
 * store: pass `store.extension` in `createDaemon({ extensions })`.
 * @throws {InvalidInputError} bad options.
 * @example
 * const store = createEntityStore();
 * const daemon = createDaemon({ dataDir, handlers: createRdfHandlers(store), extensions: [store.extension] });
 */
export function createEntityStore(options: EntityStoreOptions = {}): EntityStore {
  const parsed = EntityStoreOptionsSchema.safeParse(options);
  if (!parsed.success) throw InvalidInputError.fromZod('entity store options', parsed.error);
  const importFrom = parsed.data.importFrom;
  let statements: { select: StatementSync; head: StatementSync; upsert: StatementSync } | undefined;
  let applied = 0;
  /** Applied inside the open transaction: counted once it commits. */
  let staged = 0;
  let refused = 0;
  let imported = 0;

  const open = () => {
    if (statements === undefined) throw new EntityStoreClosedError();
    return statements;
  };
  const read = <T>(statement: 'select' | 'head', subject: string): T | undefined => {
    const st = open();
    try {
      return st[statement].get(subject) as T | undefined;
    } catch (error) {
      // The daemon closed its store under us: say so, not SQLite's "statement has been finalized".
      if ((error as { code?: unknown }).code === 'ERR_INVALID_STATE') throw new EntityStoreClosedError();
      throw error;
    }
  };
  const row = (subject: string) => read<EntityRow>('select', subject);
  // Plans and applies need only the version and existence, not the N-Quads.
  const headOf = (subject: string): Head | undefined => {
    const r = read<Pick<EntityRow, 'version' | 'deleted'>>('head', subject);
    return r === undefined ? undefined : { version: r.version, exists: r.deleted === 0 };
  };

  /** Copies a stand-alone store of an earlier version in (once; outside any transaction). */
  const importLegacy = (db: DatabaseSync, path: string) => {
    if (!existsSync(path)) return;
    db.prepare('ATTACH DATABASE ? AS legacy').run(path);
    try {
      const copied = db
        .prepare(
          `INSERT OR IGNORE INTO rdf_entity (subject, nquads, triples, version, deleted, last_op_id, last_op_token)
           SELECT subject, nquads, triples, version, deleted, last_op_id, last_op_token FROM legacy.rdf_entity`,
        )
        .run();
      imported = Number(copied.changes);
    } finally {
      db.exec('DETACH DATABASE legacy');
    }
    // The copy is committed; it is made durable before the original goes: the daemon's store may
    // run synchronous=OFF (its commit path syncs the WAL itself), so checkpoint it under FULL.
    const previous = (db.prepare('PRAGMA synchronous').get() as { synchronous: number }).synchronous;
    db.exec('PRAGMA synchronous = FULL; PRAGMA wal_checkpoint(FULL);');
    db.exec(`PRAGMA synchronous = ${Number(previous)}`);
    // A lost rename (power cut) only imports again: rows already here are kept (INSERT OR IGNORE).
    renameSync(path, `${path}.imported`);
    for (const suffix of ['-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  };

  const extension: ApplyExtension = {
    name: 'rdf-entities',
    watches: ['complete'],
    init(db) {
      db.exec(SCHEMA);
      if (importFrom !== undefined) importLegacy(db, importFrom);
      statements = {
        select: db.prepare('SELECT * FROM rdf_entity WHERE subject = ?'),
        head: db.prepare('SELECT version, deleted FROM rdf_entity WHERE subject = ?'),
        upsert: db.prepare(
          `INSERT INTO rdf_entity (subject, nquads, triples, version, deleted, last_op_id, last_op_token)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (subject) DO UPDATE SET nquads = excluded.nquads, triples = excluded.triples,
             version = excluded.version, deleted = excluded.deleted, last_op_id = excluded.last_op_id,
             last_op_token = excluded.last_op_token`,
        ),
      };
    },
    afterCommit() {
      applied += staged;
      staged = 0;
    },
    afterRollback() {
      staged = 0;
    },
    afterApply({ command, result }: ApplyContext) {
      if (command.kind !== 'complete' || command.effects === undefined) return;
      if (!(result as { applied?: boolean }).applied) return;
      const effects = readEffects(command.effects);
      if (effects === undefined) return; // another extension's effects
      const { upsert } = open();
      try {
        walk(effects.changes, headOf, (change, version) => {
          if (version !== change.version) {
            throw new CompletionRefusedError(
              `Entity <${change.subject}> changed after this attempt read it (its next version is ${version}, the attempt planned ${change.version}); it runs again.`,
            );
          }
          if (change.type === 'delete') upsert.run(change.subject, '', 0, version, 1, command.id, command.token);
          else
            upsert.run(change.subject, change.nquads, countLines(change.nquads), version, 0, command.id, command.token);
        });
      } catch (error) {
        refused++;
        if (error instanceof CompletionRefusedError) throw error;
        // Existence moved under the plan (a batch and a single operation on one subject): run again.
        throw new CompletionRefusedError(
          `${(error as Error).message} It changed after this attempt read it; it runs again.`,
          {
            cause: error,
          },
        );
      }
      staged++;
    },
  };

  return {
    extension,
    get(subject) {
      const r = row(subject);
      if (r === undefined || r.deleted !== 0) return undefined;
      return {
        subject: r.subject,
        nquads: r.nquads,
        triples: r.triples,
        version: r.version,
        sha256: toHex(entityDigest(r.nquads)),
        lastOperationId: r.last_op_id,
        lastOperationToken: r.last_op_token,
      };
    },
    plan(changes) {
      const outcomes: ChangeOutcome[] = [];
      const planned: (EntityChange & { version: number })[] = [];
      walk(changes, headOf, (change, version) => {
        if (change.type === 'delete') {
          planned.push({ type: 'delete', subject: change.subject, version });
          outcomes.push({ type: 'delete', subject: change.subject, version, triples: 0, sha256: null });
          return;
        }
        planned.push({ type: change.type, subject: change.subject, nquads: change.nquads, version });
        outcomes.push({
          type: change.type,
          subject: change.subject,
          version,
          triples: countLines(change.nquads),
          sha256: change.sha256 ?? toHex(entityDigest(change.nquads)),
        });
      });
      return { outcomes, effects: { kind: EFFECTS_KIND, changes: planned } };
    },
    stats: () => ({ applied, refused, imported }),
  };
}
