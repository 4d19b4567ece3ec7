import type { RaftBug } from '../internal/bugs.js';
import { ClientSessions } from '../internal/client-sessions.js';
import { planPersist, routeMessages } from '../internal/host-policy.js';
import { createRaftCore, type RaftCore } from '../raft-core.js';
import type { ConfChange, Entry, HardState, Message, NodeId, Ready, Snapshot } from '../types.js';
import { checkLinearizable, type KvOperation } from './linearizability.js';
import { deriveSeed, seededRandom } from './seeded-random.js';

/**
 * A deterministic cluster simulator in the style of FoundationDB's and TigerBeetle's:
 * every node, disk, network link and client lives in one process on a simulated clock,
 * and one seed decides every fault. Invariants are checked after every event; the
 * client history is checked for linearizability at the end.
 *
 * The simulated host does what the node runtime (`raft-node.ts`) does with each Ready,
 * through the same pure functions: appends with entries leave before the write, empty
 * appends wait for the next tick, superseded acknowledgements are dropped
 * (`routeMessages`), a commit-only hard state is not written (`planPersist`), a link whose
 * buffer is full drops messages, the log is compacted, and client commands carry a session
 * applied through the same `ClientSessions` table, with clients retrying the same
 * (client id, sequence) on the next leader until they get an answer.
 */

/** What can go wrong, and how often (per fault decision, every `faultEveryMs`). */
export interface FaultProfile {
  readonly name: string;
  readonly nodes: number;
  /** Probability a message is dropped / delivered twice. */
  readonly loss: number;
  readonly duplicate: number;
  /** One-way latency: base + uniform jitter (jitter reorders messages). */
  readonly delayMs: number;
  readonly jitterMs: number;
  readonly faultEveryMs: number;
  /** Relative weights of the faults the nemesis picks. */
  readonly crash: number;
  readonly partition: number;
  readonly oneWay: number;
  readonly pause: number;
  readonly slowDisk: number;
  readonly heal: number;
  /** Membership steps (add learner, promote, remove; thesis §4) driven through the leader. */
  readonly reconfigure: number;
  /** Servers that start outside the cluster, as learners-to-be. */
  readonly spares: number;
}

export const FAULT_PROFILES: Readonly<Record<'crash' | 'partition' | 'chaos', FaultProfile>> = {
  /** Crashes and restarts (losing unsynced writes) on a clean network with a slow disk now and then. */
  crash: {
    name: 'crash',
    nodes: 3,
    loss: 0,
    duplicate: 0,
    delayMs: 1,
    jitterMs: 2,
    faultEveryMs: 60,
    crash: 5,
    partition: 0,
    oneWay: 0,
    pause: 1,
    slowDisk: 2,
    heal: 2,
    reconfigure: 0,
    spares: 0,
  },
  /** Symmetric and one-way partitions of 5 nodes, with message loss and reordering. */
  partition: {
    name: 'partition',
    nodes: 5,
    loss: 0.02,
    duplicate: 0.01,
    delayMs: 1,
    jitterMs: 8,
    faultEveryMs: 80,
    crash: 1,
    partition: 4,
    oneWay: 3,
    pause: 0,
    slowDisk: 0,
    heal: 3,
    reconfigure: 0,
    spares: 0,
  },
  /**
   * Everything at once on 5 voters and 1 spare: crashes, partitions, loss, duplication,
   * delay, slow disks, pauses, and membership changes (the spare joins as a learner, gets
   * promoted; members, the leader included, get removed and re-added).
   */
  chaos: {
    name: 'chaos',
    nodes: 5,
    loss: 0.05,
    duplicate: 0.05,
    delayMs: 2,
    jitterMs: 20,
    faultEveryMs: 50,
    crash: 3,
    partition: 2,
    oneWay: 2,
    pause: 2,
    slowDisk: 2,
    heal: 3,
    reconfigure: 2,
    spares: 1,
  },
};

export type FaultProfileName = keyof typeof FAULT_PROFILES;

export interface SimulationOptions {
  readonly seed: number;
  readonly profile: FaultProfileName;
  /** Simulated time with faults on; afterwards the network heals and the cluster must converge. */
  readonly faultyMs?: number;
  readonly bugs?: readonly RaftBug[];
  /** Record a human-readable trace of events (slow; for replaying one seed). */
  readonly trace?: boolean;
}

export interface SimulationResult {
  readonly seed: number;
  readonly profile: FaultProfileName;
  readonly ok: boolean;
  /** The first invariant broken, with the simulated time it was seen at. */
  readonly violation: string | undefined;
  readonly events: number;
  readonly acknowledged: number;
  readonly operations: number;
  readonly elections: number;
  /** Client retries answered from the session table instead of being applied again. */
  readonly deduplicated: number;
  /** Messages dropped because a link's send buffer was full. */
  readonly bufferDrops: number;
  /** The linearizability search ran out of budget on some key (no verdict; not a failure). */
  readonly inconclusive: boolean;
  readonly trace: readonly string[];
  /** A command that replays this seed. */
  readonly replay: string;
}

