// Public API of @unrdf/raft, listed by name.
export {
  ConfigChangeError,
  LeadershipTransferError,
  NotLeaderError,
  ProposalTooLargeError,
  RaftError,
  RaftUsageError,
} from './errors.js';
export type { RaftBug } from './internal/bugs.js';
export {
  createRaftCore,
  DEFAULT_ELECTION_TICKS,
  DEFAULT_HEARTBEAT_TICKS,
  type ProposalPosition,
  RaftCore,
  type RaftCoreOptions,
  type RaftCoreStatus,
  type ResolvedRaftCoreOptions,
} from './raft-core.js';
export {
  type ClientSession,
  DEFAULT_ELECTION_MS,
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_TICK_MS,
  LeadershipLostError,
  openRaftNode,
  ProposalDroppedError,
  ProposalTimeoutError,
  RaftNode,
  type RaftNodeOptions,
  type RaftNodeStatus,
  SessionExpiredError,
  SessionStaleError,
  SessionWindowFullError,
  type StateMachine,
} from './raft-node.js';
export { checkLinearizable, type KvOperation, type LinearizabilityResult } from './simulation/linearizability.js';
export { seededRandom } from './simulation/seeded-random.js';
export {
  FAULT_PROFILES,
  type FaultProfile,
  type FaultProfileName,
  type SimulationOptions,
  type SimulationResult,
  simulate,
} from './simulation/simulator.js';
export {
  openSqliteStorage,
  SqliteStorage,
  type SqliteStorageOptions,
  type StorageWrite,
  type StoredState,
} from './sqlite-storage.js';
export { createTcpTransport, TcpTransport, type TcpTransportOptions } from './tcp-transport.js';
export type {
  AppendRequest,
  AppendResponse,
  ClusterConfig,
  ConfChange,
  ConfiguredSnapshot,
  Entry,
  HardState,
  Heartbeat,
  HeartbeatResponse,
  Message,
  NodeId,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotRequest,
  SoftState,
  TimeoutNow,
  VoteRequest,
  VoteResponse,
} from './types.js';
