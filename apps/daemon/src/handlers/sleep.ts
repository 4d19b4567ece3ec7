import { setTimeout as delay } from 'node:timers/promises';
import type { DaemonHandlerContext, HandlerDefinition } from '@unrdf/daemon';
import { z } from 'zod';

/** The longest sleep one operation may ask for (one minute). */
export const MAX_SLEEP_MS = 60_000;

/** `sleep` input: how long to sleep, whole milliseconds. */
export const SleepInputSchema = z.strictObject({
  ms: z.number().int().min(0).max(MAX_SLEEP_MS),
});
export type SleepInput = z.infer<typeof SleepInputSchema>;

/** `sleep` output. */
export interface SleepOutput {
  readonly sleptMs: number;
}

/**
 * The synthetic `sleep` operation the load benchmarks submit: waits `ms` milliseconds
 * and returns `{ sleptMs }`. It stops at once when the daemon aborts the attempt
 * (timeout, cancel, shutdown), rejecting with the signal's reason so the attempt fails
 * instead of claiming a sleep it did not finish. It touches nothing, so re-running it
 * after a crash is safe.
 * @example
 * const daemon = createDaemon({ dataDir, handlers: { sleep: sleepHandler } });
 * await daemon.submit({ type: 'sleep', subject: 'urn:load:1', input: { ms: 5 } });
 */
export const sleepHandler: HandlerDefinition = Object.freeze({
  inputSchema: SleepInputSchema,
  // Longer than the longest sleep, so only a cancel or a shutdown cuts one short.
  timeoutMs: MAX_SLEEP_MS + 5_000,
  crashPolicy: 'retry',
  // It touches nothing: it may start before its submission commits.
  storeOnly: true,
  handler: async (input: SleepInput, context: DaemonHandlerContext): Promise<SleepOutput> => {
    const started = performance.now();
    try {
      await delay(input.ms, undefined, { signal: context.signal });
    } catch (error) {
      // timers/promises rejects with a generic AbortError; the reason says why (timeout, cancel, shutdown).
      throw context.signal.aborted && context.signal.reason !== undefined ? context.signal.reason : error;
    }
    // A timer may fire up to a millisecond early after rounding: report at least what was asked.
    return { sleptMs: Math.max(input.ms, Math.round(performance.now() - started)) };
  },
});
