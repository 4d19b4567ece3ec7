import * as hdr from 'hdr-histogram-js';

/** Percentiles of a latency distribution in milliseconds, read from an HDR histogram. */
export interface LatencyPercentiles {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p95: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

// Integer microseconds, 3 significant digits: every percentile is within 0.1% of
// the exact value, from 1 µs to hours (autoResize grows the counts as needed).
// 32-bit buckets, not 'packed': packed is ~10x slower to add/encode/decode, and the
// cluster report merges dozens of these.
const MICROS_PER_MS = 1000;
const build = () =>
  hdr.build({
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 2,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
    useWebAssembly: false,
  });

/**
 * A latency histogram over HdrHistogram (hdr-histogram-js) that travels between
 * nodes: `encode()` gives HdrHistogram's compressed base64 form, `LatencyHistogram.decode`
 * reads it back, and `merge` adds distributions, so cluster percentiles are computed
 * from the union of every node's samples (never by averaging percentiles).
 */
export class LatencyHistogram {
  readonly #histogram: hdr.Histogram;

  constructor(histogram: hdr.Histogram = build()) {
    this.#histogram = histogram;
  }

  /**
   * Reads an encoded histogram from another node.
   * @throws Error when `encoded` is not HdrHistogram's compressed base64 form.
   */
  static decode(encoded: string): LatencyHistogram {
    const decoded = hdr.decodeFromCompressedBase64(encoded, 32, false);
    const histogram = new LatencyHistogram();
    histogram.#histogram.add(decoded);
    decoded.destroy();
    return histogram;
  }

  /** The union of several encoded histograms. */
  static mergeEncoded(encoded: readonly string[]): LatencyHistogram {
    const merged = new LatencyHistogram();
    for (const e of encoded) merged.merge(LatencyHistogram.decode(e));
    return merged;
  }

  /** Records one latency in ms (negative, from clock steps, counts as 0). */
  record(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`latency must be finite, got ${ms}`);
    this.#histogram.recordValue(Math.max(0, Math.round(ms * MICROS_PER_MS)));
  }

  merge(other: LatencyHistogram): void {
    this.#histogram.add(other.#histogram);
  }

  /** Removes every value of `other` (which must have been added to this one). */
  subtract(other: LatencyHistogram): void {
    this.#histogram.subtract(other.#histogram);
  }

  get count(): number {
    return this.#histogram.totalCount;
  }

  /** The value at `percentile` (0-100] in ms; 0 when empty. */
  percentile(percentile: number): number {
    return this.count === 0 ? 0 : this.#histogram.getValueAtPercentile(percentile) / MICROS_PER_MS;
  }

  /** The usual percentiles. No mean: HdrHistogram computes it by a full scan, and nobody should alert on it. */
  percentiles(): LatencyPercentiles {
    const empty = this.count === 0;
    return {
      count: this.count,
      min: empty ? 0 : this.#histogram.minNonZeroValue / MICROS_PER_MS,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p95: this.percentile(95),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
      max: empty ? 0 : this.#histogram.maxValue / MICROS_PER_MS,
    };
  }

  encode(): string {
    // Deflate level 1: several times faster than the default for the same size here.
    return hdr.encodeIntoCompressedBase64(this.#histogram, 1);
  }

  reset(): void {
    this.#histogram.reset();
  }
}
