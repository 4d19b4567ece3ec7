import { createRaftCore, type RaftCore, type RaftCoreOptions } from '../src/raft-core.js';
import type { Entry, HardState, Message, NodeId, Ready } from '../src/types.js';

/** An append with entries: the runtime sends it before its own write (thesis §10.2.1). */
const isEarly = (m: Message): boolean => m.type === 'append' && m.entries.length > 0;

/** A core with a fixed random (0 gives the minimum election timeout, electionTicks). */
export function core(id: NodeId, peers: readonly NodeId[], extra: Partial<RaftCoreOptions> = {}): RaftCore {
  return createRaftCore({ id, peers: [...peers], random: () => 0, ...extra });
}

/** Drains one Ready as a perfect host would; returns it. */
export function drain(raft: RaftCore): Ready {
  const rd = raft.ready();
  raft.advance(rd);
  return rd;
}

/** Every message the core wants to send right now. */
export function outbox(raft: RaftCore): Message[] {
  if (!raft.hasReady()) return [];
  return [...drain(raft).messages];
}

export const data = (text: string): Uint8Array => new TextEncoder().encode(text);

export function entries(...terms: number[]): Entry[] {
  return terms.map((term, i) => ({ index: i + 1, term, data: data(`e${i + 1}`) }));
}

export function restored(
  id: NodeId,
  peers: readonly NodeId[],
  hardState: HardState,
  log: readonly Entry[],
  extra: Partial<RaftCoreOptions> = {},
): RaftCore {
  return core(id, peers, { initial: { hardState, entries: log }, ...extra });
}

/**
 * A perfect in-memory network between cores: messages are delivered in order unless
 * `drop` says otherwise. Bounded so a livelock fails the test instead of hanging.
 */
export class Network {
  readonly cores = new Map<NodeId, RaftCore>();
  /**
   * Nodes whose disk is slow. As the runtime does (thesis §10.2.1), a slow node's appends
   * with entries leave at once; the write, the other messages, applying and the next Ready
   * wait for {@link flushDisk}. The core keeps taking messages meanwhile.
   */
  readonly slowDisk = new Set<NodeId>();
  /** The Ready each slow-disk node is writing (lost on a crash). */
  private readonly writing = new Map<NodeId, Ready>();
  /** Every message handed to the network, in order (for assertions). */
  readonly sent: Message[] = [];
  private readonly factories = new Map<NodeId, (initial: { hardState: HardState; entries: Entry[] }) => RaftCore>();
  readonly applied = new Map<NodeId, Entry[]>();
  /** Every ReadIndex answer each node produced, in order. */
  readonly readStates: { node: NodeId; context: string; index: number }[] = [];
  readonly disk = new Map<NodeId, { hardState: HardState | undefined; entries: Entry[] }>();
  drop: (m: Message) => boolean = () => false;

  constructor(raftCores: readonly RaftCore[]) {
    for (const raft of raftCores) this.add(raft);
  }

  add(raft: RaftCore): void {
    this.cores.set(raft.id, raft);
    if (!this.applied.has(raft.id)) this.applied.set(raft.id, []);
    if (!this.disk.has(raft.id)) this.disk.set(raft.id, { hardState: undefined, entries: [] });
  }

  /** Registers how to rebuild `id` from its disk after a crash. */
  restartWith(id: NodeId, factory: (initial: { hardState: HardState; entries: Entry[] }) => RaftCore): void {
    this.factories.set(id, factory);
  }

  /** kill -9: the process and everything not yet on its disk are gone. */
  crash(id: NodeId): void {
    this.cores.delete(id);
    this.writing.delete(id);
  }

  /** Starts `id` again from what its disk holds. */
  restart(id: NodeId, extra: Partial<RaftCoreOptions> = {}): RaftCore {
    const disk = this.disk.get(id) as { hardState: HardState | undefined; entries: Entry[] };
    const initial = {
      hardState: disk.hardState ?? { term: 0, votedFor: undefined, commit: 0 },
      entries: [...disk.entries],
    };
    const factory = this.factories.get(id);
    const raft = factory ? factory(initial) : core(id, [...this.peers], { initial, ...extra });
    this.applied.set(id, []);
    this.add(raft);
    return raft;
  }

  get peers(): NodeId[] {
    return [...this.disk.keys()].sort();
  }

  /** Completes the slow disk's pending write of `id`, then lets its messages go. */
  flushDisk(id: NodeId): void {
    this.slowDisk.delete(id);
    const rd = this.writing.get(id);
    this.writing.delete(id);
    const raft = this.cores.get(id);
    if (rd !== undefined && raft !== undefined) {
      this.pending.push(
        ...this.finish(
          raft,
          rd,
          rd.messages.filter((m) => !isEarly(m)),
        ),
      );
    }
    this.settle();
  }

  /** Whether `id` has a write in flight to its slow disk. */
  isWriting(id: NodeId): boolean {
    return this.writing.has(id);
  }

  private readonly pending: Message[] = [];

  /** Persists `rd`, applies it and advances; returns the messages to send after the write. */
  private finish(raft: RaftCore, rd: Ready, late: readonly Message[]): Message[] {
    const disk = this.disk.get(raft.id) as { hardState: HardState | undefined; entries: Entry[] };
    if (rd.hardState) disk.hardState = rd.hardState;
    const first = rd.entries[0];
    if (first) {
      disk.entries.length = first.index - 1;
      disk.entries.push(...rd.entries);
    }
    (this.applied.get(raft.id) as Entry[]).push(...rd.committedEntries);
    for (const r of rd.readStates) this.readStates.push({ node: raft.id, ...r });
    raft.advance(rd);
    return [...late];
  }

  get(id: NodeId): RaftCore {
    const raft = this.cores.get(id);
    if (raft === undefined) throw new Error(`no core ${id}`);
    return raft;
  }

  /** Processes Readies and delivers messages until quiet. */
  settle(maxMessages = 10_000): void {
    const queue: Message[] = this.pending.splice(0);
    this.sent.push(...queue);
    let delivered = 0;
    for (;;) {
      for (const raft of this.cores.values()) {
        if (this.slowDisk.has(raft.id)) {
          if (this.writing.has(raft.id) || !raft.hasReady()) continue;
          const rd = raft.ready();
          const early = rd.messages.filter(isEarly);
          queue.push(...early);
          this.sent.push(...early);
          this.writing.set(raft.id, rd);
          continue;
        }
        while (raft.hasReady()) {
          const rd = raft.ready();
          const messages = this.finish(raft, rd, rd.messages);
          queue.push(...messages);
          this.sent.push(...messages);
        }
      }
      const m = queue.shift();
      if (m === undefined) return;
      if (++delivered > maxMessages) throw new Error('network did not settle');
      if (this.drop(m)) continue;
      this.cores.get(m.to)?.step(m);
    }
  }

  /** Ticks every core `n` times, settling after each tick. */
  tick(n: number, only?: readonly NodeId[]): void {
    for (let i = 0; i < n; i++) {
      for (const raft of this.cores.values()) if (!only || only.includes(raft.id)) raft.tick();
      this.settle();
    }
  }

  /** Elects `id` by timing it out first. */
  elect(id: NodeId): void {
    this.get(id).campaign();
    this.settle();
  }

  leader(): RaftCore | undefined {
    return [...this.cores.values()].find((raft) => raft.currentRole === 'leader');
  }
}
