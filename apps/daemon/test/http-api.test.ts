import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { createDaemon, type Daemon, InvalidInputError } from '@unrdf/daemon';
import { DiagnosticReportSchema } from '@unrdf/diagnostics';
import { verifyCheckpointConsistency, verifyReceipt } from '@unrdf/receipts';
import { tempDir } from '@unrdf/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ensureAdminToken, openTokenStore, type TokenStore } from '../src/auth/tokens.js';
import { localDaemonPort, remoteDaemonPort, serveDaemonPort } from '../src/http/daemon-port.js';
import {
  CancelResultSchema,
  ClusterViewSchema,
  ConsistencyAnswerSchema,
  ErrorBodySchema,
  LogPageSchema,
  OperationViewSchema,
  ReceiptBundleBodySchema,
  SloAnswerSchema,
  TrustedKeysSchema,
  VerdictSchema,
} from '../src/http/schemas.js';
import { createHttpApi, HTTP_ROUTES, type HttpServer, startHttpServer } from '../src/http/server.js';
import { createTelemetry, type Telemetry } from '../src/telemetry.js';
import { startTestDaemon, type TestDaemon } from './support/test-daemon.js';

let test: TestDaemon;
let daemon: Daemon;
let telemetry: Telemetry;
let tokens: TokenStore;
/**
 * Every route runs twice: over the daemon on the same thread, and over a port to it
 * through a real MessageChannel (what the HTTP front on its worker thread uses: calls,
 * answers and typed errors cross as structured clones).
 */
const VIA = ['same thread', 'message port'] as const;
const servers = new Map<(typeof VIA)[number], HttpServer>();
let server: HttpServer;
let channel: MessageChannel | undefined;
let admin: string;
let submitter: string;
let reader: string;
const release = () => test.release();

beforeAll(async () => {
  test = await startTestDaemon('http-api', { instanceId: 'node-1', logLevel: 'info' });
  ({ daemon, telemetry } = test);
  tokens = openTokenStore(test.dir.path);
  const ensured = ensureAdminToken(test.dir.path, tokens);
  admin = ensured.token ?? '';
  submitter = tokens.createToken(['submit']).token;
  reader = tokens.createToken(['read']).token;
  servers.set('same thread', await startHttpServer({ daemon, tokens, telemetry, port: 0 }));
  channel = new MessageChannel();
  serveDaemonPort(channel.port1, localDaemonPort(daemon, telemetry));
  servers.set(
    'message port',
    await startHttpServer({ daemon: remoteDaemonPort(channel.port2, daemon.nodeId), tokens, port: 0 }),
  );
}, 60_000);

afterAll(async () => {
  for (const s of servers.values()) await s.close();
  channel?.port1.close();
  await test?.close();
});

const call = (path: string, init: RequestInit & { token?: string; json?: unknown } = {}) => {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('authorization', `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  return fetch(`${server.url}${path}`, { ...init, headers, body: body ?? null, signal: AbortSignal.timeout(20_000) });
};

async function submitAndWait(input: { type: string; subject: string; input?: unknown }) {
  const submitted = await call('/v1/operations', { method: 'POST', token: submitter, json: input });
  expect(submitted.status).toBe(202);
  const view = OperationViewSchema.parse(await submitted.json());
  const done = await call(`/v1/operations/${view.id}?wait=10000`, { token: reader });
  expect(done.status).toBe(200);
  return OperationViewSchema.parse(await done.json());
}

function promtoolCheck(text: string) {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}`, error: result.error };
}

