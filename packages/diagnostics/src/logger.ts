import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { ClockDriftError } from './errors.js';
import { createHlc, decodeHlc, encodeHlc, type Hlc } from './hlc.js';
import { flushOnExit } from './internal/exit-flush.js';
import { parseOptions } from './internal/parse.js';

/** One structured log record as written: pino's fields plus node id, per-node seq and HLC. */
export const LogRecordSchema = z.looseObject({
  node: z.string().min(1),
  seq: z.number().int().positive(),
  hlc: z.string().regex(/^\d{15}\.\d{10}$/),
  time: z.number(),
  level: z.number().int(),
  msg: z.string().optional(),
});
export type LogRecord = z.infer<typeof LogRecordSchema>;

const HLC_TEXT = /^\d{15}\.\d{10}$/;

/**
 * The same check as LogRecordSchema, hand-written: a 5-minute cluster snapshot holds
 * tens of thousands of records, and this is ~20x faster than the generic validator.
 */
export function isLogRecord(value: unknown): value is LogRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.node === 'string' &&
    r.node.length > 0 &&
    typeof r.seq === 'number' &&
    Number.isInteger(r.seq) &&
    r.seq > 0 &&
    typeof r.hlc === 'string' &&
    HLC_TEXT.test(r.hlc) &&
    typeof r.time === 'number' &&
    typeof r.level === 'number' &&
    Number.isInteger(r.level) &&
    (r.msg === undefined || typeof r.msg === 'string')
  );
}

/** An array of log records, validated with `isLogRecord`. */
export const LogRecordArraySchema = z.custom<LogRecord[]>(
  (v) => Array.isArray(v) && v.every(isLogRecord),
  'expected an array of log records (node, seq, hlc, time, level)',
);

const NodeLoggerOptionsSchema = z.object({
  nodeId: z.string().min(1).max(128),
  /** The node's clock; one is created (Date.now) when omitted. Share it with the transport so messages merge. */
  hlc: z.custom<Hlc>((v) => typeof v === 'object' && v !== null && 'now' in v).optional(),
  /** Wall clock for segment rotation and retention (ms since the epoch). */
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).optional(),
  /** Records kept in memory. */
  ringSize: z.number().int().positive().max(10_000_000).optional(),
  /** Directory of on-disk segments; none when omitted (memory only). */
  segmentDir: z.string().min(1).optional(),
  /** How long one segment file covers. */
  segmentSpanMs: z.number().int().positive().optional(),
  /** Segments entirely older than this are deleted. */
  retentionMs: z.number().int().positive().optional(),
  /** Buffered records reach the segment at least this often (and always on exit). */
  flushIntervalMs: z.number().int().positive().optional(),
  /** fsync each flush (durable against power loss, slower). */
  fsync: z.boolean().optional(),
  /** Also hands every record (one JSON line) to this stream, e.g. process.stdout for an operator. */
  echo: z
    .custom<{ write(line: string): unknown }>((v) => typeof v === 'object' && v !== null && 'write' in v)
    .optional(),
});
export type NodeLoggerOptions = z.input<typeof NodeLoggerOptionsSchema>;

export const DEFAULT_RING_SIZE = 10_000;
export const DEFAULT_SEGMENT_SPAN_MS = 60_000;
export const DEFAULT_RETENTION_MS = 10 * 60_000;
export const DEFAULT_FLUSH_INTERVAL_MS = 100;
const FLUSH_BYTES = 64 * 1024;
const SEQ_RESERVATION_FILE = 'seq.reserved';
const SEQ_RESERVATION_BLOCK = 10_000;

/** Which records to read: after a seq (a cursor), since a wall time, at most `limit` (the newest). */
export interface LogQuery {
  readonly afterSeq?: number;
  readonly sinceWallMs?: number;
  /** Reach further back than `sinceWallMs` to return at least this many records (from memory). */
  readonly atLeast?: number;
  readonly limit?: number;
}

/** A node's answer to a log query. `lastSeq` is the newest seq written, so a reader can see what it is missing. */
export interface LogPage {
  readonly node: string;
  readonly records: LogRecord[];
  /** Newest seq this node has written (0 if none). */
  readonly lastSeq: number;
  /** Oldest seq still available in memory or on disk (0 if none). */
  readonly oldestAvailableSeq: number;
  /**
   * True when `limit` cut records off: with `afterSeq`, the newer ones (read on from
   * the last seq returned); without, the older ones. Also true when retention deleted
   * a segment while it was being read (its records are gone; the seqs show as a gap).
   */
  readonly truncated: boolean;
}

