import { type TempDir, tempDir } from '@unrdf/test-utils';
import { openQueue, type Queue, type QueueEvent, type QueueOptions } from '../../src/index.js';

export interface Deferred<T = void> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Queues and directories opened by a test, closed afterwards. */
export class Fixture {
  readonly #queues: Queue[] = [];
  readonly #dirs: TempDir[] = [];
  #dir: TempDir | undefined;

  async path(name = 'queue.db'): Promise<string> {
    if (this.#dir === undefined) {
      this.#dir = await tempDir('queue');
      this.#dirs.push(this.#dir);
    }
    return this.#dir.join(name);
  }

  async open(options: Omit<QueueOptions, 'path'> & { path?: string }): Promise<Queue> {
    const queue = await openQueue({ ...options, path: options.path ?? (await this.path()) } as QueueOptions);
    this.#queues.push(queue);
    return queue;
  }

  async cleanup(): Promise<void> {
    for (const queue of this.#queues.splice(0)) await queue.close({ drainMs: 0 });
    for (const dir of this.#dirs.splice(0)) await dir.remove();
    this.#dir = undefined;
  }
}

/** Resolves with the first event matching `match` (bounded). */
export function nextEvent(queue: Queue, match: (event: QueueEvent) => boolean, timeoutMs = 5000): Promise<QueueEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = queue.onEvent((event) => {
      if (!match(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** Resolves once every id reached a final state (bounded). */
export function allFinal(queue: Queue, ids: readonly string[], timeoutMs = 5000): Promise<void> {
  const left = new Set(ids.filter((id) => !['completed', 'dead', 'cancelled'].includes(queue.get(id)?.state ?? '')));
  if (left.size === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${left.size} operations not final within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = queue.onEvent((event) => {
      if (event.kind !== 'completed' && event.kind !== 'dead' && event.kind !== 'cancelled') return;
      left.delete(event.id);
      if (left.size > 0) return;
      clearTimeout(timer);
      off();
      resolve();
    });
  });
}
