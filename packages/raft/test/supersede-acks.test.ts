import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { supersedeAcks } from '../src/internal/supersede-acks.js';
import type { AppendResponse, Message } from '../src/types.js';

const ack = (to: string, term: number, index: number, success = true): AppendResponse => ({
  type: 'appendResponse',
  from: 'n2',
  to,
  term,
  success,
  index,
  hintIndex: 0,
  hintTerm: 0,
});

const message = fc.oneof(
  fc
    .record({
      to: fc.constantFrom('n1', 'n3'),
      term: fc.integer({ min: 1, max: 3 }),
      index: fc.integer({ min: 0, max: 20 }),
      success: fc.boolean(),
    })
    .map((m): Message => ack(m.to, m.term, m.index, m.success)),
  fc.constantFrom<Message>(
    { type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 2 },
    { type: 'voteResponse', from: 'n2', to: 'n3', term: 3, granted: true },
  ),
);

describe('supersedeAcks', () => {
  it('keeps only the last success per peer when the indexes rise', () => {
    const batch = [ack('n1', 2, 5), ack('n1', 2, 7), ack('n1', 2, 9)];
    expect(supersedeAcks(batch)).toEqual([ack('n1', 2, 9)]);
  });

  it('keeps a success whose index a later, lower success does not cover', () => {
    const batch = [ack('n1', 2, 9), ack('n1', 2, 5)];
    expect(supersedeAcks(batch)).toEqual(batch);
  });

  it('keeps rejections, other terms and other messages', () => {
    const batch: Message[] = [
      ack('n1', 2, 4, false),
      ack('n1', 1, 3),
      { type: 'heartbeatResponse', from: 'n2', to: 'n1', term: 2 },
      ack('n1', 2, 6),
    ];
    expect(supersedeAcks(batch)).toEqual(batch);
  });

  it('keeps a subsequence that tells every peer at least the highest index it was told, and drops only successes', () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 12 }), (batch) => {
        const kept = supersedeAcks(batch);
        // A subsequence, in order.
        let at = 0;
        for (const m of kept) {
          at = batch.indexOf(m, at);
          expect(at).toBeGreaterThanOrEqual(0);
          at++;
        }
        // Nothing but superseded successes goes.
        for (const m of batch) {
          if (m.type !== 'appendResponse' || !m.success) expect(kept).toContain(m);
        }
        // Per (peer, term), the highest success index survives.
        const best = (list: readonly Message[]) => {
          const out = new Map<string, number>();
          for (const m of list)
            if (m.type === 'appendResponse' && m.success) {
              const key = `${m.to}/${m.term}`;
              out.set(key, Math.max(out.get(key) ?? -1, m.index));
            }
          return out;
        };
        expect(best(kept)).toEqual(best(batch));
      }),
    );
  });
});