const TICK_MS = 10;
const HEARTBEAT_TICKS = 1;
const ELECTION_TICKS = 10;
const CLIENTS = 3;
const KEYS = ['a', 'b', 'c'];
const CLIENT_TIMEOUT_MS = 400;
const CLIENT_THINK_MS = 15;
/** Undelivered messages a link buffers before sending drops them (the transport's bound, in messages). */
const LINK_BUFFER = 48;
/** Clients stop this long before the end so every node can catch up. */
const QUIET_MS = 500;
const CONVERGE_MS = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Event =
  | { kind: 'tick'; node: number; gen: number }
  | { kind: 'deliver'; message: Message }
  | { kind: 'disk'; node: number; gen: number }
  | { kind: 'client'; client: number }
  | { kind: 'timeout'; op: MutableOp; attempt: number }
  | { kind: 'fault' }
  | { kind: 'restart'; node: number }
  | { kind: 'resume'; node: number }
  | { kind: 'heal' }
  | { kind: 'unreachable'; node: number; peer: NodeId };

interface Command {
  readonly c: number;
  readonly k: string;
  readonly v: string | null;
  readonly p: 'put' | 'get';
  /** Session sequence number (thesis §6.3); every attempt of one request carries the same. */
  readonly s: number;
}

interface Pending {
  readonly op: MutableOp;
  readonly term: number;
  readonly attempt: number;
}

interface MutableOp {
  client: number;
  kind: 'put' | 'get';
  key: string;
  value: string | null;
  call: number;
  ret: number;
  acked: boolean;
  timedOut: boolean;
  /** Log operations: the command (identical bytes on every attempt) and the attempt number. */
  data: Uint8Array | undefined;
  attempt: number;
}

interface SimNode {
  readonly id: NodeId;
  readonly index: number;
  gen: number;
  core: RaftCore | undefined;
  /** Stable storage: survives crashes. */
  disk: { hardState: HardState; entries: Entry[]; snapshot: Snapshot | undefined };
  /** A Ready whose writes are in flight to a slow disk (lost on crash), and what is sent after it. */
  writing: { rd: Ready; late: readonly Message[] } | undefined;
  /** Empty appends held for the next tick (routeMessages), lost on crash. */
  deferred: readonly Message[];
  /** A commit-only hard state not written yet (planPersist), lost on crash. */
  unsaved: HardState | undefined;
  /** Client sessions: part of the replicated state, in snapshots. */
  sessions: ClientSessions<string | null>;
  /** Times each put's value was applied to this state machine (must never exceed one). */
  writes: Map<string, number>;
  slowDisk: boolean;
  paused: boolean;
  kv: Map<string, string>;
  applied: number;
  pending: Map<number, Pending>;
  /** ReadIndex requests by context, then (once confirmed) waiting for their index to apply. */
  reads: Map<string, MutableOp>;
  confirmedReads: { op: MutableOp; index: number }[];
  /** Durability promises made in messages already sent (checked after a restart). */
  promisedTerm: number;
  promisedVote: { term: number; candidate: NodeId } | undefined;
  lastCommit: number;
}

/** Binary min-heap on (time, seq) so same-time events run in scheduling order. */
class EventQueue {
  private readonly times: number[] = [];
  private readonly seqs: number[] = [];
  private readonly events: Event[] = [];
  private seq = 0;

  get size(): number {
    return this.events.length;
  }

