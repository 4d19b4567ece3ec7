import { connect } from 'node:net';
import { createDaemon, type Daemon } from '@unrdf/daemon';
import { verifyReceipt } from '@unrdf/receipts';
import { type TempDir, tempDir } from '@unrdf/test-utils';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTokenStore, type TokenStore } from '../src/auth/tokens.js';
import {
  ErrorBodySchema,
  OperationViewSchema,
  ReceiptBundleBodySchema,
  SubmitBodySchema,
  TrustedKeysSchema,
} from '../src/http/schemas.js';
import { type HttpServer, MAX_JSON_DEPTH, startHttpServer } from '../src/http/server.js';
import { createTelemetry, type Telemetry } from '../src/telemetry.js';

// Thousands of hostile requests against a real daemon on loopback: every answer is the
// expected 4xx (never a 5xx, never a stack trace), and the daemon keeps working.

const BODY_LIMIT = 64 * 1024;

let dir: TempDir;
let daemon: Daemon;
let telemetry: Telemetry;
let tokens: TokenStore;
let server: HttpServer;
const token = { admin: '', submit: '', read: '' };
const statuses = new Map<number, number>();

beforeAll(async () => {
  dir = await tempDir('http-fuzz');
  telemetry = createTelemetry();
  daemon = createDaemon({ dataDir: dir.path, meter: telemetry.meter, diagnostics: { logLevel: 'warn' } });
  daemon.handle('greet', (input: unknown) => ({ hello: input }));
  await daemon.start();
  tokens = openTokenStore(dir.path);
  token.admin = tokens.createToken(['admin']).token;
  token.submit = tokens.createToken(['submit']).token;
  token.read = tokens.createToken(['read']).token;
  server = await startHttpServer({
    daemon,
    tokens,
    telemetry,
    port: 0,
    bodyLimitBytes: BODY_LIMIT,
    rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
  });
}, 60_000);

afterAll(async () => {
  await server?.close();
  await daemon?.close();
  await telemetry?.shutdown();
  await dir?.remove();
});

interface Sent {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
}

/** Sends one request; checks the invariants every answer has (no 5xx, JSON error bodies). */
async function send(request: Sent): Promise<{ status: number; code: string | undefined; headers: Headers }> {
  const response = await fetch(`${server.url}${request.path}`, {
    method: request.method,
    headers: request.headers ?? {},
    body: request.body ?? null,
    signal: AbortSignal.timeout(15_000),
  });
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  const text = await response.text();
  expect(response.status, `${request.method} ${request.path}: ${text.slice(0, 300)}`).toBeLessThan(500);
  let code: string | undefined;
  if (response.status >= 400 && request.method !== 'HEAD') {
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = ErrorBodySchema.parse(JSON.parse(text));
    expect(text).not.toMatch(/\n\s+at /); // no stack trace
    code = body.error.code;
  }
  return { status: response.status, code, headers: response.headers };
}

const opId = fc.stringMatching(/^[A-Za-z0-9_-]{1,24}$/);

/** Protected routes with the scope each needs. */
const protectedRoute = fc.oneof(
  fc.constant({ method: 'POST', path: '/v1/operations', scope: 'submit' }),
  opId.map((id) => ({ method: 'DELETE', path: `/v1/operations/${id}`, scope: 'submit' })),
  opId.map((id) => ({ method: 'POST', path: `/v1/operations/${id}/cancel`, scope: 'submit' })),
  opId.map((id) => ({ method: 'GET', path: `/v1/operations/${id}`, scope: 'read' })),
  opId.map((id) => ({ method: 'GET', path: `/v1/operations/${id}/receipt`, scope: 'read' })),
  fc.constant({ method: 'POST', path: '/v1/verify', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/v1/checkpoint', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/v1/checkpoint/consistency?from=1', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/metrics', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/v1/logs', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/v1/slo', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/v1/cluster', scope: 'read' }),
  fc.constant({ method: 'GET', path: '/v1/diagnostics', scope: 'admin' }),
);

/** A header value fetch accepts: visible ASCII and spaces, trimmed. */
const headerValue = fc
  .string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 })
  .map((s) => s.trim());

const badAuthorization = fc.oneof(
  fc.constant(undefined),
  headerValue,
  headerValue.map((v) => `Bearer ${v}`),
  headerValue.map((v) => `Basic ${Buffer.from(v).toString('base64')}`),
  fc.stringMatching(/^[A-Za-z0-9_-]{43}$/).map((v) => `Bearer unrdf_${v}`),
  fc.constant(`Bearer ${'unrdf_'.padEnd(600, 'x')}`),
);

const smallJson = fc.json({ maxDepth: 4 });

