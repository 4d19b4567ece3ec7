import { describe, expect, it } from 'vitest';
import { planPersist, routeMessages } from '../src/internal/host-policy.js';
import type { AppendRequest, Message, Ready } from '../src/types.js';

const append = (to: string, entries: number): AppendRequest => ({
  type: 'append',
  from: 'n1',
  to,
  term: 2,
  prevLogIndex: 3,
  prevLogTerm: 2,
  entries: Array.from({ length: entries }, (_, i) => ({ index: 4 + i, term: 2, data: new Uint8Array() })),
  commit: 3,
});
const ack = (index: number): Message => ({
  type: 'appendResponse',
  from: 'n2',
  to: 'n1',
  term: 2,
  success: true,
  index,
  hintIndex: 0,
  hintTerm: 0,
});
const vote: Message = { type: 'voteResponse', from: 'n2', to: 'n3', term: 3, granted: true };

const ready = (over: Partial<Ready>): Ready => ({
  softState: undefined,
  hardState: undefined,
  entries: [],
  messages: [],
  committedEntries: [],
  snapshot: undefined,
  readStates: [],
  mustSync: false,
  ...over,
});

describe('routeMessages', () => {
  it('sends appends with entries early, holds empty appends, and keeps the rest for after the write', () => {
    const route = routeMessages([append('n2', 2), append('n3', 0), vote], []);
    expect(route.early).toEqual([append('n2', 2)]);
    expect(route.deferred).toEqual([append('n3', 0)]);
    expect(route.late).toEqual([vote]);
  });

  it('drops a held empty append to a peer that now gets entries (the newer append supersedes it)', () => {
    const route = routeMessages([append('n2', 1)], [append('n2', 0), append('n3', 0)]);
    expect(route.deferred).toEqual([append('n3', 0)]);
  });

  it('acknowledges several appends of one Ready with the last success alone', () => {
    expect(routeMessages([ack(4), vote, ack(6)], []).late).toEqual([vote, ack(6)]);
  });
});

describe('planPersist', () => {
  const hard = (commit: number) => ({ term: 2, votedFor: 'n1', commit });

  it('writes nothing for a commit-only Ready and carries its hard state to the next write', () => {
    const first = planPersist(ready({ hardState: hard(5) }), undefined);
    expect(first).toEqual({ write: false, hardState: undefined, unsaved: hard(5) });
    const second = planPersist(ready({ entries: [{ index: 6, term: 2, data: new Uint8Array() }] }), first.unsaved);
    expect(second).toEqual({ write: true, hardState: hard(5), unsaved: undefined });
  });

  it('writes a Ready that must sync, with its own newer hard state', () => {
    expect(planPersist(ready({ hardState: hard(7), mustSync: true }), hard(5))).toEqual({
      write: true,
      hardState: hard(7),
      unsaved: undefined,
    });
  });
});
