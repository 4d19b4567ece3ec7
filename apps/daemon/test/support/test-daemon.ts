// A started daemon for the HTTP tests: `greet` answers at once, `gate` runs until the
// test releases it (or the operation is cancelled).
import { createDaemon, type Daemon } from '@unrdf/daemon';
import { type TempDir, tempDir } from '@unrdf/test-utils';
import { createTelemetry, type Telemetry } from '../../src/telemetry.js';

export interface TestDaemon {
  readonly dir: TempDir;
  readonly daemon: Daemon;
  readonly telemetry: Telemetry;
  /** Lets the `gate` operation running now finish. */
  release(): void;
  close(): Promise<void>;
}

export async function startTestDaemon(
  name: string,
  options: { readonly instanceId?: string; readonly logLevel?: 'info' | 'warn' } = {},
): Promise<TestDaemon> {
  const dir = await tempDir(name);
  const telemetry = createTelemetry(options.instanceId === undefined ? {} : { instanceId: options.instanceId });
  const daemon = createDaemon({
    dataDir: dir.path,
    meter: telemetry.meter,
    diagnostics: { logLevel: options.logLevel ?? 'warn' },
  });
  let release: () => void = () => undefined;
  daemon.handle('greet', async (input: { name: string }) => ({ hello: input.name }));
  daemon.handle('gate', async (_input: unknown, ctx) => {
    await new Promise<void>((resolve) => {
      release = resolve;
      ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    return 'released';
  });
  await daemon.start();
  return {
    dir,
    daemon,
    telemetry,
    release: () => release(),
    async close() {
      await daemon.close();
      await telemetry.shutdown();
      await dir.remove();
    },
  };
}