  push(time: number, event: Event): void {
    const seq = this.seq++;
    let i = this.events.length;
    this.times.push(time);
    this.seqs.push(seq);
    this.events.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { time: number; event: Event } {
    const time = this.times[0] as number;
    const event = this.events[0] as Event;
    const last = this.events.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.events.pop();
    let i = 0;
    const n = this.events.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
    return { time, event };
  }

  private less(a: number, b: number): boolean {
    const ta = this.times[a] as number;
    const tb = this.times[b] as number;
    return ta < tb || (ta === tb && (this.seqs[a] as number) < (this.seqs[b] as number));
  }

  private swap(a: number, b: number): void {
    const t = this.times[a] as number;
    this.times[a] = this.times[b] as number;
    this.times[b] = t;
    const s = this.seqs[a] as number;
    this.seqs[a] = this.seqs[b] as number;
    this.seqs[b] = s;
    const e = this.events[a] as Event;
    this.events[a] = this.events[b] as Event;
    this.events[b] = e;
  }
}

class InvariantViolation extends Error {}

/** Runs one seeded simulation and reports the first broken invariant, if any. */
export function simulate(options: SimulationOptions): SimulationResult {
  const profile = FAULT_PROFILES[options.profile];
  const faultyMs = options.faultyMs ?? 1500;
  const bugs = options.bugs ?? [];
  const netRandom = seededRandom(deriveSeed(options.seed, 1));
  const faultRandom = seededRandom(deriveSeed(options.seed, 2));
  const clientRandom = seededRandom(deriveSeed(options.seed, 3));
  const trace: string[] = [];
  const queue = new EventQueue();
  let now = 0;
  let events = 0;
  let elections = 0;
  let healed = false;

  const ids = Array.from({ length: profile.nodes + profile.spares }, (_, i) => `n${i + 1}`);
  const initialVoters = ids.slice(0, profile.nodes);
  const indexOf = new Map(ids.map((id, i) => [id, i]));
  /** blocked[from][to]: messages from -> to are dropped. */
  const blocked = ids.map(() => ids.map(() => false));

  // Global ledgers for the invariants.
  const leaderOfTerm = new Map<number, NodeId>();
  /** (index, term) -> the one entry with that position, and the term before it (Log Matching). */
  const entryAt = new Map<number, { entry: Entry; prevTerm: number }>();
  /** Commands by their encoded bytes, so five replicas do not parse the same JSON five times. */
  const decoded = new WeakMap<Uint8Array, Command>();
  /** index -> the entry applied there by anyone (State Machine Safety). */
  const appliedAt: Entry[] = [];
  /**
   * index -> an upper bound of the term in which it was committed: the lowest term of any
   * node seen with a commit index covering it (only leaders commit first, and a term only grows).
   */
  const commitTermAt: number[] = [];
  // Small appends and windows exercise partial replication (Figure 8 needs it).
  const maxEntriesPerAppend = [1, 4, 64][Math.floor(faultRandom() * 3)] as number;
  // Raft §7: a third of the seeds never compact; the others snapshot every few entries, so
  // lagging and restarted nodes are caught up by InstallSnapshot.
  const snapshotEvery = [0, 8, 25][Math.floor(faultRandom() * 3)] as number;
  /** index -> the state machine image taken there by anyone (snapshots of one index must agree). */
  const snapshotAt = new Map<number, string>();
  const history: MutableOp[] = [];
  let acknowledged = 0;
  let deduplicated = 0;
  let bufferDrops = 0;
  /** inflight[from][to]: messages sent on the link and not delivered yet. */
  const inflight = ids.map(() => ids.map(() => 0));
  const newSessions = () => new ClientSessions<string | null>(1000, 64);

  const fail: (what: string) => never = (what) => {
    throw new InvariantViolation(`t=${now}ms: ${what}`);
  };
  const log = (line: string) => {
    if (options.trace) trace.push(`t=${now} ${line}`);
  };

  const makeCore = (node: SimNode): RaftCore =>
    createRaftCore({
      id: node.id,
      peers: initialVoters,
      ...(initialVoters.includes(node.id) ? {} : { learners: [node.id] }),
      heartbeatTicks: HEARTBEAT_TICKS,
      electionTicks: ELECTION_TICKS,
      random: seededRandom(deriveSeed(options.seed, 100 + node.index * 1000 + node.gen)),
      initial: {
        hardState: node.disk.hardState,
        entries: node.disk.entries,
        applied: node.disk.snapshot?.index ?? 0,
        ...(node.disk.snapshot === undefined ? {} : { snapshot: node.disk.snapshot }),
      },
      maxEntriesPerAppend,
      maxInflight: 8,
      testOnlyBugs: [...bugs],
    });

  const nodes: SimNode[] = ids.map((id, index) => ({
    id,
    index,
    gen: 0,
    core: undefined,
    disk: { hardState: { term: 0, votedFor: undefined, commit: 0 }, entries: [], snapshot: undefined },
    writing: undefined,
    deferred: [],
    unsaved: undefined,
    sessions: newSessions(),
    writes: new Map(),
    slowDisk: false,
    paused: false,
    kv: new Map(),
    applied: 0,
    pending: new Map(),
    reads: new Map(),
    confirmedReads: [],
    promisedTerm: 0,
    promisedVote: undefined,
    lastCommit: 0,
  }));

  const start = (node: SimNode) => {
    node.core = makeCore(node);
    // The state machine restarts from the snapshot on disk, or empty.
    restoreKv(node, node.disk.snapshot);
    node.lastCommit = 0;
    const core = node.core;
    // Durability: what the node promised in messages it sent must have survived.
    if (core.currentTerm < node.promisedTerm) {
      fail(`${node.id} restarted in term ${core.currentTerm} after promising term ${node.promisedTerm}`);
    }
    const vote = node.promisedVote;
    if (vote !== undefined && core.currentTerm === vote.term && core.status().votedFor !== vote.candidate) {
      fail(`${node.id} forgot its vote for ${vote.candidate} in term ${vote.term}`);
    }
    queue.push(now + 1 + Math.floor(faultRandom() * TICK_MS), { kind: 'tick', node: node.index, gen: node.gen });
  };

  // ------------------------------------------------------------------ network

  const send = (message: Message) => {
    const from = indexOf.get(message.from) as number;
    const to = indexOf.get(message.to) as number;
    const sender = nodes[from] as SimNode;
    // A pre-vote (and its grant) names a term nobody has entered yet.
    const prevote = message.type === 'preVote' || message.type === 'preVoteResponse';
    if (!prevote && message.term > sender.promisedTerm) sender.promisedTerm = message.term;
    if (message.type === 'voteResponse' && message.granted) {
      sender.promisedVote = { term: message.term, candidate: message.to };
    }
    if ((blocked[from] as boolean[])[to]) return;
    if (!healed && netRandom() < profile.loss) return;
    const link = inflight[from] as number[];
    if ((link[to] as number) >= LINK_BUFFER) {
      // The transport drops what a peer cannot take rather than buffer without bound.
      bufferDrops++;
      return;
    }
    const copies = !healed && netRandom() < profile.duplicate ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      link[to] = (link[to] as number) + 1;
      const delay = profile.delayMs + Math.floor(netRandom() * (profile.jitterMs + 1));
      queue.push(now + delay, { kind: 'deliver', message });
    }
  };