describe('HTTP API under hostile input', () => {
  it('answers 401 with WWW-Authenticate to requests without a valid token', async () => {
    await fc.assert(
      fc.asyncProperty(
        protectedRoute,
        badAuthorization,
        fc.option(smallJson, { nil: undefined }),
        fc.option(headerValue, { nil: undefined }),
        async (route, authorization, body, contentType) => {
          const withBody = route.method !== 'GET' && body !== undefined;
          const headers: Record<string, string> = {};
          if (authorization !== undefined) headers.authorization = authorization;
          if (withBody && contentType !== undefined) headers['content-type'] = contentType;
          const answer = await send({
            method: route.method,
            path: route.path,
            headers,
            ...(withBody ? { body } : {}),
          });
          expect(answer.status).toBe(401);
          expect(answer.code).toBe('UNRDF_HTTP_UNAUTHENTICATED');
          expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer realm="unrdf"/);
        },
      ),
      { numRuns: 500 },
    );
  }, 60_000);

  it('answers 403 to tokens without the scope', async () => {
    await fc.assert(
      fc.asyncProperty(protectedRoute, fc.constantFrom('submit', 'read'), async (route, held) => {
        fc.pre(route.scope !== held);
        const answer = await send({
          method: route.method,
          path: route.path,
          headers: { authorization: `Bearer ${held === 'submit' ? token.submit : token.read}` },
        });
        expect(answer.status).toBe(403);
        expect(answer.code).toBe('UNRDF_HTTP_FORBIDDEN');
        expect(answer.headers.get('www-authenticate')).toContain('insufficient_scope');
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('answers 400 or 422 to wrongly typed operations and 202 only to valid ones', async () => {
    const field = fc.oneof(smallJson, fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    const operation = fc.record(
      {
        type: fc.oneof(fc.constantFrom('greet', 'nope', '', 'bad type', '-x'), field),
        subject: fc.oneof(fc.constant('urn:x:1'), fc.constant(''), fc.string({ maxLength: 20 }), field),
        input: smallJson,
        idempotencyKey: fc.oneof(fc.string({ maxLength: 10 }), field),
        priority: fc.oneof(fc.integer({ min: -2000, max: 2000 }), field),
        runAt: fc.oneof(fc.constant('2020-01-01T00:00:00Z'), fc.constant('yesterday'), field),
        maxAttempts: fc.oneof(fc.integer({ min: -5, max: 2000 }), field),
        extra: field,
      },
      { requiredKeys: [] },
    );
    const valid = fc.record(
      {
        type: fc.constantFrom('greet', 'greet', 'unknown.type'),
        subject: fc.string({ minLength: 1, maxLength: 40 }),
        input: smallJson,
        idempotencyKey: fc.string({ minLength: 1, maxLength: 20 }),
        priority: fc.integer({ min: -1000, max: 1000 }),
        runAt: fc.oneof(fc.integer({ min: 0, max: Date.now() }), fc.constant('2020-01-01T00:00:00+02:00')),
        maxAttempts: fc.integer({ min: 1, max: 1000 }),
      },
      { requiredKeys: ['type', 'subject'] },
    );
    // A valid operation with one field swapped for something of the wrong type or range.
    const mutated = fc
      .tuple(
        valid,
        fc.constantFrom('type', 'subject', 'priority', 'runAt', 'maxAttempts', 'idempotencyKey', 'x'),
        field,
      )
      .map(([op, key, value]) => ({ ...op, [key]: value }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(valid, mutated, operation, smallJson), async (body) => {
        const answer = await send({
          method: 'POST',
          path: '/v1/operations',
          headers: { authorization: `Bearer ${token.submit}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expect([202, 400, 422]).toContain(answer.status);
        const valid = SubmitBodySchema.safeParse(body).success;
        const known = valid && (body as { type: string }).type === 'greet';
        expect(answer.status === 202, JSON.stringify(body)).toBe(known);
        if (valid && !known) expect(answer.status).toBe(422);
        if (answer.status === 422) expect(answer.code).toBe('UNRDF_DAEMON_UNKNOWN_TYPE');
        if (answer.status === 400) {
          expect(['UNRDF_HTTP_INVALID_REQUEST', 'UNRDF_DAEMON_INVALID_INPUT', 'UNRDF_HTTP_TOO_DEEP']).toContain(
            answer.code,
          );
        }
      }),
      { numRuns: 700 },
    );
  }, 60_000);

  it('answers 400 to malformed JSON and bad UTF-8', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constantFrom('{', '{"type":', '[1,]', '{"a":1}}', 'nul', '"\\x"', '{"__proto__":{"x":1}}'),
    );
    const bytes = fc.uint8Array({ maxLength: 200 });
    await fc.assert(
      fc.asyncProperty(fc.oneof(text, bytes), fc.constantFrom('/v1/operations', '/v1/verify'), async (body, path) => {
        let parses = true;
        try {
          JSON.parse(typeof body === 'string' ? body : new TextDecoder().decode(body));
        } catch {
          parses = false;
        }
        const answer = await send({
          method: 'POST',
          path,
          headers: { authorization: `Bearer ${token.admin}`, 'content-type': 'application/json; charset=utf-8' },
          body,
        });
        if (!parses) {
          expect(answer.status).toBe(400);
          expect(answer.code).toMatch(/^FST_ERR_CTP_(INVALID_JSON_BODY|EMPTY_JSON_BODY)$/);
        } else {
          expect([400, 422]).toContain(answer.status); // parses, but is no operation or bundle
        }
      }),
      { numRuns: 400 },
    );
  }, 60_000);

  it('answers 415 to bodies of a type the API does not take', async () => {
    const mediaType = fc
      .tuple(fc.stringMatching(/^[a-z]{1,12}$/), fc.stringMatching(/^[a-z0-9.+-]{1,16}$/))
      .map(([type, sub]) => `${type}/${sub}`)
      .filter((t) => t !== 'application/json' && t !== 'text/plain');
    await fc.assert(
      fc.asyncProperty(
        mediaType,
        fc.constantFrom('/v1/operations', '/v1/verify', '/v1/operations/x/cancel'),
        fc.string({ minLength: 1, maxLength: 100 }),
        async (contentType, path, body) => {
          const answer = await send({
            method: 'POST',
            path,
            headers: { authorization: `Bearer ${token.admin}`, 'content-type': contentType },
            body,
          });
          expect(answer.status).toBe(415);
          expect(answer.code).toBe('FST_ERR_CTP_INVALID_MEDIA_TYPE');
        },
      ),
      { numRuns: 250 },
    );
  }, 60_000);

  it('answers 413 to oversized bodies and 400 to deep nesting', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT * 4 }).map((n) => ({ kind: 'huge' as const, n })),
          fc.integer({ min: MAX_JSON_DEPTH + 1, max: 20_000 }).map((n) => ({ kind: 'deep' as const, n })),
          fc.integer({ min: MAX_JSON_DEPTH + 1, max: 5_000 }).map((n) => ({ kind: 'deepObject' as const, n })),
        ),
        async (shape) => {
          const body =
            shape.kind === 'huge'
              ? JSON.stringify({ type: 'greet', subject: 'urn:x', input: 'x'.repeat(shape.n) })
              : shape.kind === 'deep'
                ? JSON.stringify({ type: 'greet', subject: 'urn:x', input: '[' }).replace(
                    '"["',
                    `${'['.repeat(shape.n)}${']'.repeat(shape.n)}`,
                  )
                : `${'{"a":'.repeat(shape.n)}1${'}'.repeat(shape.n)}`;
          const answer = await send({
            method: 'POST',
            path: '/v1/operations',
            headers: { authorization: `Bearer ${token.submit}`, 'content-type': 'application/json' },
            body,
          });
          if (Buffer.byteLength(body) > BODY_LIMIT) {
            expect(answer.status).toBe(413);
            expect(answer.code).toBe('FST_ERR_CTP_BODY_TOO_LARGE');
          } else {
            expect(answer.status).toBe(400);
            expect(answer.code).toBe('UNRDF_HTTP_TOO_DEEP');
          }
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);

  it('answers random paths, methods and queries with 2xx or the expected 4xx, never 5xx', async () => {
    const segment = fc.oneof(
      fc.constantFrom('v1', 'operations', 'receipt', 'cancel', 'checkpoint', 'consistency', 'keys', 'logs', '..', '.'),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
      fc.constantFrom('%', '%zz', '%C3%28', '%ED%A0%80', '%FF', '%00'),
    );
    const path = fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`);
    const query = fc.oneof(
      fc.constant(''),
      fc
        .array(
          fc.tuple(
            fc.constantFrom('wait', 'from', 'to', 'format', 'limit', 'afterSeq', 'sinceMs', 'verbose', 'exclude', 'x'),
            fc.oneof(fc.string({ maxLength: 8 }).map(encodeURIComponent), fc.integer().map(String)),
          ),
          { maxLength: 3 },
        )
        .map((pairs) => `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`),
    );
    const known = fc.constantFrom(
      '/v1/operations',
      '/v1/operations/abc',
      '/v1/operations/abc/receipt',
      '/v1/operations/abc/cancel',
      '/v1/verify',
      '/v1/checkpoint',
      '/v1/checkpoint/consistency',
      '/v1/keys',
      '/v1/logs',
      '/v1/slo',
      '/v1/cluster',
      '/livez',
      '/readyz',
      '/metrics',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(path, known),
        query,
        fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'),
        fc.constantFrom('admin', 'read', 'submit', 'none'),
        async (p, q, method, who) => {
          const headers: Record<string, string> = {};
          if (who !== 'none') headers.authorization = `Bearer ${token[who as keyof typeof token]}`;
          const answer = await send({ method, path: `${p}${q}`, headers });
          expect([200, 202, 400, 401, 403, 404, 405, 415, 422]).toContain(answer.status);
        },
      ),
      { numRuns: 700 },
    );
  }, 60_000);

  it('answers raw malformed HTTP with a 4xx and keeps serving', async () => {
    const raw = fc.oneof(
      fc.constant('GARBAGE\r\n\r\n'),
      fc.constant('GET /livez HTTP/9.9\r\n\r\n'),
      fc.constant('GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'),
      fc.constant('POST /v1/operations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'),
      fc.constant('GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n'),
      fc.string({ maxLength: 60 }).map((s) => `GET /livez HTTP/1.1\r\nHost: x\r\nX-Bad: ${s}\x00\r\n\r\n`),
      fc
        .uint8Array({ minLength: 1, maxLength: 40 })
        .map((bytes) =>
          Buffer.concat([
            Buffer.from(
              `POST /v1/operations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token.submit}\r\nContent-Type: application/json\r\nContent-Length: ${bytes.length + 2}\r\nConnection: close\r\n\r\n{"`,
            ),
            Buffer.from(bytes),
          ]),
        ),
    );
    await fc.assert(
      fc.asyncProperty(raw, async (request) => {
        const reply = await rawRequest(request);
        expect(reply).toMatch(/^HTTP\/1\.1 4\d\d /);
      }),
      { numRuns: 100 },
    );
  }, 60_000);

  it('stays up: /livez is OK and a valid operation still gets a receipt that verifies', async () => {
    expect([...statuses.keys()].every((status) => status < 500)).toBe(true);
    // Every kind of answer was provoked, not just the easy ones.
    for (const status of [200, 202, 400, 401, 403, 404, 405, 413, 415, 422])
      expect(statuses.get(status)).toBeGreaterThan(0);
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(2_900);
    expect((await fetch(`${server.url}/livez`)).status).toBe(200);
    const submitted = await fetch(`${server.url}/v1/operations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token.submit}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'greet', subject: 'urn:after:fuzz', input: 'still here' }),
    });
    expect(submitted.status).toBe(202);
    const { id } = OperationViewSchema.parse(await submitted.json());
    const auth = { authorization: `Bearer ${token.read}` };
    const done = OperationViewSchema.parse(
      await (await fetch(`${server.url}/v1/operations/${id}?wait=10000`, { headers: auth })).json(),
    );
    expect(done).toMatchObject({ state: 'completed', output: { hello: 'still here' } });
    const bundle = ReceiptBundleBodySchema.parse(
      await (await fetch(`${server.url}/v1/operations/${id}/receipt`, { headers: auth })).json(),
    );
    const keys = TrustedKeysSchema.parse(await (await fetch(`${server.url}/v1/keys`)).json()).keys;
    expect(verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, keys).status).toBe('valid');
  });
});

/** Writes bytes to a fresh connection; resolves with what came back (bounded by a timeout). */
function rawRequest(request: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: server.port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5_000);
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      // One answer is enough: the first status line.
      if (Buffer.concat(chunks).includes('\r\n\r\n')) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(request);
  });
}

describe('rate limiting', () => {
  it('answers 429 with Retry-After past the limit, per token, and never limits health', async () => {
    await using limitedDir = await tempDir('http-429');
    await using limitedTelemetry = createTelemetry();
    await using limited = createDaemon({
      dataDir: limitedDir.path,
      meter: limitedTelemetry.meter,
      diagnostics: { logLevel: 'warn' },
    });
    limited.handle('greet', () => 'hi');
    await limited.start();
    const store = openTokenStore(limitedDir.path);
    const a = store.createToken(['read']).token;
    const b = store.createToken(['read']).token;
    await using api = await startHttpServer({
      daemon: limited,
      tokens: store,
      telemetry: limitedTelemetry,
      port: 0,
      rateLimit: { max: 5, timeWindowMs: 60_000 },
    });
    const get = (path: string, bearer?: string) =>
      fetch(`${api.url}${path}`, bearer === undefined ? {} : { headers: { authorization: `Bearer ${bearer}` } });
    for (let i = 0; i < 5; i++) expect((await get('/v1/slo', a)).status).toBe(200);
    const refused = await get('/v1/cluster', a);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(ErrorBodySchema.parse(await refused.json()).error.code).toBe('UNRDF_HTTP_RATE_LIMITED');
    // Another token has its own budget; health is exempt.
    expect((await get('/v1/slo', b)).status).toBe(200);
    for (let i = 0; i < 20; i++) expect((await get(i % 2 ? '/livez' : '/readyz')).status).toBe(200);
  });
});
