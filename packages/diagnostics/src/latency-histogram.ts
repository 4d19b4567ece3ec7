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
// 64-bit buckets (a Float64Array: counts exact to 2^53), not 32-bit: merged lifetime
// histograms of a cluster pass 2^32 in one bucket, and 32-bit counts wrap silently.
// Not 'packed': packed is ~10x slower to add/encode/decode, and the cluster report
// merges dozens of these.
const MICROS_PER_MS = 1000;
const SIGNIFICANT_DIGITS: SignificantDigits = 3;
const LOWEST_DISCERNIBLE = 1;
const BIT_BUCKET_SIZE = 64;
// With useWebAssembly false and 64-bit buckets, build() gives a Float64Histogram, a
// JsHistogram: its index arithmetic (countsArrayIndex, valueFromIndex) is public.
type SignificantDigits = 1 | 2 | 3 | 4 | 5;
const build = (
  lowestDiscernibleValue = LOWEST_DISCERNIBLE,
  numberOfSignificantValueDigits: SignificantDigits = SIGNIFICANT_DIGITS,
) =>
  hdr.build({
    bitBucketSize: BIT_BUCKET_SIZE,
    lowestDiscernibleValue,
    highestTrackableValue: 2 * lowestDiscernibleValue,
    numberOfSignificantValueDigits,
    autoResize: true,
    useWebAssembly: false,
  }) as unknown as hdr.JsHistogram;

// HdrHistogram's V2 encoding (AbstractHistogram.encodeIntoByteBuffer in
// github.com/HdrHistogram/HdrHistogram): a big-endian 40-byte header (cookie, payload
// length, normalizing index offset, significant digits, lowest discernible value,
// highest trackable value, integer-to-double ratio as a double), then the counts
// array as ZigZag LEB128-64b9B words, a negative word standing for that many zeros.
// The compressed form wraps the same bytes in a second cookie and deflate.
const V2_COOKIE = 0x1c849303 | 0x10; // word size 9 (LEB128-64b9B) in the second nibble
const V2_COMPRESSED_COOKIE = 0x1c849304 | 0x10;
const V2_HEADER_BYTES = 40;
// Counts and zero runs we write stay far below this; LEB128 then needs at most 8 bytes.
const MAX_WORD = 2 ** 48;
// 3 significant digits over a 64-bit range is 54 buckets of 1024 half-buckets.
const MAX_COUNTS_INDEX = 64 * 1024;

/** One scratch buffer for encoding: encode() is synchronous, so it is never shared. */
let scratch = Buffer.allocUnsafe(64 * 1024);

function writeWord(buffer: Buffer, position: number, value: number): number {
  if (!(Math.abs(value) < MAX_WORD)) throw new RangeError(`histogram word out of range: ${value}`);
  let zigzag = value >= 0 ? value * 2 : -value * 2 - 1;
  let at = position;
  while (zigzag >= 0x80) {
    buffer[at++] = (zigzag % 0x80) | 0x80;
    zigzag = Math.floor(zigzag / 0x80);
  }
  buffer[at++] = zigzag;
  return at;
}

/**
 * The V2 header and the (index, count) pairs of a decoded histogram, validated before
 * anything is merged. The pairs live in scratch arrays, valid until the next decode
 * (decoding and merging are synchronous, so nothing else sees them meanwhile).
 */
interface DecodedCounts {
  readonly lowestDiscernibleValue: number;
  readonly significantDigits: SignificantDigits;
  /** How many pairs `scratchIndexes` and `scratchCounts` hold. */
  readonly pairs: number;
}

// A count index is below MAX_COUNTS_INDEX, so there are at most that many pairs.
const scratchIndexes = new Int32Array(MAX_COUNTS_INDEX + 1);
const scratchCounts = new Float64Array(MAX_COUNTS_INDEX + 1);

