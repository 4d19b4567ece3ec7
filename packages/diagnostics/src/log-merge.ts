import { z } from 'zod';
import type { LogRecord } from './logger.js';

/** What the merged view holds of one node's log, gaps never hidden (gaps are inclusive seq ranges). */
export const LogCompletenessSchema = z.object({
  nodeId: z.string(),
  status: z.enum(['complete', 'gaps', 'unavailable']),
  received: z.number().int().nonnegative(),
  firstSeq: z.number().nullable(),
  lastSeq: z.number().nullable(),
  nodeLastSeq: z.number().nullable(),
  gaps: z.array(z.tuple([z.number(), z.number()])),
  /** Seqs the node declared skipped (reserved, never written to disk before a crash): not counted as gaps. */
  skipped: z.array(z.tuple([z.number(), z.number()])),
  missing: z.number().int().nonnegative(),
  truncatedBefore: z.boolean(),
  error: z.string().nullable(),
});

export type LogCompleteness = z.infer<typeof LogCompletenessSchema>;

/** One node's contribution: records (maybe repeated across polls), and what it said it had. */
export interface NodeLogInput {
  readonly nodeId: string;
  readonly records: readonly LogRecord[];
  /** The node's newest seq at its last answer, or null if it never answered. */
  readonly nodeLastSeq: number | null;
  /** The first seq that should be present (a cursor + 1), when known. */
  readonly expectedFirstSeq?: number;
  readonly truncatedBefore?: boolean;
  /** Set when the node did not answer the last request. */
  readonly error?: string | null;
}

/** The merged view: records in HLC order, duplicates dropped, and what is missing per node. */
export interface MergedLogs {
  /** Ordered by HLC, then node id, then seq, except that each node's own records stay in seq order; each (node, seq) once. */
  readonly records: LogRecord[];
  readonly duplicatesDropped: number;
  readonly completeness: LogCompleteness[];
}

const byHlc = (a: LogRecord, b: LogRecord) =>
  a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq;

/** One node's records by seq, each seq once; counts what was dropped. */
function uniqueBySeq(nodeId: string, input: readonly LogRecord[]): { records: LogRecord[]; duplicates: number } {
  // Fast path: a node's answer is already in strictly increasing seq order.
  let ordered = true;
  for (let i = 0; i < input.length; i++) {
    const r = input[i];
    const prev = input[i - 1];
    if (!r || r.node !== nodeId || (prev && r.seq <= prev.seq)) {
      ordered = false;
      break;
    }
  }
  if (ordered) return { records: [...input], duplicates: 0 };
  // A record claiming another node is not this node's to vouch for.
  const sorted = input.filter((r) => r.node === nodeId).sort((a, b) => a.seq - b.seq);
  const records: LogRecord[] = [];
  let duplicates = 0;
  for (const r of sorted) {
    if (records.at(-1)?.seq === r.seq) duplicates++;
    else records.push(r);
  }
  return { records, duplicates };
}

/**
 * Merges per-node runs, each in seq order: a k-way merge by HLC, O(n·k). A node stamps
 * seq and HLC together, so its run is in HLC order too, unless its clock went back
 * (e.g. across a restart from an older version): then the run still comes out in seq
 * order, each record placed by its HLC among the other nodes' where the order allows.
 */
function mergeRuns(runs: readonly LogRecord[][]): LogRecord[] {
  const out: LogRecord[] = [];
  const heads = runs.map(() => 0);
  for (;;) {
    let best = -1;
    let bestRecord: LogRecord | undefined;
    for (let k = 0; k < runs.length; k++) {
      const candidate = runs[k]?.[heads[k] ?? 0];
      if (candidate && (bestRecord === undefined || byHlc(candidate, bestRecord) < 0)) {
        best = k;
        bestRecord = candidate;
      }
    }
    if (bestRecord === undefined) return out;
    out.push(bestRecord);
    heads[best] = (heads[best] ?? 0) + 1;
  }
}

/**
 * Merges per-node logs: deduplicated by (node, seq), ordered by HLC (a causal order
 * across nodes) with each node's records kept in seq order, and a completeness record
 * per node listing every seq gap, including records the node wrote after the last one
 * received.
 */
export function mergeLogs(inputs: readonly NodeLogInput[]): MergedLogs {
  const runs: LogRecord[][] = [];
  let duplicatesDropped = 0;
  const completeness: LogCompleteness[] = [];
  for (const input of inputs) {
    const { records: bySeq, duplicates } = uniqueBySeq(input.nodeId, input.records);
    duplicatesDropped += duplicates;
    const skipped: [number, number][] = [];
    for (const r of bySeq) {
      const range = (r as { seqSkipped?: unknown }).seqSkipped;
      if (Array.isArray(range) && range.length === 2 && Number.isInteger(range[0]) && Number.isInteger(range[1])) {
        skipped.push([range[0] as number, range[1] as number]);
      }
    }
    const gaps: [number, number][] = [];
    const addGap = (from: number, to: number) => {
      // Cut declared-skipped ranges out of the gap.
      let start = from;
      for (const [a, b] of [...skipped].sort((x, y) => x[0] - y[0])) {
        if (b < start || a > to) continue;
        if (a > start) gaps.push([start, a - 1]);
        start = Math.max(start, b + 1);
      }
      if (start <= to) gaps.push([start, to]);
    };
    let expected = input.expectedFirstSeq ?? bySeq[0]?.seq ?? 1;
    for (const { seq } of bySeq) {
      if (seq < expected) continue;
      if (seq > expected) addGap(expected, seq - 1);
      expected = seq + 1;
    }
    const maxSeen = Math.max(expected - 1, bySeq.at(-1)?.seq ?? 0);
    if (input.nodeLastSeq !== null && input.nodeLastSeq > maxSeen) addGap(maxSeen + 1, input.nodeLastSeq);
    const missing = gaps.reduce((n, [from, to]) => n + (to - from + 1), 0);
    const error = input.error ?? null;
    completeness.push({
      nodeId: input.nodeId,
      status: error !== null ? 'unavailable' : gaps.length > 0 ? 'gaps' : 'complete',
      received: bySeq.length,
      firstSeq: bySeq[0]?.seq ?? null,
      lastSeq: bySeq.at(-1)?.seq ?? null,
      nodeLastSeq: input.nodeLastSeq,
      gaps,
      skipped,
      missing,
      truncatedBefore: input.truncatedBefore ?? false,
      error,
    });
    runs.push(bySeq);
  }
  // A node's seq order is its program order: never reordered, even where its HLC
  // went back (a wall clock stepped back across a restart the HLC could not bridge).
  return { records: mergeRuns(runs), duplicatesDropped, completeness };
}
