import { readFileSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import type { CommandOf } from '../src/commands.js';
import { createGroupCommitPath, createStateMachine, QueueClosedError } from '../src/index.js';

const enqueue = (id: string): CommandOf<'enqueue'> => ({
  kind: 'enqueue',
  at: 1,
  id,
  type: 'job',
  payload: 'null',
  priority: 0,
  runAt: 1,
  groupKey: null,
  idempotencyKey: null,
  maxAttempts: 1,
});

/** A file-backed commit path whose fsyncs (on the pool) wait in `inFlight` until the test ends them. */
function withHeldSyncs(file: string) {
  const sm = createStateMachine({ path: file, synchronous: 'off', autoCheckpoint: false });
  const inFlight: ((error: Error | null) => void)[] = [];
  const path = createGroupCommitPath(sm, {
    syncWal: true,
    inlineSyncMaxBatch: 0,
    syncIo: { fdatasync: (_fd, callback) => inFlight.push(callback), fdatasyncSync: () => {}, now: () => 0 },
  });
  /** Resolves once `n` fsyncs are in flight. */
  const until = async (n: number) => {
    while (inFlight.length < n) await new Promise((resolve) => setImmediate(resolve));
  };
  return { sm, path, inFlight, until };
}

describe('createGroupCommitPath', () => {
  it('commits one transaction per turn, syncs the WAL, then resolves and publishes in order', async () => {
    await using dir = await tempDir('queue-commit');
    const sm = createStateMachine({
      path: dir.join('q.db'),
      synchronous: 'off',
      autoCheckpoint: false,
      extensions: [
        {
          name: 'refuses-bad',
          afterApply: ({ command }) => {
            if (command.kind === 'enqueue' && command.id === 'bad') throw new Error('refused');
          },
        },
      ],
    });
    // On the thread pool: the sync returns in a later turn than the COMMIT.
    const path = createGroupCommitPath(sm, { syncWal: true, inlineSyncMaxBatch: 0 });
    const log: string[] = [];
    sm.subscribe((transitions) => log.push(`published ${transitions.map((t) => t.kind).join(',')}`));
    const a = path.submit(enqueue('a')).then(() => log.push('enqueue a resolved'));
    const bad = path.submit(enqueue('bad')).catch((error: Error) => log.push(`bad rejected: ${error.message}`));
    const claim = path
      .submit({ kind: 'claim', at: 2, id: 'a', epoch: 1 }, { beforeSync: true })
      .then((r) => log.push(`claim resolved ${r.claimed}`));
    await Promise.all([a, bad, claim]);
    await path.close();
    // The claim (beforeSync) resolves at COMMIT; the rest, and the one publication of the
    // batch, once the fsync returned; the refused command fails alone.
    expect(log).toEqual([
      'claim resolved true',
      'published enqueued,claimed',
      'enqueue a resolved',
      'bad rejected: refused',
    ]);
    await expect(path.submit(enqueue('late'))).rejects.toBeInstanceOf(QueueClosedError);
    expect(sm.countByState()).toMatchObject({ running: 1 });
    sm.close();
  });

  it('syncs a small batch on the event loop right after its COMMIT, a large one on the pool', async () => {
    await using dir = await tempDir('queue-commit');
    const sm = createStateMachine({ path: dir.join('q.db'), synchronous: 'off', autoCheckpoint: false });
    const path = createGroupCommitPath(sm, { syncWal: true, inlineSyncMaxBatch: 2 });
    const published: number[] = [];
    sm.subscribe((transitions) => published.push(transitions.length));
    const turn = (ids: string[]) => {
      const done = Promise.all(ids.map((id) => path.submit(enqueue(id))));
      // The batch commits in a check-phase callback queued before this one.
      const afterCommitTurn = new Promise((resolve) => setImmediate(() => resolve([...published])));
      return { done, afterCommitTurn };
    };
    const small = turn(['a', 'b']);
    // Synced inline: published within the COMMIT's own turn.
    expect(await small.afterCommitTurn).toEqual([2]);
    await small.done;
    const large = turn(['c', 'd', 'e']);
    // On the pool: the fdatasync cannot have reported back within that turn.
    expect(await large.afterCommitTurn).toEqual([2]);
    await large.done;
    expect(published).toEqual([2, 3]);
    await path.close();
    expect(sm.countByState()).toMatchObject({ pending: 5 });
    sm.close();
  });

  it('after a failed fsync rejects what waited for it, what was submitted before it, and all later work', async () => {
    await using dir = await tempDir('queue-commit');
    const { sm, path, inFlight, until } = withHeldSyncs(dir.join('q.db'));
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    const first = path.submit(enqueue('a'));
    await until(1);
    // Submitted before the failure, committed (were it not refused) after it.
    const second = path.submit(enqueue('b'));
    inFlight.shift()?.(eio);
    await expect(first).rejects.toMatchObject({ name: 'StoreSyncError', code: 'UNRDF_QUEUE_SYNC_FAILED', cause: eio });
    await expect(second).rejects.toMatchObject({ name: 'StoreSyncError' });
    await expect(path.submit(enqueue('c'))).rejects.toMatchObject({ name: 'StoreSyncError' });
    await path.close();
    // Only a reached the store (its fate after a restart is the disk's); b never did.
    expect(sm.countByState()).toMatchObject({ pending: 1 });
    sm.close();
  });

  it('refuses work without committing it after an fsync fails that left nothing waiting', async () => {
    await using dir = await tempDir('queue-commit');
    const { sm, path, inFlight, until } = withHeldSyncs(dir.join('q.db'));
    const a = path.submit(enqueue('a'));
    await until(1);
    const b = path.submit(enqueue('b'));
    await until(2);
    // The second fsync (covering a and b) returns first; then the first one fails.
    const first = inFlight.shift() as (error: Error | null) => void;
    inFlight.shift()?.(null);
    await Promise.all([a, b]);
    first(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(path.submit(enqueue('c'))).rejects.toMatchObject({ name: 'StoreSyncError' });
    await path.close();
    expect(sm.countByState()).toMatchObject({ pending: 2 });
    sm.close();
  });

  it('keeps the WAL bounded by checkpointing past checkpointBytes', async () => {
    await using dir = await tempDir('queue-commit');
    const sm = createStateMachine({ path: dir.join('q.db'), synchronous: 'off', autoCheckpoint: false });
    const path = createGroupCommitPath(sm, { syncWal: true, checkpointBytes: 64 * 1024 });
    let largest = 0;
    for (let round = 0; round < 100; round++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          path.submit({ ...enqueue(`r${round}-${i}`), payload: JSON.stringify('x'.repeat(400)) }),
        ),
      );
      largest = Math.max(largest, statSync(dir.join('q.db-wal')).size);
      // Give the checkpoint worker time to start, so both the event loop's checkpoints
      // (before it runs) and the worker's passes (after) take part; then a steady writer.
      await sleep(round === 0 ? 300 : 2);
    }
    await path.close();
    expect(sm.countByState().pending).toBe(5000);
    // Without checkpoints the WAL would hold every page written (~5 MB here). Commits go
    // on while the worker copies, so the WAL passes the threshold by what they write
    // meanwhile (more on a busy machine); the file is reused, not truncated.
    expect(largest).toBeLessThan(1024 * 1024);
    sm.close();
  });

  it('finishes checkpoints on the worker while commits wait, not on the event loop', async () => {
    await using dir = await tempDir('queue-commit');
    const sm = createStateMachine({ path: dir.join('q.db'), synchronous: 'off', autoCheckpoint: false });
    // Checkpoints the event loop runs itself (without the worker, or when it is late).
    let onLoop = 0;
    const checkpoint = sm.checkpoint.bind(sm);
    sm.checkpoint = (mode) => {
      onLoop++;
      return checkpoint(mode);
    };
    const path = createGroupCommitPath(sm, { syncWal: true, checkpointBytes: 64 * 1024 });
    // Frames in the WAL since it last started over (the wal-index header's mxFrame, in the machine's byte order).
    const frames = () => {
      const shm = readFileSync(dir.join('q.db-shm'));
      return endianness() === 'LE' ? shm.readUInt32LE(16) : shm.readUInt32BE(16);
    };
    await path.submit(enqueue('first'));
    await sleep(300); // the worker is online
    onLoop = 0;
    let restarts = 0;
    let before = frames();
    for (let round = 0; round < 100; round++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          path.submit({ ...enqueue(`r${round}-${i}`), payload: JSON.stringify('x'.repeat(400)) }),
        ),
      );
      const now = frames();
      if (now < before) restarts++;
      before = now;
      await sleep(2);
    }
    await path.close();
    expect(sm.countByState().pending).toBe(5001);
    // Each restart follows a checkpoint that copied every frame. Before, the event loop
    // copied the last frames of every one itself; now the worker does, with commits held
    // (the event loop only steps in when the worker is late: allow some on a busy machine).
    expect(restarts).toBeGreaterThan(5);
    expect(onLoop).toBeLessThan(restarts / 2);
    sm.close();
  });
});
