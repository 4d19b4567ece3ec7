// The RDF entity handlers of the reference daemon, listed by name.

export {
  BATCH_DIGEST_TAG,
  BATCH_OUTPUT_DIGEST_TAG,
  type CanonicalDescription,
  CHANGE_DIGEST_TAG,
  canonicalDescription,
  changeDigest,
  type DescriptionLimits,
  entityDigest,
  RDF_FORMATS,
  type RdfFormat,
} from './canonical.js';
export {
  type ChangeOutcome,
  createEntityStore,
  type EntityChange,
  type EntityEffects,
  type EntityPlan,
  type EntityStore,
  type EntityStoreOptions,
  type EntityStoreStats,
  type StoredEntity,
} from './entity-store.js';
export { EntityExistsError, EntityNotFoundError, EntityStoreClosedError, RdfEntityError } from './errors.js';
export {
  type BatchInput,
  BatchInputSchema,
  type BatchOutput,
  createRdfHandlers,
  createRdfSubmitDefinitions,
  DeleteInputSchema,
  type DescriptionInput,
  DescriptionInputSchema,
  type EntityOutput,
  MAX_BATCH_OPERATIONS,
  type RdfHandlersOptions,
  type RdfOperationType,
} from './handlers.js';
