import { z } from 'zod';
import {
  ConfigChangeError,
  LeadershipTransferError,
  NotLeaderError,
  ProposalTooLargeError,
  RaftUsageError,
} from './errors.js';
import type { RaftBug } from './internal/bugs.js';
import { ENTRY_FRAME_OVERHEAD_BYTES, MAX_ENTRY_BYTES } from './internal/limits.js';
import { Progress } from './internal/progress.js';
import { RaftLog } from './internal/raft-log.js';
import type {
  AppendRequest,
  AppendResponse,
  ClusterConfig,
  ConfChange,
  ConfiguredSnapshot,
  Entry,
  HardState,
  Heartbeat,
  Message,
  NodeId,
  ReadState,
  Ready,
  Role,
  Snapshot,
  SnapshotRequest,
  SoftState,
  VoteRequest,
} from './types.js';

/** Ticks between heartbeats (one tick = 100 ms in the node runtime: etcd's 100 ms). */
export const DEFAULT_HEARTBEAT_TICKS = 1;
/** Base election timeout; the effective one is drawn from [electionTicks, 2 * electionTicks) (etcd's [1 s, 2 s)). */
export const DEFAULT_ELECTION_TICKS = 10;
const DEFAULT_MAX_ENTRIES_PER_APPEND = 64;
/** etcd's default MaxSizePerMsg (1 MiB): appends stay small enough to pipeline. */
const DEFAULT_MAX_APPEND_BYTES = 1024 * 1024;
const DEFAULT_MAX_INFLIGHT = 256;

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const RaftCoreOptionsSchema = z
  .object({
    id: z.string().min(1),
    /** Every voting member, including `id` (unless it starts as a learner). */
    peers: z.array(z.string().min(1)).min(1),
    /** Non-voting members that replicate the log (a new server catching up; thesis §4.2.1). */
    learners: z.array(z.string().min(1)).optional(),
    heartbeatTicks: z.number().int().positive().optional(),
    electionTicks: z.number().int().positive().optional(),
    /** Thesis §9.6: a candidate first asks whether it could win; on by default. */
    preVote: z.boolean().optional(),
    /** Thesis §6.2: a leader that has not heard from a majority for an election timeout steps down; on by default. */
    checkQuorum: z.boolean().optional(),
    maxEntriesPerAppend: z.number().int().positive().optional(),
    /**
     * Byte budget of one append's entries (etcd's MaxSizePerMsg; default 1 MiB); an append
     * always carries at least one entry, so a larger entry travels alone.
     */
    maxAppendBytes: z.number().int().positive().max(MAX_ENTRY_BYTES).optional(),
    /**
     * Largest proposal accepted (default, and at most: what one transport frame can carry,
     * just under 64 MiB); a larger one is refused with ProposalTooLargeError.
     */
    maxEntryBytes: z.number().int().positive().max(MAX_ENTRY_BYTES).optional(),
    maxInflight: z.number().int().positive().optional(),
    /** After its leader's connection drops, a follower campaigns within this many ticks (default electionTicks / 5). */
    unreachableSpreadTicks: z.number().int().positive().optional(),
    /** Uniform in [0, 1): the only source of randomness (seeded in simulation). */
    random: z.custom<() => number>((value) => typeof value === 'function', 'random must be a function'),
    /** What was on stable storage at start. */
    initial: z
      .object({
        hardState: z.custom<HardState>(),
        entries: z.custom<readonly Entry[]>((value) => Array.isArray(value)),
        /** Index the state machine has already applied (e.g. restored from a snapshot). */
        applied: z.number().int().nonnegative().optional(),
        /** The latest snapshot on disk; `entries` then start right after it. */
        snapshot: z.custom<Snapshot>().optional(),
      })
      .optional(),
    /** Test-only: deliberately broken rules the simulator must catch. */
    testOnlyBugs: z.array(z.custom<RaftBug>((value) => typeof value === 'string')).optional(),
  })
  .refine((options) => options.peers.includes(options.id) || (options.learners ?? []).includes(options.id), {
    message: 'peers or learners must include id',
    path: ['peers'],
  });

/** Options of {@link createRaftCore}. */
export type RaftCoreOptions = z.input<typeof RaftCoreOptionsSchema>;

/** Options after defaults are applied. */
export interface ResolvedRaftCoreOptions {
  readonly id: NodeId;
  readonly peers: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly heartbeatTicks: number;
  readonly electionTicks: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxEntriesPerAppend: number;
  readonly maxAppendBytes: number;
  readonly maxEntryBytes: number;
  readonly maxInflight: number;
  readonly unreachableSpreadTicks: number;
}

/** Where a proposal landed in the log; it is committed once an entry with this index and term is. */
export interface ProposalPosition {
  readonly index: number;
  readonly term: number;
}

/** A point-in-time view of the core for `status()` and tests. */
export interface RaftCoreStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly votedFor: NodeId | undefined;
  readonly leader: NodeId | undefined;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** Leader only: per-follower match index. */
  readonly progress: ReadonlyMap<
    NodeId,
    { readonly match: number; readonly next: number; readonly state: 'probe' | 'replicate' | 'snapshot' }
  >;
}

/**
 * The pure, deterministic Raft state machine (Ongaro & Ousterhout, "In Search of an
 * Understandable Consensus Algorithm", and the Raft thesis), shaped like etcd-io/raft:
 * no clock, socket, disk or `Math.random` inside. The host drives it with {@link tick},
 * {@link step} and {@link propose}, and collects work with {@link ready} / {@link advance}.
 */
export class RaftCore {
  readonly options: ResolvedRaftCoreOptions;
  readonly id: NodeId;
  private readonly random: () => number;
  private readonly bugs: ReadonlySet<RaftBug>;
  /** The membership in force: the newest config entry in the log, even uncommitted (thesis §4.1). */
  private config: ClusterConfig;
  /** Index of the entry that set `config` (0 or the snapshot index: the initial/snapshot config). */
  private configIndex = 0;
  private readonly initialConfig: ClusterConfig;

