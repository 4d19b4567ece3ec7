import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { createResourceSampler } from '../src/resources.js';

describe('createResourceSampler', () => {
  describe('sample', () => {
    it("reports the data directory's filesystem from the first sample on", async () => {
      await using dir = await tempDir();
      const sampler = createResourceSampler({ diskPath: dir.path });
      try {
        const first = await sampler.sample();
        expect(first.diskTotalBytes).toBeGreaterThan(0);
        expect(first.diskFreeBytes).toBeGreaterThanOrEqual(0);
        expect(first.diskFreeBytes).toBeLessThanOrEqual(first.diskTotalBytes ?? 0);
        // Within a second the reading is reused: the same figures, no thread-pool round.
        const second = await sampler.sample();
        expect(second.diskTotalBytes).toBe(first.diskTotalBytes);
      } finally {
        sampler.close();
      }
    });

    it('reports no disk figures for a path that does not exist, and none when none was given', async () => {
      await using dir = await tempDir();
      const missing = createResourceSampler({ diskPath: dir.join('nope') });
      const none = createResourceSampler();
      try {
        expect((await missing.sample()).diskFreeBytes).toBeNull();
        expect((await none.sample()).diskTotalBytes).toBeNull();
      } finally {
        missing.close();
        none.close();
      }
    });
  });
});