  // ------------------------------------------------------------------ the host loop (Ready)

  const pump = (node: SimNode) => {
    const core = node.core;
    if (core === undefined || node.writing !== undefined || node.paused) return;
    while (core.hasReady()) {
      const rd = core.ready();
      // The runtime's routing (raft-node.ts handle): thesis §10.2.1, a leader's appends go
      // out while its own disk write is in progress; empty appends wait for the next tick.
      const route = routeMessages(rd.messages, node.deferred);
      node.deferred = route.deferred;
      for (const message of route.early) send(message);
      if (node.slowDisk && rd.mustSync) {
        node.writing = { rd, late: route.late };
        queue.push(now + 2 + Math.floor(faultRandom() * 40), { kind: 'disk', node: node.index, gen: node.gen });
        return;
      }
      finish(node, core, rd, route.late);
    }
  };

  /** The runtime's tick: the held-back empty appends leave. */
  const sendDeferred = (node: SimNode) => {
    if (node.deferred.length === 0) return;
    const messages = node.deferred;
    node.deferred = [];
    for (const message of messages) send(message);
  };

  const finish = (node: SimNode, core: RaftCore, rd: Ready, late: readonly Message[]) => {
    // 1. persist (atomically, like one SQLite transaction with synchronous=FULL)
    if (rd.snapshot !== undefined) {
      node.disk.snapshot = rd.snapshot;
      node.disk.entries = [];
      registerSnapshot(node, rd.snapshot);
      restoreKv(node, rd.snapshot);
      log(`${node.id} installed a snapshot at ${rd.snapshot.index}`);
    }
    // A commit-only hard state is held in memory, as the runtime does (lost on a crash).
    const plan = planPersist(rd, node.unsaved);
    node.unsaved = plan.unsaved;
    if (plan.write && plan.hardState !== undefined) node.disk.hardState = plan.hardState;
    const first = rd.entries[0];
    if (first !== undefined) {
      const disk = node.disk.entries;
      const offset = disk[0]?.index ?? first.index;
      disk.length = Math.max(0, first.index - offset);
      for (const entry of rd.entries) {
        const snap = node.disk.snapshot;
        const prevTerm =
          entry.index === 1
            ? 0
            : snap !== undefined && entry.index - 1 === snap.index
              ? snap.term
              : (disk[entry.index - offset - 1]?.term ?? -1);
        const key = entry.index * 1_048_576 + entry.term;
        const known = entryAt.get(key);
        if (known === undefined) entryAt.set(key, { entry, prevTerm });
        else if (known.entry !== entry || known.prevTerm !== prevTerm) {
          fail(
            `Log Matching: ${node.id} holds a different entry or history at index ${entry.index} term ${entry.term}`,
          );
        }
        disk.push(entry);
      }
    }
    // 2. send what depends on the write (the leader's appends already left)
    for (const message of late) send(message);
    // 3. apply
    for (const entry of rd.committedEntries) apply(node, entry);
    // 4. ReadIndex (thesis §6.4): serve a confirmed read once its index is applied.
    for (const state of rd.readStates) {
      const op = node.reads.get(state.context);
      if (op === undefined) continue;
      node.reads.delete(state.context);
      node.confirmedReads.push({ op, index: state.index });
    }
    if (node.confirmedReads.length > 0) {
      node.confirmedReads = node.confirmedReads.filter(({ op, index }) => {
        if (index > node.applied) return true;
        if (!op.timedOut && !op.acked) {
          op.value = node.kv.get(op.key) ?? null;
          op.ret = now;
          op.acked = true;
          acknowledged++;
          log(`ack c${op.client} read ${op.key}=${op.value} @${index}`);
          scheduleClient(op.client, CLIENT_THINK_MS + Math.floor(clientRandom() * CLIENT_THINK_MS));
        }
        return false;
      });
    }
    if (rd.softState !== undefined && rd.softState.role !== 'leader') {
      failReads(node);
      // The runtime answers in-flight proposals with LeadershipLostError; clients retry.
      for (const pending of node.pending.values())
        if (pending.attempt === pending.op.attempt) attemptFailed(pending.op);
      node.pending.clear();
    }
    core.advance(rd);
    // Compaction happens after advance(): the core must know the state machine applied it.
    if (snapshotEvery > 0 && node.applied - (node.disk.snapshot?.index ?? 0) >= snapshotEvery) takeSnapshot(node, core);
    const commit = core.commitIndex;
    if (commit < node.lastCommit) fail(`${node.id} commit index went back from ${node.lastCommit} to ${commit}`);
    for (let i = node.lastCommit + 1; i <= commit; i++) {
      const known = commitTermAt[i];
      if (known === undefined || core.currentTerm < known) commitTermAt[i] = core.currentTerm;
    }
    node.lastCommit = commit;
  };

