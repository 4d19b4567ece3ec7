import { describe, expect, it } from 'vitest';
import {
  collectDiagnosticReport,
  createHealth,
  createMetrics,
  createNodeDiagnostics,
  createNodeLogger,
  localDiagnosticNode,
  NodeSnapshotSchema,
  pingCheck,
  queueAcceptingCheck,
} from '../src/index.js';
import { listen } from './support/http-node.js';

async function serve() {
  const log = createNodeLogger({ nodeId: 'solo' });
  const metrics = createMetrics();
  const health = createHealth({
    checks: [pingCheck(), queueAcceptingCheck(() => ({ accepting: false, reason: 'paused' }))],
  });
  await health.refresh();
  const node = createNodeDiagnostics({ nodeId: 'solo', logger: log, health, metrics });
  const http = await listen((req, res) => {
    if (!node.handle(req, res)) res.writeHead(404).end('not mine');
  });
  return {
    log,
    metrics,
    node,
    url: http.url,
    [Symbol.asyncDispose]: async () => {
      await http.close();
      await node.close();
      await health.close();
      await log.close();
    },
  };
}

describe('createNodeDiagnostics', () => {
  describe('handle', () => {
    it('serves livez and readyz in the Kubernetes format and times them as an SLI', async () => {
      await using s = await serve();
      const live = await fetch(`${s.url}/livez`);
      expect([live.status, await live.text()]).toEqual([200, 'ok\n']);
      const ready = await fetch(`${s.url}/readyz?verbose`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toBe('[+]ping ok\n[-]queue failed: paused\nreadyz check failed\n');
      const excluded = await fetch(`${s.url}/readyz?exclude=queue`);
      expect(excluded.status).toBe(200);
      expect(s.metrics.snapshot().indicators.health_check).toMatchObject({ success: 2, failure: 1 });
    });

    it('gives the same health answers without a socket (healthAnswer), and nothing for other paths', async () => {
      await using s = await serve();
      expect(s.node.healthAnswer('/livez')).toEqual({ status: 200, body: 'ok\n' });
      expect(s.node.healthAnswer('/readyz?verbose')).toEqual({
        status: 503,
        body: '[+]ping ok\n[-]queue failed: paused\nreadyz check failed\n',
      });
      expect(s.node.healthAnswer('/readyz?exclude=queue')?.status).toBe(200);
      expect(s.node.healthAnswer('/livez/extra')).toBeUndefined();
      expect(s.node.healthAnswer('/diagnostics/snapshot')).toBeUndefined();
      expect(s.metrics.snapshot().indicators.health_check).toMatchObject({ success: 2, failure: 1 });
    });

    it('serves a snapshot that validates, with a log cursor', async () => {
      await using s = await serve();
      for (let i = 0; i < 5; i++) s.log.logger.info({ i }, 'r');
      const body = await (await fetch(`${s.url}/diagnostics/snapshot?afterSeq=3`)).json();
      const snapshot = NodeSnapshotSchema.parse(body);
      expect(snapshot.logs.records.map((r) => r.seq)).toEqual([4, 5]);
      expect(snapshot.health.readyz.ok).toBe(false);
      expect(snapshot.resources.openHandles).toBeGreaterThan(0);
    });

    it('answers bad query parameters with 400 and path: message lines, other methods with 405', async () => {
      await using s = await serve();
      const bad = await fetch(`${s.url}/diagnostics/snapshot?limit=-1&afterSeq=x`);
      expect(bad.status).toBe(400);
      expect(await bad.text()).toMatch(/^afterSeq: .*\nlimit: .*\n$/);
      const post = await fetch(`${s.url}/diagnostics/snapshot`, { method: 'POST' });
      expect(post.status).toBe(405);
      const other = await fetch(`${s.url}/elsewhere`);
      expect([other.status, await other.text()]).toEqual([404, 'not mine']);
    });
  });

  it('works in process through localDiagnosticNode, with "the last N" reaching past the time window', async () => {
    await using s = await serve();
    for (let i = 0; i < 1500; i++) s.log.logger.info({ i }, 'r');
    const report = await collectDiagnosticReport({
      nodes: [localDiagnosticNode(s.node)],
      logWindowMs: 1,
      minLogRecordsPerNode: 1000,
      clock: () => Date.now() + 60_000, // the whole log is older than the window
    });
    expect(report.nodes[0]?.error ?? null).toBeNull();
    expect(report.logs.totalRecords).toBe(1000);
    expect(report.logs.records[0]?.seq).toBe(501);
    expect(report.status).toBe('critical'); // its only voter is not ready
  });
});
