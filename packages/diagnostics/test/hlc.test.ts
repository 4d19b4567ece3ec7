import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ClockDriftError, compareHlc, createHlc, decodeHlc, encodeHlc, type HlcTimestamp } from '../src/index.js';

/** A physical clock the test moves, forwards or (NTP step) backwards. */
function manualClock(start: number) {
  let now = start;
  return { read: () => now, set: (t: number) => (now = t) };
}

describe('createHlc', () => {
  it('is strictly monotonic whatever the physical clock does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5_000, max: 5_000 }), { minLength: 1, maxLength: 300 }), (steps) => {
        const clock = manualClock(1_700_000_000_000);
        const hlc = createHlc({ clock: clock.read });
        let previous: HlcTimestamp | undefined;
        for (const step of steps) {
          clock.set(clock.read() + step);
          const ts = hlc.now();
          if (previous) expect(compareHlc(previous, ts)).toBeLessThan(0);
          previous = ts;
        }
      }),
    );
  });

  it('orders every send before its receive across nodes, and each node in program order', () => {
    // A random run of 3 nodes with skewed clocks exchanging messages.
    const event = fc.record({
      node: fc.integer({ min: 0, max: 2 }),
      kind: fc.constantFrom('local', 'send', 'receive'),
      tick: fc.integer({ min: -20, max: 50 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 3, maxLength: 3 }),
        fc.array(event, { minLength: 1, maxLength: 200 }),
        (skews, events) => {
          const clocks = skews.map((skew) => manualClock(1_700_000_000_000 + skew));
          const nodes = clocks.map((c) => createHlc({ clock: c.read, maxDriftMs: 10_000 }));
          const inFlight: { to: number; ts: HlcTimestamp }[] = [];
          const last: (HlcTimestamp | undefined)[] = [undefined, undefined, undefined];
          for (const e of events) {
            const clock = clocks[e.node];
            const hlc = nodes[e.node];
            if (!clock || !hlc) throw new Error('bad index');
            clock.set(clock.read() + e.tick);
            let ts: HlcTimestamp;
            if (e.kind === 'receive' && inFlight.some((m) => m.to === e.node)) {
              const index = inFlight.findIndex((m) => m.to === e.node);
              const [message] = inFlight.splice(index, 1);
              if (!message) throw new Error('no message');
              ts = hlc.receive(message.ts);
              expect(compareHlc(message.ts, ts)).toBeLessThan(0); // send happens-before receive
            } else {
              ts = hlc.now();
              if (e.kind === 'send') inFlight.push({ to: (e.node + 1 + (e.tick & 1)) % 3, ts });
            }
            const before = last[e.node];
            if (before) expect(compareHlc(before, ts)).toBeLessThan(0);
            last[e.node] = ts;
          }
        },
      ),
    );
  });

  it('keeps its wall component within maxDriftMs of the physical clock', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.record({ remoteAhead: fc.integer({ min: -10_000, max: 10_000 }), tick: fc.nat(100) }), {
          maxLength: 200,
        }),
        (maxDriftMs, messages) => {
          const clock = manualClock(1_700_000_000_000);
          const hlc = createHlc({ clock: clock.read, maxDriftMs });
          for (const m of messages) {
            clock.set(clock.read() + m.tick);
            const remote = { wallMs: clock.read() + m.remoteAhead, logical: 7 };
            const before = hlc.peek();
            if (m.remoteAhead > maxDriftMs) {
              expect(() => hlc.receive(remote)).toThrow(ClockDriftError);
              expect(hlc.peek()).toEqual(before); // a refused stamp leaves the clock alone
            } else {
              hlc.receive(remote);
            }
            expect(hlc.peek().wallMs - clock.read()).toBeLessThanOrEqual(maxDriftMs);
            expect(hlc.now().wallMs - clock.read()).toBeLessThanOrEqual(maxDriftMs);
          }
        },
      ),
    );
  });

  it('ignores a malformed remote stamp: the receive is a local event and the clock stays sound', () => {
    const clock = manualClock(1_000_000);
    const hlc = createHlc({ clock: clock.read });
    hlc.now();
    for (const remote of [
      { wallMs: Number.NaN, logical: 0 },
      { wallMs: 1_000_010, logical: 0.5 },
      { wallMs: 1_000_010, logical: -1 },
      { wallMs: 1_000_010.5, logical: 0 },
      { wallMs: 1_000_010, logical: 2 ** 32 },
    ]) {
      const before = hlc.peek();
      const received = hlc.receive(remote);
      expect(received).toEqual({ wallMs: 1_000_000, logical: before.logical + 1 });
    }
    clock.set(1_000_001);
    expect(encodeHlc(hlc.now())).toBe('000000001000001.0000000000');
  });

  it('moves to the next millisecond instead of overflowing the logical counter', () => {
    const clock = manualClock(1_000_000);
    const hlc = createHlc({ clock: clock.read });
    // A peer 30 s ahead (inside the 60 s bound) near the counter's limit.
    hlc.receive({ wallMs: 1_030_000, logical: 2 ** 32 - 3 });
    const stamps = Array.from({ length: 4 }, () => hlc.now());
    expect(stamps).toEqual([
      { wallMs: 1_030_000, logical: 2 ** 32 - 1 },
      { wallMs: 1_030_001, logical: 0 },
      { wallMs: 1_030_001, logical: 1 },
      { wallMs: 1_030_001, logical: 2 },
    ]);
    expect(hlc.receive({ wallMs: 1_030_001, logical: 2 ** 32 - 1 })).toEqual({ wallMs: 1_030_002, logical: 0 });
  });

  it('stays strictly monotonic and encodable whatever remote stamps arrive', () => {
    const anyNumber = fc.oneof(
      fc.double(),
      fc.integer({ min: -5, max: 2 ** 33 }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32 - 1),
    );
    fc.assert(
      fc.property(fc.array(fc.record({ wallAhead: anyNumber, logical: anyNumber, tick: fc.nat(3) })), (messages) => {
        const clock = manualClock(1_000_000);
        const hlc = createHlc({ clock: clock.read, maxDriftMs: 10 ** 15 }); // no ClockDriftError here
        let last = hlc.now();
        for (const m of messages) {
          clock.set(clock.read() + m.tick);
          const ts = hlc.receive({ wallMs: clock.read() + m.wallAhead, logical: m.logical });
          expect(compareHlc(last, ts)).toBeLessThan(0);
          expect(decodeHlc(encodeHlc(ts))).toEqual(ts);
          last = ts;
        }
      }),
    );
  });

  it('rejects bad options with path: message lines', () => {
    expect(() => createHlc({ maxDriftMs: -1 })).toThrow(/maxDriftMs:/);
  });
});

describe('encodeHlc', () => {
  it('sorts as strings exactly as compareHlc orders', () => {
    const stamp = fc.record({ wallMs: fc.nat(2 ** 47), logical: fc.nat(2 ** 32 - 1) });
    fc.assert(
      fc.property(stamp, stamp, (a, b) => {
        const byString = encodeHlc(a) < encodeHlc(b) ? -1 : encodeHlc(a) > encodeHlc(b) ? 1 : 0;
        expect(byString).toBe(Math.sign(compareHlc(a, b)));
        expect(decodeHlc(encodeHlc(a))).toEqual(a);
      }),
    );
  });

  it('decodes garbage to undefined', () => {
    expect(decodeHlc('not-a-stamp')).toBeUndefined();
    // Ten digits hold more than the 32-bit logical counter.
    expect(decodeHlc('000000001000000.4294967295')).toEqual({ wallMs: 1_000_000, logical: 2 ** 32 - 1 });
    expect(decodeHlc('000000001000000.4294967296')).toBeUndefined();
  });
});
