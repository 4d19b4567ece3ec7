/**
 * The leader's view of one follower (Raft Figure 2 "Volatile state on leaders": nextIndex,
 * matchIndex), with etcd-io/raft's flow control: a follower is `probe`d with one append
 * at a time until its log position is known, then `replicate`d with pipelined appends
 * bounded by `maxInflight`.
 */
export class Progress {
  match = 0;
  next: number;
  state: 'probe' | 'replicate' | 'snapshot' = 'probe';
  /** In snapshot state: the index of the snapshot sent, and ticks since it was sent. */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** In probe state: an append is outstanding; wait for its answer or a heartbeat response. */
  probeSent = false;
  /** Heard from since the last check-quorum round (Raft thesis §6.2). */
  recentActive = false;
  /** Last index of each append in flight, oldest first. */
  private inflight: number[] = [];

  constructor(next: number) {
    this.next = next;
  }

  isPaused(maxInflight: number): boolean {
    if (this.state === 'snapshot') return true;
    return this.state === 'probe' ? this.probeSent : this.inflight.length >= maxInflight;
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
    this.inflight = [];
  }

  /** An append ending at `lastIndex` was sent. */
  sent(lastIndex: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflight.push(lastIndex);
      }
    } else {
      this.probeSent = true;
    }
  }

  /** The follower's log matches ours up to `index`. Returns whether that is news. */
  maybeUpdate(index: number): boolean {
    this.probeSent = false;
    if (index <= this.match) return false;
    this.match = index;
    if (this.next < index + 1) this.next = index + 1;
    let drop = 0;
    while (drop < this.inflight.length && (this.inflight[drop] as number) <= index) drop++;
    if (drop > 0) this.inflight.splice(0, drop);
    return true;
  }

  /**
   * The follower rejected an append whose prevLogIndex was `rejected`; `probeFrom` is the
   * next index to try. Returns false when the rejection is stale (etcd `MaybeDecrTo`).
   */
  maybeDecrease(rejected: number, probeFrom: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      this.becomeProbe();
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // After a snapshot, continue right after it (etcd BecomeProbe).
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
      this.pendingSnapshot = 0;
      this.state = 'probe';
      this.probeSent = false;
      this.inflight = [];
      return;
    }
    this.state = 'probe';
    this.probeSent = false;
    this.inflight = [];
    if (this.next <= this.match) this.next = this.match + 1;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.probeSent = false;
    this.inflight = [];
    this.next = this.match + 1;
  }
}
