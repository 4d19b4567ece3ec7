// The public API of @unrdf/daemon, listed by name (the light entry point's by its own list).

export {
  type ConsistencyAnswer,
  createDaemon,
  type Daemon,
  type DaemonState,
  type OperationView,
  type WaitOptions,
} from './daemon.js';
export { loadOrCreateSigningKeys, type RotatedKey, rotateSigningKey, type SigningKeys } from './keys.js';
export { lockDataDir } from './lock.js';
export {
  DATA_FILES,
  type DaemonHandler,
  type DaemonHandlerContext,
  type DaemonOptions,
  type HandlerDefinition,
  type HandlerPolicy,
} from './options.js';
// Errors, the submission and bundle schemas, prepareSubmission: see wire.ts.
export * from './wire.js';
