import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { NotLeaderError, RaftError } from './errors.js';
import { ClientSessions, type SessionsImage } from './internal/client-sessions.js';
import { planPersist, routeMessages } from './internal/host-policy.js';
import { createRaftCore, type RaftCore } from './raft-core.js';
import { seededRandom } from './simulation/seeded-random.js';
import { openSqliteStorage, type SqliteStorage } from './sqlite-storage.js';
import { createTcpTransport, type TcpTransport } from './tcp-transport.js';
import type { ClusterConfig, Entry, HardState, Message, NodeId, Ready, Role } from './types.js';

/** The replicated application: a deterministic function of the committed commands. */
export interface StateMachine<Result = unknown> {
  /** Applies one committed command; must be deterministic (every replica runs it). */
  apply(command: Uint8Array, index: number): Result;
  /** An image of the whole state, for log compaction (Raft §7). Without it the log is never compacted. */
  snapshot?(): Uint8Array;
  /** Replaces the whole state with an image `snapshot()` produced (on any replica). */
  restore?(image: Uint8Array): void;
}

/** A client's identity and the sequence number of this request (thesis §6.3). */
export interface ClientSession {
  readonly clientId: string;
  /** Strictly increasing per client; a retry reuses the number. */
  readonly sequence: number;
  /**
   * The client's lowest sequence number it has no answer for yet (thesis §6.3), for a client
   * with several requests in flight: the cluster keeps the results from there on, so each
   * retry gets its own request's result. Omitted, it is `sequence` (one request at a time).
   */
  readonly firstUnacked?: number;
}

/** A proposal whose entry was replaced by another leader's: it was not applied; retry. */
export class ProposalDroppedError extends RaftError {
  override readonly name = 'ProposalDroppedError';
  readonly code = 'UNRDF_RAFT_PROPOSAL_DROPPED';
  constructor(options?: ErrorOptions) {
    super(
      'The proposal lost its log slot to another leader and was not applied; retry it (with the same session to stay exactly-once).',
      options,
    );
  }
}

/**
 * This node stopped leading while the proposal was in flight: it may or may not be applied
 * (etcd's "leader changed"). Retry on the new leader with the same session.
 */
export class LeadershipLostError extends RaftError {
  override readonly name = 'LeadershipLostError';
  readonly code = 'UNRDF_RAFT_LEADERSHIP_LOST';
  readonly leaderId: NodeId | undefined;
  constructor(leaderId: NodeId | undefined, options?: ErrorOptions) {
    super(
      `This node lost leadership before the proposal was applied; its outcome is unknown. Retry${leaderId ? ` on ${leaderId}` : ''} with the same client session so it is applied once.`,
      options,
    );
    this.leaderId = leaderId;
  }
}

/**
 * The client's session is unknown (expired or never opened with sequence 1), so the
 * request was not applied: it may be a retry of one applied before. Open a new session.
 */
export class SessionExpiredError extends RaftError {
  override readonly name = 'SessionExpiredError';
  readonly code = 'UNRDF_RAFT_SESSION_EXPIRED';
  constructor(options?: ErrorOptions) {
    super('The client session expired (or did not start at sequence 1); start a new client id at sequence 1.', options);
  }
}

/**
 * The request's sequence is below the client's acknowledged window, so it was not applied:
 * the client was answered for it before, or it pipelined requests without `firstUnacked`.
 */
export class SessionStaleError extends RaftError {
  override readonly name = 'SessionStaleError';
  readonly code = 'UNRDF_RAFT_SESSION_STALE';
  constructor(options?: ErrorOptions) {
    super(
      'The request is older than the client acknowledged, so it was not applied. A client with several requests in flight must send its lowest unanswered sequence as firstUnacked.',
      options,
    );
  }
}

/** The client has `maxOutstandingPerClient` requests without an answer; this one was not applied. */
export class SessionWindowFullError extends RaftError {
  override readonly name = 'SessionWindowFullError';
  readonly code = 'UNRDF_RAFT_SESSION_WINDOW_FULL';
  constructor(options?: ErrorOptions) {
    super(
      'Too many requests of this client are unacknowledged; wait for answers (and raise firstUnacked) before sending more.',
      options,
    );
  }
}

