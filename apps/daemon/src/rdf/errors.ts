/** The base class of the RDF entity store's errors; `code` is stable across versions. */
export class RdfEntityError extends Error {
  override readonly name: string = 'RdfEntityError';
  readonly code: string = 'UNRDF_RDF';
}

const where = (index: number | undefined) => (index === undefined ? '' : ` (batch operation ${index})`);

/** `create` of an entity that already exists; nothing was written. */
export class EntityExistsError extends RdfEntityError {
  override readonly name = 'EntityExistsError';
  override readonly code = 'UNRDF_RDF_ENTITY_EXISTS';
  constructor(
    readonly subject: string,
    readonly index?: number,
  ) {
    super(`Entity <${subject}> already exists${where(index)}; use update to change it, or delete it first.`);
  }
}

/** `update` or `delete` of an entity that does not exist; nothing was written. */
export class EntityNotFoundError extends RdfEntityError {
  override readonly name = 'EntityNotFoundError';
  override readonly code = 'UNRDF_RDF_ENTITY_NOT_FOUND';
  constructor(
    readonly subject: string,
    readonly index?: number,
  ) {
    super(`Entity <${subject}> does not exist${where(index)}; create it first.`);
  }
}

/** A change from an attempt older than one that already applied the same operation; nothing was written. */
export class StaleTokenError extends RdfEntityError {
  override readonly name = 'StaleTokenError';
  override readonly code = 'UNRDF_RDF_STALE_TOKEN';
  constructor(
    readonly operationId: string,
    readonly token: number,
    readonly appliedToken: number,
  ) {
    super(
      `Operation '${operationId}' was already applied with fencing token ${appliedToken}; this attempt's token ${token} is stale and its change was refused.`,
    );
  }
}

/** The store was used after `close()`. */
export class EntityStoreClosedError extends RdfEntityError {
  override readonly name = 'EntityStoreClosedError';
  override readonly code = 'UNRDF_RDF_STORE_CLOSED';
  constructor() {
    super('The entity store is closed; open it again with openEntityStore().');
  }
}

/**
 * Syncing the store's WAL to disk failed. Final: after it nothing written since the last good
 * sync can be known durable (the kernel may have dropped the dirty pages and a retried fsync
 * would report success), so the store refuses every later call. Restart the process: SQLite
 * recovers the store to its last durable state, and operations that were rejected with this
 * error are retried by the queue and applied once (their operation ids make re-apply idempotent).
 */
export class EntityStoreSyncError extends RdfEntityError {
  override readonly name = 'EntityStoreSyncError';
  override readonly code = 'UNRDF_RDF_STORE_SYNC_FAILED';
  constructor(options?: ErrorOptions) {
    super(
      'Syncing the entity store to disk failed; restart the process (the store recovers to its last durable state).',
      options,
    );
  }
}
