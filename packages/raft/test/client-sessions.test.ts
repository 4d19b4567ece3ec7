import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClientSessions, type SessionRequest } from '../src/internal/client-sessions.js';
import type { RaftCore } from '../src/raft-core.js';
import { seededRandom } from '../src/simulation/seeded-random.js';
import type { Entry } from '../src/types.js';
import { core, Network } from './helpers.js';

const req = (sequence: number, firstUnacked?: number): SessionRequest => ({ clientId: 'c', sequence, firstUnacked });

describe('ClientSessions', () => {
  describe('apply', () => {
    it('runs a new request and answers its retry with the first result, without running it again', () => {
      const sessions = new ClientSessions<number>(10, 10);
      let runs = 0;
      expect(sessions.apply(req(1), () => ++runs)).toEqual({ kind: 'applied', result: 1 });
      expect(sessions.apply(req(1), () => ++runs)).toEqual({ kind: 'duplicate', result: 1 });
      expect(runs).toBe(1);
    });

    it('answers each retry of a pipelined client with its own request result (thesis §6.3 window)', () => {
      const sessions = new ClientSessions<string>(10, 10);
      expect(sessions.apply(req(1, 1), () => 'one').kind).toBe('applied');
      expect(sessions.apply(req(2, 1), () => 'two').kind).toBe('applied');
      expect(sessions.apply(req(3, 1), () => 'three').kind).toBe('applied');
      // The retry of 1 gets 1's result, not the newest one.
      expect(sessions.apply(req(1, 1), () => 'again')).toEqual({ kind: 'duplicate', result: 'one' });
      expect(sessions.apply(req(2, 1), () => 'again')).toEqual({ kind: 'duplicate', result: 'two' });
    });

    it('applies an older request of the window that arrives after a newer one', () => {
      const sessions = new ClientSessions<string>(10, 10);
      expect(sessions.apply(req(2, 1), () => 'two').kind).toBe('applied');
      expect(sessions.apply(req(1, 1), () => 'one')).toEqual({ kind: 'applied', result: 'one' });
    });

    it('forgets results below the client lowest unacknowledged sequence and refuses those as stale', () => {
      const sessions = new ClientSessions<string>(10, 10);
      sessions.apply(req(1, 1), () => 'one');
      sessions.apply(req(2, 1), () => 'two');
      sessions.apply(req(3, 3), () => 'three');
      expect(sessions.apply(req(1, 1), () => 'again')).toEqual({ kind: 'stale' });
      expect(sessions.apply(req(2, 1), () => 'again')).toEqual({ kind: 'stale' });
      expect(sessions.image()).toEqual([['c', 3, [[3, 'three']]]]);
    });

    it('refuses an older request from a client that declares no window, instead of answering it with a newer result', () => {
      const sessions = new ClientSessions<string>(10, 10);
      sessions.apply(req(1), () => 'one');
      sessions.apply(req(3), () => 'three');
      let ran = false;
      expect(
        sessions.apply(req(2), () => {
          ran = true;
          return 'two';
        }),
      ).toEqual({ kind: 'stale' });
      expect(ran).toBe(false);
    });

    it('refuses a request beyond the window of unacknowledged results', () => {
      const sessions = new ClientSessions<number>(10, 2);
      sessions.apply(req(1, 1), () => 1);
      sessions.apply(req(2, 1), () => 2);
      expect(sessions.apply(req(3, 1), () => 3)).toEqual({ kind: 'windowFull' });
      // Acknowledging 1 frees a slot.
      expect(sessions.apply(req(3, 2), () => 3)).toEqual({ kind: 'applied', result: 3 });
    });

    it('refuses an unknown client past its first request (its session expired)', () => {
      const sessions = new ClientSessions<number>(1, 10);
      sessions.apply({ clientId: 'a', sequence: 1 }, () => 1);
      sessions.apply({ clientId: 'b', sequence: 1 }, () => 1); // evicts a
      expect(sessions.apply({ clientId: 'a', sequence: 2 }, () => 2)).toEqual({ kind: 'expired' });
      expect(sessions.size).toBe(1);
    });
  });

  describe('restore', () => {
    it('round-trips its image and reads the older one-result format', () => {
      const sessions = new ClientSessions<string>(10, 10);
      sessions.apply(req(1, 1), () => 'one');
      sessions.apply(req(2, 1), () => 'two');
      const copy = new ClientSessions<string>(10, 10);
      copy.restore(JSON.parse(JSON.stringify(sessions.image())));
      expect(copy.apply(req(2, 1), () => 'x')).toEqual({ kind: 'duplicate', result: 'two' });
      const old = new ClientSessions<string>(10, 10);
      old.restore([['c', 4, 'four']], true);
      expect(old.apply(req(4), () => 'x')).toEqual({ kind: 'duplicate', result: 'four' });
      expect(old.apply(req(3), () => 'x')).toEqual({ kind: 'stale' });
    });
  });

  it('runs every sequence at most once and answers every request with that sequence first result (property)', () => {
    fc.assert(
      fc.property(
        // A pipelined client: requests with retries, arriving in any order, each carrying a
        // lowest-unacknowledged bound that never exceeds what the client got answers for.
        fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 60 }),
        (sequences) => {
          const sessions = new ClientSessions<string>(10, 64);
          const runs = new Map<number, number>();
          const first = new Map<number, string>();
          const answered = new Set<number>();
          let step = 0;
          for (const sequence of sequences) {
            let lowest = 1;
            while (answered.has(lowest)) lowest++;
            const outcome = sessions.apply(req(sequence, Math.min(lowest, sequence)), () => {
              runs.set(sequence, (runs.get(sequence) ?? 0) + 1);
              return `r${sequence}@${step}`;
            });
            step++;
            if (outcome.kind === 'applied') first.set(sequence, outcome.result);
            if (outcome.kind === 'applied' || outcome.kind === 'duplicate') {
              expect(outcome.result).toBe(first.get(sequence));
              answered.add(sequence);
            } else {
              // Only a request the client was already answered for may be refused.
              expect(outcome.kind).toBe('stale');
              expect(answered.has(sequence)).toBe(true);
            }
          }
          for (const count of runs.values()) expect(count).toBe(1);
        },
      ),
    );
  });
});