  private term: number;
  private votedFor: NodeId | undefined;
  private leader: NodeId | undefined = undefined;
  private role: Role = 'follower';
  private readonly log: RaftLog;
  private applied: number;

  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private leadTransferee: NodeId | undefined = undefined;
  /** The current campaign was started by a leadership transfer (its requests carry `force`). */
  private campaignForced = false;

  private messages: Message[] = [];
  /** The newest local snapshot (sent to followers that fell behind the compacted log). */
  private snapshot: ConfiguredSnapshot | undefined;
  /** A snapshot received from the leader, for the next Ready. */
  private pendingSnapshot: ConfiguredSnapshot | undefined = undefined;
  /** Reads waiting for a heartbeat quorum, oldest first (thesis §6.4 steps 2-3). */
  private pendingReads: { context: string; index: number; acks: Set<NodeId> }[] = [];
  /** Reads that arrived before this leader committed an entry of its term (thesis §6.4 step 1). */
  private deferredReads: string[] = [];
  private readStates: ReadState[] = [];
  /** The hard state last handed to the host (before any test-only masking). */
  private persistedHardState: HardState;
  private pendingHardState: HardState | undefined = undefined;
  private reportedSoftState: SoftState;
  private readyOutstanding = false;

  constructor(
    options: ResolvedRaftCoreOptions,
    random: () => number,
    initial: NonNullable<RaftCoreOptions['initial']> | undefined,
    bugs: readonly RaftBug[],
  ) {
    this.options = options;
    this.id = options.id;
    this.random = random;
    this.bugs = new Set(bugs);
    this.initialConfig = { voters: options.peers, learners: options.learners };
    this.config = this.initialConfig;
    const hardState = initial?.hardState ?? { term: 0, votedFor: undefined, commit: 0 };
    this.term = hardState.term;
    this.votedFor = hardState.votedFor;
    const entries = initial?.entries ?? [];
    const snapshot = initial?.snapshot;
    const first = entries[0];
    const snapshotIndex = snapshot?.index ?? (first === undefined ? 0 : first.index - 1);
    this.log = new RaftLog(entries, snapshotIndex, snapshot?.term ?? 0, Math.max(hardState.commit, snapshotIndex));
    // A snapshot stored before its membership was recorded stands for the initial peers (as
    // configAt reads it); spelling that out means no snapshot this core sends lacks a config.
    this.snapshot = snapshot === undefined ? undefined : { ...snapshot, config: snapshot.config ?? this.initialConfig };
    this.recomputeConfig();
    // A state machine restarts from the snapshot (or empty) and re-applies what follows.
    this.applied = Math.max(initial?.applied ?? snapshotIndex, snapshotIndex);
    this.persistedHardState = hardState;
    this.reportedSoftState = { leader: undefined, role: 'follower' };
    this.resetRandomizedElectionTimeout();
  }

  // ---------------------------------------------------------------- membership

  private get quorum(): number {
    return Math.floor(this.config.voters.length / 2) + 1;
  }

  private isVoter(id: NodeId): boolean {
    return this.config.voters.includes(id);
  }

  private members(): NodeId[] {
    return [...this.config.voters, ...this.config.learners];
  }

  /** The current membership (voters and learners). */
  get clusterConfig(): ClusterConfig {
    return this.config;
  }

  /** The config in force at `index`: the newest config entry at or before it. */
  private configAt(index: number): { config: ClusterConfig; index: number } {
    for (let i = Math.min(index, this.log.lastIndex()); i > this.log.snapshotIndex; i--) {
      const entry = this.log.entry(i);
      if (entry?.kind === 'config')
        return { config: JSON.parse(decoder.decode(entry.data)) as ClusterConfig, index: i };
    }
    return { config: this.snapshot?.config ?? this.initialConfig, index: this.log.snapshotIndex };
  }

  private recomputeConfig(): void {
    const { config, index } = this.configAt(this.log.lastIndex());
    this.setConfig(config, index);
  }

  private setConfig(config: ClusterConfig, index: number): void {
    this.config = config;
    this.configIndex = index;
    if (this.role !== 'leader') return;
    // A leader tracks every member it must replicate to (thesis §4.1: effective on append).
    for (const member of this.members()) {
      if (!this.progress.has(member)) {
        const pr = new Progress(this.log.lastIndex() + 1);
        pr.recentActive = true;
        this.progress.set(member, pr);
      }
    }
    for (const peer of [...this.progress.keys()]) {
      if (peer !== this.id && !this.members().includes(peer)) this.progress.delete(peer);
    }
  }

