import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ReadyEntry, ReadyIndex } from '../src/internal/ready-index.js';

const entry = (id: string, priority: number, group: string, runAt = 0): ReadyEntry => ({
  id,
  type: 'job',
  priority,
  group,
  runAt,
  removed: false,
  ready: false,
});

describe('ReadyIndex', () => {
  it('keeps no entry that is added and removed at once, even when nothing is taken', () => {
    // The executor's claim on enqueue: every operation is added, then removed, and its lane
    // never sees a take().
    const index = new ReadyIndex();
    for (let i = 0; i < 10_000; i++) {
      index.add(entry(`op${i}`, i % 3, i % 2 === 0 ? '' : 'g'), 0);
      index.remove(`op${i}`);
    }
    expect(index.readyCount).toBe(0);
    expect(index.held).toBe(0);
  });

  it('hands out every live entry exactly once, by priority, FIFO within a group, round-robin between groups', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            priority: fc.integer({ min: -2, max: 2 }),
            group: fc.constantFrom('', 'a', 'b', 'c'),
            drop: fc.boolean(),
          }),
          { maxLength: 80 },
        ),
        (specs) => {
          const index = new ReadyIndex();
          const entries = specs.map((s, i) => entry(`op${i}`, s.priority, s.group));
          for (const e of entries) index.add(e, 0);
          const dropped = new Set(entries.filter((_, i) => specs[i]?.drop).map((e) => e.id));
          for (const id of dropped) index.remove(id);
          expect(index.readyCount).toBe(entries.length - dropped.size);
          const taken: ReadyEntry[] = [];
          for (let next = index.take('job', () => true); next; next = index.take('job', () => true)) taken.push(next);
          expect(taken.map((e) => e.id).sort()).toEqual(
            entries
              .filter((e) => !dropped.has(e.id))
              .map((e) => e.id)
              .sort(),
          );
          expect(index.readyCount).toBe(0);
          expect(index.held).toBe(0);
          // Priorities never increase along the order of hand-out.
          for (let i = 1; i < taken.length; i++) {
            expect((taken[i] as ReadyEntry).priority).toBeLessThanOrEqual((taken[i - 1] as ReadyEntry).priority);
          }
          // Within a priority and a group, enqueue order is kept.
          const pos = new Map(entries.map((e, i) => [e.id, i]));
          const lastSeen = new Map<string, number>();
          for (const e of taken) {
            const key = `${e.priority}/${e.group}`;
            expect(pos.get(e.id) ?? -1).toBeGreaterThan(lastSeen.get(key) ?? -1);
            lastSeen.set(key, pos.get(e.id) ?? -1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps one FIFO per group across the types of a shared lane, and one per type for ungrouped entries', () => {
    const index = new ReadyIndex((type) => (type === 'create' || type === 'update' ? 'entity' : type));
    const typed = (id: string, type: string, group: string): ReadyEntry => ({ ...entry(id, 0, group), type });
    index.add(typed('c1', 'create', 'x'), 0);
    index.add(typed('u1', 'update', 'x'), 0);
    index.add(typed('free-u', 'update', ''), 0);
    index.add(typed('free-c', 'create', ''), 0);
    expect(index.readyOf('entity')).toBe(4);
    expect(index.readyOf('create')).toBe(0);
    // The head of group x is the create: while creates may not run, x waits, and the
    // ungrouped update does not wait behind the ungrouped create.
    const noCreates = (head: ReadyEntry) => head.type !== 'create';
    expect(index.take('entity', noCreates)?.id).toBe('free-u');
    expect(index.take('entity', noCreates)).toBeUndefined();
    const taken: string[] = [];
    for (let next = index.take('entity', () => true); next; next = index.take('entity', () => true))
      taken.push(next.id);
    expect(taken.indexOf('c1')).toBeLessThan(taken.indexOf('u1'));
    expect(taken.sort()).toEqual(['c1', 'free-c', 'u1']);
  });

  it('drops cancelled delayed entries long before they are due (memory bounded by the live ones)', () => {
    const index = new ReadyIndex();
    index.add(entry('live', 0, '', 1000), 0); // due first: it stays at the top of the heap
    for (let i = 0; i < 20_000; i++) {
      index.add(entry(`later${i}`, 0, '', 7 * 86_400_000), 0); // a week out
      index.remove(`later${i}`);
    }
    expect(index.delayedCount).toBe(1);
    expect(index.delayedHeld).toBeLessThanOrEqual(2 * 1024 + 2);
    index.promoteDue(1000);
    expect(index.take('job', () => true)?.id).toBe('live');
  });

  it('skips groups at their limit without losing their place, and promotes delayed entries when due', () => {
    const index = new ReadyIndex();
    for (const [id, group] of [
      ['a1', 'a'],
      ['a2', 'a'],
      ['b1', 'b'],
    ] as const)
      index.add(entry(id, 0, group), 0);
    index.add(entry('late', 0, 'b', 100), 0);
    expect(index.delayedCount).toBe(1);
    expect(index.nextDueAt()).toBe(100);
    const blockA = (head: ReadyEntry) => head.group !== 'a';
    expect(index.take('job', blockA)?.id).toBe('b1');
    expect(index.take('job', blockA)).toBeUndefined();
    index.promoteDue(100);
    expect(index.take('job', () => true)?.id).toBe('a1');
    expect(index.take('job', () => true)?.id).toBe('late');
    expect(index.take('job', () => true)?.id).toBe('a2');
    expect(index.readyCount + index.delayedCount).toBe(0);
  });
});
