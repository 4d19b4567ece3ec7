import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { openSqliteStorage } from '../src/sqlite-storage.js';
import { data } from './helpers.js';

describe('SqliteStorage', () => {
  describe('save', () => {
    it('keeps hard state and entries across a reopen', async () => {
      await using dir = await tempDir('raft-storage');
      const path = dir.join('raft.db');
      {
        using storage = openSqliteStorage({ path });
        expect(storage.load()).toEqual({
          hardState: { term: 0, votedFor: undefined, commit: 0 },
          entries: [],
          snapshot: undefined,
        });
        storage.save({
          hardState: { term: 2, votedFor: 'n3', commit: 1 },
          entries: [
            { index: 1, term: 1, data: data('a') },
            { index: 2, term: 2, data: data('b') },
          ],
        });
      }
      using reopened = openSqliteStorage({ path });
      expect(reopened.load()).toEqual({
        hardState: { term: 2, votedFor: 'n3', commit: 1 },
        entries: [
          { index: 1, term: 1, data: data('a') },
          { index: 2, term: 2, data: data('b') },
        ],
        snapshot: undefined,
      });
    });

    it('replaces the log from the first new entry on (a conflicting suffix is deleted)', async () => {
      await using dir = await tempDir('raft-storage');
      using storage = openSqliteStorage({ path: dir.join('raft.db') });
      storage.save({ entries: [1, 2, 3, 4].map((i) => ({ index: i, term: 1, data: data(`${i}`) })) });
      storage.save({ entries: [{ index: 3, term: 2, data: data('x') }] });
      expect(storage.load().entries.map((e) => [e.index, e.term])).toEqual([
        [1, 1],
        [2, 1],
        [3, 2],
      ]);
    });

    it('keeps an unsynced commit-index write, ordered before the next synced write', async () => {
      await using dir = await tempDir('raft-storage');
      const path = dir.join('raft.db');
      {
        using storage = openSqliteStorage({ path });
        storage.save({
          hardState: { term: 1, votedFor: 'n1', commit: 0 },
          entries: [{ index: 1, term: 1, data: data('a') }],
        });
        storage.save({ hardState: { term: 1, votedFor: 'n1', commit: 1 } }, { sync: false });
        storage.save({ entries: [{ index: 2, term: 1, data: data('b') }] }, { sync: true });
      }
      using reopened = openSqliteStorage({ path });
      expect(reopened.load().hardState.commit).toBe(1);
      expect(reopened.load().entries).toHaveLength(2);
    });

    it('compacts: keeps the snapshot and only the entries after it', async () => {
      await using dir = await tempDir('raft-storage');
      using storage = openSqliteStorage({ path: dir.join('raft.db') });
      storage.save({ entries: [1, 2, 3, 4].map((i) => ({ index: i, term: 1, data: data(`${i}`) })) });
      const config = { voters: ['n1', 'n2'], learners: ['n4'] };
      storage.compact({ index: 3, term: 1, data: data('image'), config });
      // The membership is kept with the image: the config entries it covers are gone.
      expect(storage.load().snapshot).toEqual({ index: 3, term: 1, data: data('image'), config });
      expect(storage.load().entries.map((e) => e.index)).toEqual([4]);
    });

    it('replaces the whole log with a snapshot received from the leader', async () => {
      await using dir = await tempDir('raft-storage');
      using storage = openSqliteStorage({ path: dir.join('raft.db') });
      storage.save({ entries: [1, 2, 3].map((i) => ({ index: i, term: 1, data: data(`${i}`) })) });
      storage.save({
        snapshot: { index: 10, term: 4, data: data('leader image'), config: { voters: ['n1'], learners: [] } },
        entries: [{ index: 11, term: 4, data: data('x') }],
      });
      const loaded = storage.load();
      expect(loaded.snapshot?.index).toBe(10);
      expect(loaded.snapshot?.config).toEqual({ voters: ['n1'], learners: [] });
      expect(loaded.entries.map((e) => e.index)).toEqual([11]);
    });

    it('keeps an absent vote absent', async () => {
      await using dir = await tempDir('raft-storage');
      using storage = openSqliteStorage({ path: dir.join('raft.db') });
      storage.save({ hardState: { term: 4, votedFor: undefined, commit: 0 } });
      expect(storage.load().hardState).toEqual({ term: 4, votedFor: undefined, commit: 0 });
    });
  });

  it('loses no acknowledged write when the process is killed with SIGKILL', async () => {
    await using dir = await tempDir('raft-storage');
    const path = dir.join('raft.db');
    const child = spawnNode(new URL('./fixtures/storage-writer.ts', import.meta.url).pathname, { args: [path] });
    await child.waitForLine(/saved 200 /, 20_000);
    await child.kill9();
    const reported = [...child.stdout().matchAll(/saved (\d+) term (\d+)/g)];
    const last = reported[reported.length - 1] as RegExpMatchArray;
    const [lastIndex, lastTerm] = [Number(last[1]), Number(last[2])];
    using storage = openSqliteStorage({ path });
    const { hardState, entries } = storage.load();
    // Every write reported before the kill is on disk (later ones may be too).
    expect(hardState.term).toBeGreaterThanOrEqual(lastTerm);
    expect(entries.length).toBeGreaterThanOrEqual(lastIndex);
    expect((entries[lastIndex - 1] as { term: number }).term).toBeGreaterThanOrEqual(lastTerm);
    entries.forEach((entry, i) => {
      expect(entry.index).toBe(i + 1);
      expect(entry.data).toEqual(new Uint8Array(256).fill(7));
    });
  }, 30_000);
});
