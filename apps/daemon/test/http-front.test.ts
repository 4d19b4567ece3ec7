// The HTTP front on its own worker thread (what `unrdf-daemon start` runs): a real
// Worker, real sockets on loopback, the daemon on this thread.
import { spawnSync } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { Daemon } from '@unrdf/daemon';
import { verifyReceipt } from '@unrdf/receipts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdminToken, openTokenStore } from '../src/auth/tokens.js';
import { type HttpFront, spawnHttpFront, startHttpFront } from '../src/http/front.js';
import { ErrorBodySchema, OperationViewSchema, ReceiptBundleBodySchema } from '../src/http/schemas.js';
import type { Telemetry } from '../src/telemetry.js';
import { startTestDaemon, type TestDaemon } from './support/test-daemon.js';

let test: TestDaemon;
let daemon: Daemon;
let telemetry: Telemetry;
let front: HttpFront;
let token: string;

beforeAll(async () => {
  test = await startTestDaemon('http-front');
  ({ daemon, telemetry } = test);
  token = ensureAdminToken(test.dir.path, openTokenStore(test.dir.path)).token ?? '';
  front = await startHttpFront({ daemon, telemetry, dataDir: test.dir.path, port: 0 });
}, 60_000);

afterAll(async () => {
  await front?.close();
  await test?.close();
});