/** A LogPage whose records are still JSON text, one per line, no newline. */
export interface RawLogPage extends Omit<LogPage, 'records'> {
  readonly lines: string[];
}

/** A pino logger stamping node id, seq and HLC, with its bounded ring and on-disk segments. */
export interface NodeLogger extends AsyncDisposable {
  readonly nodeId: string;
  readonly logger: Logger;
  readonly hlc: Hlc;
  /** Newest seq written so far. */
  lastSeq(): number;
  /** Records matching the query, oldest first; reads disk segments when memory does not reach back far enough. */
  read(query?: LogQuery): Promise<LogPage>;
  /** Like `read`, but the records as their JSON lines (spliced into a response without re-encoding). */
  readRaw(query?: LogQuery): Promise<RawLogPage>;
  /** Writes buffered records to the segment now. */
  flushSync(): void;
  close(): Promise<void>;
}

interface RingEntry {
  readonly seq: number;
  readonly wallMs: number;
  readonly line: string;
}

const SEGMENT = /^seg-(\d{15})-(\d{12})\.ndjson$/;
const segmentName = (startMs: number, firstSeq: number) =>
  `seg-${String(startMs).padStart(15, '0')}-${String(firstSeq).padStart(12, '0')}.ndjson`;

/** Segment files of `dir`, oldest first. */
function listSegments(dir: string): { name: string; startMs: number; firstSeq: number }[] {
  return readdirSync(dir)
    .map((name) => ({ name, match: SEGMENT.exec(name) }))
    .filter((s) => s.match !== null)
    .map((s) => ({ name: s.name, startMs: Number(s.match?.[1]), firstSeq: Number(s.match?.[2]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Parses NDJSON lines, skipping a torn last line (a crash mid-write) and anything that is not a record. */
function parseLines(text: string): LogRecord[] {
  const records: LogRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const parsed: unknown = JSON.parse(line);
      if (isLogRecord(parsed)) records.push(parsed);
    } catch {
      // torn write at the tail of a segment after a crash
    }
  }
  return records;
}

/** A segment's text, or undefined when retention deleted it after it was listed. */
async function readSegment(dir: string, name: string): Promise<string | undefined> {
  try {
    return await readFile(join(dir, name), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Reads every record from a segment directory (for a node that is down, or after a restart), oldest first. */
export async function readLogSegments(dir: string): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (const segment of listSegments(dir)) out.push(...parseLines((await readSegment(dir, segment.name)) ?? ''));
  return out;
}

/**
 * Creates a node's structured logger: pino, every record stamped with the node id,
 * a per-node sequence number (continuing after a restart from the segments on
 * disk) and an HLC timestamp; kept in a bounded ring and appended to time-rotated
 * segment files covering the last `retentionMs`. Buffered records are written
 * synchronously on `process.exit`.
 * @throws InvalidOptionsError on bad options.
 * @example
 * await using log = createNodeLogger({ nodeId: 'n1', segmentDir: '/var/lib/unrdf/logs' });
 * log.logger.info({ op: 'op-1' }, 'operation completed');
 * const page = await log.read({ sinceWallMs: Date.now() - 300_000 });
 */
export function createNodeLogger(options: NodeLoggerOptions): NodeLogger {
  const opts = parseOptions(NodeLoggerOptionsSchema, options, 'node logger options');
  const clock = opts.clock ?? Date.now;
  const hlc = opts.hlc ?? createHlc({ clock });
  const ringSize = opts.ringSize ?? DEFAULT_RING_SIZE;
  const segmentSpanMs = opts.segmentSpanMs ?? DEFAULT_SEGMENT_SPAN_MS;
  const retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
  const flushIntervalMs = opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
  const dir = opts.segmentDir;

  // Ring buffer of the newest `ringSize` records.
  const ring: (RingEntry | undefined)[] = new Array(ringSize);
  let ringCount = 0;
  let ringHead = 0; // index of the next write

  // The newest seq written (handed to the sink); a record being stamped has seq + 1.
  let seq = 0;
  let oldestOnDisk = 0;
  // Seqs are reserved on disk in blocks before use, so a restart after a crash never
  // reuses one a reader may already hold (which (node, seq) dedupe would then drop).
  let reservedUpTo = 0;
  let skipped: [number, number] | undefined;
  const reservationFile = dir === undefined ? undefined : join(dir, SEQ_RESERVATION_FILE);
  if (dir !== undefined && reservationFile !== undefined) {
    mkdirSync(dir, { recursive: true });
    const segments = listSegments(dir);
    const last = segments.at(-1);
    let onDisk = 0;
    if (last) {
      const records = parseLines(readFileSync(join(dir, last.name), 'utf8'));
      onDisk = Math.max(last.firstSeq - 1, records.at(-1)?.seq ?? 0);
      oldestOnDisk = segments[0]?.firstSeq ?? 0;
      // The clock continues from the last stamp written, as the seq does: if the wall
      // clock stepped back across the restart, later records still stamp after earlier
      // ones (HLC monotonicity, Kulkarni et al. 2014 §3, across the process' lives).
      const lastStamp = decodeHlc(records.at(-1)?.hlc ?? '');
      if (lastStamp) {
        try {
          hlc.receive(lastStamp);
        } catch (error) {
          // Our own stamp more than maxDriftMs ahead: the clock stepped back further than
          // the HLC follows; mergeLogs still keeps this node's records in seq order.
          if (!(error instanceof ClockDriftError)) throw error;
        }
      }
    }
    const reserved = existsSync(reservationFile) ? Number(readFileSync(reservationFile, 'utf8')) || 0 : 0;
    seq = Math.max(onDisk, reserved);
    reservedUpTo = seq;
    if (seq > onDisk) skipped = [onDisk + 1, seq];
  }
  const reserve = (upTo: number) => {
    if (reservationFile === undefined) return;
    // Write-then-rename: the reservation is never seen half-written.
    const tmp = `${reservationFile}.tmp`;
    writeFileSync(tmp, String(upTo));
    if (opts.fsync) {
      const f = openSync(tmp, 'r');
      fsyncSync(f);
      closeSync(f);
    }
    renameSync(tmp, reservationFile);
    reservedUpTo = upTo;
  };

  let fd: number | undefined;
  let segmentStartedAt = 0;
  let buffer: string[] = [];
  let bufferedBytes = 0;
  let closed = false;

  const flushSync = () => {
    if (dir === undefined || buffer.length === 0) return;
    if (fd === undefined) return;
    writeSync(fd, buffer.join(''));
    if (opts.fsync) fsyncSync(fd);
    buffer = [];
    bufferedBytes = 0;
  };

  const rotateIfDue = (now: number, firstSeq: number) => {
    if (dir === undefined) return;
    if (fd !== undefined && now - segmentStartedAt < segmentSpanMs) return;
    flushSync();
    if (fd !== undefined) closeSync(fd);
    segmentStartedAt = now;
    fd = openSync(join(dir, segmentName(now, firstSeq)), 'a');
    // Retention: a segment is entirely older than the horizon when the *next* one started before it.
    const segments = listSegments(dir);
    for (let i = 0; i + 1 < segments.length; i++) {
      const next = segments[i + 1];
      const segment = segments[i];
      if (next && segment && next.startMs < now - retentionMs) unlinkSync(join(dir, segment.name));
    }
    oldestOnDisk = listSegments(dir)[0]?.firstSeq ?? firstSeq;
  };

  let pendingSeq = 0;
  let pendingWall = 0;
  const sink = {
    write(line: string) {
      // Only now is the seq used: a log call that threw between the mixin and here (a
      // getter of the caller's object that throws, a serializer) leaves no hole in the
      // seqs; the next record takes its seq.
      seq = pendingSeq;
      const entry: RingEntry = { seq: pendingSeq, wallMs: pendingWall, line };
      ring[ringHead] = entry;
      ringHead = (ringHead + 1) % ringSize;
      if (ringCount < ringSize) ringCount++;
      opts.echo?.write(line);
      if (dir !== undefined && !closed) {
        rotateIfDue(clock(), entry.seq);
        buffer.push(line);
        bufferedBytes += line.length;
        if (bufferedBytes >= FLUSH_BYTES) flushSync();
      }
    },
  };

  const logger = pino(
    {
      level: opts.level ?? 'info',
      // pid tells restarts apart; the node id (in the mixin) replaces the hostname.
      base: { pid: process.pid },

      timestamp: () => `,"time":${Math.floor(clock())}`,
      // pino calls the mixin once per record that passes the level filter, synchronously
      // before writing it, so seq has no holes from filtered records.
      mixin() {
        const stamp = hlc.now();
        pendingSeq = seq + 1;
        if (pendingSeq > reservedUpTo) reserve(seq + SEQ_RESERVATION_BLOCK);
        pendingWall = stamp.wallMs;
        return { node: opts.nodeId, seq: pendingSeq, hlc: encodeHlc(stamp) };
      },
      // Ours win: a caller's `{ seq }`, `{ node }` or `{ hlc }` must not forge the stamp.
      // Into a new object: the caller's may be frozen or reused, and is not ours to change.
      mixinMergeStrategy: (mergeObject: object, mixinObject: object) => Object.assign({}, mergeObject, mixinObject),
    },
    sink,
  );

  if (skipped) {
    // Say which seqs were reserved but never reached the disk (a crash): readers
    // account for them instead of reporting a silent gap. Written whatever the level
    // (even `silent`): mergeLogs reads the range from this record, and without it the
    // seqs would show as missing.
    const configured = logger.level;
    logger.level = 'warn';
    logger.warn({ seqSkipped: skipped }, 'log reopened after an unclean stop; these seqs were never written to disk');
    logger.level = configured;
  }

  const unregister = flushOnExit({ flushSync });
  const timer = dir === undefined ? undefined : setInterval(flushSync, flushIntervalMs);
  timer?.unref();

  /** The i-th oldest record in memory. */
  const ringAt = (i: number): RingEntry | undefined => ring[(ringHead - ringCount + i + ringSize) % ringSize];

  /**
   * The first ring position matching the query. Seq and HLC wall time only grow as
   * records are written, so "seq > afterSeq and wall >= since" holds for a suffix of
   * the ring: binary search, and a query for the last second costs O(log n), not O(n).
   */
  const firstMatch = (afterSeq: number, since: number): number => {
    let lo = 0;
    let hi = ringCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const entry = ringAt(mid);
      if (entry && entry.seq > afterSeq && entry.wallMs >= since) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };

  const readRaw = async (query: LogQuery = {}): Promise<RawLogPage> => {
    const afterSeq = query.afterSeq ?? 0;
    let rotatedAway = false;
    const since = query.sinceWallMs ?? Number.NEGATIVE_INFINITY;
    const oldestInRing = ringAt(0)?.seq ?? seq + 1;
    const picked: { seq: number; line: string }[] = [];
    // Reach back to disk only when memory does not cover what was asked: older seqs
    // than the ring holds were asked for, and the time horizon reaches past the ring.
    const oldestWall = ringAt(0)?.wallMs ?? Number.POSITIVE_INFINITY;
    if (dir !== undefined && oldestInRing > afterSeq + 1 && oldestWall >= since && oldestOnDisk > 0) {
      flushSync();
      for (const segment of listSegments(dir)) {
        const text = await readSegment(dir, segment.name);
        if (text === undefined) {
          // Retention deleted it while we read the ones before: its records are gone.
          rotatedAway = true;
          continue;
        }
        for (const line of text.split('\n')) {
          const record = parseLines(line)[0];
          if (record && record.seq > afterSeq && record.seq < oldestInRing && decodeWall(record.hlc) >= since) {
            picked.push({ seq: record.seq, line });
          }
        }
      }
    }
    let from = firstMatch(afterSeq, since);
    if (query.atLeast !== undefined)
      from = Math.min(from, Math.max(firstMatch(afterSeq, Number.NEGATIVE_INFINITY), ringCount - query.atLeast));
    for (let i = from; i < ringCount; i++) {
      const entry = ringAt(i);
      if (entry) picked.push({ seq: entry.seq, line: entry.line });
    }
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    const truncated = picked.length > limit || rotatedAway;
    // A cursor read pages forward (the oldest after the cursor); otherwise the newest win.
    const kept =
      picked.length <= limit ? picked : query.afterSeq !== undefined ? picked.slice(0, limit) : picked.slice(-limit);
    const oldestAvailableSeq =
      dir !== undefined && oldestOnDisk > 0 ? Math.min(oldestOnDisk, oldestInRing) : oldestInRing;
    return {
      node: opts.nodeId,
      lines: kept.map((p) => (p.line.endsWith('\n') ? p.line.slice(0, -1) : p.line)),
      lastSeq: seq,
      oldestAvailableSeq: seq === 0 ? 0 : oldestAvailableSeq,
      truncated,
    };
  };

  const read = async (query: LogQuery = {}): Promise<LogPage> => {
    const { lines, ...rest } = await readRaw(query);
    return { ...rest, records: lines.map((line) => JSON.parse(line) as LogRecord) };
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    if (timer) clearInterval(timer);
    flushSync();
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
    // A clean stop hands back the unused reservation: the next open continues at seq + 1.
    if (reservationFile !== undefined) reserve(seq);
    unregister();
  };

  return {
    nodeId: opts.nodeId,
    logger,
    hlc,
    lastSeq: () => seq,
    read,
    readRaw,
    flushSync,
    close,
    [Symbol.asyncDispose]: close,
  };
}

const decodeWall = (encoded: string) => Number(encoded.slice(0, 15));
