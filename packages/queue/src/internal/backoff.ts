/** Retry delay settings of one operation type. */
export interface Backoff {
  /** The delay cap of the first retry, in ms. */
  readonly baseMs: number;
  /** No delay exceeds this. */
  readonly maxMs: number;
}

/**
 * Exponential backoff with full jitter: a uniform draw in [0, min(max, base * 2^(attempt-1))).
 * Full jitter spreads retries of a burst of failures over the whole window instead
 * of letting them stampede together (Brooker, "Exponential Backoff And Jitter", AWS 2015).
 * `random` is injected so tests and simulations are deterministic.
 */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
  const draw = random();
  const unit = Number.isFinite(draw) ? Math.min(Math.max(draw, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(unit * ceiling);
}
