/**
 * Deliberate safety bugs the simulator must catch (test-only switch; never set in
 * production). Each names the rule of the Raft paper it breaks.
 */
export const RAFT_BUGS = [
  /** Figure 2 "Persistent state": votedFor is not written to stable storage. */
  'vote-not-persisted',
  /** Figure 2 "Persistent state": currentTerm is not written to stable storage. */
  'term-not-persisted',
  /** §5.4.1 election restriction: votes are granted without the log up-to-date check. */
  'no-up-to-date-check',
  /** §5.1: a message from a stale term is processed as if it were current. */
  'stale-term-accepted',
  /** Figure 2 AppendEntries step 2: entries are appended without checking prevLogTerm. */
  'no-prev-log-term-check',
  /** §5.4.2 / Figure 8: an entry of a previous term is committed by counting replicas. */
  'commit-previous-term',
  /** §5.3: an entry counts as committed on fewer than a majority of servers. */
  'quorum-too-small',
  /** Figure 2 AppendEntries step 5: commit = leaderCommit instead of min(leaderCommit, last new entry). */
  'commit-beyond-new-entries',
  /** §5.2: a server grants a second vote in the same term. */
  'vote-twice',
  /** Leader records a follower's matchIndex as its own last index instead of what was acknowledged. */
  'match-leader-last-index',
  /** State machine safety: entries are applied before they are committed. */
  'apply-uncommitted',
  /** Thesis §6.4: a read is answered from the leader's commit index without confirming leadership. */
  'read-without-quorum',
  /** Thesis §6.3 (host, not core): a retried request is applied again instead of answered from its session. */
  'no-session-dedupe',
] as const;

export type RaftBug = (typeof RAFT_BUGS)[number];