// A host that applies committed entries the way the node runtime does: through a session table.
interface Request {
  readonly c: string;
  readonly s: number;
  readonly f: number;
  readonly add: number;
}
const encode = (r: Request) => new TextEncoder().encode(JSON.stringify(r));

/** Replays a node's applied entries into a counter through ClientSessions; returns the answers per request. */
function replay(applied: readonly Entry[]) {
  const sessions = new ClientSessions<number>(100, 16);
  let total = 0;
  let runs = 0;
  const answers: { request: string; kind: string; result: number | undefined }[] = [];
  for (const entry of applied) {
    if (entry.data.length === 0 || entry.kind === 'config') continue;
    const r = JSON.parse(new TextDecoder().decode(entry.data)) as Request;
    const outcome = sessions.apply({ clientId: r.c, sequence: r.s, firstUnacked: r.f }, () => {
      runs++;
      total += r.add;
      return total;
    });
    answers.push({
      request: `${r.c}#${r.s}`,
      kind: outcome.kind,
      result: 'result' in outcome ? outcome.result : undefined,
    });
  }
  return { total, runs, answers };
}

function electedCluster(): { net: Network; leader: RaftCore } {
  const ids = ['n1', 'n2', 'n3'];
  const net = new Network(ids.map((id, i) => core(id, ids, { random: seededRandom(500 + i) })));
  for (const [i, id] of ids.entries()) {
    net.restartWith(id, (initial) => core(id, ids, { random: seededRandom(550 + i), initial }));
  }
  for (let i = 0; i < 200 && net.leader() === undefined; i++) net.tick(1);
  return { net, leader: net.leader() as RaftCore };
}

function newLeaderAfter(net: Network, dead: string): RaftCore {
  for (let i = 0; i < 300; i++) {
    net.tick(1);
    const leader = net.leader();
    if (leader !== undefined && leader.id !== dead) return leader;
  }
  throw new Error('no new leader');
}

describe('retried proposal applied once (scenario)', () => {
  it('answers a retry with the first result when the leader dies between commit and reply', () => {
    const { net, leader } = electedCluster();
    leader.propose(encode({ c: 'c1', s: 1, f: 1, add: 5 }));
    net.settle();
    // Committed and applied on the leader: the reply is due, but the leader dies first.
    expect(replay(net.applied.get(leader.id) ?? []).total).toBe(5);
    net.crash(leader.id);
    const next = newLeaderAfter(net, leader.id);
    next.propose(encode({ c: 'c1', s: 1, f: 1, add: 5 }));
    net.settle();
    const { total, runs, answers } = replay(net.applied.get(next.id) ?? []);
    expect(runs).toBe(1);
    expect(total).toBe(5);
    expect(answers.at(-1)).toEqual({ request: 'c1#1', kind: 'duplicate', result: 5 });
    // Both entries are in the log; every node's state machine ran the request once.
    net.restart(leader.id);
    net.tick(5);
    for (const id of ['n1', 'n2', 'n3']) expect(replay(net.applied.get(id) ?? []).runs).toBe(1);
  });

  it('answers the retry of an older pipelined request with its own result, not the newest one', () => {
    const { net, leader } = electedCluster();
    leader.propose(encode({ c: 'c1', s: 1, f: 1, add: 5 }));
    leader.propose(encode({ c: 'c1', s: 2, f: 1, add: 7 }));
    net.settle();
    net.crash(leader.id);
    const next = newLeaderAfter(net, leader.id);
    next.propose(encode({ c: 'c1', s: 1, f: 1, add: 5 }));
    next.propose(encode({ c: 'c1', s: 2, f: 1, add: 7 }));
    net.settle();
    const { total, runs, answers } = replay(net.applied.get(next.id) ?? []);
    expect({ total, runs }).toEqual({ total: 12, runs: 2 });
    expect(answers.slice(-2)).toEqual([
      { request: 'c1#1', kind: 'duplicate', result: 5 },
      { request: 'c1#2', kind: 'duplicate', result: 12 },
    ]);
  });
});
