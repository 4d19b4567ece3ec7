import { closeSync, openSync, writeSync } from 'node:fs';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { INLINE_MAX_MS, MAX_SYNCS_IN_FLIGHT, type SyncIo, WalSync } from '../src/index.js';

/** Injected syncs: pool fsyncs wait until the test ends them; the clock is the test's. */
function manualIo() {
  const pending: ((error: Error | null) => void)[] = [];
  let clock = 0;
  let inlineMs = 0;
  let inlineError: Error | undefined;
  const calls = { pool: 0, inline: 0 };
  const io: SyncIo = {
    fdatasync: (_fd, callback) => {
      calls.pool++;
      pending.push(callback);
    },
    fdatasyncSync: () => {
      calls.inline++;
      clock += inlineMs;
      if (inlineError) throw inlineError;
    },
    now: () => clock,
  };
  return {
    io,
    calls,
    pending,
    /** Ends the oldest pool fsync after `ms` of clock. */
    finish(ms = 0.1, error: Error | null = null) {
      clock += ms;
      const callback = pending.shift();
      if (!callback) throw new Error('no fsync in flight');
      callback(error);
    },
    set inlineMs(ms: number) {
      inlineMs = ms;
    },
    set inlineError(error: Error | undefined) {
      inlineError = error;
    },
  };
}

function tracked(io: SyncIo, inlineMaxBatch?: number) {
  const durable: string[] = [];
  const failed: string[] = [];
  const errors: unknown[] = [];
  const sync = new WalSync<string>({
    fd: -1,
    io,
    ...(inlineMaxBatch === undefined ? {} : { inlineMaxBatch }),
    onDurable: (b) => durable.push(b),
    onFailure: (error, batches) => {
      errors.push(error);
      failed.push(...batches);
    },
  });
  return { sync, durable, failed, errors };
}

describe('WalSync', () => {
  it('syncs a small batch inline while the disk is fast, a large one on the pool', () => {
    const m = manualIo();
    const { sync, durable } = tracked(m.io, 4);
    sync.committed('a', 1);
    expect(m.calls).toEqual({ pool: 0, inline: 1 });
    expect(durable).toEqual(['a']);
    sync.committed('big', 5);
    expect(m.calls.pool).toBe(1);
    expect(durable).toEqual(['a']);
    m.finish();
    expect(durable).toEqual(['a', 'big']);
  });

  it('goes to the pool once the moving average of fsyncs passes the inline limit', () => {
    const m = manualIo();
    const { sync, durable } = tracked(m.io);
    m.inlineMs = 20 * INLINE_MAX_MS; // one slow inline sync lifts the average past the limit
    sync.committed('a', 1);
    expect(m.calls.inline).toBe(1);
    sync.committed('b', 1);
    expect(m.calls).toEqual({ pool: 1, inline: 1 });
    m.finish(0.1);
    expect(durable).toEqual(['a', 'b']);
  });

  it('never runs more than two fsyncs; a batch committed during one waits for a later one', () => {
    const m = manualIo();
    const { sync, durable } = tracked(m.io, 0);
    sync.committed('a', 1);
    sync.committed('b', 1);
    sync.committed('c', 1);
    expect(m.calls.pool).toBe(MAX_SYNCS_IN_FLIGHT);
    expect(sync.inFlight).toBe(2);
    // The first fsync started before b's COMMIT: it releases a only.
    m.finish();
    expect(durable).toEqual(['a']);
    // Its return started a third, covering c.
    expect(m.calls.pool).toBe(3);
    m.finish();
    expect(durable).toEqual(['a', 'b']);
    m.finish();
    expect(durable).toEqual(['a', 'b', 'c']);
    expect(sync.unsynced).toBe(0);
  });

  it('releases in commit order when a later fsync returns first', () => {
    const m = manualIo();
    const { sync, durable } = tracked(m.io, 0);
    sync.committed('a', 1);
    sync.committed('b', 1);
    // End the second fsync (covering a and b) before the first.
    const first = m.pending.shift() as (e: Error | null) => void;
    m.finish();
    expect(durable).toEqual(['a', 'b']);
    first(null);
    expect(durable).toEqual(['a', 'b']);
  });

  it('fails every waiting batch and every later one, and releases nothing after a failed fsync', () => {
    const m = manualIo();
    const { sync, durable, failed, errors } = tracked(m.io, 0);
    sync.committed('a', 1);
    sync.committed('b', 1);
    const eio = new Error('EIO');
    m.finish(0.1, eio);
    expect(failed).toEqual(['a', 'b']);
    m.finish(); // the other fsync succeeding changes nothing
    sync.committed('c', 1);
    expect(failed).toEqual(['a', 'b', 'c']);
    expect(durable).toEqual([]);
    expect(errors.every((e) => e === eio)).toBe(true);
    expect(sync.failure).toBe(eio);
  });

  it('reports a failed fsync at once even when a later one already released every batch', () => {
    const m = manualIo();
    const { sync, durable, failed, errors } = tracked(m.io, 0);
    sync.committed('a', 1);
    sync.committed('b', 1);
    const first = m.pending.shift() as (e: Error | null) => void;
    m.finish(); // the second fsync covers a and b
    expect(durable).toEqual(['a', 'b']);
    const eio = new Error('EIO');
    first(eio);
    // Nothing waited, but the owner must hear of it before it commits anything else.
    expect(errors).toEqual([eio]);
    expect(failed).toEqual([]);
    sync.committed('c', 1);
    expect(failed).toEqual(['c']);
    expect(durable).toEqual(['a', 'b']);
  });

  it('fails a batch whose inline fsync throws', () => {
    const m = manualIo();
    const { sync, failed } = tracked(m.io);
    m.inlineError = new Error('EIO');
    sync.committed('a', 1);
    expect(failed).toEqual(['a']);
    expect(sync.failed).toBe(true);
  });

  it('releaseAll releases every waiting batch at once, in order', () => {
    const m = manualIo();
    const { sync, durable } = tracked(m.io, 0);
    sync.committed('a', 1);
    sync.committed('b', 1);
    sync.committed('c', 1);
    sync.releaseAll();
    expect(durable).toEqual(['a', 'b', 'c']);
    m.finish();
    m.finish();
    expect(durable).toEqual(['a', 'b', 'c']);
  });

  it('settled() waits for the fsyncs in flight and for the batches they leave', async () => {
    const m = manualIo();
    const { sync, durable } = tracked(m.io, 0);
    sync.committed('a', 1);
    sync.committed('b', 1);
    sync.committed('c', 1);
    let settled = false;
    const done = sync.settled().then(() => {
      settled = true;
    });
    for (let i = 0; i < 3; i++) {
      await Promise.resolve();
      expect(settled).toBe(false);
      m.finish();
    }
    await done;
    expect(durable).toEqual(['a', 'b', 'c']);
  });

  it('syncs a real file with the default io', async () => {
    await using dir = await tempDir('wal-sync');
    const fd = openSync(dir.join('x-wal'), 'a');
    try {
      const durable: number[] = [];
      const sync = new WalSync<number>({ fd, onDurable: (b) => durable.push(b), onFailure: () => {} });
      writeSync(fd, 'frame');
      sync.committed(1, 1);
      sync.committed(2, 1000);
      await sync.settled();
      expect(durable).toEqual([1, 2]);
    } finally {
      closeSync(fd);
    }
  });
});