/** Session refusals, decided identically on every replica while applying the log. */
const SESSION_EXPIRED: unique symbol = Symbol('session expired');
const SESSION_STALE: unique symbol = Symbol('session stale');
const SESSION_WINDOW_FULL: unique symbol = Symbol('session window full');

/** The outcome of a proposal is unknown after the timeout: retry with the same session. */
export class ProposalTimeoutError extends RaftError {
  override readonly name = 'ProposalTimeoutError';
  readonly code = 'UNRDF_RAFT_PROPOSAL_TIMEOUT';
  constructor(timeoutMs: number, options?: ErrorOptions) {
    super(
      `No outcome within ${timeoutMs} ms; it may still be applied. Retry with the same client session so it is applied once.`,
      options,
    );
  }
}

const Address = z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) });

const RaftNodeOptionsSchema = z.object({
  id: z.string().min(1),
  /** Every member (including this one) and its peer address. */
  members: z.record(z.string(), Address),
  /** Start as a learner joining an existing cluster (the leader then calls `addLearner`). */
  learner: z.boolean().optional(),
  dataDir: z.string().min(1),
  clusterSecret: z.union([z.string().min(16), z.instanceof(Uint8Array)]),
  clusterId: z.string().min(1).optional(),
  stateMachine: z.custom<StateMachine>((v) => typeof v === 'object' && v !== null && 'apply' in v),
  /** Logical clock resolution; heartbeat and election are converted to ticks of this size. */
  tickMs: z.number().int().positive().optional(),
  heartbeatMs: z.number().int().positive().optional(),
  /** The election timeout is drawn from [electionMs, 2 * electionMs). */
  electionMs: z.number().int().positive().optional(),
  proposalTimeoutMs: z.number().int().positive().optional(),
  /**
   * Client sessions kept (least recently used evicted first; default 100,000). A client must
   * start with nothing acknowledged (sequence 1, or `firstUnacked` 1); one whose session was
   * evicted gets SessionExpiredError.
   */
  maxSessions: z.number().int().positive().optional(),
  /** Unacknowledged results kept per client session (its window of requests in flight; default 1,024). */
  maxOutstandingPerClient: z.number().int().positive().optional(),
  /** Take a snapshot and compact the log every this many applied entries (default 10,000). */
  snapshotEvery: z.number().int().positive().optional(),
  /** Called after every role or leader change (for logs and metrics). */
  onStateChange: z
    .custom<(state: { role: Role; term: number; leader: NodeId | undefined }) => void>((v) => typeof v === 'function')
    .optional(),
  /** Seed for election-timeout randomness (default: from the OS). */
  seed: z.number().int().optional(),
});

/** Options of {@link openRaftNode}. */
export type RaftNodeOptions = z.input<typeof RaftNodeOptionsSchema>;

/** What `status()` reports. */
export interface RaftNodeStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly leader: NodeId | undefined;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** Leader only: per follower, how far its log matches and how far it lags. */
  readonly peers: Readonly<Record<NodeId, { readonly match: number; readonly lag: number }>>;
}

export const DEFAULT_TICK_MS = 10;
export const DEFAULT_HEARTBEAT_MS = 100;
export const DEFAULT_ELECTION_MS = 1000;
const DEFAULT_PROPOSAL_TIMEOUT_MS = 10_000;
const DEFAULT_SNAPSHOT_EVERY = 10_000;

/**
 * Snapshot image: the client sessions (replicated state too, thesis §6.3) and the user
 * state machine's bytes: u32 header length | JSON sessions | user image.
 * Session results must be JSON-serialisable to survive a snapshot.
 */
function encodeImage(
  sessions: ClientSessions<unknown>,
  addresses: Map<NodeId, { host: string; port: number }>,
  user: Uint8Array,
): Uint8Array {
  // v2: sessions keep a window of results per client (earlier images hold one result each).
  const header = encoder.encode(JSON.stringify({ v: 2, sessions: sessions.image(), addresses: [...addresses] }));
  const out = new Uint8Array(4 + header.length + user.length);
  new DataView(out.buffer).setUint32(0, header.length);
  out.set(header, 4);
  out.set(user, 4 + header.length);
  return out;
}

