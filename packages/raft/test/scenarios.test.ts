// Deterministic scenario tests, each named after what it proves (issue 5, "Scenario tests").
import { describe, expect, it } from 'vitest';
import type { RaftCore, RaftCoreOptions } from '../src/raft-core.js';
import { seededRandom } from '../src/simulation/seeded-random.js';
import type { AppendRequest, Message, VoteRequest } from '../src/types.js';
import { core, data, entries, Network, restored } from './helpers.js';

const THREE = ['n1', 'n2', 'n3'];
const FIVE = ['n1', 'n2', 'n3', 'n4', 'n5'];

/** A cluster whose nodes draw election timeouts from distinct seeded streams. */
function cluster(ids: readonly string[], seed = 1): Network {
  const net = new Network(ids.map((id, i) => core(id, ids, { random: seededRandom(seed * 100 + i) })));
  for (const [i, id] of ids.entries()) {
    net.restartWith(id, (initial) => core(id, ids, { random: seededRandom(seed * 100 + i + 50), initial }));
  }
  return net;
}

function leaders(net: Network): RaftCore[] {
  return [...net.cores.values()].filter((raft) => raft.currentRole === 'leader');
}

/** Ticks until exactly one leader is known by every live node, within a bound. */
function tickUntilLeader(net: Network, maxTicks = 200): RaftCore {
  for (let i = 0; i < maxTicks; i++) {
    net.tick(1);
    const found = leaders(net);
    if (found.length === 1) {
      const leader = found[0] as RaftCore;
      if ([...net.cores.values()].every((raft) => raft.currentLeader === leader.id)) return leader;
    }
  }
  throw new Error(`no single leader after ${maxTicks} ticks`);
}

const isolate =
  (...ids: string[]) =>
  (m: Message) =>
    ids.includes(m.from) !== ids.includes(m.to);

const committedData = (net: Network, id: string) =>
  (net.applied.get(id) ?? []).filter((e) => e.data.length > 0).map((e) => new TextDecoder().decode(e.data));

const terms = (raft: RaftCore) => raft.entries().map((e) => e.term);