describe.each(VIA)('createHttpApi over the daemon on the %s', (via) => {
  beforeAll(() => {
    server = servers.get(via) as HttpServer;
  });

  it('refuses bad options with path: message issues, and listens on loopback by default', async () => {
    await expect(createHttpApi({ daemon, tokens, telemetry, bodyLimitBytes: -1 })).rejects.toBeInstanceOf(
      InvalidInputError,
    );
    await expect(createHttpApi({ daemon, tokens, telemetry, rateLimit: { max: 0, timeWindowMs: 1 } })).rejects.toThrow(
      /rateLimit\.max: /,
    );
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  describe('POST /v1/operations', () => {
    it('accepts an operation with 202 and the operation view, then runs it to a verifiable receipt', async () => {
      const submitted = await call('/v1/operations', {
        method: 'POST',
        token: submitter,
        json: { type: 'greet', subject: 'urn:example:ada', input: { name: 'Ada' }, idempotencyKey: 'k-1' },
      });
      expect(submitted.status).toBe(202);
      const view = OperationViewSchema.parse(await submitted.json());
      expect(submitted.headers.get('location')).toBe(`/v1/operations/${view.id}`);
      expect(view).toMatchObject({ type: 'greet', subject: 'urn:example:ada', idempotencyKey: 'k-1' });

      const done = await call(`/v1/operations/${view.id}?wait=10000`, { token: reader });
      const final = OperationViewSchema.parse(await done.json());
      expect(final).toMatchObject({ state: 'completed', outcome: 'succeeded', output: { hello: 'Ada' } });
      expect(final.receipt).not.toBeNull();

      const receipt = await call(`/v1/operations/${view.id}/receipt`, { token: reader });
      expect(receipt.status).toBe(200);
      const bundle = ReceiptBundleBodySchema.parse(await receipt.json());
      expect(bundle.receipt).toMatchObject({ operationId: view.id, type: 'greet' });

      const verdict = await call('/v1/verify', { method: 'POST', token: reader, json: bundle });
      expect(verdict.status).toBe(200);
      expect(VerdictSchema.parse(await verdict.json())).toEqual({ status: 'valid' });

      // Offline: only the public keys from /v1/keys, no token.
      const keys = await call('/v1/keys');
      expect(keys.status).toBe(200);
      const trusted = TrustedKeysSchema.parse(await keys.json());
      expect(trusted.origin).toBe(daemon.origin);
      expect(verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, trusted.keys).status).toBe('valid');

      // A tampered receipt gets a 200 with an invalid verdict: the verdict is the answer.
      const forged = { ...bundle, receipt: { ...(bundle.receipt as object), subject: 'urn:example:eve' } };
      const refused = await call('/v1/verify', { method: 'POST', token: reader, json: forged });
      expect(refused.status).toBe(200);
      expect(VerdictSchema.parse(await refused.json()).status).toBe('invalid');
    });

    it('answers 200 with the final view and its durable receipt after one round trip with ?wait', async () => {
      const response = await call('/v1/operations?wait=10000', {
        method: 'POST',
        token: submitter,
        json: { type: 'greet', subject: 'urn:example:grace', input: { name: 'Grace' } },
      });
      expect(response.status).toBe(200);
      const view = OperationViewSchema.parse(await response.json());
      expect(response.headers.get('location')).toBe(`/v1/operations/${view.id}`);
      expect(view).toMatchObject({ state: 'completed', outcome: 'succeeded', output: { hello: 'Grace' } });
      expect(view.receipt).not.toBeNull();
      // The receipt it names is durable: its bundle is there at once and verifies.
      const bundle = ReceiptBundleBodySchema.parse(
        await (await call(`/v1/operations/${view.id}/receipt`, { token: reader })).json(),
      );
      expect(bundle.receipt).toMatchObject({ operationId: view.id, leafIndex: view.receipt?.leafIndex });
      expect(verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, daemon.trustedKeys).status).toBe('valid');
    });

    it('answers 202 with the durable, unfinished operation when POST ?wait runs out first', async () => {
      const response = await call('/v1/operations?wait=50', {
        method: 'POST',
        token: submitter,
        json: { type: 'gate', subject: 'urn:g:post-wait' },
      });
      expect(response.status).toBe(202);
      const view = OperationViewSchema.parse(await response.json());
      expect(['pending', 'running']).toContain(view.state);
      expect(view.receipt).toBeNull();
      release();
      const done = OperationViewSchema.parse(
        await (await call(`/v1/operations/${view.id}?wait=10000`, { token: reader })).json(),
      );
      expect(done.state).toBe('completed');
    });

    it('refuses a POST ?wait beyond the bound before submitting anything', async () => {
      const body = { type: 'greet', subject: 'urn:example:never', idempotencyKey: 'k-refused-wait' };
      const response = await call('/v1/operations?wait=30001', {
        method: 'POST',
        token: submitter,
        json: { ...body, input: { name: 'Never' } },
      });
      expect(response.status).toBe(400);
      expect(ErrorBodySchema.parse(await response.json()).error.issues[0]).toMatch(/^wait: /);
      // Nothing was enqueued: the same idempotency key now makes a new operation.
      const later = OperationViewSchema.parse(
        await (
          await call('/v1/operations', {
            method: 'POST',
            token: submitter,
            json: { ...body, input: { name: 'Later' } },
          })
        ).json(),
      );
      expect(later.input).toEqual({ name: 'Later' });
    });

    it('answers a duplicate idempotency key with the original operation', async () => {
      const body = { type: 'greet', subject: 'urn:example:dup', input: { name: 'Dup' }, idempotencyKey: 'k-dup' };
      const first = OperationViewSchema.parse(
        await (await call('/v1/operations', { method: 'POST', token: submitter, json: body })).json(),
      );
      const second = OperationViewSchema.parse(
        await (await call('/v1/operations', { method: 'POST', token: submitter, json: body })).json(),
      );
      expect(second.id).toBe(first.id);
    });

    it('refuses an unknown type with 422 and the known types', async () => {
      const response = await call('/v1/operations', {
        method: 'POST',
        token: submitter,
        json: { type: 'nope', subject: 'urn:x' },
      });
      expect(response.status).toBe(422);
      const body = ErrorBodySchema.parse(await response.json());
      expect(body.error.code).toBe('UNRDF_DAEMON_UNKNOWN_TYPE');
      expect(body.error.known).toEqual(expect.arrayContaining(['greet', 'gate']));
      expect(body.error.issues).toEqual(["type: no handler for 'nope'"]);
    });

    it('refuses a malformed operation with 400 and path: message issues', async () => {
      const response = await call('/v1/operations', {
        method: 'POST',
        token: submitter,
        json: { type: 'greet', subject: '', priority: 1.5, extra: true },
      });
      expect(response.status).toBe(400);
      const body = ErrorBodySchema.parse(await response.json());
      expect(body.error.code).toBe('UNRDF_HTTP_INVALID_REQUEST');
      expect(body.error.issues).toEqual(
        expect.arrayContaining([expect.stringMatching(/^subject: /), expect.stringMatching(/^priority: /)]),
      );
      expect(body.error.issues.some((line) => line.includes('extra'))).toBe(true);
    });
  });

  describe('GET /v1/operations/:id', () => {
    it('answers 404 for an unknown id', async () => {
      const response = await call('/v1/operations/unknown-id', { token: reader });
      expect(response.status).toBe(404);
      expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('UNRDF_HTTP_OPERATION_NOT_FOUND');
    });

    it('answers the current state when ?wait runs out first', async () => {
      const submitted = OperationViewSchema.parse(
        await (
          await call('/v1/operations', { method: 'POST', token: submitter, json: { type: 'gate', subject: 'urn:g:1' } })
        ).json(),
      );
      const early = await call(`/v1/operations/${submitted.id}?wait=50`, { token: reader });
      expect(early.status).toBe(200);
      const view = OperationViewSchema.parse(await early.json());
      expect(['pending', 'running']).toContain(view.state);
      const receipt = await call(`/v1/operations/${submitted.id}/receipt`, { token: reader });
      expect(receipt.status).toBe(404);
      expect(ErrorBodySchema.parse(await receipt.json()).error.code).toBe('UNRDF_HTTP_RECEIPT_NOT_READY');
      release();
      const done = OperationViewSchema.parse(
        await (await call(`/v1/operations/${submitted.id}?wait=10000`, { token: reader })).json(),
      );
      expect(done.state).toBe('completed');
    });

    it('ends a long poll with the current state when the server closes', async () => {
      await using second = await startHttpServer({ daemon, tokens, telemetry, port: 0 });
      const submitted = OperationViewSchema.parse(
        await (
          await call('/v1/operations', { method: 'POST', token: submitter, json: { type: 'gate', subject: 'urn:g:3' } })
        ).json(),
      );
      const started = Date.now();
      const arrived = once(second.app.server, 'request');
      const polling = fetch(`${second.url}/v1/operations/${submitted.id}?wait=30000`, {
        headers: { authorization: `Bearer ${reader}` },
      });
      await arrived;
      await second.close();
      const response = await polling;
      expect(response.status).toBe(200);
      expect(['pending', 'running']).toContain(OperationViewSchema.parse(await response.json()).state);
      expect(Date.now() - started).toBeLessThan(10_000);
      await call(`/v1/operations/${submitted.id}`, { method: 'DELETE', token: submitter });
    });

    it('answers a wait at once, as if it had run out, when the budget of held requests is spent', async () => {
      await using budgetless = await startHttpServer({ daemon, tokens, telemetry, port: 0, maxWaiting: 0 });
      const at = (path: string, init: RequestInit = {}) =>
        fetch(`${budgetless.url}${path}`, { ...init, signal: AbortSignal.timeout(20_000) });
      const posted = await at('/v1/operations?wait=30000', {
        method: 'POST',
        headers: { authorization: `Bearer ${submitter}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'gate', subject: 'urn:g:budget' }),
      });
      expect(posted.status).toBe(202);
      const view = OperationViewSchema.parse(await posted.json());
      expect(view.receipt).toBeNull();
      const polled = await at(`/v1/operations/${view.id}?wait=30000`, {
        headers: { authorization: `Bearer ${reader}` },
      });
      expect(polled.status).toBe(200);
      expect(['pending', 'running']).toContain(OperationViewSchema.parse(await polled.json()).state);
      await expect(createHttpApi({ daemon, tokens, telemetry, maxWaiting: -1 })).rejects.toBeInstanceOf(
        InvalidInputError,
      );
      await call(`/v1/operations/${view.id}`, { method: 'DELETE', token: submitter });
    });

    it('ends a held wait when its client goes away, so it holds no place in the budget', async () => {
      // One place in the budget, over the same kind of port as the suite's server.
      const ports = via === 'message port' ? new MessageChannel() : undefined;
      if (ports !== undefined) serveDaemonPort(ports.port1, localDaemonPort(daemon, telemetry));
      await using one = await startHttpServer({
        daemon: ports === undefined ? daemon : remoteDaemonPort(ports.port2, daemon.nodeId),
        tokens,
        telemetry,
        port: 0,
        maxWaiting: 1,
      });
      try {
        const post = (body: unknown, signal: AbortSignal) =>
          fetch(`${one.url}/v1/operations?wait=30000`, {
            method: 'POST',
            headers: { authorization: `Bearer ${submitter}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
            signal,
          });
        const gone = new AbortController();
        const arrived = once(one.app.server, 'request');
        const abandoned = post({ type: 'gate', subject: 'urn:g:gone', idempotencyKey: `gone-${via}` }, gone.signal);
        await arrived;
        // Held by now (the gate keeps the operation running), then the client goes away.
        await new Promise((r) => setTimeout(r, 300));
        gone.abort();
        const settled = await abandoned.catch((e: unknown) => e);
        expect(
          settled instanceof Response ? `${settled.status} ${await settled.text()}` : (settled as Error).name,
        ).toBe('AbortError');
        // The place is free again: a wait is held (200 once final), not answered at once (202).
        let status = 0;
        for (let i = 0; i < 20 && status !== 200; i++) {
          const response = await post(
            { type: 'greet', subject: `urn:g:after:${i}`, input: { name: 'Ada' } },
            AbortSignal.timeout(20_000),
          );
          status = response.status;
          await response.body?.cancel();
          if (status !== 200) await new Promise((r) => setTimeout(r, 100));
        }
        expect(status).toBe(200);
        // Going away ended the wait, not the operation: the same idempotency key finds it still running.
        const found = await fetch(`${one.url}/v1/operations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${submitter}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'gate', subject: 'urn:g:gone', idempotencyKey: `gone-${via}` }),
          signal: AbortSignal.timeout(20_000),
        });
        expect(found.status).toBe(202);
        const gate = OperationViewSchema.parse(await found.json());
        expect(['pending', 'running']).toContain(gate.state);
        await call(`/v1/operations/${gate.id}`, { method: 'DELETE', token: submitter });
      } finally {
        ports?.port1.close();
      }
    });

    it('refuses a wait beyond the bound', async () => {
      const response = await call('/v1/operations/x?wait=999999', { token: reader });
      expect(response.status).toBe(400);
      expect(ErrorBodySchema.parse(await response.json()).error.issues[0]).toMatch(/^wait: /);
    });
  });

  describe('cancel', () => {
    it('cancels a running operation with DELETE and says false for a final one with POST …/cancel', async () => {
      const submitted = OperationViewSchema.parse(
        await (
          await call('/v1/operations', { method: 'POST', token: submitter, json: { type: 'gate', subject: 'urn:g:2' } })
        ).json(),
      );
      const cancelled = await call(`/v1/operations/${submitted.id}`, { method: 'DELETE', token: submitter });
      expect(cancelled.status).toBe(200);
      expect(CancelResultSchema.parse(await cancelled.json()).cancelled).toBe(true);
      const final = OperationViewSchema.parse(
        await (await call(`/v1/operations/${submitted.id}?wait=10000`, { token: reader })).json(),
      );
      expect(final.state).toBe('cancelled');
      const again = await call(`/v1/operations/${submitted.id}/cancel`, { method: 'POST', token: submitter });
      expect(again.status).toBe(200);
      expect(CancelResultSchema.parse(await again.json())).toMatchObject({
        cancelled: false,
        operation: { state: 'cancelled' },
      });
      // A cancelled operation still gets a receipt.
      expect((await call(`/v1/operations/${submitted.id}/receipt`, { token: reader })).status).toBe(200);
      expect((await call('/v1/operations/none/cancel', { method: 'POST', token: submitter })).status).toBe(404);
    });
  });

  describe('checkpoints', () => {
    it('serves the signed checkpoint as text and consistency proofs that verify offline', async () => {
      const first = await call('/v1/checkpoint', { token: reader });
      expect(first.status).toBe(200);
      expect(first.headers.get('content-type')).toMatch(/^text\/plain/);
      const before = await first.text();
      const size = Number(before.split('\n')[1]);
      expect(size).toBeGreaterThan(0);
      await submitAndWait({ type: 'greet', subject: 'urn:example:later', input: { name: 'Later' } });
      const response = await call(`/v1/checkpoint/consistency?from=${size}`, { token: reader });
      expect(response.status).toBe(200);
      const answer = ConsistencyAnswerSchema.parse(await response.json());
      expect(answer.from.checkpoint).toBe(before);
      expect(answer.to.treeSize).toBeGreaterThan(size);
      const keys = TrustedKeysSchema.parse(await (await call('/v1/keys')).json()).keys;
      expect(verifyCheckpointConsistency(answer.from.checkpoint, answer.to.checkpoint, answer.proof, keys).status).toBe(
        'valid',
      );
      const bad = await call(`/v1/checkpoint/consistency?from=${size}&to=999999`, { token: reader });
      expect(bad.status).toBe(400);
      expect(ErrorBodySchema.parse(await bad.json()).error.issues[0]).toMatch(/^to: /);
    });
  });

  describe('GET /livez and /readyz', () => {
    it('answers without a token, from the cached health state', async () => {
      const live = await call('/livez');
      expect(live.status).toBe(200);
      const ready = await call('/readyz?verbose');
      expect(ready.status).toBe(200);
      expect(await ready.text()).toMatch(/queue/);
      expect((await call('/livez', { method: 'HEAD' })).status).toBe(200);
      expect((await call('/readyz?exclude=nothing-such')).status).toBe(200);
      expect((await call('/livez', { method: 'POST' })).status).toBe(405);
    });
  });

  describe('GET /metrics', () => {
    it('serves Prometheus text that passes promtool check metrics', async () => {
      await submitAndWait({ type: 'greet', subject: 'urn:example:m', input: { name: 'M' } });
      const response = await call('/metrics', { token: reader });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await response.text();
      expect(text).toMatch(/^unrdf_operations_total\{outcome="success",type="greet"\} \d+$/m);
      const check = promtoolCheck(text);
      expect(check.error).toBeUndefined();
      expect(check.output).toBe('');
      expect(check.status).toBe(0);
    });
  });

  describe('GET /v1/diagnostics', () => {
    it('serves the report as JSON, Markdown and a gzipped tar, to admin only', async () => {
      expect((await call('/v1/diagnostics', { token: reader })).status).toBe(403);
      const json = await call('/v1/diagnostics?format=json', { token: admin });
      expect(json.status).toBe(200);
      const report = DiagnosticReportSchema.parse(await json.json());
      expect(report.nodes[0]?.nodeId).toBe(daemon.nodeId);
      const md = await call('/v1/diagnostics?format=md', { token: admin });
      expect(md.headers.get('content-type')).toMatch(/^text\/markdown/);
      expect(await md.text()).toMatch(/^# Diagnostic report/);
      const tar = await call('/v1/diagnostics?format=tar', { token: admin });
      expect(tar.headers.get('content-type')).toBe('application/gzip');
      const archive = gunzipSync(Buffer.from(await tar.arrayBuffer()));
      // ustar: the magic at offset 257 of the first header, and the report inside.
      expect(archive.subarray(257, 262).toString('latin1')).toBe('ustar');
      expect(archive.toString('latin1')).toContain('report.json');
      expect((await call('/v1/diagnostics?format=pdf', { token: admin })).status).toBe(400);
    });
  });

  describe('GET /v1/logs, /v1/slo, /v1/cluster', () => {
    it('pages the node log', async () => {
      const response = await call('/v1/logs?afterSeq=0&limit=5', { token: reader });
      expect(response.status).toBe(200);
      const page = LogPageSchema.parse(await response.json());
      expect(page.node).toBe(daemon.nodeId);
      expect(page.records.length).toBeGreaterThan(0);
      expect(page.records.length).toBeLessThanOrEqual(5);
      expect((await call('/v1/logs?limit=0', { token: reader })).status).toBe(400);
    });

    it('reports SLOs', async () => {
      const body = SloAnswerSchema.parse(await (await call('/v1/slo', { token: reader })).json());
      expect(body.slos.length).toBeGreaterThan(0);
    });

    it('shows a standalone node as its own leader at the ledger size', async () => {
      const view = ClusterViewSchema.parse(await (await call('/v1/cluster', { token: reader })).json());
      const note = daemon.checkpoint() ?? '';
      expect(view).toMatchObject({
        nodeId: daemon.nodeId,
        role: 'standalone',
        leaderId: daemon.nodeId,
        term: 0,
        failureTolerance: 0,
        commitIndex: Number(note.split('\n')[1]),
      });
    });
  });

  describe('GET /openapi.json', () => {
    it('is an OpenAPI 3.1 document listing every route', async () => {
      const response = await call('/openapi.json');
      expect(response.status).toBe(200);
      const doc = z
        .object({ openapi: z.string(), paths: z.record(z.string(), z.record(z.string(), z.unknown())) })
        .parse(await response.json());
      expect(doc.openapi).toMatch(/^3\.1\./);
      for (const route of HTTP_ROUTES.filter((r) => r !== 'GET /openapi.json')) {
        const [method = '', url = ''] = route.split(' ');
        const path = url.replace(/:([a-z]+)/g, '{$1}');
        expect(doc.paths[path], route).toBeDefined();
        expect(doc.paths[path]?.[method.toLowerCase()], route).toBeDefined();
      }
      expect(JSON.stringify(doc.paths['/v1/operations'])).toContain('idempotencyKey');
    });
  });

  describe('authentication', () => {
    it('answers 401 with WWW-Authenticate without or with a bad token, 403 without the scope', async () => {
      const none = await call('/v1/slo');
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer realm="unrdf"');
      const bad = await call('/v1/slo', { token: 'unrdf_not-a-token' });
      expect(bad.status).toBe(401);
      expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"');
      const scoped = await call('/v1/operations', {
        method: 'POST',
        token: reader,
        json: { type: 'greet', subject: 'urn:x' },
      });
      expect(scoped.status).toBe(403);
      expect(scoped.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
      expect((await call('/v1/slo', { token: submitter })).status).toBe(403);
      expect((await call('/v1/slo', { token: admin })).status).toBe(200);
    });
  });

  describe('request bodies', () => {
    it('refuses a body over the default 1 MiB limit with 413', async () => {
      const input = 'x'.repeat(1024 * 1024);
      const response = await call('/v1/operations', {
        method: 'POST',
        token: submitter,
        json: { type: 'greet', subject: 'urn:big', input },
      });
      expect(response.status).toBe(413);
      expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
      const small = await call('/v1/operations', {
        method: 'POST',
        token: submitter,
        json: { type: 'greet', subject: 'urn:big', input: { name: 'x'.repeat(900 * 1024) } },
      });
      expect(small.status).toBe(202);
    });
  });

  describe('unknown routes', () => {
    it('answers 404 JSON for an unknown path and 405 with Allow for a wrong method', async () => {
      const missing = await call('/v2/nothing');
      expect(missing.status).toBe(404);
      expect(ErrorBodySchema.parse(await missing.json()).error.code).toBe('UNRDF_HTTP_NOT_FOUND');
      const wrong = await call('/v1/checkpoint', { method: 'PUT' });
      expect(wrong.status).toBe(405);
      expect(wrong.headers.get('allow')).toBe('GET, HEAD');
    });
  });
});

describe('startHttpServer', () => {
  it('answers 503 with Retry-After once the daemon stops, and readyz says not ready', async () => {
    await using stoppedDir = await tempDir('http-stopped');
    await using stoppedTelemetry = createTelemetry();
    const stopped = createDaemon({
      dataDir: stoppedDir.path,
      meter: stoppedTelemetry.meter,
      diagnostics: { logLevel: 'warn' },
    });
    stopped.handle('greet', () => 'hi');
    await stopped.start();
    const store = openTokenStore(stoppedDir.path);
    const submit = store.createToken(['submit']).token;
    await using api = await startHttpServer({ daemon: stopped, tokens: store, telemetry: stoppedTelemetry, port: 0 });
    await stopped.close();
    const response = await fetch(`${api.url}/v1/operations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${submit}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'greet', subject: 'urn:x' }),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(ErrorBodySchema.parse(await response.json()).error.code).toBe('UNRDF_DAEMON_NOT_RUNNING');
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/^\[-\]queue failed: daemon is closed$/m);
    expect((await fetch(`${api.url}/livez`)).status).toBe(200);
  });
});
