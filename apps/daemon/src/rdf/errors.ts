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
  readonly subject: string;
  readonly index: number | undefined;
  constructor(subject: string, index?: number) {
    super(`Entity <${subject}> already exists${where(index)}; use update to change it, or delete it first.`);
    this.subject = subject;
    this.index = index;
  }
}

/** `update` or `delete` of an entity that does not exist; nothing was written. */
export class EntityNotFoundError extends RdfEntityError {
  override readonly name = 'EntityNotFoundError';
  override readonly code = 'UNRDF_RDF_ENTITY_NOT_FOUND';
  readonly subject: string;
  readonly index: number | undefined;
  constructor(subject: string, index?: number) {
    super(`Entity <${subject}> does not exist${where(index)}; create it first.`);
    this.subject = subject;
    this.index = index;
  }
}

/** The store was used before the daemon opened its store, or after it closed it. */
export class EntityStoreClosedError extends RdfEntityError {
  override readonly name = 'EntityStoreClosedError';
  override readonly code = 'UNRDF_RDF_STORE_CLOSED';
  constructor() {
    super(
      "The entity store is not open: it opens and closes with the daemon's store (pass store.extension to createDaemon({ extensions }) and start the daemon).",
    );
  }
}
