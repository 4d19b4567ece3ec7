// `@unrdf/daemon/wire`: what a client of the daemon on another thread checks and sends,
// without the daemon itself (queue, ledger, diagnostics): the typed errors, the submission
// and receipt-bundle schemas, and `prepareSubmission`. The reference app's HTTP front loads
// only this on its thread, and starts sooner for it.

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
  OperationTypeName,
  type PreparedDigest,
  ReceiptBundleSchema,
  type SubmitRequest,
  SubmitSchema,
} from './options.js';
export { type PreparedSubmission, prepareSubmission, type SubmitDefinition } from './submission.js';
