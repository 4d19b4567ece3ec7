import { type BenchClock, realClock } from './clock.js';
import { LatencyHistogram } from './histogram.js';

export interface OpenLoopOptions {
  /** Arrivals per second, evenly spaced. */
  readonly ratePerSec: number;
  /** How long arrivals keep coming. */
  readonly durationMs: number;
  /**
   * Starts one operation. `intendedAt` is when it was due (clock time); the promise
   * settles when the operation is done. A rejection counts as an error.
   */
  readonly fire: (intendedAt: number, index: number) => Promise<unknown>;
  readonly clock?: BenchClock;
  /** Called about every 100 ms with arrivals issued so far. */
  readonly onTick?: (issued: number, total: number) => void;
}

export interface OpenLoopResult {
  readonly issued: number;
  readonly completed: number;
  readonly errors: number;
  /** Completion time minus *intended* start time, in ms (no coordinated omission). */
  readonly latency: LatencyHistogram;
  /** Time from the first intended arrival to the last completion, in ms. */
  readonly elapsedMs: number;
}

/**
 * An open-loop load generator: arrivals follow the schedule whatever the system
 * under test does, and latency runs from each arrival's intended time. A stall in
 * the system or in the generator itself shows up as latency, as a user would feel
 * it, instead of silently thinning the load (Gil Tene's coordinated omission).
 */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const clock = options.clock ?? realClock;
  const total = Math.floor((options.ratePerSec * options.durationMs) / 1000);
  const intervalMs = 1000 / options.ratePerSec;
  const latency = new LatencyHistogram();
  const pending = new Set<Promise<void>>();
  let completed = 0;
  let errors = 0;
  let lastTick = 0;
  const start = clock.now();

  let issued = 0;
  while (issued < total) {
    const now = clock.now();
    // Fire every arrival that is due; a late generator catches up in a burst, and
    // the lateness is charged to latency because it is measured from intendedAt.
    while (issued < total && start + issued * intervalMs <= now) {
      const intendedAt = start + issued * intervalMs;
      const index = issued++;
      const op: Promise<void> = options.fire(intendedAt, index).then(
        () => {
          completed++;
          latency.record(clock.now() - intendedAt);
        },
        () => {
          errors++;
        },
      );
      pending.add(op);
      void op.finally(() => pending.delete(op));
    }
    if (options.onTick && now - lastTick >= 100) {
      lastTick = now;
      options.onTick(issued, total);
    }
    if (issued < total) {
      const nextDue = start + issued * intervalMs;
      await clock.sleep(Math.max(0, Math.min(nextDue - clock.now(), 50)));
    }
  }
  await Promise.all(pending);
  return { issued, completed, errors, latency, elapsedMs: clock.now() - start };
}
