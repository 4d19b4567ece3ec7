// Tests of the core against each rule of Figure 2 and §5 of the Raft paper (Ongaro &
// Ousterhout, 2014), in the spirit of etcd-io/raft's raft_paper_test.go.
import { describe, expect, it } from 'vitest';
import { LeadershipTransferError, NotLeaderError, ProposalTooLargeError, RaftUsageError } from '../src/errors.js';
import { MAX_ENTRY_BYTES, MAX_FRAME_BYTES } from '../src/internal/limits.js';
import { encodeMessage } from '../src/internal/message-codec.js';
import type { AppendRequest, AppendResponse, Message, VoteResponse } from '../src/types.js';
import { core, data, drain, entries, Network, outbox, restored } from './helpers.js';

const THREE = ['n1', 'n2', 'n3'];
const FIVE = ['n1', 'n2', 'n3', 'n4', 'n5'];
const noPreVote = { preVote: false };

function append(fields: Partial<AppendRequest> & Pick<AppendRequest, 'term'>): AppendRequest {
  return { type: 'append', from: 'n2', to: 'n1', prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0, ...fields };
}

describe('RaftCore (Raft paper §5)', () => {
  describe('§5.1 terms', () => {
    it.each([
      ['append', append({ term: 5 })],
      ['heartbeat', { type: 'heartbeat', from: 'n2', to: 'n1', term: 5, commit: 0 } as Message],
      ['vote', { type: 'vote', from: 'n2', to: 'n1', term: 5, lastLogIndex: 0, lastLogTerm: 0 } as Message],
      [
        'appendResponse',
        {
          type: 'appendResponse',
          from: 'n2',
          to: 'n1',
          term: 5,
          success: true,
          index: 0,
          hintIndex: 0,
          hintTerm: 0,
        } as Message,
      ],
    ])('updates its term and becomes a follower on a %s with a higher term', (_kind, message) => {
      for (const role of ['follower', 'candidate', 'leader'] as const) {
        // Without check-quorum's lease, which would make a live leader ignore the vote request.
        const raft = core('n1', THREE, { preVote: false, checkQuorum: false });
        if (role !== 'follower') raft.campaign();
        if (role === 'leader') {
          raft.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, granted: true });
          expect(raft.currentRole).toBe('leader');
        }
        raft.step(message);
        expect(raft.currentTerm).toBe(5);
        expect(raft.currentRole).toBe('follower');
      }
    });

    it('rejects an append with a stale term and tells the sender the current term', () => {
      const raft = restored('n1', THREE, { term: 3, votedFor: undefined, commit: 0 }, []);
      raft.step(append({ term: 2, entries: [{ index: 1, term: 2, data: data('x') }] }));
      const replies = outbox(raft);
      expect(raft.lastIndex).toBe(0);
      expect(replies).toEqual([expect.objectContaining({ type: 'appendResponse', term: 3, success: false })]);
    });

    it('ignores a stale vote response', () => {
      const raft = core('n1', THREE, noPreVote);
      raft.campaign();
      raft.campaign(); // term 2 now
      raft.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, granted: true });
      expect(raft.currentRole).toBe('candidate');
    });
  });

  describe('§5.2 leader election', () => {
    it('starts an election after the election timeout: new term, votes for itself, asks everyone', () => {
      const raft = core('n1', THREE, noPreVote);
      for (let i = 0; i < 10; i++) raft.tick();
      expect(raft.currentRole).toBe('candidate');
      expect(raft.currentTerm).toBe(1);
      const rd = drain(raft);
      expect(rd.hardState).toEqual({ term: 1, votedFor: 'n1', commit: 0 });
      expect(rd.mustSync).toBe(true);
      expect(rd.messages.map((m) => [m.type, m.to, m.term])).toEqual([
        ['vote', 'n2', 1],
        ['vote', 'n3', 1],
      ]);
    });

    it('draws the election timeout from [electionTicks, 2 * electionTicks)', () => {
      const timeouts = new Set<number>();
      for (const r of [0, 0.25, 0.5, 0.999]) {
        const raft = core('n1', THREE, { ...noPreVote, random: () => r });
        let ticks = 0;
        while (raft.currentRole === 'follower' && ticks < 100) {
          raft.tick();
          ticks++;
        }
        timeouts.add(ticks);
      }
      expect([...timeouts].sort((a, b) => a - b)).toEqual([10, 12, 15, 19]);
    });

    it('becomes leader with votes from a majority and appends a no-op of its term', () => {
      const raft = core('n1', FIVE, noPreVote);
      raft.campaign();
      drain(raft);
      raft.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, granted: true });
      expect(raft.currentRole).toBe('candidate');
      raft.step({ type: 'voteResponse', from: 'n3', to: 'n1', term: 1, granted: true });
      expect(raft.currentRole).toBe('leader');
      const rd = drain(raft);
      expect(rd.entries).toEqual([{ index: 1, term: 1, data: new Uint8Array(0) }]);
      expect(rd.messages.filter((m) => m.type === 'append')).toHaveLength(4);
    });

    it('returns to follower when a majority rejects it', () => {
      const raft = core('n1', THREE, noPreVote);
      raft.campaign();
      raft.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, granted: false });
      raft.step({ type: 'voteResponse', from: 'n3', to: 'n1', term: 1, granted: false });
      expect(raft.currentRole).toBe('follower');
      expect(raft.currentTerm).toBe(1);
    });

    it('becomes a follower when a leader of its term appends', () => {
      const raft = core('n1', THREE, noPreVote);
      raft.campaign();
      raft.step(append({ term: 1 }));
      expect(raft.currentRole).toBe('follower');
      expect(raft.currentLeader).toBe('n2');
    });

    it('starts a new election with a higher term after a split vote', () => {
      const raft = core('n1', FIVE, noPreVote);
      raft.campaign();
      raft.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, granted: true });
      for (let i = 0; i < 10; i++) raft.tick();
      expect(raft.currentRole).toBe('candidate');
      expect(raft.currentTerm).toBe(2);
    });

    it('grants at most one vote per term, first come first served, and persists it before answering', () => {
      const raft = core('n1', THREE, noPreVote);
      raft.step({ type: 'vote', from: 'n2', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
      raft.step({ type: 'vote', from: 'n3', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
      raft.step({ type: 'vote', from: 'n2', to: 'n1', term: 1, lastLogIndex: 0, lastLogTerm: 0 });
      const rd = drain(raft);
      expect(rd.hardState).toEqual({ term: 1, votedFor: 'n2', commit: 0 });
      expect(rd.mustSync).toBe(true);
      expect(rd.messages.map((m) => [m.to, (m as VoteResponse).granted])).toEqual([
        ['n2', true],
        ['n3', false],
        ['n2', true],
      ]);
    });

    it('keeps its vote across a restart from the persisted hard state', () => {
      const raft = restored('n1', THREE, { term: 1, votedFor: 'n2', commit: 0 }, [], noPreVote);
      raft.step({ type: 'vote', from: 'n3', to: 'n1', term: 1, lastLogIndex: 5, lastLogTerm: 1 });
      expect(outbox(raft)).toEqual([expect.objectContaining({ to: 'n3', granted: false })]);
    });

    it('elects exactly one leader in a 5-node cluster', () => {
      const net = new Network(FIVE.map((id) => core(id, FIVE)));
      net.elect('n3');
      expect([...net.cores.values()].filter((r) => r.currentRole === 'leader').map((r) => r.id)).toEqual(['n3']);
      for (const raft of net.cores.values()) expect(raft.currentLeader).toBe('n3');
    });
  });

  describe('§5.3 log replication', () => {
    it('sends new entries with the index and term of the entry before them', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const leader = net.get('n1');
      leader.propose(data('x'));
      const appends = drain(leader).messages.filter((m): m is AppendRequest => m.type === 'append');
      expect(appends).toHaveLength(2);
      for (const m of appends) {
        expect(m.prevLogIndex).toBe(1);
        expect(m.prevLogTerm).toBe(1);
        expect(m.entries.map((e) => e.index)).toEqual([2]);
      }
    });

    it('commits an entry once a majority stores it, then followers learn the commit index and apply', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.drop = (m) => m.to === 'n3' || m.from === 'n3';
      net.get('n1').propose(data('x'));
      net.settle();
      expect(net.get('n1').commitIndex).toBe(2);
      expect(net.applied.get('n1')?.map((e) => e.index)).toEqual([1, 2]);
      expect(net.get('n3').lastIndex).toBe(1);
      net.drop = () => false;
      net.tick(1);
      net.tick(1);
      expect(net.applied.get('n3')?.map((e) => e.index)).toEqual([1, 2]);
    });

    it('rejects an append whose previous entry does not match, with a hint that skips the conflicting term', () => {
      const raft = restored('n1', THREE, { term: 3, votedFor: undefined, commit: 0 }, entries(1, 3, 3, 3));
      raft.step(append({ term: 3, prevLogIndex: 4, prevLogTerm: 2 }));
      const [reply] = outbox(raft) as AppendResponse[];
      expect(reply).toMatchObject({ success: false, index: 4, hintIndex: 1, hintTerm: 1 });
    });

    it('deletes a conflicting suffix and appends the leader entries (receiver steps 3-4)', () => {
      const raft = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 1 }, entries(1, 2, 2));
      const fresh = [
        { index: 2, term: 3, data: data('a') },
        { index: 3, term: 3, data: data('b') },
      ];
      raft.step(append({ term: 3, prevLogIndex: 1, prevLogTerm: 1, entries: fresh, commit: 3 }));
      const rd = drain(raft);
      expect(rd.entries).toEqual(fresh);
      expect(raft.entries().map((e) => e.term)).toEqual([1, 3, 3]);
      expect(rd.messages[0]).toMatchObject({ success: true, index: 3 });
    });

    it('does not truncate when a delayed append repeats entries it already has', () => {
      const raft = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 2, 2, 2));
      raft.step(append({ term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: entries(1, 2).slice(1) }));
      expect(raft.lastIndex).toBe(4);
      expect(outbox(raft)[0]).toMatchObject({ success: true, index: 2 });
    });

    it('sets commitIndex = min(leaderCommit, index of last new entry) (receiver step 5)', () => {
      const raft = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 1, 1, 1));
      raft.step(append({ term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [], commit: 4 }));
      expect(raft.commitIndex).toBe(1);
    });

    it('repairs a divergent follower until its log equals the leader (Log Matching)', () => {
      const leader = restored('n1', THREE, { term: 4, votedFor: 'n1', commit: 0 }, entries(1, 1, 4, 4), noPreVote);
      const follower = restored('n2', THREE, { term: 3, votedFor: undefined, commit: 0 }, entries(1, 2, 2, 3, 3, 3));
      const third = restored('n3', THREE, { term: 3, votedFor: undefined, commit: 0 }, entries(1, 1));
      const net = new Network([leader, follower, third]);
      net.elect('n1');
      leader.propose(data('z'));
      net.settle();
      const terms = (id: string) =>
        net
          .get(id)
          .entries()
          .map((e) => e.term);
      expect(terms('n2')).toEqual(terms('n1'));
      expect(terms('n3')).toEqual(terms('n1'));
      expect(net.get('n2').commitIndex).toBe(net.get('n1').lastIndex);
    });

    it('sends heartbeats every heartbeat interval', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const leader = net.get('n1');
      leader.tick();
      expect(
        outbox(leader)
          .filter((m) => m.type === 'heartbeat')
          .map((m) => m.to),
      ).toEqual(['n2', 'n3']);
    });
  });

  describe('append size (etcd MaxSizePerMsg)', () => {
    it('splits a backlog into appends of at most maxAppendBytes, one entry at least', () => {
      const opts = { maxAppendBytes: 1000 };
      const net = new Network(['n1', 'n2'].map((id) => core(id, ['n1', 'n2'], opts)));
      net.elect('n1');
      const leader = net.get('n1');
      const before = net.sent.length;
      for (const size of [400, 400, 400, 3000, 10]) leader.propose(new Uint8Array(size));
      net.settle();
      const appends = net.sent
        .slice(before)
        .filter((m): m is AppendRequest => m.type === 'append' && m.entries.length > 0);
      // Payload plus a small per-entry allowance for the frame header; the 3,000-byte entry
      // travels alone. All four leave in one Ready (pipelined), not one per round trip.
      expect(appends.map((m) => m.entries.map((e) => e.data.length))).toEqual([[400, 400], [400], [3000], [10]]);
      expect(net.get('n2').commitIndex).toBe(leader.commitIndex);
      expect(leader.commitIndex).toBe(6);
    });

    it('keeps every append within one transport frame with the default limits', () => {
      const net = new Network(['n1', 'n2'].map((id) => core(id, ['n1', 'n2'])));
      net.elect('n1');
      const leader = net.get('n1');
      // 64 entries of 1.1 MB made in one turn (the count limit alone would pack 70 MB into one append).
      const big = new Uint8Array(1_100_000).fill(7);
      for (let i = 0; i < 64; i++) leader.propose(big);
      const appends = drain(leader).messages.filter((m): m is AppendRequest => m.type === 'append');
      expect(appends.reduce((n, m) => n + m.entries.length, 0)).toBe(64);
      for (const m of appends) expect(encodeMessage(m).length).toBeLessThan(MAX_FRAME_BYTES);
    });

    it('refuses a proposal whose entry could not fit one frame, before any other check', () => {
      const net = new Network(['n1', 'n2'].map((id) => core(id, ['n1', 'n2'])));
      net.elect('n1');
      const tooLarge = new Uint8Array(MAX_ENTRY_BYTES + 1);
      expect(() => net.get('n1').propose(tooLarge)).toThrow(ProposalTooLargeError);
      // On a follower too: retrying on the leader would not help.
      expect(() => net.get('n2').propose(tooLarge)).toThrow(ProposalTooLargeError);
      const limited = core('n1', ['n1'], { maxEntryBytes: 10 });
      expect(() => limited.propose(new Uint8Array(11))).toThrow(
        expect.objectContaining({ code: 'UNRDF_RAFT_PROPOSAL_TOO_LARGE', size: 11, limit: 10 }),
      );
      expect(() => core('n1', ['n1'], { maxAppendBytes: MAX_ENTRY_BYTES + 1 })).toThrow();
    });
  });

  describe('§5.4 safety', () => {
    it.each([
      ['a later last term', 1, 3, true],
      ['the same last term and a longer log', 4, 2, true],
      ['the same last term and the same length', 3, 2, true],
      ['the same last term and a shorter log', 2, 2, false],
      ['an earlier last term', 9, 1, false],
    ])(
      '§5.4.1 grants a vote to a candidate with %s only when up to date',
      (_what, lastLogIndex, lastLogTerm, granted) => {
        const raft = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 2, 2), noPreVote);
        raft.step({ type: 'vote', from: 'n2', to: 'n1', term: 3, lastLogIndex, lastLogTerm });
        expect(outbox(raft).at(-1)).toMatchObject({ type: 'voteResponse', granted });
      },
    );

    it('§5.4.2 never commits an entry of an earlier term by counting replicas (Figure 8)', () => {
      // n1 leads term 3 with an entry from term 1 that reached a majority, but no entry of term 3 did yet.
      const leader = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 1), noPreVote);
      const n2 = restored('n2', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 1));
      const n3 = restored('n3', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1));
      const net = new Network([leader, n2, n3]);
      // Only the vote exchange gets through: the no-op of term 3 replicates nowhere.
      net.drop = (m) => m.type === 'append';
      net.elect('n1');
      expect(leader.currentTerm).toBe(3);
      leader.step({
        type: 'appendResponse',
        from: 'n2',
        to: 'n1',
        term: 3,
        success: true,
        index: 2,
        hintIndex: 0,
        hintTerm: 0,
      });
      expect(leader.commitIndex).toBe(0);
      // Once the no-op (index 3, term 3) is on a majority, everything before it commits too.
      leader.step({
        type: 'appendResponse',
        from: 'n2',
        to: 'n1',
        term: 3,
        success: true,
        index: 3,
        hintIndex: 0,
        hintTerm: 0,
      });
      expect(leader.commitIndex).toBe(3);
    });

    it('commits a previous-term entry by counting replicas when the Figure 8 bug is switched on', () => {
      const leader = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 1), {
        ...noPreVote,
        testOnlyBugs: ['commit-previous-term'],
      });
      const net = new Network([leader, core('n2', THREE), core('n3', THREE)]);
      net.drop = (m) => m.type === 'append';
      net.elect('n1');
      leader.step({
        type: 'appendResponse',
        from: 'n2',
        to: 'n1',
        term: 3,
        success: true,
        index: 2,
        hintIndex: 0,
        hintTerm: 0,
      });
      expect(leader.commitIndex).toBe(2);
    });

    it('commits past the last new entry when the receiver-step-5 bug is switched on', () => {
      const follower = restored('n1', THREE, { term: 2, votedFor: undefined, commit: 0 }, entries(1, 1, 2), {
        testOnlyBugs: ['commit-beyond-new-entries'],
      });
      // The leader's log is (1, 1, 3): our entry 3 (term 2) is not the committed one.
      follower.step(append({ term: 3, prevLogIndex: 0, prevLogTerm: 0, entries: entries(1), commit: 3 }));
      expect(follower.commitIndex).toBe(3);
    });

    it('refuses to overwrite a committed entry even if a deposed leader asks', () => {
      const raft = restored('n1', THREE, { term: 3, votedFor: undefined, commit: 2 }, entries(1, 3));
      raft.step(
        append({ term: 2, prevLogIndex: 1, prevLogTerm: 1, entries: [{ index: 2, term: 2, data: data('old') }] }),
      );
      expect(raft.entries().map((e) => e.term)).toEqual([1, 3]);
    });
  });

  describe('pre-vote and check-quorum (thesis §9.6, §6.2)', () => {
    it('campaigns with a pre-vote first, without changing term or vote', () => {
      const raft = restored('n1', THREE, { term: 4, votedFor: 'n3', commit: 0 }, []);
      for (let i = 0; i < 10; i++) raft.tick();
      expect(raft.currentRole).toBe('preCandidate');
      expect(raft.currentTerm).toBe(4);
      const rd = drain(raft);
      expect(rd.hardState).toBeUndefined();
      expect(rd.messages.map((m) => [m.type, m.term])).toEqual([
        ['preVote', 5],
        ['preVote', 5],
      ]);
    });

    it('does not bump the term of the cluster when a partitioned node rejoins', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const term = net.get('n1').currentTerm;
      net.drop = (m) => m.from === 'n3' || m.to === 'n3';
      net.tick(50);
      expect(net.get('n3').currentTerm).toBe(term);
      net.drop = () => false;
      net.tick(5);
      expect(net.get('n1').currentRole).toBe('leader');
      expect(net.get('n1').currentTerm).toBe(term);
    });

    it('ignores a vote request while it heard from a leader within the election timeout', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const follower = net.get('n2');
      follower.step({ type: 'vote', from: 'n3', to: 'n2', term: 9, lastLogIndex: 99, lastLogTerm: 9 });
      expect(follower.currentTerm).toBe(1);
      expect(outbox(follower)).toEqual([]);
    });

    it('steps down as leader when it has not heard from a majority for an election timeout', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.drop = (m) => m.from !== 'n1';
      net.tick(20, ['n1']);
      expect(net.get('n1').currentRole).toBe('follower');
    });
  });

  describe('ReadIndex (thesis §6.4)', () => {
    it('answers a read only after a majority confirms the leadership, at the commit index of the request', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const leader = net.get('n1');
      leader.propose(data('x'));
      net.settle();
      leader.readIndex('r1');
      const rd = drain(leader);
      expect(rd.readStates).toEqual([]);
      expect(rd.messages.filter((m) => m.type === 'heartbeat').map((m) => (m as { context?: string }).context)).toEqual(
        ['r1', 'r1'],
      );
      leader.step({ type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 1, context: 'r1' });
      expect(drain(leader).readStates).toEqual([{ context: 'r1', index: 2 }]);
    });

    it('confirms earlier reads with the quorum of a later round', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const leader = net.get('n1');
      leader.readIndex('r1');
      leader.readIndex('r2');
      drain(leader);
      leader.step({ type: 'heartbeatResponse', from: 'n3', to: 'n1', term: 1, context: 'r2' });
      expect(drain(leader).readStates.map((r) => r.context)).toEqual(['r1', 'r2']);
    });

    it('waits until the leader has committed an entry of its own term', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.drop = (m) => m.type === 'append';
      net.elect('n1');
      const leader = net.get('n1');
      leader.readIndex('early');
      expect(drain(leader).messages.some((m) => m.type === 'heartbeat')).toBe(false);
      net.drop = () => false;
      net.tick(3);
      expect(leader.commitIndex).toBe(1);
      expect(net.cores.get('n1')).toBe(leader);
    });

    it('is refused by a follower', () => {
      const raft = core('n2', THREE);
      expect(() => raft.readIndex('r')).toThrow(NotLeaderError);
    });
  });

  describe('peerUnreachable (fast failure detection)', () => {
    it('campaigns within the spread when the leader connection drops, and a survivor that saw it too grants it', () => {
      // n2 draws no delay, n3 draws one tick of the two-tick spread: they do not split the vote.
      const draws: Record<string, number> = { n1: 0, n2: 0, n3: 0.9 };
      const net = new Network(THREE.map((id) => core(id, THREE, { random: () => draws[id] as number })));
      net.elect('n1');
      net.crash('n1');
      net.get('n3').peerUnreachable('n1');
      net.get('n2').peerUnreachable('n1');
      net.settle();
      expect(net.get('n2').currentRole).toBe('leader');
      expect(net.get('n2').currentTerm).toBe(2);
      net.tick(2);
      expect(net.get('n3').currentLeader).toBe('n2');
      expect(net.get('n3').currentTerm).toBe(2);
    });

    it('does not split the vote when both survivors campaign at the same instant', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.crash('n1');
      // Both draw no delay: two pre-candidates at once; only the higher-ranked one (n3) gets a grant.
      net.get('n2').peerUnreachable('n1');
      net.get('n3').peerUnreachable('n1');
      net.settle();
      expect(net.get('n3').currentRole).toBe('leader');
      expect(net.get('n3').currentTerm).toBe(2);
      expect(net.get('n2').currentLeader).toBe('n3');
    });

    it('asks again a survivor that ignored its pre-vote while it still trusted the dead leader', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.crash('n1');
      // n3 (the higher rank) notices first; n2 still trusts n1 and ignores n3's pre-vote.
      net.get('n3').peerUnreachable('n1');
      net.settle();
      expect(net.get('n3').currentRole).toBe('preCandidate');
      // n2 notices later and campaigns too; n3 refuses it (n2 ranks lower)...
      net.get('n2').peerUnreachable('n1');
      net.settle();
      // ...and n3's next heartbeat-interval retry reaches an n2 that no longer trusts n1.
      net.tick(1, ['n3']);
      expect(net.get('n3').currentRole).toBe('leader');
      expect(net.get('n3').currentTerm).toBe(2);
    });

    it('campaigns on the next tick when the drawn delay is one tick', () => {
      const raft = core('n3', THREE, { random: () => 0.9 });
      raft.step({ type: 'heartbeat', from: 'n1', to: 'n3', term: 1, commit: 0 });
      raft.peerUnreachable('n1');
      expect(raft.currentRole).toBe('follower');
      raft.tick();
      expect(raft.currentRole).toBe('preCandidate');
    });

    it('does not let one follower depose a live leader: the others still trust it', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.get('n2').peerUnreachable('n1');
      net.settle();
      net.tick(2);
      expect(net.get('n1').currentRole).toBe('leader');
      expect(net.get('n1').currentTerm).toBe(1);
      expect(net.get('n2').currentLeader).toBe('n1');
    });

    it('never campaigns as a learner (thesis §4.2.1), whatever delay it draws', () => {
      const learner = core('n4', THREE, { learners: ['n4'] }); // random 0: no delay
      learner.step({ type: 'heartbeat', from: 'n1', to: 'n4', term: 1, commit: 0 });
      drain(learner);
      learner.peerUnreachable('n1');
      expect(learner.currentRole).toBe('follower');
      expect(learner.currentTerm).toBe(1);
      expect(outbox(learner).filter((m) => m.type === 'preVote' || m.type === 'vote')).toEqual([]);
    });

    it('ignores a drop of a peer that is not its leader', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.get('n2').peerUnreachable('n3');
      expect(net.get('n2').currentRole).toBe('follower');
    });
  });

  describe('snapshots and log compaction (Raft §7)', () => {
    it('drops compacted entries and sends a lagging follower the snapshot instead', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      net.drop = (m) => m.to === 'n3';
      const leader = net.get('n1');
      for (let i = 0; i < 5; i++) leader.propose(data(`w${i}`));
      net.settle();
      leader.compact(4, data('image@4'));
      expect(leader.entries().map((e) => e.index)).toEqual([5, 6]);
      net.drop = () => false;
      net.tick(2);
      const follower = net.get('n3');
      expect(follower.latestSnapshot()).toEqual({
        index: 4,
        term: 1,
        data: data('image@4'),
        config: { voters: THREE, learners: [] },
      });
      expect(follower.entries().map((e) => e.index)).toEqual([5, 6]);
      expect(follower.commitIndex).toBe(6);
      // Index 1 (the no-op) it applied before falling behind; 2-4 came inside the snapshot.
      expect(net.applied.get('n3')?.map((e) => e.index)).toEqual([1, 5, 6]);
    });

    it('resends a lost snapshot after an election timeout counted in ticks, not heartbeat responses', () => {
      const opts = { heartbeatTicks: 10, electionTicks: 100 };
      const net = new Network(THREE.map((id) => core(id, THREE, opts)));
      net.elect('n1');
      const leader = net.get('n1');
      net.drop = (m) => m.to === 'n3' || m.from === 'n3';
      for (let i = 0; i < 10; i++) leader.propose(data(`w${i}`));
      net.settle();
      leader.compact(leader.commitIndex, data('image'));
      // n3 is back, but the first snapshot is lost on the way.
      const sentAt: number[] = [];
      let ticks = 0;
      net.drop = (m) => {
        if (m.type !== 'snapshot') return false;
        sentAt.push(ticks);
        return sentAt.length === 1;
      };
      while (sentAt.length < 2 && ticks < 2_000) {
        ticks++;
        net.tick(1);
      }
      // Resent once an election timeout passed, at the next heartbeat answer.
      const gap = (sentAt[1] ?? Number.POSITIVE_INFINITY) - (sentAt[0] as number);
      expect(gap).toBeGreaterThanOrEqual(opts.electionTicks);
      expect(gap).toBeLessThanOrEqual(opts.electionTicks + opts.heartbeatTicks);
      expect(net.get('n3').latestSnapshot()?.index).toBe(leader.latestSnapshot()?.index);
    });

    it('hands the host the received snapshot, with the membership it stands for, in a Ready that must be synced', () => {
      const follower = restored('n1', THREE, { term: 1, votedFor: undefined, commit: 0 }, entries(1));
      follower.step({
        type: 'snapshot',
        from: 'n2',
        to: 'n1',
        term: 2,
        snapshot: { index: 7, term: 2, data: data('s') },
      });
      const rd = drain(follower);
      // A snapshot without a recorded membership stands for the initial peers; the host stores that.
      expect(rd.snapshot).toEqual({ index: 7, term: 2, data: data('s'), config: { voters: THREE, learners: [] } });
      expect(rd.mustSync).toBe(true);
      expect(rd.committedEntries).toEqual([]);
      expect(rd.messages).toEqual([expect.objectContaining({ type: 'appendResponse', success: true, index: 7 })]);
      expect(follower.status().appliedIndex).toBe(7);
    });

    it('keeps the entries after a snapshot it already has in its log (Figure 13 step 6)', () => {
      const follower = restored('n1', THREE, { term: 1, votedFor: undefined, commit: 0 }, entries(1, 1, 1, 1));
      follower.step({
        type: 'snapshot',
        from: 'n2',
        to: 'n1',
        term: 1,
        snapshot: { index: 2, term: 1, data: data('s') },
      });
      expect(follower.entries().map((e) => e.index)).toEqual([1, 2, 3, 4]);
      expect(follower.commitIndex).toBe(2);
    });

    it('ignores a snapshot older than its commit index', () => {
      const follower = restored('n1', THREE, { term: 1, votedFor: undefined, commit: 3 }, entries(1, 1, 1));
      follower.step({
        type: 'snapshot',
        from: 'n2',
        to: 'n1',
        term: 1,
        snapshot: { index: 2, term: 1, data: data('s') },
      });
      expect(drain(follower).snapshot).toBeUndefined();
      expect(follower.lastIndex).toBe(3);
    });

    it('refuses to compact beyond what the state machine applied', () => {
      const raft = restored('n1', THREE, { term: 1, votedFor: undefined, commit: 1 }, entries(1, 1), {
        initial: undefined,
      });
      expect(() => raft.compact(5, data('x'))).toThrow(RaftUsageError);
    });

    it('restarts from a snapshot and the entries after it', () => {
      const raft = core('n1', THREE, {
        initial: {
          hardState: { term: 3, votedFor: undefined, commit: 9 },
          entries: [{ index: 9, term: 3, data: data('after') }],
          snapshot: { index: 8, term: 2, data: data('image') },
          applied: 8,
        },
      });
      expect(raft.termAt(8)).toBe(2);
      expect(drain(raft).committedEntries.map((e) => e.index)).toEqual([9]);
    });
  });

  describe('host contract', () => {
    it('refuses a proposal on a follower and names the leader', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      expect(() => net.get('n2').propose(data('x'))).toThrow(NotLeaderError);
      try {
        net.get('n2').propose(data('x'));
      } catch (error) {
        expect((error as NotLeaderError).leaderId).toBe('n1');
      }
    });

    it("counts the leader's own entry toward commit only once the host has written it", () => {
      // A single voter (its own quorum) with a learner: its appends leave before its write
      // (thesis §10.2.1), so they must not announce a commit the leader's disk does not hold.
      const net = new Network(['n1', 'n2'].map((id) => core(id, ['n1'], { learners: ['n2'] })));
      net.elect('n1');
      const leader = net.get('n1');
      expect(leader.commitIndex).toBe(1);
      expect(net.get('n2').commitIndex).toBe(1);
      const position = leader.propose(data('x'));
      expect(leader.commitIndex).toBe(1);
      const rd = leader.ready();
      const appends = rd.messages.filter((m): m is AppendRequest => m.type === 'append');
      expect(appends.map((m) => [m.to, m.entries.length, m.commit])).toEqual([['n2', 1, 1]]);
      expect(rd.committedEntries).toEqual([]);
      leader.advance(rd); // the host wrote rd.entries
      expect(leader.commitIndex).toBe(position.index);
      expect(drain(leader).committedEntries.map((e) => e.index)).toEqual([position.index]);
    });

    it('refuses a second Ready before the first is advanced', () => {
      const raft = core('n1', THREE);
      raft.campaign();
      raft.ready();
      expect(() => raft.ready()).toThrow(RaftUsageError);
    });

    it('hands the leadership to an up-to-date follower, refusing proposals meanwhile', () => {
      const net = new Network(THREE.map((id) => core(id, THREE)));
      net.elect('n1');
      const leader = net.get('n1');
      net.drop = (m) => m.type === 'timeoutNow';
      leader.transferLeadership('n3');
      expect(() => leader.propose(data('x'))).toThrow(LeadershipTransferError);
      net.drop = () => false;
      leader.transferLeadership('n3');
      net.settle();
      expect(net.get('n3').currentRole).toBe('leader');
      expect(net.get('n3').currentTerm).toBe(2);
    });
  });
});
