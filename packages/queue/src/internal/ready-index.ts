/** What the in-memory index keeps of a pending operation (the payload stays in the store). */
export interface ReadyEntry {
  readonly id: string;
  readonly type: string;
  readonly priority: number;
  /** '' for operations without a group key. */
  readonly group: string;
  readonly runAt: number;
  /** Set when cancelled or replaced; the entry is skipped when it surfaces. */
  removed: boolean;
  /** In a ready lane (true) or still in the delay heap (false). */
  ready: boolean;
}

/** A FIFO on an array with a moving head (amortised O(1) shift). */
class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** Drops `item` if it is the last one pushed (and not yet shifted); true if it did. */
  dropIfLast(item: T): boolean {
    if (this.length === 0 || this.#items[this.#items.length - 1] !== item) return false;
    this.#items.pop();
    return true;
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** One priority level of one lane: a FIFO per group, served round-robin. */
class Level {
  readonly groups = new Map<string, Fifo<ReadyEntry>>();
  readonly ring: string[] = [];
  cursor = 0;
}

class Lane {
  readonly levels = new Map<number, Level>();
  /** Priorities with entries, highest first. */
  priorities: number[] = [];
  size = 0;
}

/** A binary min-heap of entries by runAt. */
class DelayHeap {
  readonly #heap: ReadyEntry[] = [];

  get size(): number {
    return this.#heap.length;
  }

  peek(): ReadyEntry | undefined {
    return this.#heap[0];
  }

  push(entry: ReadyEntry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as ReadyEntry).runAt <= entry.runAt) break;
      heap[i] = heap[parent] as ReadyEntry;
      i = parent;
    }
    heap[i] = entry;
  }

  /** Keeps only the entries `keep` accepts, in heap order again: O(n log n). */
  retain(keep: (entry: ReadyEntry) => boolean): void {
    const live = this.#heap.filter(keep);
    this.#heap.length = 0;
    for (const entry of live) this.push(entry);
  }

  pop(): ReadyEntry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && (heap[right] as ReadyEntry).runAt < (heap[left] as ReadyEntry).runAt ? right : left;
      if ((heap[child] as ReadyEntry).runAt >= last.runAt) break;
      heap[i] = heap[child] as ReadyEntry;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

/**
 * The FIFO an entry waits in within its level: its group's, or, without a group, its
 * type's own (types sharing a lane share groups, but ungrouped operations of one type
 * never wait behind another type's). Type names start with a letter or digit, so
 * `NUL type` never equals a group key, which gets a second NUL if it starts with one.
 */
const fifoKey = (entry: ReadyEntry): string => {
  const group = entry.group;
  if (group === '') return `\u0000${entry.type}`;
  return group.charCodeAt(0) === 0 ? `\u0000${group}` : group;
};

/**
 * The executor's view of pending work, kept in memory so dispatch never polls the
 * store: due operations per lane (a type, or types sharing one: `laneOf`), by priority
 * (highest first), round-robin between group keys within a priority (fairness between
 * tenants), FIFO within a group, whatever the types in it; operations not yet due wait
 * in a heap by runAt. Rebuilt from the store at boot.
 */
export class ReadyIndex {
  readonly #laneOf: (type: string) => string;
  readonly #lanes = new Map<string, Lane>();
  readonly #byId = new Map<string, ReadyEntry>();
  readonly #delayed = new DelayHeap();
  #delayedCount = 0;
  /** Removed entries still in the delay heap (dropped when they surface, or by a compaction). */
  #delayedRemoved = 0;
  #held = 0;

  constructor(laneOf: (type: string) => string = (type) => type) {
    this.#laneOf = laneOf;
  }

  /** Entries kept in ready lanes, removed ones not yet dropped included (bounded memory). */
  get held(): number {
    return this.#held;
  }

  /** Due entries (all types). */
  get readyCount(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.size;
    return n;
  }

  get delayedCount(): number {
    return this.#delayedCount;
  }

  /** Entries kept in the delay heap, removed ones not yet dropped included (bounded memory). */
  get delayedHeld(): number {
    return this.#delayed.size;
  }