  /**
   * Leader only: appends one membership step (thesis §4.1, one server at a time): add a
   * learner, promote a caught-up learner to voter, or remove a member (the leader too: it
   * steps down once the change commits, §4.2.2). Takes effect when appended.
   * @throws {NotLeaderError} when not the leader.
   * @throws {ConfigChangeError} when a change is still uncommitted, this leader has not
   * committed an entry of its term yet (the thesis' single-server-change fix), or the step is invalid.
   */
  proposeConfChange(change: ConfChange): ProposalPosition {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (this.configIndex > this.log.committed)
      throw new ConfigChangeError('another membership change is not committed yet');
    if (this.log.term(this.log.committed) !== this.term) {
      throw new ConfigChangeError('this leader has not committed an entry of its term yet; retry shortly');
    }
    const { voters, learners } = this.config;
    const node = change.node;
    let next: ClusterConfig;
    if (change.type === 'addLearner') {
      if (voters.includes(node) || learners.includes(node)) throw new ConfigChangeError(`${node} is already a member`);
      next = { voters, learners: [...learners, node].sort() };
    } else if (change.type === 'promoteLearner') {
      if (!learners.includes(node)) throw new ConfigChangeError(`${node} is not a learner`);
      const pr = this.progress.get(node);
      if (pr === undefined || pr.match < this.log.committed) {
        throw new ConfigChangeError(
          `${node} has not caught up yet (match ${pr?.match ?? 0} < commit ${this.log.committed})`,
        );
      }
      next = { voters: [...voters, node].sort(), learners: learners.filter((l) => l !== node) };
    } else {
      if (!voters.includes(node) && !learners.includes(node)) throw new ConfigChangeError(`${node} is not a member`);
      if (voters.length === 1 && voters[0] === node) throw new ConfigChangeError('cannot remove the last voter');
      next = { voters: voters.filter((v) => v !== node), learners: learners.filter((l) => l !== node) };
    }
    const entry: Entry = {
      index: this.log.lastIndex() + 1,
      term: this.term,
      data: encoder.encode(JSON.stringify(next)),
      kind: 'config',
    };
    this.log.append([entry]);
    this.setConfig(next, entry.index);
    // The leader counts its own copy once the host has written it (see advance()).
    this.broadcastAppend();
    return { index: entry.index, term: entry.term };
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick (the runtime calls it every tick interval). */
  tick(): void {
    if (this.role === 'leader') {
      this.tickHeartbeat();
    } else {
      this.tickElection();
    }
  }

  /**
   * Appends `data` to the leader's log and starts replicating it.
   * @throws {ProposalTooLargeError} when `data` is over `maxEntryBytes` (it could never be sent).
   * @throws {NotLeaderError} when this server is not the leader.
   * @throws {LeadershipTransferError} while leadership is being handed over.
   */
  propose(data: Uint8Array): ProposalPosition {
    // An entry the transport cannot frame would stall replication for good: every append
    // that carries it would be refused (etcd refuses such requests up front, MaxRequestBytes).
    if (data.length > this.options.maxEntryBytes)
      throw new ProposalTooLargeError(data.length, this.options.maxEntryBytes);
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (this.leadTransferee !== undefined) throw new LeadershipTransferError(this.leadTransferee);
    const entry: Entry = { index: this.log.lastIndex() + 1, term: this.term, data };
    this.appendEntry(entry);
    // Proposals made before the host next takes a Ready share one append per follower
    // (etcd batches MsgProp the same way): fewer messages, fsyncs and acknowledgements.
    this.broadcastPending = true;
    return { index: entry.index, term: entry.term };
  }

  private broadcastPending = false;

  private flushBroadcast(): void {
    if (!this.broadcastPending) return;
    this.broadcastPending = false;
    if (this.role === 'leader') this.broadcastAppend();
  }

  /** Starts an election now (as if the election timeout had fired). */
  campaign(): void {
    if (this.role === 'leader') return;
    this.startCampaign(this.options.preVote ? 'preVote' : 'vote', false);
  }

  /**
   * The host saw the connection to `peer` drop (a crashed process closes its sockets at
   * once). A follower that loses its leader this way forgets it, which also ends the
   * lease that would make it ignore candidates, and starts a pre-vote right away instead
   * of waiting out the election timeout. Safe: only a majority's pre-votes and votes elect
   * anyone, and a live leader's followers still refuse (thesis §9.6). A leader moves the
   * peer back to probing so it does not pipeline into a dead connection (etcd-io/raft
   * `ReportUnreachable`).
   */
  peerUnreachable(peer: NodeId): void {
    if (this.role === 'leader') {
      const pr = this.progress.get(peer);
      if (pr !== undefined && peer !== this.id && pr.state === 'replicate') pr.becomeProbe();
      return;
    }
    if (peer !== this.leader || peer === this.id) return;
    this.leader = undefined;
    // Every survivor sees the same drop at the same instant; campaigning in lock-step would
    // split the vote (the second election etcd needs in ~11% of failovers), so each waits a
    // random slice of the spread first (Raft §5.2's randomisation, compressed).
    const delay = Math.floor(this.random() * this.options.unreachableSpreadTicks);
    if (delay === 0) {
      this.electionElapsed = 0;
      this.startCampaign(this.options.preVote ? 'preVote' : 'vote', false);
    } else {
      this.electionElapsed = Math.max(0, this.randomizedElectionTimeout - delay);
    }
  }

  /**
   * The host took a snapshot of the state machine at `index` (<= the applied index):
   * entries up to it are dropped from memory, and followers that need them get `data`
   * instead (Raft §7). Returns the snapshot, with the membership in force at `index`, for
   * the host to store in place of the entries (undefined when `index` is already covered).
   * @throws {RaftUsageError} when `index` is beyond what was applied.
   */
  compact(index: number, data: Uint8Array): ConfiguredSnapshot | undefined {
    if (index > this.applied) throw new RaftUsageError(`cannot snapshot at ${index}: only ${this.applied} is applied`);
    if (index <= this.log.snapshotIndex) return undefined;
    const term = this.log.term(index) as number;
    // Thesis §4.1 / Raft §7: the snapshot records the membership in force at its index,
    // since the config entries it replaces are gone from the log.
    const { config } = this.configAt(index);
    this.log.compact(index);
    this.snapshot = { index, term, data, config };
    return this.snapshot;
  }

  /** The newest snapshot this core knows (for the host's status and tests). */
  latestSnapshot(): ConfiguredSnapshot | undefined {
    return this.snapshot;
  }

  /**
   * Leader only: asks for a linearizable read point (ReadIndex, thesis §6.4). The answer
   * comes back in a later {@link Ready.readStates} with the same `context`, after a
   * majority confirmed this leader is still the leader; serve the read once the state
   * machine has applied its `index`. A read lost to a leader change never comes back:
   * the host fails it when the role changes.
   * @throws {NotLeaderError} when this server is not the leader.
   */
  readIndex(context: string): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (this.bugs.has('read-without-quorum')) {
      this.readStates.push({ context, index: this.log.committed });
      return;
    }
    // Step 1: until an entry of this term commits, the commit index may be stale.
    if (this.log.term(this.log.committed) !== this.term) {
      this.deferredReads.push(context);
      return;
    }
    this.startRead(context);
  }