describe('Raft scenarios', () => {
  it('initial election: one leader, known to all, in term 1', () => {
    const net = cluster(THREE);
    const leader = tickUntilLeader(net);
    expect(leaders(net)).toHaveLength(1);
    expect(leader.currentTerm).toBe(1);
    for (const raft of net.cores.values()) expect(raft.currentTerm).toBe(1);
  });

  it('leader crash failover: a survivor takes over with every committed entry, and the old leader catches up', () => {
    const net = cluster(THREE);
    const first = tickUntilLeader(net);
    first.propose(data('x'));
    net.settle();
    net.crash(first.id);
    const second = tickUntilLeader(net);
    expect(second.id).not.toBe(first.id);
    expect(committedData(net, second.id)).toEqual(['x']);
    second.propose(data('y'));
    net.settle();
    const back = net.restart(first.id);
    net.tick(3);
    expect(back.currentRole).toBe('follower');
    expect(committedData(net, first.id)).toEqual(['x', 'y']);
    for (const raft of net.cores.values()) expect(terms(raft)).toEqual(terms(second));
  });

  it('isolated leader steps down (check-quorum) and its uncommitted entries are discarded', () => {
    const net = cluster(THREE);
    const old = tickUntilLeader(net);
    net.drop = isolate(old.id);
    old.propose(data('lost'));
    net.tick(25, [old.id]);
    expect(old.currentRole).toBe('follower');
    const survivors = THREE.filter((id) => id !== old.id);
    for (let i = 0; i < 200 && !survivors.some((id) => net.get(id).currentRole === 'leader'); i++)
      net.tick(1, survivors);
    const fresh = net.get(survivors.find((id) => net.get(id).currentRole === 'leader') as string);
    fresh.propose(data('kept'));
    net.settle();
    net.drop = () => false;
    net.tick(3);
    expect(committedData(net, old.id)).toEqual(['kept']);
    expect(terms(old)).toEqual(terms(fresh));
  });

  it('a rejoining follower does not bump the term (pre-vote)', () => {
    const net = cluster(THREE);
    const leader = tickUntilLeader(net);
    const term = leader.currentTerm;
    const loner = THREE.find((id) => id !== leader.id) as string;
    net.drop = isolate(loner);
    net.tick(100);
    expect(net.get(loner).currentTerm).toBe(term);
    net.drop = () => false;
    net.tick(5);
    expect(leader.currentRole).toBe('leader');
    expect(leader.currentTerm).toBe(term);
    expect(net.get(loner).currentLeader).toBe(leader.id);
  });

  it('election restriction: a node missing a committed entry cannot become leader', () => {
    const net = cluster(THREE);
    net.elect('n1');
    net.drop = isolate('n3');
    net.get('n1').propose(data('x'));
    net.settle();
    expect(net.get('n1').commitIndex).toBe(2);
    net.crash('n1');
    net.drop = () => false;
    // n3 times out first but n2 refuses it (its log lacks entry 2); n2 wins.
    net.get('n3').campaign();
    net.settle();
    expect(net.get('n3').currentRole).not.toBe('leader');
    const leader = tickUntilLeader(net);
    expect(leader.id).toBe('n2');
    expect(committedData(net, 'n2')).toEqual(['x']);
  });

  describe('the Figure 8 scenario with 5 nodes', () => {
    /**
     * Raft paper Figure 8: (a) S1 leads term 2 and puts index 2 on S2 only; (b) S1 crashes,
     * S5 wins term 3 with S3, S4 and writes its own index 2 locally; (c) S5 crashes, S1
     * wins term 4 and copies its term-2 entry to S3, a majority; (d) S1 crashes and S5
     * wins term 5 with S2, S3, S4 and overwrites index 2. (d) is only safe because (c) did
     * not commit the term-2 entry.
     */
    function figure8(bugs: readonly 'commit-previous-term'[]): { net: Network; committedAtC: number } {
      // The paper's setting: no pre-vote and no check-quorum lease.
      const opts = (id: string) => ({
        preVote: false,
        checkQuorum: false,
        maxEntriesPerAppend: 1,
        testOnlyBugs: [...bugs],
        random: seededRandom(id.charCodeAt(1)),
      });
      const net = new Network(FIVE.map((id) => core(id, FIVE, opts(id))));
      for (const id of FIVE) net.restartWith(id, (initial) => core(id, FIVE, { ...opts(id), initial }));
      const involves = (m: Message, id: string) => m.from === id || m.to === id;
      // Term 1: S1 leads and everyone stores its no-op (index 1).
      net.elect('n1');
      // (a) Term 2: S1 leads again; its entries (indexes 2-3) reach only S2.
      net.crash('n1');
      net.restart('n1');
      net.drop = (m) => m.type === 'append' && m.from === 'n1' && m.to !== 'n2';
      net.elect('n1');
      expect(net.get('n1').currentTerm).toBe(2);
      net.get('n1').propose(data('s1-term2'));
      net.settle();
      expect(terms(net.get('n2'))).toEqual([1, 2, 2]);
      // (b) S1 crashes; S5 wins term 3 with S3 and S4 and appends locally only.
      net.crash('n1');
      net.drop = (m) => (m.type === 'append' && m.from === 'n5') || involves(m, 'n2');
      net.elect('n5');
      expect(net.get('n5').currentTerm).toBe(3);
      expect(net.get('n5').currentRole).toBe('leader');
      net.get('n5').propose(data('s5-term3'));
      net.settle();
      expect(terms(net.get('n5'))).toEqual([1, 3, 3]);
      // (c) S5 crashes; S1 restarts and wins term 4 with S3 and S4, and copies its term-2
      // entries to them, a majority with itself; its term-4 no-op gets out to nobody.
      net.crash('n5');
      net.restart('n1');
      net.drop = (m) =>
        involves(m, 'n2') ||
        (m.type === 'append' &&
          m.entries.some((e) => e.term === 4) &&
          (net.cores.get(m.to)?.lastIndex ?? 0) >= m.prevLogIndex);
      // Its first try (term 3) fails: S3 and S4 voted for S5 in term 3.
      for (let i = 0; i < 5 && net.get('n1').currentRole !== 'leader'; i++) net.elect('n1');
      expect(net.get('n1').currentTerm).toBe(4);
      net.tick(2);
      expect(terms(net.get('n3'))).toEqual([1, 2, 2]);
      expect(terms(net.get('n4'))).toEqual([1, 2, 2]);
      const committedAtC = net.get('n1').commitIndex;
      // (d) S1 crashes; S5 comes back and, with S2, S3 and S4, wins a later term and
      // overwrites indexes 2-3 with its term-3 entries.
      net.crash('n1');
      net.restart('n5');
      net.drop = (m) => m.type === 'append';
      for (let i = 0; i < 5 && net.get('n5').currentRole !== 'leader'; i++) net.elect('n5');
      expect(net.get('n5').currentRole).toBe('leader');
      expect(terms(net.get('n5')).slice(0, 3)).toEqual([1, 3, 3]);
      return { net, committedAtC };
    }

    it('does not commit the term-2 entries in (c), so S5 overwriting them in (d) loses nothing', () => {
      const { net, committedAtC } = figure8([]);
      expect(committedAtC).toBe(1);
      net.drop = () => false;
      net.tick(3);
      expect(terms(net.get('n3')).slice(0, 3)).toEqual([1, 3, 3]);
      for (const id of ['n2', 'n3', 'n4', 'n5']) expect(committedData(net, id)).toEqual(['s5-term3']);
    });

    it('with the Figure 8 bug switched on, commits in (c) the entries that (d) then erases', () => {
      const { net, committedAtC } = figure8(['commit-previous-term']);
      // Index 3 (term 2) was "committed" in term 4, yet the leader of a later term lacks it:
      // Leader Completeness is broken.
      expect(committedAtC).toBe(3);
      expect(net.get('n5').currentTerm).toBeGreaterThan(4);
      expect(net.get('n5').termAt(3)).toBe(3);
    });
  });

  it('divergent followers of Figure 7 are repaired to the leader log', () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers: Record<string, number[]> = {
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    for (const [name, log] of Object.entries(followers)) {
      const leader = restored('n1', THREE, { term: 7, votedFor: undefined, commit: 0 }, entries(...leaderLog), {
        preVote: false,
      });
      const follower = restored('n2', THREE, { term: 7, votedFor: undefined, commit: 0 }, entries(...log));
      const voter = restored('n3', THREE, { term: 7, votedFor: undefined, commit: 0 }, entries(1, 1, 1));
      const net = new Network([leader, follower, voter]);
      net.drop = isolate('n2');
      net.elect('n1');
      expect(leader.currentTerm, name).toBe(8);
      net.drop = () => false;
      leader.propose(data('new'));
      net.tick(3);
      expect(terms(follower), name).toEqual([...leaderLog, 8, 8]);
      expect(follower.commitIndex, name).toBe(12);
    }
  });

  it('stale-term messages are ignored, and their sender learns the new term', () => {
    const net = cluster(THREE);
    net.elect('n1');
    net.get('n1').propose(data('stale'));
    const held: AppendRequest[] = [];
    net.drop = (m) => {
      if (m.from === 'n1' && m.type === 'append') held.push(m);
      return isolate('n1')(m);
    };
    net.settle();
    expect(held.length).toBeGreaterThan(0);
    // n2 and n3 wait out n1's lease, then elect one of themselves in term 2.
    for (let i = 0; i < 200 && !leaders(net).some((r) => r.id !== 'n1'); i++) net.tick(1, ['n2', 'n3']);
    const fresh = leaders(net).find((r) => r.id !== 'n1') as RaftCore;
    expect(fresh.currentTerm).toBe(2);
    fresh.propose(data('fresh'));
    net.settle();
    const before = { n2: terms(net.get('n2')), n3: terms(net.get('n3')) };
    net.drop = () => false;
    for (const m of held) net.get(m.to).step(m);
    net.settle();
    expect({ n2: terms(net.get('n2')), n3: terms(net.get('n3')) }).toEqual(before);
    expect(net.get('n1').currentTerm).toBe(2);
    expect(net.get('n1').currentRole).toBe('follower');
  });

  it('linearizable read across a leader change: a deposed leader cannot confirm a read, the new one sees the new write', () => {
    const net = cluster(THREE);
    const old = tickUntilLeader(net);
    const survivors = THREE.filter((id) => id !== old.id);
    net.drop = isolate(old.id);
    // The old leader still believes it leads (its check-quorum has not fired yet).
    old.readIndex('stale');
    for (let i = 0; i < 200 && !survivors.some((id) => net.get(id).currentRole === 'leader'); i++) {
      net.tick(1, survivors);
    }
    const fresh = net.get(survivors.find((id) => net.get(id).currentRole === 'leader') as string);
    const write = fresh.propose(data('x=2'));
    net.settle();
    fresh.readIndex('fresh');
    net.tick(3);
    expect(net.readStates.filter((r) => r.context === 'stale')).toEqual([]);
    const confirmed = net.readStates.find((r) => r.context === 'fresh');
    expect(confirmed?.node).toBe(fresh.id);
    expect(confirmed?.index).toBeGreaterThanOrEqual(write.index);
  });

  it('snapshot catch-up with the stream killed mid-transfer: the leader resends and the follower converges', () => {
    const net = cluster(THREE);
    const leader = tickUntilLeader(net);
    const lagging = THREE.find((id) => id !== leader.id) as string;
    net.drop = isolate(lagging);
    for (let i = 0; i < 20; i++) leader.propose(data(`w${i}`));
    net.settle();
    leader.compact(leader.commitIndex, data(`image@${leader.commitIndex}`));
    // The first transfer dies on the way (a killed snapshot stream).
    let killed = 0;
    net.drop = (m) => m.type === 'snapshot' && killed++ === 0;
    net.tick(30);
    expect(killed).toBeGreaterThan(1);
    const follower = net.get(lagging);
    expect(follower.latestSnapshot()?.index).toBe(leader.latestSnapshot()?.index);
    leader.propose(data('after'));
    net.settle();
    expect(terms(follower)).toEqual(terms(leader));
    expect(committedData(net, lagging)).toEqual(['after']);
  });

  it('split votes converge to one leader within a few election timeouts', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const net = cluster(FIVE, seed);
      // Everyone times out at once: pre-votes all pass and the votes split.
      for (const raft of net.cores.values()) raft.campaign();
      net.settle();
      const leader = tickUntilLeader(net, 200);
      expect(leaders(net)).toEqual([leader]);
    }
  });

  it('vote and term survive a crash', () => {
    const net = cluster(THREE);
    net.get('n1').step({ type: 'vote', from: 'n2', to: 'n1', term: 5, lastLogIndex: 0, lastLogTerm: 0 });
    net.settle();
    net.crash('n1');
    const back = net.restart('n1');
    expect(back.currentTerm).toBe(5);
    back.step({ type: 'vote', from: 'n3', to: 'n1', term: 5, lastLogIndex: 9, lastLogTerm: 4 });
    back.step({ type: 'vote', from: 'n2', to: 'n1', term: 5, lastLogIndex: 0, lastLogTerm: 0 });
    const replies = back.ready().messages;
    expect(replies.map((m) => [m.to, m.type === 'voteResponse' && m.granted])).toEqual([
      ['n3', false],
      ['n2', true],
    ]);
  });

  describe('leadership transfer', () => {
    it('hands over to an up-to-date follower at once', () => {
      const net = cluster(THREE);
      const leader = tickUntilLeader(net);
      const target = THREE.find((id) => id !== leader.id) as string;
      leader.transferLeadership(target);
      net.settle();
      expect(net.get(target).currentRole).toBe('leader');
      expect(leader.currentRole).toBe('follower');
    });

    it('catches a lagging target up first, then hands over with every entry', () => {
      const net = cluster(THREE);
      const leader = tickUntilLeader(net);
      const target = THREE.find((id) => id !== leader.id) as string;
      net.drop = isolate(target);
      for (let i = 0; i < 10; i++) leader.propose(data(`w${i}`));
      net.settle();
      net.drop = () => false;
      leader.transferLeadership(target);
      net.settle();
      const next = net.get(target);
      expect(next.currentRole).toBe('leader');
      next.propose(data('after'));
      net.settle();
      expect(committedData(net, target)).toEqual([...Array.from({ length: 10 }, (_, i) => `w${i}`), 'after']);
    });

    it("completes when the target's first vote requests are lost: it asks again with the transfer's force", () => {
      const net = cluster(THREE);
      const leader = tickUntilLeader(net);
      const target = THREE.find((id) => id !== leader.id) as string;
      let lost = 0;
      net.drop = (m) => m.type === 'vote' && m.from === target && ++lost <= 2;
      leader.transferLeadership(target);
      net.settle();
      expect(net.get(target).currentRole).toBe('candidate');
      // Both voters still heard from the leader within the election timeout (its lease):
      // only a request marked as a transfer's (thesis §3.10) gets an answer.
      net.tick(1, [target]);
      expect(net.get(target).currentRole).toBe('leader');
      const requests = net.sent.filter((m): m is VoteRequest => m.type === 'vote' && m.from === target);
      expect(requests.map((m) => m.force)).toEqual(requests.map(() => true));
    });
  });

  it('an asymmetric partition (leader cannot reach one follower) stays live without term inflation', () => {
    const net = cluster(THREE);
    const leader = tickUntilLeader(net);
    const term = leader.currentTerm;
    const deaf = THREE.find((id) => id !== leader.id) as string;
    net.drop = (m) => m.from === leader.id && m.to === deaf;
    for (let i = 0; i < 100; i++) {
      if (i % 10 === 0) leader.propose(data(`w${i}`));
      net.tick(1);
    }
    expect(leader.currentRole).toBe('leader');
    expect(leader.currentTerm).toBe(term);
    expect(committedData(net, leader.id)).toHaveLength(10);
  });

  /**
   * A slow-disk leader, as the runtime runs it: its appends leave before its own write
   * (thesis §10.2.1), so it must not count its own copy towards a commit until that write
   * is durable. n3 is cut off, so the leader and n2 are the only majority: until the
   * leader's write completes, the new entry is on one disk only and must not be committed
   * anywhere: not applied on the leader, no commit index covering it sent to anyone.
   */
  const slowDiskLeader = (): { net: Network; leader: RaftCore; other: string } => {
    const net = cluster(THREE);
    const leader = tickUntilLeader(net);
    leader.propose(data('durable'));
    net.settle();
    const other = THREE.find((id) => id !== leader.id) as string;
    const cut = THREE.find((id) => id !== leader.id && id !== other) as string;
    net.drop = isolate(cut);
    net.slowDisk.add(leader.id);
    const before = net.sent.length;
    leader.propose(data('volatile'));
    net.tick(3);
    // The appends left before the leader's own write (which is still in flight).
    expect(net.isWriting(leader.id)).toBe(true);
    expect(net.get(other).lastIndex).toBe(leader.lastIndex);
    expect(net.disk.get(leader.id)?.entries.length).toBe(leader.lastIndex - 1);
    // Nothing counts the new entry as committed on the leader's vote while its write is pending.
    const volatileIndex = leader.lastIndex;
    const exposed = net.sent
      .slice(before)
      .filter((m) => m.from === leader.id && 'commit' in m && (m as { commit: number }).commit >= volatileIndex);
    expect(exposed).toEqual([]);
    // n2's acknowledgement did arrive: with the leader's own copy that is a majority, yet
    // the leader exposes no commit until its own write completes (the host takes the next
    // Ready, the only way a commit leaves the core, after the write).
    expect(
      net.sent.some((m) => m.type === 'appendResponse' && m.from === other && m.success && m.index >= volatileIndex),
    ).toBe(true);
    expect(committedData(net, leader.id)).toEqual(['durable']);
    expect(net.get(other).commitIndex).toBeLessThan(volatileIndex);
    return { net, leader, other };
  };

  it('slow-disk leader stays safe: it commits nothing on its own vote before its write is durable, and a crash loses only the unacknowledged entry', () => {
    const { net, leader, other } = slowDiskLeader();
    net.crash(leader.id);
    net.slowDisk.delete(leader.id);
    net.drop = () => false;
    const next = tickUntilLeader(net);
    // Only n2 held the entry durably, so the election restriction makes it the new leader.
    expect(next.id).toBe(other);
    next.propose(data('after'));
    net.settle();
    const back = net.restart(leader.id);
    net.tick(3);
    for (const id of THREE) expect(committedData(net, id).slice(0, 1)).toEqual(['durable']);
    expect(committedData(net, back.id)).toEqual(committedData(net, next.id));
    expect(terms(back)).toEqual(terms(next));
  });

  it('slow-disk leader stays safe: once its write is durable the entry commits, and survives the leader crashing right after the acknowledgement', () => {
    const { net, leader } = slowDiskLeader();
    net.flushDisk(leader.id);
    // Acknowledged to the client: applied on the leader.
    expect(committedData(net, leader.id)).toEqual(['durable', 'volatile']);
    net.crash(leader.id);
    net.drop = () => false;
    const next = tickUntilLeader(net);
    next.propose(data('after'));
    net.settle();
    const back = net.restart(leader.id);
    net.tick(3);
    for (const id of THREE) expect(committedData(net, id)).toEqual(['durable', 'volatile', 'after']);
    expect(terms(back)).toEqual(terms(next));
  });

  it('slow-disk single-voter leader stays safe: a learner never applies an entry the leader loses in a crash before its write', () => {
    // One voter is its own quorum. Its appends leave before its write (thesis §10.2.1), so
    // they must not carry a commit index its disk does not back (etcd: the leader
    // acknowledges its own append only after the write).
    const members = (id: string, initial?: RaftCoreOptions['initial']) =>
      core(id, ['n1'], { learners: ['n2'], ...(initial === undefined ? {} : { initial }) });
    const net = new Network([members('n1'), members('n2')]);
    net.restartWith('n1', (initial) => members('n1', initial));
    net.elect('n1');
    net.get('n1').propose(data('durable'));
    net.tick(2);
    expect(committedData(net, 'n2')).toEqual(['durable']);
    net.slowDisk.add('n1');
    const before = net.sent.length;
    const lost = net.get('n1').propose(data('volatile'));
    net.tick(3);
    // The learner holds the entry; nothing sent says it is committed.
    expect(net.isWriting('n1')).toBe(true);
    expect(net.get('n2').lastIndex).toBe(lost.index);
    const exposed = net.sent
      .slice(before)
      .filter((m) => m.from === 'n1' && 'commit' in m && (m as { commit: number }).commit >= lost.index);
    expect(exposed).toEqual([]);
    // kill -9 before the write: the restarted leader writes its no-op in that slot.
    net.crash('n1');
    net.slowDisk.delete('n1');
    net.restart('n1');
    net.elect('n1');
    net.tick(3);
    expect(committedData(net, 'n2')).toEqual(['durable']);
    expect(
      net
        .get('n2')
        .entries()
        .map((e) => e.term),
    ).toEqual(
      net
        .get('n1')
        .entries()
        .map((e) => e.term),
    );
    net.get('n1').propose(data('after'));
    net.tick(2);
    expect(committedData(net, 'n2')).toEqual(['durable', 'after']);
  });
});