function decodeImage(image: Uint8Array): {
  v?: number;
  sessions: SessionsImage<unknown>;
  addresses: [NodeId, { host: string; port: number }][];
  user: Uint8Array;
} {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const length = view.getUint32(0);
  const header = JSON.parse(decoder.decode(image.subarray(4, 4 + length))) as {
    v?: number;
    sessions: SessionsImage<unknown>;
    addresses: [NodeId, { host: string; port: number }][];
  };
  return { ...header, user: image.subarray(4 + length) };
}

const PLAIN = 0;
/** clientId and sequence (the one-request-at-a-time form; older logs hold it too). */
const SESSION = 1;
/** Runtime metadata, not for the state machine: a member's peer address (JSON). */
const MEMBER_ADDRESS = 2;
/** clientId, sequence and the client's lowest unacknowledged sequence. */
const SESSION_WINDOW = 3;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface MemberAddress {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

/** The member address a MEMBER_ADDRESS command carries; undefined for any other command. */
function memberAddressOf(data: Uint8Array): MemberAddress | undefined {
  if (data[0] !== MEMBER_ADDRESS) return undefined;
  return JSON.parse(decoder.decode(data.subarray(1))) as MemberAddress;
}

/** Command envelope: a byte tag, then (for a session) clientId and sequence. */
function wrap(command: Uint8Array, session: ClientSession | undefined): Uint8Array {
  if (session === undefined) {
    const out = new Uint8Array(1 + command.length);
    out[0] = PLAIN;
    out.set(command, 1);
    return out;
  }
  const id = encoder.encode(session.clientId);
  const windowed = session.firstUnacked !== undefined;
  const header = 11 + id.length + (windowed ? 8 : 0);
  const out = new Uint8Array(header + command.length);
  const view = new DataView(out.buffer);
  out[0] = windowed ? SESSION_WINDOW : SESSION;
  view.setUint16(1, id.length);
  out.set(id, 3);
  view.setFloat64(3 + id.length, session.sequence);
  if (windowed) view.setFloat64(11 + id.length, session.firstUnacked as number);
  out.set(command, header);
  return out;
}

function unwrap(data: Uint8Array): { command: Uint8Array; session: ClientSession | undefined } {
  if (data[0] === PLAIN) return { command: data.subarray(1), session: undefined };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const idLength = view.getUint16(1);
  const clientId = decoder.decode(data.subarray(3, 3 + idLength));
  const sequence = view.getFloat64(3 + idLength);
  if (data[0] === SESSION) return { command: data.subarray(11 + idLength), session: { clientId, sequence } };
  const firstUnacked = view.getFloat64(11 + idLength);
  return { command: data.subarray(19 + idLength), session: { clientId, sequence, firstUnacked } };
}

interface PendingProposal {
  readonly term: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * A Raft node: the core, SQLite storage, the TCP transport and a timer, wired in etcd's
 * Ready loop (persist, then send, then apply).
 */
export class RaftNode implements AsyncDisposable {
  private readonly pending = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  private confirmed: { index: number; resolve: () => void }[] = [];
  /** Client sessions, part of the replicated state (thesis §6.3). */
  private readonly sessions: ClientSessions<unknown>;
  private applied = 0;
  private scheduled = false;
  private closed = false;
  private nextRead = 0;
  private ticker: NodeJS.Timeout | undefined;
  /** Empty appends (commit index, probes) of the last Readies, sent on the next tick. */
  private deferred: Message[] = [];
  /** A commit-only hard state not written yet (it goes with the next write, or at close). */
  private unsavedHardState: HardState | undefined;

  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly storage: SqliteStorage;
  private transport: TcpTransport | undefined;
  private readonly stateMachine: StateMachine;
  private readonly tickMs: number;
  private readonly proposalTimeoutMs: number;
  private readonly onStateChange:
    | ((state: { role: Role; term: number; leader: NodeId | undefined }) => void)
    | undefined;
  private readonly snapshotEvery: number;
  constructor(
    id: NodeId,
    core: RaftCore,
    storage: SqliteStorage,
    transport: TcpTransport | undefined,
    stateMachine: StateMachine,
    tickMs: number,
    proposalTimeoutMs: number,
    onStateChange: ((state: { role: Role; term: number; leader: NodeId | undefined }) => void) | undefined,
    snapshotEvery: number,
    maxSessions: number,
    maxOutstandingPerClient: number,
  ) {
    this.id = id;
    this.core = core;
    this.storage = storage;
    this.transport = transport;
    this.stateMachine = stateMachine;
    this.tickMs = tickMs;
    this.proposalTimeoutMs = proposalTimeoutMs;
    this.onStateChange = onStateChange;
    this.snapshotEvery = snapshotEvery;
    this.sessions = new ClientSessions(maxSessions, maxOutstandingPerClient);
  }

  /** @internal restores the state machine and sessions from a snapshot image. */
  restoreImage(index: number, image: Uint8Array): void {
    const { v, sessions, addresses, user } = decodeImage(image);
    this.sessions.restore(sessions, v === undefined);
    for (const [id, address] of addresses) this.learnAddress(id, address);
    if (this.stateMachine.restore === undefined)
      throw new Error('received a snapshot but the state machine has no restore()');
    this.stateMachine.restore(user);
    this.applied = index;
    this.snapshotIndex = index;
  }

  private snapshotIndex = 0;
  /** Peer addresses, replicated through the log so a joining member can be dialled by everyone. */
  readonly addresses = new Map<NodeId, { host: string; port: number }>();

  private learnAddress(id: NodeId, address: { host: string; port: number }): void {
    this.addresses.set(id, address);
    if (id !== this.id) this.transport?.addPeer(id, address);
  }

  /**
   * Adds a server as a learner (it replicates but does not vote), after replicating its
   * address to every member (thesis §4.2.1). Start the new node with `learner: true` first.
   * @throws {NotLeaderError} (rejects) when not the leader; {@link ConfigChangeError} when refused.
   */
  async addLearner(id: NodeId, address: { host: string; port: number }): Promise<void> {
    const record = encoder.encode(JSON.stringify({ id, host: address.host, port: address.port }));
    const tagged = new Uint8Array(1 + record.length);
    tagged[0] = MEMBER_ADDRESS;
    tagged.set(record, 1);
    await this.track(this.core.propose(tagged));
    await this.track(this.core.proposeConfChange({ type: 'addLearner', node: id }));
  }

  /** Makes a caught-up learner a voter (thesis §4.1). @throws {ConfigChangeError} (rejects) if it lags. */
  async promoteLearner(id: NodeId): Promise<void> {
    await this.track(this.core.proposeConfChange({ type: 'promoteLearner', node: id }));
  }

  /** Removes a member, this leader included (it steps down once the change commits, thesis §4.2.2). */
  async removeMember(id: NodeId): Promise<void> {
    await this.track(this.core.proposeConfChange({ type: 'removeNode', node: id }));
  }

  /** The current membership. */
  get clusterConfig(): ClusterConfig {
    return this.core.clusterConfig;
  }

  /** Resolves when the entry at `position` is applied here (rejects if it lost its slot). */
  private track(position: { index: number; term: number }): Promise<unknown> {
    const promise = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(position.index);
        reject(new ProposalTimeoutError(this.proposalTimeoutMs));
      }, this.proposalTimeoutMs);
      this.pending.set(position.index, { term: position.term, resolve, reject, timer });
    });
    this.schedule();
    return promise;
  }

  /** @internal wires the transport after construction (it needs our callbacks). */
  attach(transport: TcpTransport): void {
    this.transport = transport;
    this.ticker = setInterval(() => {
      this.core.tick();
      this.process();
      this.sendDeferred();
    }, this.tickMs);
    this.schedule();
  }

  /** @internal */
  receive(message: Parameters<RaftCore['step']>[0]): void {
    if (this.closed) return;
    this.core.step(message);
    this.schedule();
  }

  /** @internal */
  peerDown(peer: NodeId): void {
    if (this.closed) return;
    this.core.peerUnreachable(peer);
    this.schedule();
  }

  /**
   * Replicates `command` and resolves with the state machine's result once it is applied
   * here. With a `session`, a retry of the same (clientId, sequence) is applied once and
   * answered with the first result.
   * @throws {NotLeaderError} (rejects) when this node is not the leader.
   * @throws {ProposalTooLargeError} (rejects) when the command cannot fit one log entry (just under 64 MiB).
   * @throws {ProposalDroppedError} when another leader took the slot; retry.
   * @throws {ProposalTimeoutError} when the outcome is unknown; retry with the same session.
   * @throws {SessionStaleError} when the sequence is below the client's acknowledged window (not applied).
   * @throws {SessionWindowFullError} when the client has `maxOutstandingPerClient` unanswered requests.
   * @throws {SessionExpiredError} when the client's session expired (not applied).
   */
  propose<Result = unknown>(command: Uint8Array, session?: ClientSession): Promise<Result> {
    if (this.closed) return Promise.reject(new NotLeaderError(undefined));
    let position: { index: number; term: number };
    try {
      position = this.core.propose(wrap(command, session));
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const promise = new Promise<Result>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(position.index);
        reject(new ProposalTimeoutError(this.proposalTimeoutMs));
      }, this.proposalTimeoutMs);
      this.pending.set(position.index, {
        term: position.term,
        resolve: resolve as (r: unknown) => void,
        reject,
        timer,
      });
    });
    this.schedule();
    return promise;
  }

  /**
   * Runs `query` against the state machine at a linearizable point (ReadIndex, thesis §6.4):
   * after a majority confirmed this leader and everything committed before the call is applied.
   * @throws {NotLeaderError} (rejects) when this node is not the leader or loses leadership meanwhile.
   */
  read<T>(query: () => T): Promise<T> {
    const context = `${this.id}:${this.nextRead++}`;
    try {
      this.core.readIndex(context);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const promise = new Promise<void>((resolve, reject) => this.reads.set(context, { resolve, reject }));
    this.schedule();
    return promise.then(query);
  }

  /**
   * The entries of this node's log after its latest snapshot (index, term, data as stored,
   * runtime envelope included), for diagnostics and for tests that compare replicas' logs.
   */
  logEntries(): readonly Entry[] {
    return this.core.entries();
  }

  /** Hands leadership to `to` (thesis §3.10). */
  transferLeadership(to: NodeId): void {
    this.core.transferLeadership(to);
    this.schedule();
  }

  status(): RaftNodeStatus {
    const s = this.core.status();
    const peers: Record<NodeId, { match: number; lag: number }> = {};
    for (const [peer, pr] of s.progress) {
      if (peer !== this.id) peers[peer] = { match: pr.match, lag: s.lastIndex - pr.match };
    }
    return {
      id: this.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commitIndex: s.commitIndex,
      appliedIndex: this.applied,
      lastIndex: s.lastIndex,
      peers,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new NotLeaderError(undefined));
    }
    this.pending.clear();
    this.failReads();
    await this.transport?.close();
    if (this.unsavedHardState !== undefined) this.storage.save({ hardState: this.unsavedHardState });
    this.storage.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ the Ready loop

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    // One Ready per event-loop turn batches many proposals into one fsync (group commit).
    setImmediate(() => {
      this.scheduled = false;
      this.process();
    });
  }

  private process(): void {
    if (this.closed) return;
    while (this.core.hasReady()) {
      const rd = this.core.ready();
      this.handle(rd);
      this.core.advance(rd);
      this.maybeCompact();
    }
  }

  /** Raft §7: snapshot the state machine and drop the log it covers, every `snapshotEvery` entries. */
  private maybeCompact(): void {
    const take = this.stateMachine.snapshot;
    if (take === undefined || this.applied - this.snapshotIndex < this.snapshotEvery) return;
    const index = this.applied;
    const term = this.core.termAt(index);
    if (term === undefined) return;
    const data = encodeImage(this.sessions, this.addresses, take.call(this.stateMachine));
    // The core's snapshot carries the membership in force at `index` (thesis §4.1): the
    // config entries it covers leave the log, and a restart must not fall back to the
    // initial members. A crash before the storage write leaves the complete log on disk.
    const snapshot = this.core.compact(index, data);
    if (snapshot !== undefined) this.storage.compact(snapshot);
    this.snapshotIndex = index;
  }

  private handle(rd: Ready): void {
    // Thesis §10.2.1: the leader's appends may leave before its own write, so the
    // followers' disk writes overlap the leader's. (The leader's commit index in them never
    // counts entries of this Ready: the core counts its own copy only once advance() says
    // it is written, and the followers' acknowledgements cannot have arrived yet.)
    // Empty appends only carry the commit index or probe: they wait for the next tick (a
    // delayed message is always safe), so the replies to clients leave first, and under
    // steady writes the next append, which carries the newer commit index, supersedes them.
    // (routeMessages, shared with the simulator, which applies the same transformations.)
    const route = routeMessages(rd.messages, this.deferred);
    this.deferred = route.deferred as Message[];
    if (route.early.length > 0) this.transport?.send(route.early);
    const after = route.late;
    // 1. Durable first (Raft Figure 2; etcd MustSync): one fsynced transaction. A Ready
    //    that only moves the commit index writes nothing (planPersist).
    const plan = planPersist(rd, this.unsavedHardState);
    if (plan.write) {
      this.storage.save(
        { hardState: plan.hardState, entries: rd.entries, snapshot: rd.snapshot },
        { sync: rd.mustSync },
      );
    }
    this.unsavedHardState = plan.unsaved;
    if (rd.snapshot !== undefined) this.restoreImage(rd.snapshot.index, rd.snapshot.data);
    // 2. Only now may messages that promise that state leave (votes, acknowledgements).
    if (after.length > 0) this.transport?.send(after);
    // 3. Apply.
    for (const entry of rd.committedEntries) this.apply(entry);
    // 4. Reads confirmed by a quorum, served once applied.
    for (const state of rd.readStates) {
      const read = this.reads.get(state.context);
      if (read === undefined) continue;
      this.reads.delete(state.context);
      this.confirmed.push({ index: state.index, resolve: read.resolve });
    }
    if (this.confirmed.length > 0) {
      const ready = this.confirmed.filter((c) => c.index <= this.applied);
      this.confirmed = this.confirmed.filter((c) => c.index > this.applied);
      for (const c of ready) c.resolve();
    }
    if (rd.softState !== undefined) {
      if (rd.softState.role !== 'leader') {
        this.failReads();
        this.failProposals(rd.softState.leader);
      }
      this.onStateChange?.({ role: rd.softState.role, term: this.core.currentTerm, leader: rd.softState.leader });
    }
  }

  /** Sends the empty appends held back by {@link handle} (on the tick). */
  private sendDeferred(): void {
    if (this.deferred.length === 0 || this.closed) return;
    const messages = this.deferred;
    this.deferred = [];
    this.transport?.send(messages);
  }

  private apply(entry: Entry): void {
    this.applied = entry.index;
    let result: unknown;
    if (entry.kind === 'config') {
      // The core already uses the new config; the transport follows once it is committed.
      const config = JSON.parse(decoder.decode(entry.data)) as ClusterConfig;
      for (const peer of this.addresses.keys()) {
        if (peer !== this.id && !config.voters.includes(peer) && !config.learners.includes(peer)) {
          this.addresses.delete(peer);
          this.transport?.removePeer(peer);
        }
      }
    } else if (entry.data[0] === MEMBER_ADDRESS) {
      const { id, host, port } = memberAddressOf(entry.data) as MemberAddress;
      this.learnAddress(id, { host, port });
    } else if (entry.data.length > 0) {
      const { command, session } = unwrap(entry.data);
      if (session === undefined) {
        result = this.stateMachine.apply(command, entry.index);
      } else {
        // Thesis §6.3: a request already applied for this client is answered with its own
        // result, not re-applied; every replica decides the same (ClientSessions is pure).
        const outcome = this.sessions.apply(session, () => this.stateMachine.apply(command, entry.index));
        if (outcome.kind === 'applied' || outcome.kind === 'duplicate') result = outcome.result;
        else if (outcome.kind === 'expired') result = SESSION_EXPIRED;
        else if (outcome.kind === 'stale') result = SESSION_STALE;
        else result = SESSION_WINDOW_FULL;
      }
    }
    const pending = this.pending.get(entry.index);
    if (pending === undefined) return;
    this.pending.delete(entry.index);
    clearTimeout(pending.timer);
    if (pending.term !== entry.term) pending.reject(new ProposalDroppedError());
    else if (result === SESSION_EXPIRED) pending.reject(new SessionExpiredError());
    else if (result === SESSION_STALE) pending.reject(new SessionStaleError());
    else if (result === SESSION_WINDOW_FULL) pending.reject(new SessionWindowFullError());
    else pending.resolve(result);
  }

  /** Answers every in-flight proposal at once instead of letting clients wait for the timeout. */
  private failProposals(leader: NodeId | undefined): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new LeadershipLostError(leader));
    }
    this.pending.clear();
  }

  private failReads(): void {
    const leader = this.core.currentLeader;
    for (const read of this.reads.values()) read.reject(new NotLeaderError(leader));
    this.reads.clear();
    // Confirmed reads stay valid: their leadership was confirmed when they were asked.
  }
}

