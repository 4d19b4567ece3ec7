import { z } from 'zod';
import { ClockDriftError } from './errors.js';
import { parseOptions } from './internal/parse.js';

/**
 * A hybrid logical clock timestamp (Kulkarni, Demirbas et al., "Logical Physical
 * Clocks", 2014): `wallMs` is the largest physical time seen (ms since the epoch),
 * `logical` counts events within that millisecond.
 */
export interface HlcTimestamp {
  readonly wallMs: number;
  readonly logical: number;
}

const WALL_DIGITS = 15; // ms since the epoch fit in 15 decimal digits until year 33658
const LOGICAL_DIGITS = 10; // up to 2^32 events per millisecond
const MAX_LOGICAL = 0xffff_ffff;
const MAX_WALL_MS = 10 ** WALL_DIGITS - 1;

const HlcOptionsSchema = z.object({
  /** Physical clock in ms since the epoch (injected; defaults to Date.now). */
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
  /** A remote timestamp further ahead of our physical clock than this is rejected. */
  maxDriftMs: z.number().int().positive().optional(),
});
export type HlcOptions = z.input<typeof HlcOptionsSchema>;

export const DEFAULT_MAX_DRIFT_MS = 60_000;

/** A hybrid logical clock: `now()` for local and send events, `receive()` for messages. */
export interface Hlc {
  /** Timestamps a local or send event; strictly greater than every timestamp issued or received before. */
  now(): HlcTimestamp;
  /**
   * Merges a timestamp carried by a message and timestamps the receive event. A
   * malformed `remote` (a wall time that is not an integer in 0..10^15 - 1, a logical
   * counter that is not an integer in 0..2^32 - 1) is ignored: the receive is then
   * timestamped as a local event, like `now()`, and our clock is not touched by it.
   * @throws ClockDriftError when `remote` is more than maxDriftMs ahead of our physical clock (the clock is unchanged).
   */
  receive(remote: HlcTimestamp): HlcTimestamp;
  /** The last timestamp issued, without advancing. */
  peek(): HlcTimestamp;
  readonly maxDriftMs: number;
}

/**
 * Creates a hybrid logical clock. Timestamps are monotonic even when the physical
 * clock steps back, respect causality across nodes (send < receive), and stay
 * within `maxDriftMs` of physical time because far-future remote stamps are refused.
 * @throws InvalidOptionsError on bad options.
 * @example
 * const hlc = createHlc({ clock: Date.now });
 * const stamp = encodeHlc(hlc.now()); // '000001764220000000.0000000000'
 */
export function createHlc(options: HlcOptions = {}): Hlc {
  const opts = parseOptions(HlcOptionsSchema, options, 'HLC options');
  const clock = opts.clock ?? Date.now;
  const maxDriftMs = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
  let wallMs = 0;
  let logical = 0;
  const physical = () => Math.floor(clock());
  // Kulkarni et al. bound the logical counter by clock skew and event rate, not by a
  // constant, and a peer can send any counter within the drift bound. If a
  // stamp would need more than MAX_LOGICAL (the fixed-width encoding's limit), it moves
  // to the next millisecond instead: still greater than every earlier stamp, at the
  // cost of running 1 ms ahead of physical time, rather than failing every later event.
  const advance = (nextWallMs: number, nextLogical: number): HlcTimestamp => {
    if (nextLogical > MAX_LOGICAL) {
      wallMs = nextWallMs + 1;
      logical = 0;
    } else {
      wallMs = nextWallMs;
      logical = nextLogical;
    }
    return { wallMs, logical };
  };
  const now = (): HlcTimestamp => {
    // Kulkarni et al. §3, Fig. 5 "send or local event".
    const pt = physical();
    return pt > wallMs ? advance(pt, 0) : advance(wallMs, logical + 1);
  };
  return {
    maxDriftMs,
    now,
    receive(remote) {
      // A malformed stamp (NaN, fractional, negative, out of range) would poison the
      // clock or break the encoding; it carries no usable causality, so it is ignored.
      if (!isValidHlc(remote)) return now();
      const pt = physical();
      if (remote.wallMs - pt > maxDriftMs) throw new ClockDriftError(remote.wallMs, pt, maxDriftMs);
      // Kulkarni et al. §3, Fig. 5 "receive event of message m".
      const next = Math.max(wallMs, remote.wallMs, pt);
      if (next === wallMs && next === remote.wallMs) return advance(next, Math.max(logical, remote.logical) + 1);
      if (next === wallMs) return advance(next, logical + 1);
      if (next === remote.wallMs) return advance(next, remote.logical + 1);
      return advance(next, 0);
    },
    peek: () => ({ wallMs, logical }),
  };
}

/** Whether `ts` is a timestamp `encodeHlc` can write: integers within the fixed widths. */
function isValidHlc(ts: HlcTimestamp | null | undefined): boolean {
  return (
    typeof ts === 'object' &&
    ts !== null &&
    Number.isSafeInteger(ts.wallMs) &&
    ts.wallMs >= 0 &&
    ts.wallMs <= MAX_WALL_MS &&
    Number.isInteger(ts.logical) &&
    ts.logical >= 0 &&
    ts.logical <= MAX_LOGICAL
  );
}

/** Orders two timestamps: negative, zero or positive. */
export function compareHlc(a: HlcTimestamp, b: HlcTimestamp): number {
  return a.wallMs - b.wallMs || a.logical - b.logical;
}

/** A fixed-width string whose lexicographic order is the timestamps' order (for logs and JSON). */
export function encodeHlc(ts: HlcTimestamp): string {
  return `${String(ts.wallMs).padStart(WALL_DIGITS, '0')}.${String(ts.logical).padStart(LOGICAL_DIGITS, '0')}`;
}

const ENCODED = /^(\d{15})\.(\d{10})$/;

/** Parses `encodeHlc`'s output; undefined when it is not one (including a logical counter above 2^32 - 1). */
export function decodeHlc(encoded: string): HlcTimestamp | undefined {
  const match = ENCODED.exec(encoded);
  if (!match?.[1] || !match[2]) return undefined;
  const ts = { wallMs: Number(match[1]), logical: Number(match[2]) };
  return isValidHlc(ts) ? ts : undefined;
}
