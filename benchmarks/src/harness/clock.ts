import { setTimeout as sleep } from 'node:timers/promises';

/** Monotonic time in milliseconds with sub-millisecond resolution. */
export const nowMs = (): number => performance.now();

/** What the load generators need of time; injected so tests can drive it. */
export interface BenchClock {
  now(): number;
  sleep(ms: number): Promise<unknown>;
}

export const realClock: BenchClock = { now: nowMs, sleep: (ms) => sleep(ms) };
