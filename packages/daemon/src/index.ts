// The public API of @unrdf/daemon, listed by name.

export {
  DaemonError,
  DataDirLockedError,
  InvalidInputError,
  KeyFileError,
  NotRunningError,
  UnknownTypeError,
} from './errors.js';
export {
  type BatchMember,
  type DaemonHandler,
  type DaemonHandlerContext,
  type DaemonOptions,
  type HandlerDefinition,
  type HandlerPolicy,
  type SubmitRequest,
} from './options.js';
