import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitForOptions {
  /** Give up after this long (default 5 s). Every wait is bounded. */
  readonly timeoutMs?: number;
  /** Poll interval (default 10 ms). */
  readonly intervalMs?: number;
  /** Said in the error on timeout, e.g. 'a leader is elected'. */
  readonly what?: string;
}

export class WaitForTimeoutError extends Error {
  override readonly name = 'WaitForTimeoutError';
  readonly what: string;
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number, options?: ErrorOptions) {
    super(`Timed out after ${timeoutMs} ms waiting until ${what}.`, options);
    this.what = what;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Polls `check` until it returns a value other than `undefined`/`false` and
 * returns that value; a throw counts as "not yet" (the last one becomes the cause).
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Exclude<T, false | undefined>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 10;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as Exclude<T, false | undefined>;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      throw new WaitForTimeoutError(options.what ?? 'the condition holds', timeoutMs, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}
