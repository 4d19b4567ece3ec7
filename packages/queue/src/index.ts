// The public API of @unrdf/queue, listed by name.

export {
  Command,
  type CommandKind,
  type CommandOf,
  type OperationRow,
  type OperationState,
  type ResultOf,
  type Transition,
} from './commands.js';
export {
  type CommitPath,
  createGroupCommitPath,
  type GroupCommitOptions,
  StoreSyncError,
  type SubmitOptions,
} from './commit-path.js';
export {
  CompletionRefusedError,
  InvalidInputError,
  InvalidStateError,
  NotFoundError,
  OperationAbortedError,
  OperationTimeoutError,
  QueueClosedError,
  QueueError,
  UnknownTypeError,
  UnrecoverableError,
} from './errors.js';
export type {
  Clock,
  CloseOptions,
  EnqueueOptions,
  Handler,
  HandlerContext,
  QueueOptions,
  ReconcileDecision,
  ReconcileHook,
  ReconcileInput,
  ScheduleOptions,
  TypeOptions,
} from './options.js';
export { type Operation, openQueue, type Queue, type QueueEvent, type QueueStats, type ScheduleInfo } from './queue.js';
export {
  type ApplyContext,
  type ApplyExtension,
  type ApplyOutcome,
  type CheckpointResult,
  createStateMachine,
  type PendingRow,
  type ScheduleRow,
  type StateMachine,
  type StateMachineOptions,
} from './state-machine.js';