  /** The state machine image: the key-value map, the write counts and the sessions. */
  const encodeKv = (node: SimNode): string =>
    JSON.stringify({
      kv: [...node.kv].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
      w: [...node.writes],
      s: node.sessions.image(),
    });

  const restoreKv = (node: SimNode, snapshot: Snapshot | undefined) => {
    node.sessions = newSessions();
    if (snapshot === undefined) {
      node.kv = new Map();
      node.writes = new Map();
    } else {
      const image = JSON.parse(decoder.decode(snapshot.data)) as {
        kv: [string, string][];
        w: [string, number][];
        s: [string, number, [number, string | null][]][];
      };
      node.kv = new Map(image.kv);
      node.writes = new Map(image.w);
      node.sessions.restore(image.s);
    }
    node.applied = snapshot?.index ?? 0;
  };

  const registerSnapshot = (node: SimNode, snapshot: Snapshot) => {
    const image = decoder.decode(snapshot.data);
    const known = snapshotAt.get(snapshot.index);
    if (known === undefined) snapshotAt.set(snapshot.index, image);
    else if (known !== image)
      fail(`State Machine Safety: ${node.id} has a different snapshot at index ${snapshot.index}`);
  };

  /** The host compacts: snapshot the state machine, then drop the log up to it (one transaction). */
  const takeSnapshot = (node: SimNode, core: RaftCore) => {
    const data = encoder.encode(encodeKv(node));
    core.compact(node.applied, data);
    const snapshot = core.latestSnapshot() as Snapshot;
    registerSnapshot(node, snapshot);
    node.disk.snapshot = snapshot;
    node.disk.entries = node.disk.entries.filter((e) => e.index > snapshot.index);
  };

  const apply = (node: SimNode, entry: Entry) => {
    if (entry.index !== node.applied + 1) fail(`${node.id} applied ${entry.index} after ${node.applied}`);
    node.applied = entry.index;
    const known = appliedAt[entry.index];
    if (known === undefined) appliedAt[entry.index] = entry;
    else if (known !== entry) {
      fail(
        `State Machine Safety: ${node.id} applied term ${entry.term} at index ${entry.index}, another node applied term ${known.term}`,
      );
    }
    let result: string | null = null;
    let duplicate = false;
    if (entry.kind !== 'config' && entry.data.length > 0) {
      let command = decoded.get(entry.data);
      if (command === undefined) {
        command = JSON.parse(decoder.decode(entry.data)) as Command;
        decoded.set(entry.data, command);
      }
      const cmd = command;
      const run = (): string | null => {
        if (cmd.p === 'get') return node.kv.get(cmd.k) ?? null;
        const value = cmd.v as string;
        node.kv.set(cmd.k, value);
        const times = (node.writes.get(value) ?? 0) + 1;
        node.writes.set(value, times);
        if (times > 1) fail(`exactly-once: ${node.id} applied c${cmd.c}#${cmd.s} (${cmd.k}=${value}) ${times} times`);
        return null;
      };
      if (bugs.includes('no-session-dedupe')) {
        result = run();
      } else {
        // Thesis §6.3 through the runtime's own session table (one request at a time per client).
        const outcome = node.sessions.apply({ clientId: `c${cmd.c}`, sequence: cmd.s, firstUnacked: cmd.s }, run);
        if (outcome.kind !== 'applied' && outcome.kind !== 'duplicate')
          fail(`sessions: ${node.id} refused c${cmd.c}#${cmd.s} as ${outcome.kind} at index ${entry.index}`);
        result = outcome.result;
        duplicate = outcome.kind === 'duplicate';
      }
    }
    const pending = node.pending.get(entry.index);
    if (pending !== undefined) {
      node.pending.delete(entry.index);
      const op = pending.op;
      // The client listens only to its latest attempt, and not at all once it gave up.
      if (op.timedOut || op.acked || pending.attempt !== op.attempt) return;
      if (entry.term === pending.term) {
        op.ret = now;
        op.acked = true;
        if (op.kind === 'get') op.value = result;
        acknowledged++;
        if (duplicate) deduplicated++;
        log(
          `ack c${op.client} ${op.kind} ${op.key}=${op.value} @${entry.index}${duplicate ? ' (retry answered from its session)' : ''}`,
        );
        clientOp[op.client] = undefined;
        scheduleClient(op.client, CLIENT_THINK_MS + Math.floor(clientRandom() * CLIENT_THINK_MS));
      } else {
        // Another entry took this slot, so this attempt can never commit: retry the request.
        scheduleClient(op.client, 1);
      }
    }
  };

  // ------------------------------------------------------------------ invariants after every event