  private startRead(context: string): void {
    if (this.quorum === 1) {
      this.readStates.push({ context, index: this.log.committed });
      return;
    }
    // Step 2-3: record the commit index, then confirm leadership with a heartbeat round.
    this.pendingReads.push({ context, index: this.log.committed, acks: new Set() });
    this.broadcastHeartbeat(context);
  }

  private ackRead(from: NodeId, context: string): void {
    const at = this.pendingReads.findIndex((read) => read.context === context);
    if (at < 0) return;
    const read = this.pendingReads[at] as { acks: Set<NodeId> };
    if (!this.isVoter(from)) return;
    read.acks.add(from);
    if (read.acks.size + (this.isVoter(this.id) ? 1 : 0) < this.quorum) return;
    // A quorum for this round also confirms every earlier read.
    for (const done of this.pendingReads.splice(0, at + 1)) {
      this.readStates.push({ context: done.context, index: done.index });
    }
  }

  /**
   * Leader only: hands leadership to `transferee` (thesis §3.10). Proposals are refused
   * until it completes or an election timeout passes.
   */
  transferLeadership(transferee: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.leader);
    if (transferee === this.id || !this.progress.has(transferee) || !this.isVoter(transferee)) return;
    this.leadTransferee = transferee;
    // Thesis §3.10: the transfer must finish within an election timeout or be abandoned.
    this.electionElapsed = 0;
    const pr = this.progress.get(transferee) as Progress;
    if (pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', from: this.id, to: transferee, term: this.term });
    } else {
      this.sendAppend(transferee, true);
    }
  }

  /** Feeds one message received from a peer. Messages for another server are ignored. */
  step(m: Message): void {
    // Thesis §4.2.3: no sender filter by membership. A server must accept a leader that is
    // not in its latest (possibly uncommitted) config, or it could never learn it was
    // superseded; disruptive votes from removed servers are stopped by the lease instead.
    if (m.to !== this.id || m.from === this.id) return;
    if (!this.stepTerm(m)) return;

    switch (m.type) {
      case 'preVote':
      case 'vote':
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }

    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  // ---------------------------------------------------------------- outputs

  /** Whether {@link ready} has anything for the host. */
  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    if (this.broadcastPending && this.role === 'leader') return true;
    const soft = this.reportedSoftState;
    if (soft.leader !== this.leader || soft.role !== this.role) return true;
    if (this.hardStateChanged()) return true;
    if (this.log.unstableFrom <= this.log.lastIndex()) return true;
    if (this.messages.length > 0 || this.readStates.length > 0 || this.pendingSnapshot !== undefined) return true;
    return this.applyTarget() > this.applied;
  }

  /**
   * Takes the next batch of work (see {@link Ready} for the order the host must follow).
   * @throws {RaftUsageError} when the previous Ready was not advanced yet.
   */
  ready(): Ready {
    if (this.readyOutstanding) throw new RaftUsageError('advance() the previous Ready before taking another');
    this.flushBroadcast();
    this.readyOutstanding = true;
    const softChanged = this.reportedSoftState.leader !== this.leader || this.reportedSoftState.role !== this.role;
    const softState: SoftState | undefined = softChanged ? { leader: this.leader, role: this.role } : undefined;
    const changed = this.hardStateChanged();
    this.pendingHardState = changed
      ? { term: this.term, votedFor: this.votedFor, commit: this.log.committed }
      : undefined;
    const hardState = changed ? this.hardStateToPersist() : undefined;
    const entries = this.log.unstableEntries();
    const messages = this.messages;
    this.messages = [];
    const snapshot = this.pendingSnapshot;
    this.pendingSnapshot = undefined;
    const applyFrom = Math.max(this.applied, snapshot?.index ?? 0) + 1;
    const committedEntries = this.log.slice(applyFrom, this.applyTarget() + 1);
    const readStates = this.readStates;
    this.readStates = [];
    // etcd-io/raft MustSync: term, vote or new entries must be durable before messages leave.
    const mustSync =
      entries.length > 0 ||
      snapshot !== undefined ||
      (this.pendingHardState !== undefined &&
        (this.pendingHardState.term !== this.persistedHardState.term ||
          this.pendingHardState.votedFor !== this.persistedHardState.votedFor));
    return { softState, hardState, entries, messages, committedEntries, snapshot, readStates, mustSync };
  }

  /** The host finished everything `ready` asked for. */
  advance(ready: Ready): void {
    if (!this.readyOutstanding) throw new RaftUsageError('advance() without an outstanding Ready');
    this.readyOutstanding = false;
    if (ready.softState !== undefined) this.reportedSoftState = ready.softState;
    if (this.pendingHardState !== undefined) this.persistedHardState = this.pendingHardState;
    this.pendingHardState = undefined;
    if (ready.snapshot !== undefined && ready.snapshot.index > this.applied) this.applied = ready.snapshot.index;
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) {
      this.log.stableTo(lastEntry.index, lastEntry.term);
      this.selfAck();
    }
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined && lastApplied.index > this.applied) this.applied = lastApplied.index;
  }

  /**
   * The leader's own copy counts toward a commit only once the host has made it durable
   * (etcd-io/raft with asynchronous storage writes: the leader acknowledges its own append
   * after the write). Counting it at append time let a leader whose quorum is itself commit,
   * and tell learners so in the appends that leave before its write (thesis §10.2.1), an
   * entry a crash then erases.
   */
  private selfAck(): void {
    if (this.role !== 'leader') return;
    const self = this.progress.get(this.id);
    const durable = Math.min(this.log.unstableFrom - 1, this.log.lastIndex());
    if (self?.maybeUpdate(durable) && this.maybeCommit()) this.broadcastAppend();
  }

  /** A snapshot of the volatile and persistent state, for status pages and tests. */
  status(): RaftCoreStatus {
    const progress = new Map<NodeId, { match: number; next: number; state: 'probe' | 'replicate' | 'snapshot' }>();
    if (this.role === 'leader') {
      for (const [peer, pr] of this.progress) progress.set(peer, { match: pr.match, next: pr.next, state: pr.state });
    }
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      votedFor: this.votedFor,
      leader: this.leader,
      commitIndex: this.log.committed,
      appliedIndex: this.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      progress,
    };
  }

  get currentRole(): Role {
    return this.role;
  }

  get currentTerm(): number {
    return this.term;
  }

  get currentLeader(): NodeId | undefined {
    return this.leader;
  }

  get commitIndex(): number {
    return this.log.committed;
  }

  get lastIndex(): number {
    return this.log.lastIndex();
  }

  /** Entries in [lo, hi) currently in memory (for tests and the simulator's invariant checks). */
  entries(lo = this.log.firstIndex(), hi = this.log.lastIndex() + 1): Entry[] {
    return this.log.slice(lo, hi);
  }

  /** Term of the entry at `index` or undefined (for invariant checks). */
  termAt(index: number): number | undefined {
    return this.log.term(index);
  }

  // ---------------------------------------------------------------- roles

  private becomeFollower(term: number, leader: NodeId | undefined): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('a leader cannot become a pre-candidate');
    // Thesis §9.6: a pre-candidate changes neither its term nor its vote.
    this.votes.clear();
    this.role = 'preCandidate';
    this.leader = undefined;
    this.resetRandomizedElectionTimeout();
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('a leader cannot become a candidate');
    // Raft §5.2: increment currentTerm, vote for self.
    this.reset(this.term + 1);
    this.votedFor = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    if (this.role === 'follower') throw new Error('a follower cannot become leader without an election');
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    for (const pr of this.progress.values()) pr.recentActive = true;
    // Raft §8 / thesis §6.4: a no-op entry of the new term lets entries of earlier terms
    // commit (§5.4.2 forbids committing them by counting replicas).
    this.appendEntry({ index: this.log.lastIndex() + 1, term: this.term, data: EMPTY });
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.votedFor = undefined;
    }
    this.leader = undefined;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = undefined;
    this.votes.clear();
    this.progress.clear();
    this.broadcastPending = false;
    this.pendingReads = [];
    this.deferredReads = [];
    const next = this.log.lastIndex() + 1;
    for (const peer of this.members()) {
      const pr = new Progress(next);
      // Only what is on our disk counts for us (see selfAck).
      if (peer === this.id) pr.match = Math.min(this.log.unstableFrom - 1, this.log.lastIndex());
      this.progress.set(peer, pr);
    }
  }

  private resetRandomizedElectionTimeout(): void {
    // Raft §5.2: randomised timeouts in [T, 2T) make split votes rare.
    const base = this.options.electionTicks;
    this.randomizedElectionTimeout = base + Math.floor(this.random() * base);
  }

  // ---------------------------------------------------------------- timers

  private tickElection(): void {
    this.electionElapsed++;
    if (
      (this.role === 'preCandidate' || this.role === 'candidate') &&
      this.electionElapsed % this.options.heartbeatTicks === 0
    ) {
      this.resendVoteRequests();
    }
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.startCampaign(this.options.preVote ? 'preVote' : 'vote', false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.options.electionTicks) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum) this.checkQuorum();
      if (this.role !== 'leader') return;
      // Thesis §3.10: an unfinished transfer is abandoned after an election timeout.
      this.leadTransferee = undefined;
    }
    // A snapshot lost on the way is resent after an election timeout without an answer:
    // counted in ticks (not heartbeat responses, which come once per heartbeat interval).
    // Back in probe, the follower's next heartbeat response sends it again.
    for (const [peer, pr] of this.progress) {
      if (peer !== this.id && pr.state === 'snapshot' && ++pr.snapshotTicks >= this.options.electionTicks) {
        pr.becomeProbe();
      }
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** Thesis §6.2: step down when a majority was not heard from during an election timeout. */
  private checkQuorum(): void {
    let active = 0;
    for (const [peer, pr] of this.progress) {
      if (this.isVoter(peer) && (peer === this.id || pr.recentActive)) active++;
      if (peer !== this.id) pr.recentActive = false;
    }
    if (active < this.quorum) this.becomeFollower(this.term, undefined);
  }

  // ---------------------------------------------------------------- elections

  private startCampaign(kind: 'preVote' | 'vote', force: boolean): void {
    // A learner or a removed server never campaigns (thesis §4.2.1, §4.2.3): checked here,
    // where every path (timeout, campaign(), timeoutNow, a dropped leader) ends up.
    if (!this.isVoter(this.id)) return;
    this.campaignForced = force;
    if (kind === 'preVote') {
      this.becomePreCandidate();
    } else {
      this.becomeCandidate();
    }
    // Pre-vote asks about the term it would campaign in, without adopting it.
    const term = kind === 'preVote' ? this.term + 1 : this.term;
    this.votes.set(this.id, true);
    if (this.tallyWon()) {
      if (kind === 'preVote') this.startCampaign('vote', force);
      else this.becomeLeader();
      return;
    }
    for (const peer of this.config.voters) {
      if (peer === this.id) continue;
      const request: VoteRequest = {
        type: kind,
        from: this.id,
        to: peer,
        term,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        ...(force ? { force: true } : {}),
      };
      this.send(request);
    }
  }

  /**
   * Asks again, every heartbeat interval, the voters that have not answered: a survivor
   * that ignored our request while it still trusted the dead leader (its lease) answers
   * once it has noticed, instead of leaving both to wait out an election timeout.
   * Requests are idempotent, so this changes liveness only.
   */
  private resendVoteRequests(): void {
    const kind = this.role === 'preCandidate' ? 'preVote' : 'vote';
    const term = kind === 'preVote' ? this.term + 1 : this.term;
    for (const peer of this.config.voters) {
      if (peer === this.id || this.votes.has(peer)) continue;
      this.send({
        type: kind,
        from: this.id,
        to: peer,
        term,
        lastLogIndex: this.log.lastIndex(),
        lastLogTerm: this.log.lastTerm(),
        // A transfer's campaign stays exempt from the lease when it asks again (thesis §3.10).
        ...(this.campaignForced ? { force: true } : {}),
      });
    }
  }

  private tallyWon(): boolean {
    let granted = 0;
    for (const [voter, vote] of this.votes) if (vote && this.isVoter(voter)) granted++;
    return granted >= this.quorum;
  }

  private tallyLost(): boolean {
    let rejected = 0;
    for (const [voter, vote] of this.votes) if (!vote && this.isVoter(voter)) rejected++;
    return rejected >= this.quorum;
  }

  /**
   * Term rules shared by every role (Raft §5.1 and Figure 2 "Rules for Servers"; thesis
   * §6.2 and §9.6 for the lease and pre-vote exceptions). Returns false when the message
   * is fully handled here.
   */
  private stepTerm(m: Message): boolean {
    if (m.term > this.term) {
      if (m.type === 'preVote' || m.type === 'vote') {
        // Thesis §6.2 / §9.6: a server that heard from a live leader within the minimum
        // election timeout ignores requests to replace it, so a partitioned server that
        // rejoins cannot disrupt the cluster. A transfer's request is exempt.
        const inLease =
          this.options.checkQuorum && this.leader !== undefined && this.electionElapsed < this.options.electionTicks;
        if (inLease && m.force !== true) return false;
      }
      if (m.type === 'preVote') {
        // Never change our term on a pre-vote.
      } else if (m.type === 'preVoteResponse' && m.granted) {
        // A grant carries the future term we asked about; adopting it happens only if we campaign.
      } else if (m.type === 'append' || m.type === 'heartbeat') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, undefined);
      }
      return true;
    }
    if (m.term < this.term) {
      if (this.bugs.has('stale-term-accepted') && (m.type === 'append' || m.type === 'heartbeat')) {
        // BUG: treat a deposed leader's append as current.
        return true;
      }
      if (this.options.checkQuorum && (m.type === 'append' || m.type === 'heartbeat')) {
        // A stale leader (e.g. back from a partition) must learn the new term, or with
        // check-quorum and pre-vote it might never step down (etcd-io/raft does the same).
        this.send({
          type: 'appendResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          success: false,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.term, granted: false });
      }
      // Raft §5.1: a request with a stale term is rejected; a stale response is dropped.
      return false;
    }
    return true;
  }

  private handleVoteRequest(m: VoteRequest): void {
    const responseType = m.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
    const canVote = this.bugs.has('vote-twice')
      ? this.votedFor === m.from || this.votedFor === undefined || m.type === 'vote'
      : // Raft §5.2: at most one vote per term, first come first served. A pre-vote for a
        // later term commits to nothing, so it only needs the log check.
        this.votedFor === m.from ||
        (this.votedFor === undefined && this.leader === undefined) ||
        (m.type === 'preVote' && m.term > this.term);
    // Raft §5.4.1: grant only to a candidate whose log is at least as up to date.
    const upToDate = this.bugs.has('no-up-to-date-check') || this.log.isUpToDate(m.lastLogIndex, m.lastLogTerm);
    // Two pre-candidates that started together would each grant the other, both become
    // candidates and split the vote (costing a whole election timeout). A pre-candidate
    // grants a rival only if the rival ranks higher (longer log, then id): pre-votes bind
    // nobody, so this changes liveness only, never safety.
    const yields =
      m.type !== 'preVote' ||
      this.role !== 'preCandidate' ||
      m.term !== this.term + 1 ||
      this.ranksBelow(m.from, m.lastLogIndex, m.lastLogTerm);
    if (canVote && upToDate && yields) {
      this.send({ type: responseType, from: this.id, to: m.from, term: m.term, granted: true });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      this.send({ type: responseType, from: this.id, to: m.from, term: this.term, granted: false });
    }
  }

  /** Whether a rival with this log outranks us for a pre-vote tie (log first, then id). */
  private ranksBelow(rival: NodeId, lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.log.lastTerm();
    if (lastTerm !== myTerm) return lastTerm > myTerm;
    const myIndex = this.log.lastIndex();
    if (lastIndex !== myIndex) return lastIndex > myIndex;
    return rival > this.id;
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
        // Raft §5.2: an AppendEntries from a leader of our term means we lost.
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        const expected = this.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
        if (m.type !== expected) return;
        if (!this.votes.has(m.from)) this.votes.set(m.from, m.granted);
        if (this.tallyWon()) {
          if (this.role === 'preCandidate') this.startCampaign('vote', false);
          else {
            this.becomeLeader();
            this.broadcastAppend();
          }
        } else if (this.tallyLost()) {
          this.becomeFollower(this.term, undefined);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        return;
      case 'timeoutNow':
        // Thesis §3.10: the leader asked us to take over; campaign without pre-vote.
        this.startCampaign('vote', true);
        return;
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- replication (follower)

  private handleAppend(m: AppendRequest): void {
    const reply = (fields: Pick<AppendResponse, 'success' | 'index' | 'hintIndex' | 'hintTerm'>) =>
      this.send({ type: 'appendResponse', from: this.id, to: m.from, term: this.term, ...fields });

    if (m.prevLogIndex < this.log.committed) {
      // Everything up to our commit index is known to match (Log Matching); say so.
      reply({ success: true, index: this.log.committed, hintIndex: 0, hintTerm: 0 });
      return;
    }
    const prevMatches =
      this.log.matchTerm(m.prevLogIndex, m.prevLogTerm) ||
      (this.bugs.has('no-prev-log-term-check') && m.prevLogIndex <= this.log.lastIndex());
    if (!prevMatches) {
      // Figure 2 receiver step 2: reply false if the log has no entry at prevLogIndex whose
      // term matches. The hint lets the leader skip a whole term per round trip.
      const hintIndex = this.log.findConflictByTerm(Math.min(m.prevLogIndex, this.log.lastIndex()), m.prevLogTerm);
      reply({ success: false, index: m.prevLogIndex, hintIndex, hintTerm: this.log.term(hintIndex) ?? 0 });
      return;
    }
    // Figure 2 receiver steps 3-4: drop a conflicting suffix, append what is new, and never
    // truncate on a mere duplicate (a delayed append must not erase later entries).
    const lastNew = m.prevLogIndex + m.entries.length;
    const conflict =
      this.bugs.has('no-prev-log-term-check') && m.entries.length > 0
        ? m.prevLogIndex + 1
        : this.log.findConflict(m.entries);
    if (conflict !== 0) {
      const appended = m.entries.slice(conflict - m.prevLogIndex - 1);
      this.log.truncateAndAppend(appended);
      // Thesis §4.1: a server uses the newest config in its log, and falls back when it is truncated.
      if (conflict <= this.configIndex || appended.some((e) => e.kind === 'config')) this.recomputeConfig();
    }
    // Figure 2 receiver step 5: commitIndex = min(leaderCommit, index of last new entry).
    const commitBound = this.bugs.has('commit-beyond-new-entries') ? this.log.lastIndex() : lastNew;
    this.log.commitTo(Math.min(m.commit, commitBound));
    reply({ success: true, index: lastNew, hintIndex: 0, hintTerm: 0 });
  }

  /** Raft §7 / Figure 13 (InstallSnapshot receiver). */
  private handleSnapshot(m: SnapshotRequest): void {
    // A snapshot from a leader that did not record the membership stands for the initial
    // peers (as configAt reads it); the host stores that explicitly.
    const snap: ConfiguredSnapshot = { ...m.snapshot, config: m.snapshot.config ?? this.initialConfig };
    const reply = (index: number) =>
      this.send({
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.term,
        success: true,
        index,
        hintIndex: 0,
        hintTerm: 0,
      });
    if (snap.index <= this.log.committed) {
      reply(this.log.committed);
      return;
    }
    if (this.log.matchTerm(snap.index, snap.term)) {
      // Step 6: our log already has the snapshot's last entry: keep what follows it.
      this.log.commitTo(snap.index);
      reply(this.log.lastIndex() >= snap.index ? snap.index : this.log.committed);
      return;
    }
    // Steps 7-8: discard the whole log; the state machine restarts from the snapshot.
    this.log.restore(snap.index, snap.term);
    this.pendingSnapshot = snap;
    this.snapshot = snap;
    this.recomputeConfig();
    reply(snap.index);
  }

  private handleHeartbeat(m: Heartbeat): void {
    // The leader sends min(its commit, our match), so this never passes our log.
    this.log.commitTo(m.commit);
    this.send({
      type: 'heartbeatResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      ...(m.context === undefined ? {} : { context: m.context }),
    });
  }

  // ---------------------------------------------------------------- replication (leader)

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case 'appendResponse':
        pr.recentActive = true;
        this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResponse':
        pr.recentActive = true;
        pr.probeSent = false;
        if (m.context !== undefined) this.ackRead(m.from, m.context);
        if (pr.state === 'replicate' && pr.isPaused(this.options.maxInflight)) {
          // A lost append must not stall the pipeline forever (etcd frees one slot here).
          pr.becomeProbe();
        }
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: AppendResponse, pr: Progress): void {
    if (!m.success) {
      let probeFrom = m.hintIndex;
      if (m.hintTerm > 0) probeFrom = this.log.findConflictByTerm(m.hintIndex, m.hintTerm);
      if (pr.maybeDecrease(m.index, probeFrom)) this.sendAppend(m.from, true);
      return;
    }
    const acknowledged = this.bugs.has('match-leader-last-index') ? this.log.lastIndex() : m.index;
    if (pr.state === 'snapshot' && acknowledged >= pr.pendingSnapshot) pr.becomeProbe();
    const wasProbe = pr.state === 'probe';
    if (pr.maybeUpdate(acknowledged)) {
      if (wasProbe) pr.becomeReplicate();
      if (this.maybeCommit()) {
        // maybeCommit may have made a removed leader step down: it then sends nothing.
        if (this.role === 'leader') this.broadcastAppend();
      } else {
        while (this.sendAppend(m.from, false)) {
          // fill the pipeline up to maxInflight
        }
      }
    } else if (wasProbe) {
      this.sendAppend(m.from, false);
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send({ type: 'timeoutNow', from: this.id, to: m.from, term: this.term });
    }
  }

  /**
   * Raft §5.3/§5.4.2: the highest index stored on a majority commits, but only when it
   * belongs to the current term (Figure 8).
   */
  private maybeCommit(): boolean {
    const matches: number[] = [];
    // Thesis §4.2.2: a leader removed by an uncommitted change manages the cluster without counting itself.
    for (const [peer, pr] of this.progress) if (this.isVoter(peer)) matches.push(pr.match);
    if (matches.length === 0) return false;
    matches.sort((a, b) => b - a);
    const needed = this.bugs.has('quorum-too-small') ? Math.max(1, this.quorum - 1) : this.quorum;
    const candidate = matches[needed - 1] as number;
    if (candidate <= this.log.committed) return false;
    if (!this.bugs.has('commit-previous-term') && this.log.term(candidate) !== this.term) return false;
    this.log.commitTo(candidate);
    if (!this.isVoter(this.id) && this.configIndex <= this.log.committed) {
      // Thesis §4.2.2: the change that removed this leader is committed; step down.
      this.becomeFollower(this.term, undefined);
      return true;
    }
    if (this.deferredReads.length > 0 && this.log.term(candidate) === this.term) {
      const deferred = this.deferredReads;
      this.deferredReads = [];
      for (const context of deferred) this.startRead(context);
    }
    return true;
  }

  private appendEntry(entry: Entry): void {
    // Not counted for ourselves yet: that waits for the host's write (selfAck).
    this.log.append([entry]);
  }

  private broadcastAppend(): void {
    // Only a leader replicates (a leader that just stepped down must not look like one).
    if (this.role !== 'leader') return;
    for (const [peer, pr] of this.progress) {
      if (peer === this.id || !this.sendAppend(peer, true)) continue;
      // A backlog split by maxAppendBytes is pipelined to a replicating follower at once
      // (bounded by maxInflight), not one append per round trip.
      while (pr.state === 'replicate' && this.sendAppend(peer, false)) {
        // fill the pipeline
      }
    }
  }

  private broadcastHeartbeat(context?: string): void {
    // A periodic heartbeat also confirms the newest pending read, if any.
    const ctx = context ?? this.pendingReads[this.pendingReads.length - 1]?.context;
    for (const [peer, pr] of this.progress) {
      if (peer === this.id) continue;
      this.send({
        type: 'heartbeat',
        from: this.id,
        to: peer,
        term: this.term,
        commit: Math.min(pr.match, this.log.committed),
        ...(ctx === undefined ? {} : { context: ctx }),
      });
    }
  }

  /** Sends the next append to `to` if its flow control allows; returns whether it sent one. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused(this.options.maxInflight)) return false;
    const prevLogIndex = pr.next - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    if (prevLogTerm === undefined) {
      // Raft §7: the entries it needs were compacted away; send the snapshot instead.
      const snapshot = this.snapshot;
      if (snapshot === undefined)
        throw new Error(`entry ${prevLogIndex} for ${to} is neither in the log nor a snapshot`);
      this.send({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
      pr.becomeSnapshot(snapshot.index);
      return true;
    }
    const entries = this.limitBytes(
      this.log.slice(pr.next, this.log.lastIndex() + 1, this.options.maxEntriesPerAppend),
    );
    if (entries.length === 0 && !sendIfEmpty) return false;
    const last = entries[entries.length - 1];
    this.send({
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.log.committed,
    });
    pr.sent(last === undefined ? prevLogIndex : last.index, entries.length);
    return true;
  }

  /**
   * The longest prefix of `entries` within `maxAppendBytes` (etcd's MaxSizePerMsg), but at
   * least one entry, so every append fits one transport frame and replication never stalls
   * on an append no peer can receive.
   */
  private limitBytes(entries: Entry[]): Entry[] {
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      bytes += (entries[i] as Entry).data.length + ENTRY_FRAME_OVERHEAD_BYTES;
      if (bytes > this.options.maxAppendBytes && i > 0) return entries.slice(0, i);
    }
    return entries;
  }

  // ---------------------------------------------------------------- plumbing

  private send(m: Message): void {
    this.messages.push(m);
  }

  private applyTarget(): number {
    return this.bugs.has('apply-uncommitted') ? this.log.lastIndex() : this.log.committed;
  }

  private hardStateChanged(): boolean {
    const p = this.persistedHardState;
    return p.term !== this.term || p.votedFor !== this.votedFor || p.commit !== this.log.committed;
  }

  private hardStateToPersist(): HardState {
    return {
      term: this.bugs.has('term-not-persisted') ? this.persistedHardState.term : this.term,
      votedFor: this.bugs.has('vote-not-persisted') ? undefined : this.votedFor,
      commit: this.log.committed,
    };
  }
}