const post = (body: unknown, query = '') =>
  fetch(`${front.url}/v1/operations${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });

describe('startHttpFront', () => {
  it('serves the API from its thread: one round trip to a final operation whose receipt verifies', async () => {
    expect(front.url).toBe(`http://127.0.0.1:${front.port}`);
    const done = await post({ type: 'greet', subject: 'urn:front:1', input: { name: 'Ada' } }, '?wait=10000');
    expect(done.status).toBe(200);
    const view = OperationViewSchema.parse(await done.json());
    expect([view.state, view.output]).toEqual(['completed', { hello: 'Ada' }]);
    expect(done.headers.get('location')).toBe(`/v1/operations/${view.id}`);
    const bundle = ReceiptBundleBodySchema.parse(
      await (
        await fetch(`${front.url}/v1/operations/${view.id}/receipt`, { headers: { authorization: `Bearer ${token}` } })
      ).json(),
    );
    expect(verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, daemon.trustedKeys).status).toBe('valid');
  });

  it("passes the daemon's typed refusals through as the same 4xx, and checks tokens on its side", async () => {
    const unknown = await post({ type: 'nope', subject: 'urn:front:2' });
    expect(unknown.status).toBe(422);
    expect(ErrorBodySchema.parse(await unknown.json()).error.known?.toSorted()).toEqual(['gate', 'greet']);
    const anonymous = await fetch(`${front.url}/v1/operations/x`);
    expect(anonymous.status).toBe(401);
    const missing = await fetch(`${front.url}/v1/operations/nope`, { headers: { authorization: `Bearer ${token}` } });
    expect([missing.status, ErrorBodySchema.parse(await missing.json()).error.code]).toEqual([
      404,
      'UNRDF_HTTP_OPERATION_NOT_FOUND',
    ]);
    const ready = await fetch(`${front.url}/readyz?verbose`);
    expect([ready.status, await ready.text()]).toEqual([200, expect.stringMatching(/readyz check passed\n$/)]);
    const metrics = await fetch(`${front.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(await metrics.text()).toMatch(/^unrdf_operations_/m);
  });

  it("answers /livez and /readyz 503 itself when the daemon's thread is stuck, and 200 once it runs again", async () => {
    await using stuckable = await startHttpFront({
      daemon,
      telemetry,
      dataDir: test.dir.path,
      port: 0,
      healthTimeoutMs: 300,
    });
    // spawnSync blocks this thread, the daemon's, while a child process probes the front.
    const probe = (path: string) =>
      spawnSync(
        process.execPath,
        [
          '-e',
          `fetch(${JSON.stringify(`${stuckable.url}${path}`)}, { signal: AbortSignal.timeout(20000) })` +
            '.then(async (r) => process.stdout.write(JSON.stringify([r.status, await r.text()])))',
        ],
        { encoding: 'utf8', timeout: 30_000 },
      ).stdout;
    expect(JSON.parse(probe('/livez'))).toEqual([
      503,
      "[-]daemon failed: the daemon's thread did not answer within 300 ms\nlivez check failed\n",
    ]);
    expect(JSON.parse(probe('/readyz?verbose'))[0]).toBe(503);
    const live = await fetch(`${stuckable.url}/livez`);
    expect(live.status).toBe(200);
  }, 60_000);

  it('reports a port that is taken with its code (EADDRINUSE), as the same-thread server does', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(startHttpFront({ daemon, telemetry, dataDir: test.dir.path, port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      taken.close();
    }
  }, 60_000);

  it('spawned ahead of the daemon, listens only when handed it; stopped unused, it never listens', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    taken.close();
    await new Promise((resolve) => taken.once('close', resolve));
    const unused = spawnHttpFront({ dataDir: test.dir.path, nodeId: daemon.nodeId, port });
    // Time for the thread to load everything: it still must not bind the port.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const probe = await fetch(`http://127.0.0.1:${port}/livez`).catch((error: Error) => error);
    expect(probe).toBeInstanceOf(Error);
    await unused.abort();
    await expect(unused.listen({ daemon, telemetry })).rejects.toThrow(/stopped before listening/);

    const pending = spawnHttpFront({ dataDir: test.dir.path, nodeId: daemon.nodeId, port });
    await using late = await pending.listen({ daemon, telemetry });
    expect(late.port).toBe(port);
    expect((await fetch(`${late.url}/livez`)).status).toBe(200);
  }, 60_000);

  it("loads on its thread none of the daemon's engine: no queue, ledger, logger or metrics SDK", () => {
    // Importing the thread's entry module links its whole static graph before its body runs
    // (which then fails here: there is no parent port); a resolve hook records every module.
    const script = `
      import * as nodeModule from 'node:module';
      const loaded = [];
      nodeModule.registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); loaded.push(r.url); return r; } });
      const { registerSourceHooks } = await import(${JSON.stringify(new URL('../bin/source-hooks.mjs', import.meta.url).href)});
      await registerSourceHooks();
      await import(${JSON.stringify(new URL('../src/http/front-worker.ts', import.meta.url).href)}).catch(() => undefined);
      process.stdout.write(JSON.stringify(loaded));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const loaded = JSON.parse(run.stdout) as string[];
    // The entry and its server were reached, so the list is the real graph.
    expect(loaded.some((url) => url.endsWith('/src/http/server.ts'))).toBe(true);
    expect(loaded.some((url) => url.includes('/fastify/'))).toBe(true);
    const engine = loaded.filter((url) =>
      /\/packages\/(queue\/src\/queue|receipts\/src\/ledger\/|diagnostics\/src\/(logger|metrics))|@opentelemetry\/sdk-metrics|node:sqlite/.test(
        url,
      ),
    );
    expect(engine).toEqual([]);
  }, 60_000);

  it('ends long polls when it closes instead of holding close() up to their wait', async () => {
    const second = await startHttpFront({ daemon, telemetry, dataDir: test.dir.path, port: 0 });
    const accepted = OperationViewSchema.parse(
      await (
        await fetch(`${second.url}/v1/operations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'gate', subject: 'urn:front:3' }),
        })
      ).json(),
    );
    const polling = fetch(`${second.url}/v1/operations/${accepted.id}?wait=30000`, {
      headers: { authorization: `Bearer ${token}` },
    });
    // The poll is waiting on the daemon's thread before the close begins.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    await second.close();
    const answer = await polling;
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(answer.status).toBe(200);
    expect(OperationViewSchema.parse(await answer.json()).state).toBe('running');
    test.release();
  }, 60_000);

  it('closes while a client holds a connection that never sent a byte (a pre-opened socket, a TCP probe)', async () => {
    const third = await startHttpFront({ daemon, telemetry, dataDir: test.dir.path, port: 0 });
    const silent = connect(third.port, '127.0.0.1');
    silent.on('error', () => {});
    const hungUp = new Promise((resolve) => silent.once('close', resolve));
    await new Promise((resolve) => silent.once('connect', resolve));
    // Accepted by the server on its thread before the close begins.
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Before the fix close() waited for the front's 15 s limit and then terminated the thread.
    const outcome = await Promise.race([
      third.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still closing after 10 s'), 10_000)),
    ]);
    expect(outcome).toBe('closed');
    await hungUp; // the server hung up on it
    silent.destroy();
  }, 60_000);
});