  /** Due entries in `lane`. */
  readyOf(lane: string): number {
    return this.#lanes.get(lane)?.size ?? 0;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** Adds a pending operation (replacing an older entry for the same id). */
  add(entry: ReadyEntry, now: number): void {
    this.remove(entry.id);
    this.#byId.set(entry.id, entry);
    if (entry.runAt > now) {
      this.#delayed.push(entry);
      this.#delayedCount++;
    } else {
      this.#enqueueReady(entry);
    }
  }

  /** Forgets an operation (cancelled, or claimed elsewhere). */
  remove(id: string): void {
    const entry = this.#byId.get(id);
    if (entry === undefined) return;
    this.#byId.delete(id);
    entry.removed = true;
    // Removed entries stay where they are and are dropped when they surface, except the
    // last one added to its FIFO, dropped now: a lane no take() visits would otherwise keep
    // every such entry (see `held`).
    if (entry.ready) {
      const lane = this.#lanes.get(this.#laneOf(entry.type));
      if (lane) {
        lane.size--;
        if (lane.levels.get(entry.priority)?.groups.get(fifoKey(entry))?.dropIfLast(entry)) this.#held--;
      }
    } else {
      this.#delayedCount--;
      // Cancelled delayed entries would otherwise stay until their due time (a week-out
      // reminder, cancelled, holds its memory a week): compact once they are most of the heap.
      if (++this.#delayedRemoved > 1024 && this.#delayedRemoved * 2 > this.#delayed.size) {
        this.#delayed.retain((e) => !e.removed);
        this.#delayedRemoved = 0;
      }
    }
  }

  /** Moves every delayed entry due by `now` to the ready lanes. */
  promoteDue(now: number): void {
    for (;;) {
      const top = this.#delayed.peek();
      if (top === undefined || top.runAt > now) return;
      this.#delayed.pop();
      if (top.removed) {
        this.#delayedRemoved--;
        continue;
      }
      this.#delayedCount--;
      this.#enqueueReady(top);
    }
  }

  /** When the earliest delayed entry is due, if any. */
  nextDueAt(): number | undefined {
    for (;;) {
      const top = this.#delayed.peek();
      if (top === undefined) return undefined;
      if (!top.removed) return top.runAt;
      this.#delayed.pop();
      this.#delayedRemoved--;
    }
  }

  /**
   * Takes the next due entry of `laneName` that may run now (`available`, asked of the
   * entry at the head of each group), or undefined. Highest priority first; a group
   * whose head may not run is skipped (its entries keep their place: a group's order
   * holds), so lower-priority or other-tenant work proceeds meanwhile.
   */
  take(laneName: string, available: (head: ReadyEntry) => boolean): ReadyEntry | undefined {
    const lane = this.#lanes.get(laneName);
    if (lane === undefined) return undefined;
    for (let p = 0; p < lane.priorities.length; p++) {
      const priority = lane.priorities[p] as number;
      const level = lane.levels.get(priority) as Level;
      // Round-robin: start at the group after the last one served; a group skipped
      // because it is at its limit keeps its turn (the cursor moves only past the served).
      let i = level.cursor;
      let scanned = 0;
      while (scanned < level.ring.length) {
        if (i >= level.ring.length) i = 0;
        const key = level.ring[i] as string;
        const fifo = level.groups.get(key) as Fifo<ReadyEntry>;
        while (fifo.length > 0 && (fifo.peek() as ReadyEntry).removed) {
          fifo.shift();
          this.#held--;
        }
        if (fifo.length === 0) {
          level.groups.delete(key);
          level.ring.splice(i, 1);
          if (i < level.cursor) level.cursor--;
          continue;
        }
        if (!available(fifo.peek() as ReadyEntry)) {
          i++;
          scanned++;
          continue;
        }
        const entry = fifo.shift() as ReadyEntry;
        this.#held--;
        lane.size--;
        this.#byId.delete(entry.id);
        level.cursor = i + 1;
        if (fifo.length === 0) {
          level.groups.delete(key);
          level.ring.splice(i, 1);
          level.cursor = i;
        }
        // Wrap now, so a group that (re)joins at the end of the ring waits its turn.
        if (level.cursor >= level.ring.length) level.cursor = 0;
        this.#dropEmpty(laneName, lane, priority, level, p);
        return entry;
      }
      if (this.#dropEmpty(laneName, lane, priority, level, p)) p--;
    }
    return undefined;
  }

  #dropEmpty(laneName: string, lane: Lane, priority: number, level: Level, index: number): boolean {
    if (level.ring.length > 0) return false;
    lane.levels.delete(priority);
    lane.priorities.splice(index, 1);
    if (lane.priorities.length === 0) this.#lanes.delete(laneName);
    return true;
  }

  #enqueueReady(entry: ReadyEntry): void {
    entry.ready = true;
    const laneName = this.#laneOf(entry.type);
    let lane = this.#lanes.get(laneName);
    if (lane === undefined) {
      lane = new Lane();
      this.#lanes.set(laneName, lane);
    }
    let level = lane.levels.get(entry.priority);
    if (level === undefined) {
      level = new Level();
      lane.levels.set(entry.priority, level);
      const at = lane.priorities.findIndex((p) => p < entry.priority);
      if (at === -1) lane.priorities.push(entry.priority);
      else lane.priorities.splice(at, 0, entry.priority);
    }
    const key = fifoKey(entry);
    let fifo = level.groups.get(key);
    if (fifo === undefined) {
      fifo = new Fifo();
      level.groups.set(key, fifo);
      level.ring.push(key);
    }
    fifo.push(entry);
    this.#held++;
    lane.size++;
  }
}