/**
 * Creates a Raft core from options (parsed once with zod; defaults applied here).
 * @throws {z.ZodError} on invalid options.
 * @example
 * const core = createRaftCore({ id: 'n1', peers: ['n1', 'n2', 'n3'], random: seededRandom(7) });
 * core.tick();
 * if (core.hasReady()) { const rd = core.ready(); persist(rd); send(rd.messages); apply(rd.committedEntries); core.advance(rd); }
 */
export function createRaftCore(options: RaftCoreOptions): RaftCore {
  const parsed = RaftCoreOptionsSchema.parse(options);
  const resolved: ResolvedRaftCoreOptions = Object.freeze({
    id: parsed.id,
    peers: Object.freeze([...new Set(parsed.peers)].sort()),
    learners: Object.freeze([...new Set(parsed.learners ?? [])].sort()),
    heartbeatTicks: parsed.heartbeatTicks ?? DEFAULT_HEARTBEAT_TICKS,
    electionTicks: parsed.electionTicks ?? DEFAULT_ELECTION_TICKS,
    preVote: parsed.preVote ?? true,
    checkQuorum: parsed.checkQuorum ?? true,
    maxEntriesPerAppend: parsed.maxEntriesPerAppend ?? DEFAULT_MAX_ENTRIES_PER_APPEND,
    maxAppendBytes: parsed.maxAppendBytes ?? DEFAULT_MAX_APPEND_BYTES,
    maxEntryBytes: parsed.maxEntryBytes ?? MAX_ENTRY_BYTES,
    maxInflight: parsed.maxInflight ?? DEFAULT_MAX_INFLIGHT,
    unreachableSpreadTicks:
      parsed.unreachableSpreadTicks ?? Math.max(1, Math.floor((parsed.electionTicks ?? DEFAULT_ELECTION_TICKS) / 5)),
  });
  return new RaftCore(resolved, parsed.random, parsed.initial, parsed.testOnlyBugs ?? []);
}
