import { freePort, tempDir, waitFor } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { NotLeaderError } from '../src/errors.js';
import { openRaftNode, type RaftNode, SessionExpiredError, SessionStaleError } from '../src/raft-node.js';
import { openSqliteStorage } from '../src/sqlite-storage.js';
import { createFaultProxy } from '../src/testing/fault-proxy.js';

async function inProcessCluster(dir: string, snapshotEvery?: number, maxSessions?: number) {
  const members: Record<string, { host: string; port: number }> = {};
  for (const id of ['n1', 'n2', 'n3']) members[id] = { host: '127.0.0.1', port: await freePort() };
  const applied = new Map<string, string[]>();
  const open = (id: string) => {
    applied.set(id, []);
    return openRaftNode({
      id,
      members,
      dataDir: `${dir}/${id}`,
      clusterSecret: 'in-process test cluster secret',
      // Fast timings keep the test short; the defaults are exercised by the benchmark.
      tickMs: 5,
      heartbeatMs: 20,
      electionMs: 200,
      seed: id.charCodeAt(1),
      ...(snapshotEvery === undefined ? {} : { snapshotEvery }),
      ...(maxSessions === undefined ? {} : { maxSessions }),
      stateMachine: {
        apply(command) {
          const list = applied.get(id) as string[];
          list.push(new TextDecoder().decode(command));
          return list.length;
        },
        snapshot: () => new TextEncoder().encode(JSON.stringify(applied.get(id))),
        restore(image) {
          applied.set(id, JSON.parse(new TextDecoder().decode(image)) as string[]);
        },
      },
    });
  };
  const nodes = await Promise.all(Object.keys(members).map(open));
  let leader: RaftNode | undefined;
  for (let i = 0; i < 400 && leader === undefined; i++) {
    await new Promise((r) => setTimeout(r, 10));
    leader = nodes.find((n) => n.status().role === 'leader');
  }
  if (leader === undefined) throw new Error('no leader');
  return { nodes, leader, applied, open, close: () => Promise.all(nodes.map((n) => n.close())) };
}

const bytes = (text: string) => new TextEncoder().encode(text);

/**
 * Starts `id` as a learner beside `cluster`, has the leader write 'before', add it, wait
 * until the leader sees it caught up (its match index, not the learner's own view) and
 * promote it to a voter. The node goes into `opened` as soon as it is open (for closing).
 */
async function joinAsVoter(
  cluster: Awaited<ReturnType<typeof inProcessCluster>>,
  dir: string,
  id: string,
  opened: RaftNode[],
): Promise<RaftNode> {
  const address = { host: '127.0.0.1', port: await freePort() };
  const members: Record<string, { host: string; port: number }> = { [id]: address };
  for (const node of cluster.nodes) members[node.id] = node.addresses.get(node.id) as { host: string; port: number };
  cluster.applied.set(id, []);
  const node = await openRaftNode({
    id,
    members,
    learner: true,
    dataDir: `${dir}/${id}`,
    clusterSecret: 'in-process test cluster secret',
    tickMs: 5,
    heartbeatMs: 20,
    electionMs: 200,
    stateMachine: {
      apply(command) {
        (cluster.applied.get(id) as string[]).push(new TextDecoder().decode(command));
        return 0;
      },
    },
  });
  opened.push(node);
  await cluster.leader.propose(bytes('before'));
  await cluster.leader.addLearner(id, address);
  const caughtUp = () => (cluster.leader.status().peers[id]?.match ?? 0) >= cluster.leader.status().commitIndex;
  for (let i = 0; i < 300 && !caughtUp(); i++) await new Promise((r) => setTimeout(r, 10));
  await cluster.leader.promoteLearner(id);
  return node;
}

