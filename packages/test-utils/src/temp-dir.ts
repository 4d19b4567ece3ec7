import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A scratch directory that removes itself: `await using dir = await tempDir('queue')`. */
export interface TempDir extends AsyncDisposable {
  readonly path: string;
  /** A path inside the directory. */
  join(...parts: string[]): string;
  remove(): Promise<void>;
}

/** Creates a fresh directory under the OS temp folder. */
export async function tempDir(label = 'test'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), `unrdf-${label}-`));
  const remove = () => rm(path, { recursive: true, force: true, maxRetries: 3 });
  return { path, join: (...parts) => join(path, ...parts), remove, [Symbol.asyncDispose]: remove };
}
