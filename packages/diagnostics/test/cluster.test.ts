import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import {
  collectDiagnosticReport,
  createHealth,
  createHlc,
  createMetrics,
  createNodeDiagnostics,
  createNodeLogger,
  type DiagnosticNode,
  DiagnosticReportSchema,
  httpDiagnosticNode,
  localDiagnosticNode,
  type Metrics,
  type NodeSnapshot,
  pingCheck,
  renderReportMarkdown,
  SPEC_SLOS,
  writeDebugBundle,
} from '../src/index.js';
import { listen, startTestNode, view } from './support/http-node.js';

const members = ['n1', 'n2', 'n3'];

async function threeNodes() {
  const nodes = await Promise.all(
    members.map((id) => startTestNode(id, { consensus: view(id, 'n1', 3, members, id === 'n3' ? 97 : 100) })),
  );
  for (const n of nodes) {
    for (let i = 0; i < 30; i++) {
      n.log.logger.info({ op: `${n.id}-${i}` }, 'operation completed');
      n.metrics.recordOperation({
        id: `${n.id}-${i}`,
        type: 'create',
        ok: i % 10 !== 0,
        durationMs: 2 + i,
        ...(i % 10 === 0 ? { errorType: 'HandlerTimeout', errorMessage: 'took too long' } : {}),
      });
      n.metrics.observe('receipt', { durationMs: 1 + (i % 5), ok: true });
    }
  }
  return {
    nodes,
    clients: nodes.map((n) => httpDiagnosticNode({ id: n.id, url: n.url })),
    [Symbol.asyncDispose]: async () => {
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}

/** A node in this process over the given metrics, asked without HTTP. */
function localNode(id: string, metrics: Metrics) {
  const log = createNodeLogger({ nodeId: id });
  const health = createHealth({ checks: [pingCheck()] });
  const diagnostics = createNodeDiagnostics({ nodeId: id, logger: log, health, metrics });
  return {
    node: localDiagnosticNode(diagnostics),
    [Symbol.asyncDispose]: async () => {
      await diagnostics.close();
      await health.close();
      await log.close();
    },
  };
}

/** A full, synchronous garbage collection (V8's gc(), exposed at run time for this test file). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('collectDiagnosticReport', () => {
  it("lets go of each node's answer once the report is built, long before the deadline", async () => {
    await using node = await startTestNode('n1');
    node.log.logger.info('hello');
    const client = httpDiagnosticNode({ id: 'n1', url: node.url });
    const answers: WeakRef<object>[] = [];
    const watched = {
      id: 'n1',
      fetchSnapshot: async (request: Parameters<typeof client.fetchSnapshot>[0], signal: AbortSignal) => {
        const answer = (await client.fetchSnapshot(request, signal)) as object;
        answers.push(new WeakRef(answer));
        return answer;
      },
    };
    const outcome = (await collectDiagnosticReport({ nodes: [watched], timeoutMs: 60_000 })).nodes[0]?.outcome;
    expect(outcome).toBe('ok');
    expect(answers).toHaveLength(1);
    // A few collections, event-loop turns apart (what a settled job still held goes by
    // the next); the deadline is a minute away, so a leak keeps the answer through all.
    // (No deref before the end: a deref keeps its target alive to the end of the job.)
    for (let round = 0; round < 3; round++) {
      collectGarbage();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(answers[0]?.deref()).toBeUndefined();
  });

  it('reports a healthy 3-node cluster: leader, lag, merged metrics, complete logs, SLOs', async () => {
    await using cluster = await threeNodes();
    const own = createMetrics();
    const report = await collectDiagnosticReport({ nodes: cluster.clients, timeoutMs: 2000, metrics: own });
    expect(DiagnosticReportSchema.parse(report)).toBeTruthy();
    expect(own.snapshot().indicators.diagnostic_report).toMatchObject({ success: 1, failure: 0 });
    expect(report.status).toBe('healthy');
    expect(report.reasons).toEqual([]);
    expect(report.cluster).toMatchObject({
      leaderId: 'n1',
      term: 3,
      voters: 3,
      quorum: 2,
      healthyVoters: 3,
      failureTolerance: 1,
    });
    expect(report.cluster.members.find((m) => m.id === 'n3')).toMatchObject({ lag: 3, reachable: true });
    expect(report.nodes.every((n) => n.outcome === 'ok' && n.resources !== null && n.version === '1.2.3')).toBe(true);
    expect(report.metrics.operation).toMatchObject({ success: 81, failure: 9, nodes: members });
    expect(report.metrics.operation?.lifetimeMs.max).toBeCloseTo(31, 1);
    expect(report.operations.recent).toHaveLength(90);
    expect(report.operations.failures).toHaveLength(9);
    expect(report.errors).toEqual([expect.objectContaining({ type: 'HandlerTimeout', count: 9, nodes: members })]);
    expect(report.logs.totalRecords).toBe(90);
    expect(report.logs.completeness.map((c) => c.status)).toEqual(['complete', 'complete', 'complete']);
    const hlcs = report.logs.records.map((r) => r.hlc);
    expect([...hlcs].sort()).toEqual(hlcs);
    const receiptSlo = report.slos.find((s) => s.id === 'receipt-latency-p99');
    expect(receiptSlo).toMatchObject({ status: 'met', compliance: 1, windowEvents: 90 });
    expect(report.slos.find((s) => s.id === 'verification-success')?.status).toBe('unknown');
    const markdown = renderReportMarkdown(report);
    expect(markdown).toContain('# Diagnostic report: ✅ HEALTHY');
    expect(markdown).toContain('| n3 | yes | yes | follower | 3 | 100 | 97 | 3 |');
  });

  it('never says healthy while a member is down, and keeps the rest of the report', async () => {
    await using cluster = await threeNodes();
    await cluster.nodes[2]?.close();
    const report = await collectDiagnosticReport({ nodes: cluster.clients, timeoutMs: 1000 });
    expect(report.status).toBe('degraded');
    expect(report.reasons[0]).toMatch(/^node n3 did not answer: unreachable/);
    expect(report.cluster).toMatchObject({ healthyVoters: 2, failureTolerance: 0 });
    expect(report.logs.completeness.find((c) => c.nodeId === 'n3')).toMatchObject({
      status: 'unavailable',
      received: 0,
    });
    expect(report.metrics.operation?.nodes).toEqual(['n1', 'n2']);
  });

  it('reports a member in the configuration that nobody queried, and a node that is not ready', async () => {
    await using cluster = await threeNodes();
    for (const n of cluster.nodes) n.consensus = view(n.id, 'n1', 3, [...members, 'n4']);
    const node2 = cluster.nodes[1];
    if (node2) node2.ready = false;
    await new Promise((r) => setTimeout(r, 100)); // readiness re-runs every 20 ms
    const report = await collectDiagnosticReport({ nodes: cluster.clients });
    expect(report.status).toBe('critical'); // 2 healthy voters of 4: no quorum
    expect(report.reasons).toContain('member n4 is in the configuration but was not queried');
    expect(report.reasons).toContain('quorum lost: 2 healthy voters of 4, need 3');
    expect(report.reasons.some((r) => r.startsWith('node n2 is not ready (queue:'))).toBe(true);
    expect(report.cluster).toMatchObject({ voters: 4, quorum: 3, healthyVoters: 2 });
  });

  it("cuts an overlong operation record instead of refusing the node's whole snapshot", async () => {
    const metrics = createMetrics();
    for (let i = 0; i < 50; i++) metrics.recordOperation({ id: `op-${i}`, type: 'create', ok: true, durationMs: 2 });
    metrics.recordOperation({ id: 'op-x', type: 'create', ok: false, durationMs: 2, errorType: 'Timeout' });
    await using local = localNode('n1', metrics);
    // As a node of 0.1.0 sent them: uncut.
    const older: DiagnosticNode = {
      id: 'n1',
      fetchSnapshot: async (request, signal) => {
        const snapshot = (await local.node.fetchSnapshot(request, signal)) as NodeSnapshot;
        for (const failure of snapshot.metrics.recentFailures) {
          failure.errorType = 'E'.repeat(200);
          failure.errorMessage = 'm'.repeat(2000);
        }
        return snapshot;
      },
    };
    const report = await collectDiagnosticReport({ nodes: [older] });
    expect(report.nodes[0]).toMatchObject({ outcome: 'ok', error: null });
    expect(report.operations.failures[0]?.errorType).toHaveLength(128);
    expect(report.operations.failures[0]?.errorMessage).toHaveLength(1024);
    expect(report.slos.find((s) => s.id === 'operation-success')?.status).not.toBe('unknown');
  });

  it('judges a latency SLO on the nodes that count its threshold only', async () => {
    const receipts = (slos: typeof SPEC_SLOS) => {
      const metrics = createMetrics({ slos: [...slos] });
      for (let i = 0; i < 1000; i++) metrics.observe('receipt', { durationMs: 2, ok: true });
      return metrics;
    };
    // n1 runs an older configuration without the p95 SLO: it counts the 45 ms threshold only.
    await using n1 = localNode('n1', receipts(SPEC_SLOS.filter((s) => s.id !== 'receipt-latency-p95')));
    await using n2 = localNode('n2', receipts(SPEC_SLOS));
    const report = await collectDiagnosticReport({ nodes: [n1.node, n2.node], minLogRecordsPerNode: 0 });
    // Every receipt took 2 ms: none is bad for "<= 15 ms", and n2's 1000 are the evidence.
    expect(report.slos.find((s) => s.id === 'receipt-latency-p95')).toMatchObject({
      status: 'met',
      compliance: 1,
      windowEvents: 1000,
    });
    expect(report.slos.find((s) => s.id === 'receipt-latency-p99')).toMatchObject({
      compliance: 1,
      windowEvents: 2000,
    });
  });

  it('flags two leaders in one term as critical', async () => {
    await using cluster = await threeNodes();
    const n2 = cluster.nodes[1];
    if (n2) n2.consensus = view('n2', 'n2', 3, members);
    const report = await collectDiagnosticReport({ nodes: cluster.clients });
    expect(report.status).toBe('critical');
    expect(report.reasons).toContain('two leaders in term 3: n1, n2');
  });

  it('bounds and reports garbage, wrong schemas, hangs, huge payloads and dead ports', async () => {
    await using good = await startTestNode('good');
    const garbage = await listen((_, res) => res.end('<html>not json</html>'));
    const wrongShape = await listen((_, res) => res.end(JSON.stringify({ schema: 'nope', nodeId: 'shape' })));
    const impostor = await listen(
      (_, res) => good.url && fetch(`${good.url}/diagnostics/snapshot`).then(async (r) => res.end(await r.text())),
    );
    const hang = await listen(() => undefined);
    const huge = await listen((_, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let sent = 0;
      const pump = () => {
        while (sent < 200 && res.write(chunk)) sent++;
        if (sent < 200) res.once('drain', pump);
        else res.end();
      };
      res.write('{"pad":"');
      pump();
    });
    const cut = await listen((_, res) => {
      // Dies mid-answer: half a body, then the connection is gone.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('{"schema":"unrdf.diagnostics.node-snapshot/v1","nodeId":"cut",');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const dead = await listen(() => undefined);
    await dead.close();
    try {
      const nodes = [
        httpDiagnosticNode({ id: 'good', url: good.url }),
        httpDiagnosticNode({ id: 'garbage', url: garbage.url }),
        httpDiagnosticNode({ id: 'shape', url: wrongShape.url }),
        httpDiagnosticNode({ id: 'impostor', url: impostor.url }),
        httpDiagnosticNode({ id: 'hang', url: hang.url }),
        httpDiagnosticNode({ id: 'huge', url: huge.url, maxBytes: 1024 * 1024 }),
        httpDiagnosticNode({ id: 'dead', url: dead.url }),
        httpDiagnosticNode({ id: 'cut', url: cut.url }),
      ];
      const t0 = performance.now();
      const report = await collectDiagnosticReport({ nodes, timeoutMs: 400 });
      expect(performance.now() - t0).toBeLessThan(10_000); // bounded by the deadline, not by the hang
      const outcome = Object.fromEntries(report.nodes.map((n) => [n.nodeId, n.outcome]));
      expect(outcome).toEqual({
        good: 'ok',
        garbage: 'invalid',
        shape: 'invalid',
        impostor: 'invalid',
        hang: 'timeout',
        huge: 'too_large',
        dead: 'unreachable',
        cut: 'unreachable',
      });
      expect(report.nodes.find((n) => n.nodeId === 'impostor')?.error).toBe('answered as node good');
      expect(report.status).toBe('critical'); // 1 of 7 voters healthy: no quorum
      expect(report.reasons.at(-1)).toBe('quorum lost: 1 healthy voters of 8, need 5');
    } finally {
      await Promise.all([
        garbage.close(),
        wrongShape.close(),
        impostor.close(),
        hang.close(),
        huge.close(),
        cut.close(),
      ]);
    }
  });

  it('writes a .tar.gz bundle whose manifest lists what each node contributed', async () => {
    await using cluster = await threeNodes();
    await cluster.nodes[2]?.close();
    await using dir = await tempDir('diag-bundle');
    const report = await collectDiagnosticReport({ nodes: cluster.clients, timeoutMs: 1000 });
    const manifest = await writeDebugBundle(report, dir.join('bundle.tar.gz'));
    expect(manifest.nodes.map((n) => [n.nodeId, n.outcome, n.logRecords, n.files.length])).toEqual([
      ['n1', 'ok', 30, 2],
      ['n2', 'ok', 30, 2],
      ['n3', 'unreachable', 0, 1],
    ]);
    const listing = execFileSync('tar', ['-tzf', dir.join('bundle.tar.gz')], { encoding: 'utf8' }).split('\n');
    for (const path of [
      'manifest.json',
      'report.json',
      'report.md',
      'logs/merged.ndjson',
      'nodes/n1/logs.ndjson',
      'nodes/n3/node.json',
    ]) {
      expect(listing).toContain(`unrdf-diagnostics/${path}`);
    }
    const manifestInTar = JSON.parse(
      execFileSync('tar', ['-xzOf', dir.join('bundle.tar.gz'), 'unrdf-diagnostics/manifest.json'], {
        encoding: 'utf8',
      }),
    );
    expect(manifestInTar).toEqual(JSON.parse(JSON.stringify(manifest)));
    const reportInTar = execFileSync('tar', ['-xzOf', dir.join('bundle.tar.gz'), 'unrdf-diagnostics/report.json'], {
      encoding: 'utf8',
    });
    expect(DiagnosticReportSchema.parse(JSON.parse(reportInTar)).status).toBe('degraded');
  });

  it('gives nodes whose ids sanitise alike their own bundle folders', async () => {
    await using a = await startTestNode('a/b');
    await using b = await startTestNode('a_b');
    a.log.logger.info('from a/b');
    b.log.logger.info('from a_b');
    await using dir = await tempDir('diag-bundle');
    const report = await collectDiagnosticReport({
      nodes: [httpDiagnosticNode({ id: 'a/b', url: a.url }), httpDiagnosticNode({ id: 'a_b', url: b.url })],
    });
    const manifest = await writeDebugBundle(report, dir.join('b.tar.gz'));
    expect(manifest.nodes.map((n) => n.files[0])).toEqual(['nodes/a_b/node.json', 'nodes/a_b-2/node.json']);
    expect(manifest.files.filter((f) => f.path.endsWith('logs.ndjson')).map((f) => f.nodeId)).toEqual(['a/b', 'a_b']);
  });

  it('orders logs from nodes that exchange messages causally (HLC), even with skewed clocks', async () => {
    let wall = 1_800_000_000_000;
    const fast = createHlc({ clock: () => wall + 500 });
    const slow = createHlc({ clock: () => wall });
    await using a = await startTestNode('a', { hlc: fast });
    await using b = await startTestNode('b', { hlc: slow });
    a.log.logger.info('send request');
    b.log.hlc.receive(a.log.hlc.peek()); // the message carries a's stamp
    b.log.logger.info('handle request');
    wall += 1;
    const report = await collectDiagnosticReport({
      nodes: [httpDiagnosticNode({ id: 'a', url: a.url }), httpDiagnosticNode({ id: 'b', url: b.url })],
      logWindowMs: 10 * 365 * 24 * 3600_000,
    });
    expect(report.logs.records.map((r) => r.msg)).toEqual(['send request', 'handle request']);
  });
});