describe('RaftNode', () => {
  it('applies a retried proposal once and answers the retry with the first result', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      const first = await cluster.leader.propose(bytes('set x 1'), { clientId: 'c1', sequence: 1 });
      // The client never saw the answer (say the leader died) and retries the same request.
      const retry = await cluster.leader.propose(bytes('set x 1'), { clientId: 'c1', sequence: 1 });
      const next = await cluster.leader.propose(bytes('set x 2'), { clientId: 'c1', sequence: 2 });
      expect(retry).toBe(first);
      expect(next).toBe(2);
      expect(cluster.applied.get(cluster.leader.id)).toEqual(['set x 1', 'set x 2']);
    } finally {
      await cluster.close();
    }
  });

  it('answers the retries of a pipelined client each with its own result (firstUnacked window)', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      const leader = cluster.leader;
      const [one, two] = await Promise.all([
        leader.propose(bytes('w1'), { clientId: 'p', sequence: 1, firstUnacked: 1 }),
        leader.propose(bytes('w2'), { clientId: 'p', sequence: 2, firstUnacked: 1 }),
      ]);
      // Both answers were lost; the client retries both with the same window.
      const [retryOne, retryTwo] = await Promise.all([
        leader.propose(bytes('w1'), { clientId: 'p', sequence: 1, firstUnacked: 1 }),
        leader.propose(bytes('w2'), { clientId: 'p', sequence: 2, firstUnacked: 1 }),
      ]);
      expect([retryOne, retryTwo]).toEqual([one, two]);
      expect(one).not.toEqual(two);
      expect(cluster.applied.get(leader.id)).toEqual(['w1', 'w2']);
    } finally {
      await cluster.close();
    }
  });

  it('refuses an older request of a client that declared no window with SessionStaleError, without applying it', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      const leader = cluster.leader;
      await leader.propose(bytes('s1'), { clientId: 's', sequence: 1 });
      await leader.propose(bytes('s3'), { clientId: 's', sequence: 3 });
      const stale = leader.propose(bytes('s2'), { clientId: 's', sequence: 2 });
      await expect(stale).rejects.toBeInstanceOf(SessionStaleError);
      await expect(stale).rejects.toMatchObject({ code: 'UNRDF_RAFT_SESSION_STALE' });
      expect(cluster.applied.get(leader.id)).toEqual(['s1', 's3']);
    } finally {
      await cluster.close();
    }
  });

  it('expires the least recently used session and refuses its later requests rather than risk a duplicate', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path, undefined, 2);
    try {
      const leader = cluster.leader;
      await leader.propose(bytes('a1'), { clientId: 'a', sequence: 1 });
      await leader.propose(bytes('b1'), { clientId: 'b', sequence: 1 });
      await leader.propose(bytes('a2'), { clientId: 'a', sequence: 2 });
      await leader.propose(bytes('c1'), { clientId: 'c', sequence: 1 }); // evicts b, the least recently used
      await expect(leader.propose(bytes('b2'), { clientId: 'b', sequence: 2 })).rejects.toBeInstanceOf(
        SessionExpiredError,
      );
      await expect(leader.propose(bytes('z5'), { clientId: 'z', sequence: 5 })).rejects.toBeInstanceOf(
        SessionExpiredError,
      );
      await leader.propose(bytes('a3'), { clientId: 'a', sequence: 3 });
      expect(cluster.applied.get(leader.id)).toEqual(['a1', 'b1', 'a2', 'c1', 'a3']);
    } finally {
      await cluster.close();
    }
  });

  it('serves a linearizable read on the leader and refuses one on a follower', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      await cluster.leader.propose(bytes('a'));
      const seen = await cluster.leader.read(() => [...(cluster.applied.get(cluster.leader.id) as string[])]);
      expect(seen).toEqual(['a']);
      const follower = cluster.nodes.find((n) => n !== cluster.leader) as RaftNode;
      await expect(follower.read(() => 1)).rejects.toBeInstanceOf(NotLeaderError);
      await expect(follower.propose(bytes('b'))).rejects.toBeInstanceOf(NotLeaderError);
    } finally {
      await cluster.close();
    }
  });

  it('reports role, term, commit and per-follower lag in status()', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      await cluster.leader.propose(bytes('a'));
      const status = cluster.leader.status();
      expect(status.role).toBe('leader');
      expect(status.commitIndex).toBeGreaterThanOrEqual(2);
      expect(Object.keys(status.peers).sort()).toEqual(
        cluster.nodes
          .filter((n) => n !== cluster.leader)
          .map((n) => n.id)
          .sort(),
      );
    } finally {
      await cluster.close();
    }
  });

  it('stores a commit-only advance with the next write or at close, never in a transaction of its own', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    const leaderId = cluster.leader.id;
    for (let i = 0; i < 5; i++) await cluster.leader.propose(bytes(`w${i}`));
    const { commitIndex, lastIndex } = cluster.leader.status();
    expect(commitIndex).toBe(lastIndex);
    // The last entry committed after its own (fsynced) write: its commit index is not on disk yet.
    const during = openSqliteStorage({ path: `${dir.path}/${leaderId}/raft.db` });
    const onDisk = during.load().hardState.commit;
    during.close();
    expect(onDisk).toBeLessThan(commitIndex);
    await cluster.close();
    using after = openSqliteStorage({ path: `${dir.path}/${leaderId}/raft.db` });
    expect(after.load().hardState.commit).toBe(commitIndex);
  });

  it('lets followers apply the last write with no further write after it (held-back commit index)', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      await cluster.leader.propose(bytes('last'));
      const commit = cluster.leader.status().commitIndex;
      await waitFor(() => cluster.nodes.every((n) => n.status().appliedIndex >= commit), {
        timeoutMs: 5000,
        what: 'every follower applied the last write',
      });
      for (const node of cluster.nodes) expect(cluster.applied.get(node.id)).toEqual(['last']);
    } finally {
      await cluster.close();
    }
  });

  it('compacts its log into snapshots and catches a restarted follower up from one', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path, 5);
    try {
      const follower = cluster.nodes.find((n) => n !== cluster.leader) as RaftNode;
      await follower.close();
      for (let i = 0; i < 30; i++) await cluster.leader.propose(bytes(`w${i}`));
      const back = await cluster.open(follower.id);
      cluster.nodes[cluster.nodes.indexOf(follower)] = back;
      const expected = Array.from({ length: 30 }, (_, i) => `w${i}`);
      for (let i = 0; i < 300 && (cluster.applied.get(back.id) ?? []).length < 30; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(cluster.applied.get(back.id)).toEqual(expected);
      expect(back.status().appliedIndex).toBe(cluster.leader.status().appliedIndex);
      // The leader restarts from its own snapshot plus the entries after it.
      const leaderId = cluster.leader.id;
      await cluster.leader.close();
      const reopened = await cluster.open(leaderId);
      cluster.nodes[cluster.nodes.indexOf(cluster.leader)] = reopened;
      for (let i = 0; i < 300 && (cluster.applied.get(leaderId) ?? []).length < 30; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(cluster.applied.get(leaderId)).toEqual(expected);
    } finally {
      await cluster.close();
    }
  });

  it('keeps its membership across a restart after compacting its log past a membership change', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path, 5);
    try {
      const leader = cluster.leader;
      const removed = cluster.nodes.find((n) => n !== leader) as RaftNode;
      await leader.propose(bytes('first')); // a membership change waits for an entry of the leader's term
      await leader.removeMember(removed.id);
      const voters = ['n1', 'n2', 'n3'].filter((id) => id !== removed.id);
      expect(leader.clusterConfig.voters).toEqual(voters);
      // Enough writes that the leader snapshots past the config entry.
      for (let i = 0; i < 12; i++) await leader.propose(bytes(`w${i}`));
      await leader.close();
      const storage = openSqliteStorage({ path: `${dir.path}/${leader.id}/raft.db` });
      const stored = storage.load();
      storage.close();
      expect(stored.entries.some((e) => e.kind === 'config')).toBe(false);
      expect(stored.snapshot?.config).toEqual({ voters, learners: [] });
      // Its `members` option still lists the removed server; the snapshot says otherwise.
      const back = await cluster.open(leader.id);
      cluster.nodes[cluster.nodes.indexOf(leader)] = back;
      expect(back.clusterConfig).toEqual({ voters, learners: [] });
    } finally {
      await cluster.close();
    }
  });

  it('catches a new follower up from a snapshot whose stream is cut part-way: the partial image is discarded and the leader resends it', async () => {
    await using dir = await tempDir('raft-node');
    const real: Record<string, { host: string; port: number }> = {};
    for (const id of ['n1', 'n2', 'n3']) real[id] = { host: '127.0.0.1', port: await freePort() };
    await using proxy = await createFaultProxy(real.n3 as { host: string; port: number });
    // n1 and n2 reach n3 only through the proxy.
    const viaProxy = { ...real, n3: { host: '127.0.0.1', port: proxy.port } };
    const applied = new Map<string, string[]>();
    const open = (id: string) => {
      applied.set(id, []);
      return openRaftNode({
        id,
        members: id === 'n3' ? real : viaProxy,
        dataDir: `${dir.path}/${id}`,
        clusterSecret: 'in-process test cluster secret',
        tickMs: 5,
        heartbeatMs: 20,
        electionMs: 200,
        seed: id.charCodeAt(1),
        snapshotEvery: 5,
        stateMachine: {
          apply(command) {
            (applied.get(id) as string[]).push(new TextDecoder().decode(command));
            return null;
          },
          snapshot: () => new TextEncoder().encode(JSON.stringify(applied.get(id))),
          restore(image) {
            applied.set(id, JSON.parse(new TextDecoder().decode(image)) as string[]);
          },
        },
      });
    };
    const nodes = [await open('n1'), await open('n2')];
    try {
      await waitFor(() => nodes.some((n) => n.status().role === 'leader'), { timeoutMs: 10_000 });
      const leader = nodes.find((n) => n.status().role === 'leader') as RaftNode;
      // About 2 MB of state, compacted into a snapshot: n3 can only catch up from it.
      const expected = Array.from({ length: 32 }, (_, i) => `${i}:${'x'.repeat(64 * 1024)}`);
      for (const value of expected) await leader.propose(bytes(value));
      expect(leader.status().lastIndex).toBeGreaterThan(32);
      proxy.cutAfter(512 * 1024);
      nodes.push(await open('n3'));
      await waitFor(() => (applied.get('n3') ?? []).length === expected.length, { timeoutMs: 20_000 });
      expect(proxy.cuts).toBe(1);
      expect(applied.get('n3')).toEqual(expected);
      await waitFor(() => nodes[2]?.status().appliedIndex === leader.status().appliedIndex, { timeoutMs: 5000 });
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  }, 40_000);

  it('adds a learner, promotes it, then removes the leader; the cluster keeps committing', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    const extra: RaftNode[] = [];
    try {
      const n4 = await joinAsVoter(cluster, dir.path, 'n4', extra);
      expect(cluster.leader.clusterConfig.voters).toEqual(['n1', 'n2', 'n3', 'n4']);
      const old = cluster.leader;
      await old.removeMember(old.id);
      const rest = [...cluster.nodes.filter((n) => n !== old), n4];
      let leader: RaftNode | undefined;
      for (let i = 0; i < 400 && leader === undefined; i++) {
        await new Promise((r) => setTimeout(r, 10));
        leader = rest.find((n) => n.status().role === 'leader');
      }
      expect(leader).toBeDefined();
      expect(leader?.clusterConfig.voters).not.toContain(old.id);
      await leader?.propose(bytes('after'));
      for (let i = 0; i < 300 && (cluster.applied.get('n4') ?? []).at(-1) !== 'after'; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(cluster.applied.get('n4')).toEqual(['before', 'after']);
    } finally {
      await Promise.all(extra.map((n) => n.close()));
      await cluster.close();
    }
  });

  it('lets a restarted member reach a leader that joined after its members option was written', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    const extra: RaftNode[] = [];
    try {
      const n4 = await joinAsVoter(cluster, dir.path, 'n4', extra);
      // A follower goes down; n4 takes over as leader while it is away.
      const follower = cluster.nodes.find((n) => n !== cluster.leader) as RaftNode;
      await follower.close();
      cluster.leader.transferLeadership('n4');
      for (let i = 0; i < 300 && n4.status().role !== 'leader'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(n4.status().role).toBe('leader');
      // Its commit index as a crash can leave it: a commit-only advance is not fsynced
      // (a restart re-learns it from the leader), so it may predate n4's address entry.
      const storage = openSqliteStorage({ path: `${dir.path}/${follower.id}/raft.db` });
      const stored = storage.load();
      const addressAt = stored.entries.find((e) => e.kind === undefined && e.data[0] === 2)?.index ?? 0;
      expect(addressAt).toBeGreaterThan(0);
      storage.save({ hardState: { ...stored.hardState, commit: addressAt - 1 } }, { sync: true });
      storage.close();
      // Back with its original members option (n1-n3): n4's address is only in its log, unapplied.
      const back = await cluster.open(follower.id);
      cluster.nodes[cluster.nodes.indexOf(follower)] = back;
      await n4.propose(bytes('after'));
      for (let i = 0; i < 500 && (cluster.applied.get(follower.id) ?? []).at(-1) !== 'after'; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(cluster.applied.get(follower.id)?.at(-1)).toBe('after');
      expect(back.status().leader).toBe('n4');
    } finally {
      await Promise.all(extra.map((n) => n.close()));
      await cluster.close();
    }
  }, 30_000);

  it('hands leadership over on request', async () => {
    await using dir = await tempDir('raft-node');
    const cluster = await inProcessCluster(dir.path);
    try {
      await cluster.leader.propose(bytes('a'));
      const target = cluster.nodes.find((n) => n !== cluster.leader) as RaftNode;
      cluster.leader.transferLeadership(target.id);
      for (let i = 0; i < 200 && target.status().role !== 'leader'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(target.status().role).toBe('leader');
    } finally {
      await cluster.close();
    }
  });
});
