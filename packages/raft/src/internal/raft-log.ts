import type { Entry } from '../types.js';

/**
 * The in-memory view of one server's log: every entry after the last snapshot, the
 * commit index, and how far the host has made it durable (`unstableFrom`).
 *
 * Indexes start at 1; index 0 (term 0) is the empty prefix every log shares, and after
 * compaction `snapshotIndex`/`snapshotTerm` play that role (Raft §7).
 */
export class RaftLog {
  /** entries[i] has index snapshotIndex + 1 + i. */
  private entries: Entry[];
  snapshotIndex: number;
  snapshotTerm: number;
  committed: number;
  /** First index not yet acknowledged as persisted by the host. */
  unstableFrom: number;

  constructor(entries: readonly Entry[], snapshotIndex: number, snapshotTerm: number, committed: number) {
    this.entries = [...entries];
    this.snapshotIndex = snapshotIndex;
    this.snapshotTerm = snapshotTerm;
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i] as Entry;
      if (entry.index !== snapshotIndex + 1 + i) {
        throw new Error(`log is not contiguous: entry ${i} has index ${entry.index}`);
      }
    }
    this.committed = committed;
    this.unstableFrom = this.lastIndex() + 1;
    if (committed > this.lastIndex()) {
      throw new Error(`commit index ${committed} is beyond the last log index ${this.lastIndex()}`);
    }
  }

  firstIndex(): number {
    return this.snapshotIndex + 1;
  }

  lastIndex(): number {
    return this.snapshotIndex + this.entries.length;
  }

  lastTerm(): number {
    const last = this.entries[this.entries.length - 1];
    return last === undefined ? this.snapshotTerm : last.term;
  }

  /** Term of the entry at `index`, or undefined when it is compacted away or not there yet. */
  term(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshotTerm;
    if (index < this.snapshotIndex) return undefined;
    return this.entries[index - this.snapshotIndex - 1]?.term;
  }

  entry(index: number): Entry | undefined {
    return this.entries[index - this.snapshotIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /**
   * Raft §5.4.1: a log is at least as up to date as ours when its last term is later,
   * or the same with an index at least as long.
   */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries with index in [lo, hi), at most `max` of them. */
  slice(lo: number, hi: number, max = Number.POSITIVE_INFINITY): Entry[] {
    const start = Math.max(lo, this.firstIndex()) - this.snapshotIndex - 1;
    const end = Math.min(hi - this.snapshotIndex - 1, start + max);
    return this.entries.slice(start, end);
  }

  /** The leader appends its own new entries (Raft §5.3 "Leader Append-Only"). */
  append(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (entry.index !== this.lastIndex() + 1) {
        throw new Error(`append at ${entry.index} would leave a gap after ${this.lastIndex()}`);
      }
      this.entries.push(entry);
    }
    return this.lastIndex();
  }

  /**
   * Index of the first entry in `entries` that is not already in the log with the same
   * term, or 0 when all are present (Raft Figure 2, AppendEntries receiver step 3).
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Largest index <= `index` whose term is <= `term` (the thesis' §5.3 optimisation for
   * skipping a whole conflicting term per round trip, as in etcd-io/raft).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapshotIndex) {
      const t = this.term(i);
      if (t !== undefined && t <= term) return i;
      i--;
    }
    return i;
  }

  /**
   * Deletes every entry from `index` on (Figure 2 receiver step 3: "delete the existing
   * entry and all that follow it"), then appends `entries`.
   */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (first.index <= this.committed) {
      throw new Error(`refusing to overwrite committed entry ${first.index} (commit ${this.committed})`);
    }
    if (first.index > this.lastIndex() + 1) {
      throw new Error(`append at ${first.index} would leave a gap after ${this.lastIndex()}`);
    }
    this.entries.length = first.index - this.snapshotIndex - 1;
    for (const entry of entries) this.entries.push(entry);
    if (first.index < this.unstableFrom) this.unstableFrom = first.index;
  }

  /** Discards entries up to `index` (already in a snapshot). Raft §7. */
  compact(index: number): void {
    if (index <= this.snapshotIndex) return;
    const term = this.term(index);
    if (term === undefined) throw new Error(`cannot compact to ${index}: not in the log`);
    if (index > this.committed) throw new Error(`cannot compact past the commit index ${this.committed}`);
    this.entries = this.entries.slice(index - this.snapshotIndex);
    this.snapshotIndex = index;
    this.snapshotTerm = term;
  }

  /** Replaces the whole log with a snapshot's position (Raft §7, Figure 13 step 7-8). */
  restore(index: number, term: number): void {
    this.entries = [];
    this.snapshotIndex = index;
    this.snapshotTerm = term;
    this.committed = index;
    this.unstableFrom = index + 1;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new Error(`commit index ${index} is beyond the last log index ${this.lastIndex()}`);
    }
    this.committed = index;
  }

  unstableEntries(): Entry[] {
    return this.slice(this.unstableFrom, this.lastIndex() + 1);
  }

  /** The host made entries up to `index` (with `term`) durable. */
  stableTo(index: number, term: number): void {
    // A truncation since the Ready was taken makes the acknowledgement stale.
    if (this.matchTerm(index, term) && index >= this.unstableFrom) this.unstableFrom = index + 1;
  }
}