function readCounts(bytes: Uint8Array): DecodedCounts {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < V2_HEADER_BYTES || view.getInt32(0) !== V2_COOKIE) {
    throw new Error('not an HdrHistogram V2 encoding');
  }
  const payloadBytes = view.getInt32(4);
  const end = V2_HEADER_BYTES + payloadBytes;
  if (payloadBytes < 0 || end > bytes.length) throw new Error('HdrHistogram payload length out of range');
  if (view.getInt32(8) !== 0) throw new Error('HdrHistogram normalizing index offsets are not supported');
  const significantDigits = view.getInt32(12);
  const lowestDiscernibleValue = Number(view.getBigInt64(16));
  if (
    significantDigits < 1 ||
    significantDigits > 5 ||
    !(lowestDiscernibleValue >= 1 && lowestDiscernibleValue < 2 ** 40)
  ) {
    throw new Error('HdrHistogram header out of range');
  }
  let pairs = 0;
  let index = 0;
  let at = V2_HEADER_BYTES;
  while (at < end) {
    let zigzag = 0;
    let scale = 1;
    for (let byte = 0; ; byte++) {
      if (at >= end || byte >= 8) throw new Error('HdrHistogram payload: truncated or oversized word');
      const b = bytes[at++] as number;
      zigzag += (b & 0x7f) * scale;
      scale *= 0x80;
      if (b < 0x80) break;
    }
    const word = zigzag % 2 === 0 ? zigzag / 2 : -(zigzag + 1) / 2;
    if (word < 0) index -= word;
    else {
      if (word > 0) {
        if (index >= MAX_COUNTS_INDEX) throw new Error('HdrHistogram payload: counts beyond any value range');
        scratchIndexes[pairs] = index;
        scratchCounts[pairs] = word;
        pairs++;
      }
      index++;
    }
  }
  return { lowestDiscernibleValue, significantDigits: significantDigits as SignificantDigits, pairs };
}

/**
 * A latency histogram over HdrHistogram (hdr-histogram-js) that travels between
 * nodes: `encode()` gives HdrHistogram's compressed base64 form, `LatencyHistogram.decode`
 * reads it back, and `merge` adds distributions, so cluster percentiles are computed
 * from the union of every node's samples (never by averaging percentiles).
 */
export class LatencyHistogram {
  readonly #histogram: hdr.JsHistogram;
  /** Bumped on every change, so an unchanged histogram is not encoded twice. */
  #version = 0;
  #encoded: { readonly version: number; readonly text: string } | undefined;

  constructor() {
    this.#histogram = build();
  }

  /**
   * Reads an encoded histogram from another node.
   * @throws Error when `encoded` is not HdrHistogram's base64 form (V2, plain or compressed).
   */
  static decode(encoded: string): LatencyHistogram {
    const histogram = new LatencyHistogram();
    histogram.addEncoded(encoded);
    return histogram;
  }

  /** The union of several encoded histograms. */
  static mergeEncoded(encoded: readonly string[]): LatencyHistogram {
    const merged = new LatencyHistogram();
    for (const e of encoded) merged.addEncoded(e);
    return merged;
  }

  /**
   * Adds an encoded histogram (`encode()` of another node) to this one without building
   * an intermediate histogram. All or nothing: a malformed input changes nothing.
   * Also reads HdrHistogram's compressed base64 form (what version 0.1.0 sent).
   * @throws Error when `encoded` is not HdrHistogram's base64 form; RangeError when the
   * counts would pass 2^53 - 1 (where they stop being exact).
   */
  addEncoded(encoded: string): void {
    const bytes = Buffer.from(encoded.trim(), 'base64');
    if (bytes.length >= 4 && bytes.readInt32BE(0) === V2_COMPRESSED_COOKIE) {
      const decoded = hdr.decodeFromCompressedBase64(encoded, BIT_BUCKET_SIZE, false);
      this.#histogram.add(decoded as unknown as hdr.JsHistogram);
      decoded.destroy();
      this.#version++;
      return;
    }
    const { lowestDiscernibleValue, significantDigits, pairs } = readCounts(bytes);
    // Counts indexes depend only on the unit and the significant digits: with the same
    // ones an index means the same value here, and counts add index by index (what
    // JsHistogram.add does for equal layouts). Else go through a histogram of theirs.
    const same = lowestDiscernibleValue === LOWEST_DISCERNIBLE && significantDigits === SIGNIFICANT_DIGITS;
    const target = same ? this.#histogram : build(lowestDiscernibleValue, significantDigits);
    if (pairs === 0) return;
    // All or nothing: past 2^53 counts are no longer exact, so refuse before changing
    // anything (no bucket can exceed the total).
    let total = 0;
    for (let i = 0; i < pairs; i++) total += scratchCounts[i] as number;
    if (!Number.isSafeInteger(this.#histogram.totalCount + total)) {
      throw new RangeError('HdrHistogram counts would exceed 2^53 - 1: not merged');
    }
    const last = scratchIndexes[pairs - 1] as number;
    const top = target.highestEquivalentValue(target.valueFromIndex(last));
    if (!Number.isSafeInteger(top)) throw new Error('HdrHistogram payload: value out of range');
    if (last >= target.countsArrayLength) {
      target.resize(top);
      target.highestTrackableValue = target.highestEquivalentValue(target.valueFromIndex(target.countsArrayLength - 1));
    }
    for (let i = 0; i < pairs; i++) target.addToCountAtIndex(scratchIndexes[i] as number, scratchCounts[i] as number);
    target.setTotalCount(target.totalCount + total);
    // Min and max as JsHistogram.decode establishes them: the top bucket's highest value, the lowest non-zero bucket.
    target.updateMinAndMax(top);
    const lowest = scratchIndexes[0] === 0 ? (pairs > 1 ? scratchIndexes[1] : undefined) : scratchIndexes[0];
    if (lowest !== undefined) target.updateMinAndMax(target.valueFromIndex(lowest));
    if (!same) this.#histogram.add(target);
    this.#version++;
  }

  /** Records one latency in ms (negative, from clock steps, counts as 0). */
  record(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`latency must be finite, got ${ms}`);
    this.#histogram.recordValue(Math.max(0, Math.round(ms * MICROS_PER_MS)));
    this.#version++;
  }

