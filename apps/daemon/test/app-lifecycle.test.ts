import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { startApp } from '../src/app.js';

describe('app lifecycle', () => {
  for (const httpThreads of [0, 1]) {
    it(`a start that cannot listen (httpThreads ${httpThreads}) releases the data directory`, async () => {
      await using dir = await tempDir('app');
      const blocker = createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
      const port = (blocker.address() as { port: number }).port;
      try {
        const error = await startApp({ dataDir: dir.path, port, logLevel: 'silent', httpThreads }).catch((e) => e);
        expect((error as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
        expect(existsSync(join(dir.path, 'daemon.lock'))).toBe(false);
        const app = await startApp({ dataDir: dir.path, port: 0, logLevel: 'silent', httpThreads });
        await app.close({ drainMs: 0 });
      } finally {
        blocker.close();
      }
    }, 60_000);
  }

  it('readyz over the daemon says not ready while the app is closing', async () => {
    await using dir = await tempDir('app');
    const app = await startApp({ dataDir: dir.path, port: 0, logLevel: 'silent', httpThreads: 0 });
    const op = await app.daemon.submit({ type: 'sleep', subject: 'urn:x:1', input: { ms: 1500 } });
    const closing = app.close({ drainMs: 5_000 });
    await new Promise((r) => setTimeout(r, 300));
    const during = { state: app.daemon.state, ready: app.daemon.health().readyz.ok };
    await closing;
    expect(op.id).toBeTruthy();
    expect(during).toEqual({ state: 'closing', ready: false });
  }, 60_000);
});
