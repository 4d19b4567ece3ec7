// The public API of @unrdf/daemon, listed by name.

export {
  type ConsistencyAnswer,
  createDaemon,
  type Daemon,
  type DaemonState,
  type OperationView,
  type WaitOptions,
} from './daemon.js';
export {
  DaemonError,
  DataDirLockedError,
  InvalidInputError,
  KeyFileError,
  NotRunningError,
  UnknownTypeError,
} from './errors.js';
export { loadOrCreateSigningKeys, type RotatedKey, rotateSigningKey, type SigningKeys } from './keys.js';
export { lockDataDir } from './lock.js';
export {
  type BatchMember,
  DATA_FILES,
  type DaemonHandler,
  type DaemonHandlerContext,
  type DaemonOptions,
  type HandlerDefinition,
  type HandlerPolicy,
  OperationTypeName,
  type PreparedDigest,
  ReceiptBundleSchema,
  type SubmitRequest,
  SubmitSchema,
} from './options.js';
export { type PreparedSubmission, prepareSubmission, type SubmitDefinition } from './submission.js';
