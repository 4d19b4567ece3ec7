// Completions per window and their variation, for the open-loop runs of `jtbd5-throughput`.

/**
 * Completion times at millisecond resolution, counted from the first completion: 4 bytes
 * per millisecond of run instead of 8 per completion (a 5-minute run at 9,000/s would
 * otherwise keep 2.7 million timestamps, and a soak hours of them).
 */
export class CompletionCounter {
  readonly #windowMs: number;
  #counts = new Uint32Array(60_000);
  #first: number | undefined;
  #last = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  record(t: number): void {
    this.#first ??= t;
    this.#last = t;
    const ms = Math.floor(t - this.#first);
    if (ms >= this.#counts.length) {
      const grown = new Uint32Array(Math.max(ms + 1, this.#counts.length * 2));
      grown.set(this.#counts);
      this.#counts = grown;
    }
    this.#counts[ms] = (this.#counts[ms] as number) + 1;
  }

  /**
   * Completions per window, the windows starting at the first completion (steady
   * state: one handler time after the first arrival). A run shorter than a window gives
   * one window as long as the span of completions.
   */
  windowRates(durationMs: number): number[] {
    const first = this.#first;
    if (first === undefined) return [0];
    const span = this.#last - first;
    const windowMs = Math.max(1, Math.min(this.#windowMs, durationMs, span));
    const count = Math.max(1, Math.floor(Math.min(durationMs, span) / windowMs));
    const rates = new Array<number>(count).fill(0);
    for (let ms = 0; ms < this.#counts.length; ms++) {
      const n = this.#counts[ms] as number;
      if (n === 0) continue;
      // The end of the last window is inclusive (it may be the last completion itself).
      let k = Math.floor(ms / windowMs);
      if (k === count && ms <= count * windowMs) k = count - 1;
      if (k >= 0 && k < count) rates[k] = (rates[k] as number) + n;
    }
    return rates.map((n) => (n * 1000) / windowMs);
  }
}

export function variationPct(rates: readonly number[]): number | null {
  if (rates.length < 2) return null;
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const sd = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length);
  return mean === 0 ? null : (sd / mean) * 100;
}