  const checkLeaders = () => {
    for (const node of nodes) {
      const core = node.core;
      if (core === undefined || core.currentRole !== 'leader') continue;
      const term = core.currentTerm;
      const known = leaderOfTerm.get(term);
      if (known === undefined) {
        leaderOfTerm.set(term, node.id);
        elections++;
        log(`${node.id} leads term ${term}`);
        // Leader Completeness (Raft §5.4): an entry committed in an earlier term is in the new leader's log.
        for (let i = 1; i < appliedAt.length; i++) {
          const applied = appliedAt[i];
          const committedIn = commitTermAt[i];
          // Entries inside the leader's snapshot are committed by construction.
          if (i < (core.latestSnapshot()?.index ?? 0)) continue;
          if (
            applied !== undefined &&
            committedIn !== undefined &&
            committedIn < term &&
            core.termAt(i) !== applied.term
          ) {
            fail(
              `Leader Completeness: leader ${node.id} of term ${term} lacks committed entry ${i} (term ${applied.term})`,
            );
          }
        }
      } else if (known !== node.id) {
        fail(`Election Safety: ${known} and ${node.id} both lead term ${term}`);
      }
    }
  };

  // ------------------------------------------------------------------ clients

  const endMs = faultyMs + CONVERGE_MS;
  const clientBusy = Array.from({ length: CLIENTS }, () => false);
  /** Per client: the log request it has no answer for yet (retried with the same sequence). */
  const clientOp: (MutableOp | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
  const clientSequence = Array.from({ length: CLIENTS }, () => 0);
  const clientLeaderGuess: (NodeId | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
  let nextValue = 0;

  const scheduleClient = (client: number, delay: number) => {
    clientBusy[client] = false;
    queue.push(now + delay, { kind: 'client', client });
  };

  /** A log request's attempt failed (timeout, crash, lost slot, lost leadership): retry it. */
  const attemptFailed = (op: MutableOp) => {
    if (op.acked || op.timedOut) return;
    scheduleClient(op.client, 1);
  };

  /** Proposes (again) the client's unanswered request on `target`, with the same session. */
  const submit = (target: SimNode, core: RaftCore, op: MutableOp) => {
    let position: { index: number; term: number };
    try {
      position = core.propose(op.data as Uint8Array);
    } catch {
      scheduleClient(op.client, 5);
      return;
    }
    op.attempt++;
    if (op.attempt > 1) log(`retry c${op.client} ${op.kind} ${op.key} attempt ${op.attempt} on ${target.id}`);
    target.pending.set(position.index, { op, term: position.term, attempt: op.attempt });
    clientBusy[op.client] = true;
    queue.push(now + CLIENT_TIMEOUT_MS, { kind: 'timeout', op, attempt: op.attempt });
    pump(target);
  };

  const clientStep = (client: number) => {
    if (clientBusy[client]) return;
    const unanswered = clientOp[client];
    if (now > endMs - QUIET_MS) {
      // The client stops; an unanswered request's outcome stays unknown.
      if (unanswered !== undefined) unanswered.timedOut = true;
      clientOp[client] = undefined;
      return;
    }
    const target = nodes[
      indexOf.get(clientLeaderGuess[client] ?? '') ?? Math.floor(clientRandom() * nodes.length)
    ] as SimNode;
    const core = target.core;
    if (core === undefined || target.paused) {
      clientLeaderGuess[client] = undefined;
      scheduleClient(client, 5);
      return;
    }
    if (core.currentRole !== 'leader') {
      clientLeaderGuess[client] = core.currentLeader;
      scheduleClient(client, core.currentLeader === undefined ? 10 : 1);
      return;
    }
    if (unanswered !== undefined) {
      submit(target, core, unanswered);
      return;
    }
    const kind = clientRandom() < 0.5 ? 'put' : 'get';
    const key = KEYS[Math.floor(clientRandom() * KEYS.length)] as string;
    const value = kind === 'put' ? `v${nextValue++}` : null;
    if (kind === 'get' && clientRandom() < 0.5) {
      // A linearizable read without a log entry: ReadIndex.
      const context = `r${nextValue++}`;
      const op: MutableOp = {
        client,
        kind,
        key,
        value: null,
        call: now,
        ret: Number.POSITIVE_INFINITY,
        acked: false,
        timedOut: false,
        data: undefined,
        attempt: 1,
      };
      core.readIndex(context);
      history.push(op);
      target.reads.set(context, op);
      clientBusy[client] = true;
      queue.push(now + CLIENT_TIMEOUT_MS, { kind: 'timeout', op, attempt: 1 });
      pump(target);
      return;
    }
    const sequence = (clientSequence[client] as number) + 1;
    clientSequence[client] = sequence;
    const command: Command = { c: client, k: key, v: value, p: kind, s: sequence };
    const op: MutableOp = {
      client,
      kind,
      key,
      value,
      call: now,
      ret: Number.POSITIVE_INFINITY,
      acked: false,
      timedOut: false,
      data: encoder.encode(JSON.stringify(command)),
      attempt: 0,
    };
    history.push(op);
    clientOp[client] = op;
    submit(target, core, op);
  };

  // ------------------------------------------------------------------ nemesis

  const totalWeight =
    profile.crash +
    profile.partition +
    profile.oneWay +
    profile.pause +
    profile.slowDisk +
    profile.heal +
    profile.reconfigure;

  /** One membership step through whichever node leads; refusals (a change in flight) are normal. */
  const reconfigure = (victim: SimNode) => {
    const leaderNode = nodes.find((n) => n.core?.currentRole === 'leader' && !n.paused);
    const core = leaderNode?.core;
    if (leaderNode === undefined || core === undefined) return;
    const { voters, learners } = core.clusterConfig;
    const outsiders = ids.filter((id) => !voters.includes(id) && !learners.includes(id));
    let change: ConfChange;
    const outsider = outsiders[Math.floor(faultRandom() * Math.max(1, outsiders.length))];
    if (outsider !== undefined && faultRandom() < 0.6) change = { type: 'addLearner', node: outsider };
    else if (learners.length > 0) change = { type: 'promoteLearner', node: learners[0] as NodeId };
    else if (voters.length > 3) change = { type: 'removeNode', node: victim.id };
    else return;
    try {
      core.proposeConfChange(change);
      log(`${leaderNode.id} proposes ${change.type} ${change.node}`);
    } catch {
      return;
    }
    pump(leaderNode);
  };

  const healAll = () => {
    for (const row of blocked) row.fill(false);
    for (const node of nodes) node.slowDisk = false;
  };

  const crash = (node: SimNode) => {
    if (node.core === undefined) return;
    log(`crash ${node.id}${node.writing ? ' (losing an unsynced write)' : ''}`);
    node.core = undefined;
    node.writing = undefined;
    node.paused = false;
    node.gen++;
    node.deferred = [];
    node.unsaved = undefined;
    // The clients waiting on this node notice its connection drop and retry elsewhere.
    for (const pending of node.pending.values()) if (pending.attempt === pending.op.attempt) attemptFailed(pending.op);
    node.pending.clear();
    failReads(node);
    // A killed process's TCP connections close at once; peers notice within a few ms.
    for (const other of nodes) {
      if (other !== node)
        queue.push(now + 1 + Math.floor(faultRandom() * 4), { kind: 'unreachable', node: other.index, peer: node.id });
    }
  };

  /** Reads a node can no longer answer (it crashed or lost leadership): their outcome is unknown. */
  const failReads = (node: SimNode) => {
    for (const op of node.reads.values()) {
      if (op.acked || op.timedOut) continue;
      op.timedOut = true;
      scheduleClient(op.client, 1);
    }
    node.reads.clear();
    for (const { op } of node.confirmedReads) {
      if (op.acked || op.timedOut) continue;
      op.timedOut = true;
      scheduleClient(op.client, 1);
    }
    node.confirmedReads = [];
  };

  const fault = () => {
    const kinds = ['crash', 'partition', 'oneWay', 'pause', 'slowDisk', 'heal', 'reconfigure'] as const;
    let pick = faultRandom() * totalWeight;
    let kind: (typeof kinds)[number] = 'heal';
    for (const candidate of kinds) {
      pick -= profile[candidate];
      if (pick < 0) {
        kind = candidate;
        break;
      }
    }
    const victim = nodes[Math.floor(faultRandom() * nodes.length)] as SimNode;
    if (kind === 'crash') {
      const downCount = nodes.filter((n) => n.core === undefined).length;
      if (victim.core !== undefined && downCount < Math.floor(nodes.length / 2)) {
        crash(victim);
        queue.push(now + 5 + Math.floor(faultRandom() * 150), { kind: 'restart', node: victim.index });
      }
    } else if (kind === 'partition') {
      healAll();
      // Split into two random sides.
      const side = nodes.map(() => faultRandom() < 0.5);
      for (let a = 0; a < nodes.length; a++) {
        for (let b = 0; b < nodes.length; b++) if (side[a] !== side[b]) (blocked[a] as boolean[])[b] = true;
      }
      log(`partition ${side.map((s, i) => (s ? ids[i] : '')).join('')} | rest`);
    } else if (kind === 'oneWay') {
      const other = Math.floor(faultRandom() * nodes.length);
      if (other !== victim.index) {
        (blocked[victim.index] as boolean[])[other] = true;
        log(`one-way ${victim.id} -/-> ${ids[other]}`);
      }
    } else if (kind === 'pause') {
      if (victim.core !== undefined && !victim.paused) {
        victim.paused = true;
        log(`pause ${victim.id}`);
        queue.push(now + 20 + Math.floor(faultRandom() * 250), { kind: 'resume', node: victim.index });
      }
    } else if (kind === 'slowDisk') {
      victim.slowDisk = true;
      log(`slow disk ${victim.id}`);
    } else if (kind === 'reconfigure') {
      reconfigure(victim);
    } else {
      healAll();
      log('heal');
    }
    if (now + profile.faultEveryMs < faultyMs) queue.push(now + profile.faultEveryMs, { kind: 'fault' });
  };

  // ------------------------------------------------------------------ run

  for (const node of nodes) start(node);
  for (let c = 0; c < CLIENTS; c++) queue.push(20 + c, { kind: 'client', client: c });
  queue.push(profile.faultEveryMs, { kind: 'fault' });
  queue.push(faultyMs, { kind: 'heal' });

  let violation: string | undefined;
  let inconclusive = false;
  try {
    while (queue.size > 0) {
      const { time, event } = queue.pop();
      if (time > endMs) break;
      now = time;
      events++;
      switch (event.kind) {
        case 'tick': {
          const node = nodes[event.node] as SimNode;
          if (event.gen !== node.gen || node.core === undefined) break;
          queue.push(now + TICK_MS, event);
          if (node.paused) break;
          node.core.tick();
          pump(node);
          sendDeferred(node);
          break;
        }
        case 'deliver': {
          const node = nodes[indexOf.get(event.message.to) as number] as SimNode;
          if (node.paused && node.core !== undefined) {
            // A paused process's socket buffers the message (it stays in the link's buffer).
            queue.push(now + TICK_MS, event);
            break;
          }
          const link = inflight[indexOf.get(event.message.from) as number] as number[];
          link[node.index] = (link[node.index] as number) - 1;
          if (node.core === undefined) break;
          node.core.step(event.message);
          pump(node);
          break;
        }
        case 'disk': {
          const node = nodes[event.node] as SimNode;
          if (event.gen !== node.gen || node.core === undefined || node.writing === undefined) break;
          if (node.paused) {
            queue.push(now + TICK_MS, event);
            break;
          }
          const { rd, late } = node.writing;
          node.writing = undefined;
          finish(node, node.core, rd, late);
          pump(node);
          break;
        }
        case 'client':
          clientStep(event.client);
          break;
        case 'timeout':
          if (event.op.acked || event.op.timedOut || event.attempt !== event.op.attempt) break;
          if (event.op.data === undefined) {
            // A ReadIndex read: the client gives up; its outcome stays unknown.
            event.op.timedOut = true;
            scheduleClient(event.op.client, 1);
          } else {
            // A log request: retried with the same session (it may still commit meanwhile).
            attemptFailed(event.op);
          }
          break;
        case 'fault':
          if (!healed) fault();
          break;
        case 'restart': {
          const node = nodes[event.node] as SimNode;
          if (node.core === undefined) {
            log(`restart ${node.id}`);
            start(node);
            pump(node);
          }
          break;
        }
        case 'resume': {
          const node = nodes[event.node] as SimNode;
          node.paused = false;
          log(`resume ${node.id}`);
          pump(node);
          break;
        }
        case 'unreachable': {
          const node = nodes[event.node] as SimNode;
          if (node.core === undefined || node.paused) break;
          node.core.peerUnreachable(event.peer);
          pump(node);
          break;
        }
        case 'heal':
          healed = true;
          healAll();
          for (const node of nodes) {
            node.paused = false;
            if (node.core === undefined) start(node);
            pump(node);
          }
          log('heal for convergence');
          break;
      }
      checkLeaders();
    }
    // Liveness after healing: one leader, everyone applied everything acknowledged.
    const acknowledgedPuts = history.filter((op) => op.kind === 'put' && op.acked);
    let leader: SimNode | undefined;
    for (const node of nodes) if (node.core?.currentRole === 'leader') leader = node;
    if (leader === undefined) fail(`no leader ${CONVERGE_MS} ms after the network healed`);
    const commit = leader.core?.commitIndex ?? 0;
    const config = leader.core?.clusterConfig ?? { voters: ids, learners: [] };
    for (const node of nodes) {
      // Servers removed from the cluster are left behind by design.
      if (!config.voters.includes(node.id) && !config.learners.includes(node.id)) continue;
      if (node.applied < commit) fail(`${node.id} applied ${node.applied} < leader commit ${commit} after healing`);
      for (const [key, value] of leader.kv) {
        if (node.kv.get(key) !== value) fail(`${node.id} has ${key}=${node.kv.get(key)} but the leader has ${value}`);
      }
      // Every acknowledged write is in every live member's applied state, exactly once.
      for (const op of acknowledgedPuts) {
        const times = node.writes.get(op.value as string) ?? 0;
        if (times !== 1)
          fail(`${node.id} applied the acknowledged write c${op.client} ${op.key}=${op.value} ${times} times`);
      }
    }
    const verdict = checkLinearizable(history.map(freezeOp));
    inconclusive = verdict.inconclusive;
    if (!verdict.ok) fail(`history is not linearizable on key ${verdict.key}`);
  } catch (error) {
    violation = error instanceof InvariantViolation ? error.message : `t=${now}ms: core threw: ${String(error)}`;
  }

  return {
    seed: options.seed,
    profile: options.profile,
    ok: violation === undefined,
    violation,
    events,
    acknowledged,
    operations: history.length,
    elections,
    deduplicated,
    bufferDrops,
    inconclusive,
    trace,
    replay: replayCommand(options),
  };
}

function freezeOp(op: MutableOp): KvOperation {
  return {
    client: op.client,
    kind: op.kind,
    key: op.key,
    value: op.value,
    call: op.call,
    ret: op.acked ? op.ret : Number.POSITIVE_INFINITY,
  };
}

/** The one-liner that replays a seed (printed on failure). */
export function replayCommand(options: Pick<SimulationOptions, 'seed' | 'profile' | 'bugs'>): string {
  const bugs = options.bugs && options.bugs.length > 0 ? ` --bug ${options.bugs.join(',')}` : '';
  return `./run pnpm --filter @unrdf/raft simulate --seed ${options.seed} --profile ${options.profile}${bugs} --trace`;
}
