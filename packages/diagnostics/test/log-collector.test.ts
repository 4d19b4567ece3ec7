import { fileURLToPath } from 'node:url';
import { type NodeProcess, spawnNode, tempDir, waitFor } from '@unrdf/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createLogCollector, httpDiagnosticNode, type LogRecord, mergeLogs, readLogSegments } from '../src/index.js';
import { startTestNode } from './support/http-node.js';

const record = (node: string, seq: number, hlc: string): LogRecord => ({
  node,
  seq,
  hlc,
  time: 0,
  level: 30,
  msg: `${node}#${seq}`,
});
const stamp = (ms: number, logical = 0) => `${String(ms).padStart(15, '0')}.${String(logical).padStart(10, '0')}`;

describe('mergeLogs', () => {
  it('deduplicates by (node, seq), orders by HLC and reports inner and tail gaps', () => {
    const merged = mergeLogs([
      {
        nodeId: 'a',
        records: [
          record('a', 1, stamp(10)),
          record('a', 2, stamp(30)),
          record('a', 2, stamp(30)),
          record('a', 5, stamp(50)),
        ],
        nodeLastSeq: 7,
      },
      {
        nodeId: 'b',
        records: [record('b', 1, stamp(20)), record('b', 2, stamp(30)), record('x', 3, stamp(1))],
        nodeLastSeq: 2,
      },
      { nodeId: 'c', records: [], nodeLastSeq: null, error: 'timeout: 2000 ms' },
    ]);
    expect(merged.records.map((r) => r.msg)).toEqual(['a#1', 'b#1', 'a#2', 'b#2', 'a#5']);
    expect(merged.duplicatesDropped).toBe(1);
    expect(merged.completeness).toEqual([
      expect.objectContaining({
        nodeId: 'a',
        status: 'gaps',
        received: 3,
        gaps: [
          [3, 4],
          [6, 7],
        ],
        missing: 4,
      }),
      expect.objectContaining({ nodeId: 'b', status: 'complete', received: 2, gaps: [], missing: 0 }),
      expect.objectContaining({ nodeId: 'c', status: 'unavailable', received: 0, error: 'timeout: 2000 ms' }),
    ]);
  });
});

describe('mergeLogs (clock stepped back)', () => {
  it("keeps a node's records in seq order where its HLC goes back, placed among the others' by HLC", () => {
    const merged = mergeLogs([
      // a's clock stepped back 2 s across a restart between seq 2 and 3.
      {
        nodeId: 'a',
        records: [record('a', 1, stamp(5000)), record('a', 2, stamp(5001)), record('a', 3, stamp(3000))],
        nodeLastSeq: 3,
      },
      { nodeId: 'b', records: [record('b', 1, stamp(4000)), record('b', 2, stamp(6000))], nodeLastSeq: 2 },
    ]);
    expect(merged.records.map((r) => r.msg)).toEqual(['b#1', 'a#1', 'a#2', 'a#3', 'b#2']);
  });
});

