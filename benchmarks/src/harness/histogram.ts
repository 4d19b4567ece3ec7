import * as hdr from 'hdr-histogram-js';

/** Percentiles of a latency distribution, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

// Values are stored as integer microseconds: 3 significant digits keeps every
// percentile within 0.1% of the exact value from 1 us up to an hour.
const MICROS_PER_MS = 1000;

/**
 * A latency histogram over HdrHistogram (hdr-histogram-js): constant memory, exact
 * to 3 significant digits, mergeable. Record in milliseconds, read in milliseconds.
 *
 * Record the time from the *intended* start of an operation (see `openLoop`), not
 * from when the load generator got round to it, or the histogram hides queueing
 * (coordinated omission).
 */
export class LatencyHistogram {
  readonly #histogram: hdr.Histogram;

  constructor() {
    this.#histogram = hdr.build({
      bitBucketSize: 'packed',
      lowestDiscernibleValue: 1,
      highestTrackableValue: 3_600_000_000,
      numberOfSignificantValueDigits: 3,
      autoResize: true,
      useWebAssembly: false,
    });
  }

  /** Records one latency in milliseconds (negative values, from clock skew, count as 0). */
  record(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`latency must be a finite number, got ${ms}`);
    this.#histogram.recordValue(Math.max(0, Math.round(ms * MICROS_PER_MS)));
  }

  /** Adds every value of `other` to this histogram. */
  merge(other: LatencyHistogram): void {
    this.#histogram.add(other.#histogram);
  }

  /** How many values were recorded (0: every percentile reads 0 and means nothing). */
  get count(): number {
    return this.#histogram.totalCount;
  }

  /**
   * The value at `percentile` (0-100], in milliseconds; 0 when empty, which would pass
   * any latency target: pass `samples: count` with a judged figure (see `judge`).
   */
  percentile(percentile: number): number {
    if (this.count === 0) return 0;
    return this.#histogram.getValueAtPercentile(percentile) / MICROS_PER_MS;
  }

  summary(): LatencySummary {
    const empty = this.count === 0;
    return {
      count: this.count,
      min: empty ? 0 : this.#histogram.minNonZeroValue / MICROS_PER_MS,
      mean: empty ? 0 : this.#histogram.mean / MICROS_PER_MS,
      p50: this.percentile(50),
      p95: this.percentile(95),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: empty ? 0 : this.#histogram.maxValue / MICROS_PER_MS,
    };
  }
}
