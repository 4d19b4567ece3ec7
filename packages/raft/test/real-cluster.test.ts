import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { ProcessCluster, SessionClient } from '../src/testing/process-cluster.js';

describe('RaftNode (3 real processes on loopback)', () => {
  it('keeps every acknowledged write exactly once on every node after kill -9 of the leader and its restart', async () => {
    await using dir = await tempDir('raft-cluster');
    await using cluster = await ProcessCluster.start({ dataDir: dir.path });
    const client = new SessionClient(cluster, 'writer-1');
    const acked: string[] = [];
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const key = `k${(client.sequence + 1) % 7}`;
        const value = `v${client.sequence + 1}`;
        await client.put(key, value, { attemptTimeoutMs: 3000, giveUpMs: 15_000 });
        acked.push(`${key}=${value}`);
      }
    };
    const first = await cluster.leader();
    await write(30);
    // A write in flight while the leader dies: its outcome is unknown to the client,
    // which retries it (same session) on the survivors.
    const inFlight = write(40);
    await new Promise((r) => setTimeout(r, 20));
    await cluster.kill9(first);
    await inFlight;
    const second = await cluster.leader();
    expect(second).not.toBe(first);
    await cluster.startNode(first);
    await write(20);
    // Everyone converges on the same applied state and the same Raft log (index, term, data).
    const dumps = await cluster.converged();
    const reference = dumps[0]?.applied ?? [];
    for (const dump of dumps) expect(dump.applied).toEqual(reference);
    const referenceLog = dumps[0]?.log ?? [];
    expect(referenceLog.length).toBeGreaterThanOrEqual(90);
    expect(referenceLog.map(([index]) => index)).toEqual(referenceLog.map((_, i) => i + 1));
    for (const dump of dumps) expect(dump.log).toEqual(referenceLog);
    // The two leaders' terms both appear in it: the log spans the failover.
    expect(new Set(referenceLog.map(([, term]) => term)).size).toBeGreaterThanOrEqual(2);
    // Every acknowledged write is there, exactly once, and nothing else was applied twice.
    const counts = new Map<string, number>();
    for (const write of reference) counts.set(write, (counts.get(write) ?? 0) + 1);
    for (const write of acked) expect(counts.get(write), write).toBe(1);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(reference).toHaveLength(90);
  }, 90_000);

  /**
   * A client writes through the leader; the leader is cut off (`direction`: every link,
   * or only those to it), the client keeps trying it first and must fail over; then the
   * links heal. Every node must end with exactly the acknowledged writes, in order.
   */
  async function failoverAcrossCut(direction: 'both' | 'in', clientId: string) {
    await using dir = await tempDir('raft-cluster');
    await using cluster = await ProcessCluster.start({ dataDir: dir.path, proxies: true });
    const client = new SessionClient(cluster, clientId);
    const acked: string[] = [];
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const key = `k${(client.sequence + 1) % 5}`;
        const value = `p${client.sequence + 1}`;
        await client.put(key, value, { attemptTimeoutMs: 3000, giveUpMs: 30_000 });
        acked.push(`${key}=${value}`);
      }
    };
    const old = await cluster.leader();
    client.target = old;
    await write(10);
    cluster.isolate(old, direction);
    client.target = old; // the client keeps trying the old leader first: it must fail over
    await write(15);
    const statuses = await Promise.all(cluster.ids.filter((id) => id !== old).map((id) => cluster.status(id)));
    const fresh = statuses.find((s) => s?.role === 'leader');
    expect(fresh?.id).toBeDefined();
    expect(fresh?.id).not.toBe(old);
    cluster.heal();
    await write(5);
    const dumps = await cluster.converged();
    for (const dump of dumps) expect(dump.applied).toEqual(acked);
    for (const dump of dumps) expect(dump.log).toEqual(dumps[0]?.log);
    const rejoined = dumps.find((d) => d.status.id === old)?.status;
    expect(rejoined?.role).toBe('follower');
    expect(rejoined?.term).toBeGreaterThan(1);
  }

  it('elects a new leader when the leader is partitioned away (fault proxy), and the old one rejoins as a follower', async () => {
    await failoverAcrossCut('both', 'writer-2');
  }, 120_000);

  it('fails over when the leader hears no one but everyone still hears it (an asymmetric partition), losing no acknowledged write', async () => {
    // Its heartbeats still reach the followers, so they never time out on their own: the
    // deaf leader must notice it lost its quorum and step down (check quorum).
    await failoverAcrossCut('in', 'writer-3');
  }, 120_000);
});