describe('createLogCollector', () => {
  it('pages forward from sinceWallMs, oldest first, so nothing inside the horizon is lost', async () => {
    await using node = await startTestNode('h1');
    for (let i = 0; i < 25; i++) node.log.logger.info({ i }, 'r');
    const collector = createLogCollector({
      nodes: [httpDiagnosticNode({ id: 'h1', url: node.url })],
      sinceWallMs: Date.now() - 60_000, // every record is inside the horizon
      pageLimit: 10,
    });
    await collector.poll();
    const view = collector.view();
    expect(view.records.map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(view.completeness[0]).toMatchObject({
      status: 'complete',
      received: 25,
      missing: 0,
      truncatedBefore: false,
    });
  });

  it('pages through a node with more records than one page, and picks up only new ones next time', async () => {
    await using node = await startTestNode('p1');
    for (let i = 0; i < 2500; i++) node.log.logger.info({ i }, 'r');
    const collector = createLogCollector({ nodes: [httpDiagnosticNode({ id: 'p1', url: node.url })], pageLimit: 1000 });
    await collector.poll();
    for (let i = 0; i < 10; i++) node.log.logger.info({ i }, 'more');
    await collector.poll();
    await collector.poll();
    const view = collector.view();
    expect(view.records.map((r) => r.seq)).toEqual(Array.from({ length: 2510 }, (_, i) => i + 1));
    expect(view.completeness[0]).toMatchObject({ status: 'complete', received: 2510, nodeLastSeq: 2510, missing: 0 });

    const bounded = createLogCollector({
      nodes: [httpDiagnosticNode({ id: 'p1', url: node.url })],
      maxRecordsPerNode: 500,
    });
    await bounded.poll();
    expect(bounded.view().records.map((r) => r.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 2011));
    expect(bounded.view().completeness[0]).toMatchObject({ status: 'complete', truncatedBefore: true, missing: 0 });
  });

  it('keeps every surviving record exactly once and reports the gap of a node killed mid-run', async () => {
    await using dir = await tempDir('diag-kill');
    const script = fileURLToPath(new URL('./fixtures/node-server.ts', import.meta.url));
    const count = 600;
    const procs: NodeProcess[] = ['k1', 'k2', 'k3'].map((id) =>
      spawnNode(script, { args: [id, dir.join(id), String(count), '600'] }),
    );
    try {
      const urls = await Promise.all(
        procs.map((p) => p.waitForLine(/^listening (\S+)/, 15_000).then((m) => m[1] ?? '')),
      );
      const nodes = urls.map((url, i) => httpDiagnosticNode({ id: `k${i + 1}`, url }));
      const collector = createLogCollector({ nodes, timeoutMs: 500, pageLimit: 200 });
      const [p1, p2, p3] = procs;
      if (!p1 || !p2 || !p3) throw new Error('missing process');
      // Poll while they write; kill k2 once some of its records are in.
      await waitFor(
        async () => {
          await collector.poll();
          return (collector.view().completeness[1]?.received ?? 0) >= 100;
        },
        { timeoutMs: 15_000, intervalMs: 20, what: 'k2 has contributed 100 records' },
      );
      await p2.kill9();
      await waitFor(
        async () => {
          await collector.poll();
          return /done/.test(p1.stdout()) && /done/.test(p3.stdout());
        },
        { timeoutMs: 20_000, intervalMs: 50, what: 'the survivors have written everything' },
      );
      await collector.poll();
      const view = collector.view();
      const keys = view.records.map((r) => `${r.node}:${r.seq}`);
      expect(new Set(keys).size).toBe(keys.length);
      for (const id of ['k1', 'k3']) {
        const seqs = view.records.filter((r) => r.node === id).map((r) => r.seq);
        expect(seqs.sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i + 1));
        expect(view.completeness.find((c) => c.nodeId === id)).toMatchObject({ status: 'complete', missing: 0 });
        expect((await readLogSegments(dir.join(id))).length).toBe(count);
      }
      const dead = view.completeness.find((c) => c.nodeId === 'k2');
      expect(dead?.status).toBe('unavailable');
      expect(dead?.error).toMatch(/^unreachable/);
      // Everything k2 got to disk is either in the merged view or inside a reported gap,
      // or was written after its last answer (the node is reported unavailable since).
      const collected = new Set(view.records.filter((r) => r.node === 'k2').map((r) => r.seq));
      const inGap = (seq: number) => dead?.gaps.some(([a, b]) => seq >= a && seq <= b) ?? false;
      const onDisk = await readLogSegments(dir.join('k2'));
      expect(onDisk.length).toBeGreaterThanOrEqual(collected.size - 50); // at most a flush interval lost to SIGKILL
      for (const r of onDisk) {
        expect(collected.has(r.seq) || inGap(r.seq) || r.seq > (dead?.nodeLastSeq ?? 0)).toBe(true);
      }
      expect(collected.size).toBe(dead?.received);
      expect(dead?.received).toBeLessThan(count);
    } finally {
      await Promise.all(procs.map((p) => p.stop(2000)));
    }
  }, 60_000);
});

describe('mergeLogs (properties)', () => {
  it('keeps each (node, seq) once, in HLC order, and reports exactly the missing seqs as gaps', () => {
    const nodeLog = fc.record({
      written: fc.integer({ min: 0, max: 60 }),
      kept: fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }),
      copies: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 60, maxLength: 60 }),
    });
    fc.assert(
      fc.property(fc.array(nodeLog, { minLength: 1, maxLength: 4 }), fc.integer(), (logs, seed) => {
        const inputs = logs.map((l, n) => {
          const node = `n${n}`;
          const records: LogRecord[] = [];
          for (let seq = 1; seq <= l.written; seq++) {
            if (!l.kept[seq - 1]) continue;
            // Node n's clock: wall ms interleaves with the other nodes'.
            for (let c = 0; c < (l.copies[seq - 1] ?? 1); c++) records.push(record(node, seq, stamp(seq * 7 + n, 0)));
          }
          // Shuffle deterministically: answers arrive in any order across polls.
          records.sort((a, b) => ((a.seq * 2654435761 + seed) % 97) - ((b.seq * 2654435761 + seed) % 97));
          return { nodeId: node, records, nodeLastSeq: l.written, expectedFirstSeq: 1 };
        });
        const merged = mergeLogs(inputs);
        const keys = merged.records.map((r) => `${r.node}:${r.seq}`);
        expect(new Set(keys).size).toBe(keys.length);
        for (let i = 1; i < merged.records.length; i++) {
          expect((merged.records[i - 1]?.hlc ?? '') <= (merged.records[i]?.hlc ?? '')).toBe(true);
        }
        logs.forEach((l, n) => {
          const missing: number[] = [];
          for (let seq = 1; seq <= l.written; seq++) if (!l.kept[seq - 1]) missing.push(seq);
          const c = merged.completeness[n];
          const fromGaps = (c?.gaps ?? []).flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k));
          expect(fromGaps).toEqual(missing);
          expect(c?.received).toBe(l.written - missing.length);
          expect(c?.status).toBe(missing.length ? 'gaps' : 'complete');
        });
      }),
    );
  });
});
