/** A Raft server's identity, unique within a cluster (e.g. `"n1"`). */
export type NodeId = string;

/**
 * One slot of the replicated log (Raft §5.3). `data` is opaque to the consensus; an
 * empty `data` is the no-op a new leader appends to commit entries of earlier terms
 * (Raft §5.4.2, §8).
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
  /** A membership change (`data` holds the new {@link ClusterConfig} as JSON); absent for commands. */
  readonly kind?: 'config';
}

/** Who votes and who only replicates (thesis §4.2.1 learners / non-voting members). */
export interface ClusterConfig {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/** One membership step (thesis §4.1: one server at a time). */
export type ConfChange =
  | { readonly type: 'addLearner'; readonly node: NodeId }
  | { readonly type: 'promoteLearner'; readonly node: NodeId }
  | { readonly type: 'removeNode'; readonly node: NodeId };

/**
 * The state a server must have on stable storage before it answers any RPC
 * (Raft Figure 2 "Persistent state on all servers"; `commit` is persisted like
 * etcd's HardState so a restart does not re-derive it).
 */
export interface HardState {
  readonly term: number;
  /** Candidate that received this server's vote in `term`, or undefined. */
  readonly votedFor: NodeId | undefined;
  readonly commit: number;
}

/** The role a server plays (Raft §5.1, plus the pre-vote phase of the thesis §9.6). */
export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (for a pre-vote request and its grant: the term it would campaign in). */
  readonly term: number;
}

/** RequestVote RPC (Raft Figure 2) and its pre-vote variant (thesis §9.6). */
export interface VoteRequest extends Envelope {
  readonly type: 'vote' | 'preVote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set by a leadership transfer: the receiver must not ignore it for lease reasons (thesis §3.10). */
  readonly force?: boolean;
}

export interface VoteResponse extends Envelope {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly granted: boolean;
}

/** AppendEntries RPC (Raft Figure 2). */
export interface AppendRequest extends Envelope {
  readonly type: 'append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  /** Leader's commit index. */
  readonly commit: number;
}

export interface AppendResponse extends Envelope {
  readonly type: 'appendResponse';
  readonly success: boolean;
  /** On success: the last index now known to match the leader. On failure: the rejected prevLogIndex. */
  readonly index: number;
  /** On failure: a hint for the next probe (largest index <= index whose term <= the leader's prevLogTerm). */
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** An empty AppendEntries that only asserts leadership and carries a safe commit index (Raft §5.2). */
export interface Heartbeat extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: number;
  /** The newest ReadIndex request this round confirms leadership for (thesis §6.4). */
  readonly context?: string;
}

export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeatResponse';
  readonly context?: string;
}

/**
 * A point-in-time image of the state machine covering the log up to `index` (Raft §7):
 * entries up to it may be discarded.
 */
export interface Snapshot {
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
  readonly data: Uint8Array;
  /**
   * The membership in force at `index`. Absent only in snapshots written before it was
   * recorded (the receiver then assumes its initial peers); every snapshot a core makes or
   * hands its host carries it ({@link ConfiguredSnapshot}).
   */
  readonly config?: ClusterConfig;
}

/**
 * A snapshot with its membership: what a core hands its host and what storage keeps.
 * Without it, a server restarted after its log was compacted past a membership change
 * would fall back to its initial peers and count the wrong voters (thesis §4.1, §5.4).
 */
export interface ConfiguredSnapshot extends Snapshot {
  readonly config: ClusterConfig;
}

/** InstallSnapshot RPC (Raft §7, Figure 13), sent whole. */
export interface SnapshotRequest extends Envelope {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

/** Asks the receiver (a follower chosen by a leadership transfer) to campaign at once (thesis §3.10). */
export interface TimeoutNow extends Envelope {
  readonly type: 'timeoutNow';
}

/** Every message a Raft core sends or receives. */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | SnapshotRequest
  | TimeoutNow;

/** Volatile state the host may want to observe (leader changes, role). */
export interface SoftState {
  readonly leader: NodeId | undefined;
  readonly role: Role;
}

/**
 * A ReadIndex answer (thesis §6.4): once the state machine has applied `index`, a read
 * tagged `context` may be served and is linearizable.
 */
export interface ReadState {
  readonly context: string;
  readonly index: number;
}

/**
 * One batch of work the host must do, in this order (etcd-io/raft `Ready`):
 * 1. persist `hardState` (if any) and `entries` (overwriting from `entries[0].index`),
 *    with fsync when `mustSync`; `append` messages (only a leader sends them) may leave
 *    before or during this write (thesis §10.2.1), and the next Ready is taken only after it;
 * 2. only then send the other `messages` (a vote or an append acknowledgement promises durability);
 * 3. apply `committedEntries` to the state machine;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  /**
   * A snapshot received from the leader: persist it (replacing the log up to its index)
   * and restore the state machine from it before applying `committedEntries`.
   */
  readonly snapshot: ConfiguredSnapshot | undefined;
  /** Reads confirmed by a quorum; serve each once `index` is applied. */
  readonly readStates: readonly ReadState[];
  /** True when the writes above must reach stable storage before `messages` leave. */
  readonly mustSync: boolean;
}
