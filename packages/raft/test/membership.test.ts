// Membership changes, one server at a time (Raft thesis §4.1-§4.2): learners, promotion,
// removal (the leader included), and the rules that keep single-server changes safe.
import { describe, expect, it } from 'vitest';
import { ConfigChangeError } from '../src/errors.js';
import type { RaftCore } from '../src/raft-core.js';
import { seededRandom } from '../src/simulation/seeded-random.js';
import { core, data, entries, Network, restored } from './helpers.js';

const THREE = ['n1', 'n2', 'n3'];

function cluster(): Network {
  const net = new Network(THREE.map((id, i) => core(id, THREE, { random: seededRandom(i + 1) })));
  net.elect('n1');
  return net;
}

/** A new server that knows the cluster and starts as a learner. */
function joiner(id: string): RaftCore {
  return core(id, THREE, { learners: [id], random: seededRandom(99) });
}

describe('RaftCore membership (thesis §4)', () => {
  it('adds a learner that replicates the log but neither votes nor counts for commit', () => {
    const net = cluster();
    const leader = net.get('n1');
    net.add(joiner('n4'));
    leader.proposeConfChange({ type: 'addLearner', node: 'n4' });
    net.settle();
    expect(leader.clusterConfig).toEqual({ voters: THREE, learners: ['n4'] });
    leader.propose(data('x'));
    net.settle();
    expect(net.get('n4').commitIndex).toBe(leader.commitIndex);
    // With both other voters cut off, the learner's acknowledgement cannot commit anything.
    net.drop = (m) => m.from === 'n2' || m.from === 'n3';
    const before = leader.commitIndex;
    leader.propose(data('y'));
    net.settle();
    expect(leader.commitIndex).toBe(before);
    // And a learner never campaigns.
    net.drop = (m) => m.from === 'n1';
    for (let i = 0; i < 60; i++) net.get('n4').tick();
    expect(net.get('n4').currentRole).toBe('follower');
  });

  it('promotes a caught-up learner, which then counts toward the quorum', () => {
    const net = cluster();
    const leader = net.get('n1');
    net.add(joiner('n4'));
    leader.proposeConfChange({ type: 'addLearner', node: 'n4' });
    net.settle();
    leader.proposeConfChange({ type: 'promoteLearner', node: 'n4' });
    net.settle();
    expect(leader.clusterConfig).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    expect(net.get('n4').clusterConfig.voters).toContain('n4');
    // Four voters: a majority is three; n1 + n4 alone cannot commit.
    net.drop = (m) => m.from === 'n2' || m.from === 'n3';
    const before = leader.commitIndex;
    leader.propose(data('z'));
    net.settle();
    expect(leader.commitIndex).toBe(before);
  });

  it('refuses to promote a learner that has not caught up', () => {
    const net = cluster();
    const leader = net.get('n1');
    leader.propose(data('x'));
    net.settle();
    // n4 never receives anything.
    leader.proposeConfChange({ type: 'addLearner', node: 'n4' });
    net.settle();
    expect(() => leader.proposeConfChange({ type: 'promoteLearner', node: 'n4' })).toThrow(ConfigChangeError);
  });

  it('allows one change at a time: a second waits until the first commits', () => {
    const net = cluster();
    const leader = net.get('n1');
    net.drop = (m) => m.type === 'append';
    leader.proposeConfChange({ type: 'addLearner', node: 'n4' });
    expect(() => leader.proposeConfChange({ type: 'removeNode', node: 'n3' })).toThrow(ConfigChangeError);
    net.drop = () => false;
    net.tick(2);
    expect(() => leader.proposeConfChange({ type: 'removeNode', node: 'n3' })).not.toThrow();
  });

  it('refuses a change before the new leader committed an entry of its term', () => {
    const net = new Network(THREE.map((id) => core(id, THREE)));
    net.drop = (m) => m.type === 'append';
    net.elect('n1');
    expect(() => net.get('n1').proposeConfChange({ type: 'addLearner', node: 'n4' })).toThrow(/not committed an entry/);
  });

  it('removes a follower: the quorum shrinks and the removed server stops campaigning', () => {
    const net = cluster();
    const leader = net.get('n1');
    leader.proposeConfChange({ type: 'removeNode', node: 'n3' });
    net.settle();
    expect(leader.clusterConfig.voters).toEqual(['n1', 'n2']);
    net.drop = (m) => m.to === 'n3' || m.from === 'n3';
    leader.propose(data('after'));
    net.settle();
    expect(net.get('n2').commitIndex).toBe(leader.commitIndex);
    for (let i = 0; i < 60; i++) net.get('n3').tick();
    expect(net.get('n3').currentRole).not.toBe('candidate');
  });

  it('removes the leader: it replicates the change, steps down once it commits, and the rest elect a leader', () => {
    const net = cluster();
    const leader = net.get('n1');
    leader.proposeConfChange({ type: 'removeNode', node: 'n1' });
    net.settle();
    net.tick(1);
    expect(leader.currentRole).toBe('follower');
    expect(net.get('n2').clusterConfig.voters).toEqual(['n2', 'n3']);
    net.crash('n1');
    for (let i = 0; i < 100 && ![net.get('n2'), net.get('n3')].some((r) => r.currentRole === 'leader'); i++)
      net.tick(1);
    const next = [net.get('n2'), net.get('n3')].find((r) => r.currentRole === 'leader') as RaftCore;
    expect(next).toBeDefined();
    next.propose(data('without n1'));
    net.settle();
    expect(net.get('n2').commitIndex).toBe(net.get('n3').commitIndex);
  });

  it('sends no append once the removed leader has stepped down', () => {
    const net = cluster();
    const leader = net.get('n1');
    const before = net.sent.length;
    const removal = leader.proposeConfChange({ type: 'removeNode', node: 'n1' });
    net.settle();
    expect(leader.currentRole).toBe('follower');
    expect(leader.commitIndex).toBeGreaterThanOrEqual(removal.index);
    // While it led, n1's appends carried a commit index below its removal: any append that
    // announces the removal committed was sent after n1 stepped down, as if it still led.
    const afterStepDown = net.sent
      .slice(before)
      .filter((m) => m.from === 'n1' && m.type === 'append' && m.commit >= removal.index);
    expect(afterStepDown).toEqual([]);
  });

  it('never lets a learner campaign when its leader crashes (thesis §4.2.1): a voter takes over', () => {
    // The voters wait one tick after the drop; the learner draws no delay.
    const net = new Network(['n1', 'n2', 'n3'].map((id) => core(id, THREE, { learners: ['n4'], random: () => 0.5 })));
    net.elect('n1');
    net.add(core('n4', THREE, { learners: ['n4'] }));
    net.get('n1').propose(data('x'));
    net.tick(2);
    expect(net.get('n4').commitIndex).toBe(net.get('n1').commitIndex);
    net.crash('n1');
    for (const id of ['n2', 'n3', 'n4']) net.get(id).peerUnreachable('n1');
    net.settle();
    expect(net.sent.filter((m) => m.from === 'n4' && (m.type === 'preVote' || m.type === 'vote'))).toEqual([]);
    expect(net.get('n4').currentRole).toBe('follower');
    for (let i = 0; i < 60 && net.leader() === undefined; i++) net.tick(1);
    expect(['n2', 'n3']).toContain(net.leader()?.id);
    expect(net.sent.some((m) => m.from === 'n4' && m.type === 'append')).toBe(false);
  });

  it('falls back to the previous config when an uncommitted config entry is truncated', () => {
    const config = (voters: string[]) => ({
      index: 2,
      term: 1,
      data: data(JSON.stringify({ voters, learners: [] })),
      kind: 'config' as const,
    });
    const follower = restored('n2', THREE, { term: 1, votedFor: undefined, commit: 1 }, [
      ...entries(1),
      config(['n1', 'n2']),
    ]);
    expect(follower.clusterConfig.voters).toEqual(['n1', 'n2']);
    follower.step({
      type: 'append',
      from: 'n3',
      to: 'n2',
      term: 2,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [{ index: 2, term: 2, data: data('other') }],
      commit: 1,
    });
    expect(follower.clusterConfig.voters).toEqual(THREE);
  });

  it('accepts a leader that its latest, uncommitted config removed (thesis §4.2.3)', () => {
    // n2 holds an uncommitted entry removing n3; n3 then leads a later term.
    const removal = {
      index: 2,
      term: 1,
      data: data(JSON.stringify({ voters: ['n1', 'n2'], learners: [] })),
      kind: 'config' as const,
    };
    const follower = restored('n2', THREE, { term: 1, votedFor: undefined, commit: 1 }, [...entries(1), removal]);
    follower.step({
      type: 'append',
      from: 'n3',
      to: 'n2',
      term: 2,
      prevLogIndex: 1,
      prevLogTerm: 1,
      entries: [{ index: 2, term: 2, data: new Uint8Array(0) }],
      commit: 2,
    });
    expect(follower.currentTerm).toBe(2);
    expect(follower.currentLeader).toBe('n3');
    expect(follower.clusterConfig.voters).toEqual(THREE);
    expect(follower.commitIndex).toBe(2);
  });

  it('carries the config in snapshots', () => {
    const net = cluster();
    const leader = net.get('n1');
    leader.proposeConfChange({ type: 'removeNode', node: 'n3' });
    net.settle();
    leader.propose(data('x'));
    net.settle();
    leader.compact(leader.commitIndex, data('image'));
    expect(leader.latestSnapshot()?.config).toEqual({ voters: ['n1', 'n2'], learners: [] });
    const fresh = core('n2', THREE, {
      initial: {
        hardState: { term: 1, votedFor: undefined, commit: 0 },
        entries: [],
        snapshot: leader.latestSnapshot() as never,
      },
    });
    expect(fresh.clusterConfig.voters).toEqual(['n1', 'n2']);
  });
});