  merge(other: LatencyHistogram): void {
    this.#histogram.add(other.#histogram);
    this.#version++;
  }

  /** Removes every value of `other` (which must have been added to this one). */
  subtract(other: LatencyHistogram): void {
    this.#histogram.subtract(other.#histogram);
    this.#version++;
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
    const [p50 = 0, p90 = 0, p95 = 0, p99 = 0, p999 = 0] = empty ? [] : this.#valuesAt([50, 90, 95, 99, 99.9]);
    return {
      count: this.count,
      min: empty ? 0 : this.#histogram.minNonZeroValue / MICROS_PER_MS,
      p50,
      p90,
      p95,
      p99,
      p999,
      max: empty ? 0 : this.#histogram.maxValue / MICROS_PER_MS,
    };
  }

  /**
   * Values (ms) at ascending percentiles (> 0) in one pass over the counts, by
   * JsHistogram.getValueAtPercentile's rule: the first index whose running count
   * reaches ceil(p/100 x total - 1 ulp), reported as that bucket's highest value.
   */
  #valuesAt(percentiles: readonly number[]): number[] {
    const h = this.#histogram;
    const total = h.totalCount;
    const rank = (p: number) => {
      const fp = (Math.min(p, 100) / 100) * total;
      return Math.max(Math.ceil(fp - 2 ** (Math.floor(Math.log2(fp)) - 52)), 1);
    };
    const values: number[] = [];
    let next = 0;
    let target = rank(percentiles[0] ?? 100);
    let running = 0;
    for (let i = 0; i < h.countsArrayLength && next < percentiles.length; i++) {
      running += h.getCountAtIndex(i);
      while (next < percentiles.length && running >= target) {
        values.push(h.highestEquivalentValue(h.valueFromIndex(i)) / MICROS_PER_MS);
        next++;
        target = rank(percentiles[next] ?? 100);
      }
    }
    while (values.length < percentiles.length) values.push(0);
    return values;
  }

  /**
   * HdrHistogram's V2 encoding in base64, uncompressed: deflating and inflating cost
   * more than the bytes they save on a loopback or LAN link (the zero runs are already
   * run-length coded). Cached until the histogram changes.
   */
  encode(): string {
    if (this.#encoded?.version === this.#version) return this.#encoded.text;
    const h = this.#histogram;
    const countsLimit = h.totalCount === 0 ? 0 : h.countsArrayIndex(h.maxValue) + 1;
    // Worst case: every count takes a full 8-byte word.
    const needed = V2_HEADER_BYTES + 8 * countsLimit;
    if (scratch.length < needed) scratch = Buffer.allocUnsafe(Math.max(needed, 2 * scratch.length));
    const buffer = scratch;
    buffer.writeInt32BE(V2_COOKIE, 0);
    buffer.writeInt32BE(0, 8);
    buffer.writeInt32BE(h.numberOfSignificantValueDigits, 12);
    buffer.writeBigInt64BE(BigInt(h.lowestDiscernibleValue), 16);
    buffer.writeBigInt64BE(BigInt(h.highestTrackableValue), 24);
    buffer.writeDoubleBE(1, 32);
    let at = V2_HEADER_BYTES;
    let index = 0;
    while (index < countsLimit) {
      const count = h.getCountAtIndex(index++);
      if (count !== 0) {
        at = writeWord(buffer, at, count);
        continue;
      }
      let zeros = 1;
      while (index < countsLimit && h.getCountAtIndex(index) === 0) {
        zeros++;
        index++;
      }
      at = writeWord(buffer, at, zeros === 1 ? 0 : -zeros);
    }
    buffer.writeInt32BE(at - V2_HEADER_BYTES, 4);
    const text = buffer.toString('base64', 0, at);
    this.#encoded = { version: this.#version, text };
    return text;
  }

  reset(): void {
    this.#histogram.reset();
    this.#version++;
  }
}