/**
 * Opens a Raft node: loads its SQLite state from `dataDir`, listens for peers, and starts
 * ticking. On start the state machine is restored from the latest snapshot (if any) and the
 * committed entries after it are re-applied.
 * @throws {z.ZodError} on invalid options.
 * @example
 * await using node = await openRaftNode({ id: 'n1', members, dataDir, clusterSecret, stateMachine });
 * const result = await node.propose(new TextEncoder().encode('set x 1'), { clientId: 'c1', sequence: 1 });
 */
export async function openRaftNode(options: RaftNodeOptions): Promise<RaftNode> {
  const o = RaftNodeOptionsSchema.parse(options);
  const self = o.members[o.id];
  if (self === undefined) throw new Error(`members must include ${o.id}`);
  const tickMs = o.tickMs ?? DEFAULT_TICK_MS;
  const heartbeatTicks = Math.max(1, Math.round((o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS) / tickMs));
  const electionTicks = Math.max(heartbeatTicks + 1, Math.round((o.electionMs ?? DEFAULT_ELECTION_MS) / tickMs));
  mkdirSync(o.dataDir, { recursive: true });
  const storage = openSqliteStorage({ path: join(o.dataDir, 'raft.db') });
  const stored = storage.load();
  const core = createRaftCore({
    id: o.id,
    peers: o.learner ? Object.keys(o.members).filter((id) => id !== o.id) : Object.keys(o.members),
    ...(o.learner ? { learners: [o.id] } : {}),
    heartbeatTicks,
    electionTicks,
    random: seededRandom(o.seed ?? randomBytes(4).readUInt32BE(0)),
    initial: {
      hardState: stored.hardState,
      entries: stored.entries,
      applied: stored.snapshot?.index ?? 0,
      ...(stored.snapshot === undefined ? {} : { snapshot: stored.snapshot }),
    },
  });
  const node = new RaftNode(
    o.id,
    core,
    storage,
    undefined,
    o.stateMachine,
    tickMs,
    o.proposalTimeoutMs ?? DEFAULT_PROPOSAL_TIMEOUT_MS,
    o.onStateChange,
    o.snapshotEvery ?? DEFAULT_SNAPSHOT_EVERY,
    o.maxSessions ?? 100_000,
    o.maxOutstandingPerClient ?? 1024,
  );
  for (const [id, address] of Object.entries(o.members)) node.addresses.set(id, address);
  if (stored.snapshot !== undefined) node.restoreImage(stored.snapshot.index, stored.snapshot.data);
  // And the addresses in the log after it, committed or not: a restart can lose the last
  // commit-only advance (it is not fsynced), so an address entry may wait to be applied
  // until the leader says it is committed, and that leader may be the member it names,
  // which this node could otherwise neither dial nor accept. An address is no membership
  // (the config entries decide who votes), so knowing one early is harmless.
  for (const entry of stored.entries) {
    const address = entry.kind === undefined ? memberAddressOf(entry.data) : undefined;
    if (address !== undefined) node.addresses.set(address.id, { host: address.host, port: address.port });
  }
  // Members from the options plus any a snapshot or the log recorded (joined later).
  const peers: Record<NodeId, { host: string; port: number }> = {};
  for (const [id, address] of node.addresses) if (id !== o.id) peers[id] = address;
  const transport = await createTcpTransport({
    id: o.id,
    listen: self,
    peers,
    clusterSecret: o.clusterSecret,
    ...(o.clusterId === undefined ? {} : { clusterId: o.clusterId }),
    onMessage: (m) => node.receive(m),
    onPeerDown: (peer) => node.peerDown(peer),
  });
  node.attach(transport);
  return node;
}
