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

export interface MergedLogs {
  /** Ordered by HLC, then node id, then seq; each (node, seq) once. */
  readonly records: LogRecord[];
  readonly duplicatesDropped: number;
  readonly completeness: LogCompleteness[];
}

const byHlc = (a: LogRecord, b: LogRecord) =>
  a.hlc < b.hlc ? -1 : a.hlc > b.hlc ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq;

/**
 * Merges per-node logs: deduplicated by (node, seq), ordered by HLC (a causal order
 * across nodes), and a completeness record per node listing every seq gap, including
 * records the node wrote after the last one received.
 */
export function mergeLogs(inputs: readonly NodeLogInput[]): MergedLogs {
  const records: LogRecord[] = [];
  let duplicatesDropped = 0;
  const completeness: LogCompleteness[] = [];
  for (const input of inputs) {
    const bySeq = new Map<number, LogRecord>();
    for (const record of input.records) {
      // A record claiming another node is not this node's to vouch for.
      if (record.node !== input.nodeId) continue;
      if (bySeq.has(record.seq)) duplicatesDropped++;
      else bySeq.set(record.seq, record);
    }
    const seqs = [...bySeq.keys()].sort((a, b) => a - b);
    const gaps: [number, number][] = [];
    let expected = input.expectedFirstSeq ?? seqs[0] ?? 1;
    for (const seq of seqs) {
      if (seq < expected) continue;
      if (seq > expected) gaps.push([expected, seq - 1]);
      expected = seq + 1;
    }
    const maxSeen = Math.max(expected - 1, seqs.at(-1) ?? 0);
    if (input.nodeLastSeq !== null && input.nodeLastSeq > maxSeen) gaps.push([maxSeen + 1, input.nodeLastSeq]);
    const missing = gaps.reduce((n, [from, to]) => n + (to - from + 1), 0);
    const error = input.error ?? null;
    completeness.push({
      nodeId: input.nodeId,
      status: error !== null ? 'unavailable' : gaps.length > 0 ? 'gaps' : 'complete',
      received: bySeq.size,
      firstSeq: seqs[0] ?? null,
      lastSeq: seqs.at(-1) ?? null,
      nodeLastSeq: input.nodeLastSeq,
      gaps,
      missing,
      truncatedBefore: input.truncatedBefore ?? false,
      error,
    });
    for (const record of bySeq.values()) records.push(record);
  }
  records.sort(byHlc);
  return { records, duplicatesDropped, completeness };
}
