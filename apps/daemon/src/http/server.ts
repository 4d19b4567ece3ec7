import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import type { Daemon } from '@unrdf/daemon';
import { InvalidInputError, NotRunningError, UnknownTypeError } from '@unrdf/daemon/wire';
import type { HealthAnswer } from '@unrdf/diagnostics';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { scopeAllows, type TokenIdentity, type TokenScope, type TokenStore } from '../auth/tokens.js';
import type { Telemetry } from '../telemetry.js';
import { type DaemonPort, localDaemonPort } from './daemon-port.js';
import { DEFAULT_RATE_LIMIT, PROMETHEUS_CONTENT_TYPE } from './defaults.js';
import {
  CancelResultSchema,
  type ClusterView,
  ClusterViewSchema,
  ConsistencyAnswerSchema,
  ConsistencyQuerySchema,
  DiagnosticsQuerySchema,
  type ErrorBody,
  ErrorBodySchema,
  GetOperationQuerySchema,
  LogPageSchema,
  LogsQuerySchema,
  OperationParamsSchema,
  OperationViewSchema,
  ReceiptBundleBodySchema,
  SloAnswerSchema,
  SubmitBodySchema,
  SubmitQuerySchema,
  TrustedKeysSchema,
  VerdictSchema,
} from './schemas.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a route needs; `open` routes need no token. */
    scope?: TokenScope | 'open';
  }
  interface FastifyRequest {
    identity?: TokenIdentity;
  }
}

/** Default request body limit: 1 MiB. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** While closing, how often connections that answered their last request are closed. */
const CLOSE_SWEEP_MS = 25;
/** JSON bodies nested deeper than this are refused (canonical JSON and digests recurse). */
export const MAX_JSON_DEPTH = 64;
/**
 * `?wait` requests held at once by default, and the request bytes they may hold together.
 * Each holds its request (up to the body limit; about three times its size in memory) and
 * a waiter on the daemon's side for up to its wait; past either bound, a request answers
 * at once as if its wait had run out (202, or the operation as it stands), which clients
 * handle already. At 1,000 operations/s through `POST ?wait` tens are held, a few KiB each.
 */
export const DEFAULT_MAX_WAITING = 10_000;
export const DEFAULT_MAX_WAITING_BYTES = 64 * 1024 * 1024;
/**
 * How long `/livez` and `/readyz` wait for the daemon's thread before answering 503
 * themselves. The daemon answers health from its cache at once; a thread silent this long
 * is stuck (a handler that never yields, say), and a probe should see it fail, not hang.
 */
export const DEFAULT_HEALTH_TIMEOUT_MS = 5000;

/** Options of {@link createHttpApi}. */
export interface HttpApiOptions {
  /** The daemon on this thread (with `telemetry`), or a port to one on another thread. */
  readonly daemon: Daemon | DaemonPort;
  readonly tokens: TokenStore;
  /** The metrics `/metrics` serves; needed with a daemon on this thread. */
  readonly telemetry?: Telemetry;
  /** Largest request body (default 1 MiB); larger ones get 413. */
  readonly bodyLimitBytes?: number;
  /** Requests per token per window (default 6000 a minute); `false` turns it off. */
  readonly rateLimit?: { readonly max: number; readonly timeWindowMs: number } | false;
  /**
   * `?wait` requests held at once and their request bytes together (defaults
   * {@link DEFAULT_MAX_WAITING}, {@link DEFAULT_MAX_WAITING_BYTES}); past either they answer at once.
   */
  readonly maxWaiting?: number;
  readonly maxWaitingBytes?: number;
  /** `/livez` and `/readyz` answer 503 when the daemon has not answered within this (default {@link DEFAULT_HEALTH_TIMEOUT_MS}). */
  readonly healthTimeoutMs?: number;
  /** Version shown in the OpenAPI document. */
  readonly version?: string;
}

const HttpApiLimitsSchema = z.object({
  bodyLimitBytes: z
    .number()
    .int()
    .min(1)
    .max(1024 * 1024 * 1024)
    .optional(),
  rateLimit: z
    .union([
      z.literal(false),
      z.strictObject({ max: z.number().int().min(1), timeWindowMs: z.number().int().min(1).max(2_147_483_647) }),
    ])
    .optional(),
  maxWaiting: z.number().int().min(0).max(1_000_000).optional(),
  maxWaitingBytes: z.number().int().min(0).optional(),
  healthTimeoutMs: z.number().int().min(1).max(2_147_483_647).optional(),
  version: z.string().min(1).max(64).optional(),
});

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions extends HttpApiOptions {
  /** Default 127.0.0.1 (loopback only). */
  readonly host?: string;
  /** Default 8787; 0 picks a free port. */
  readonly port?: number;
}

/** A listening HTTP API. */
export interface HttpServer extends AsyncDisposable {
  /** `http://host:port` */
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  /** Stops accepting, ends long polls, waits for requests in flight. */
  close(): Promise<void>;
}

/** The daemon's health answer, or a 503 of this side's own once `timeoutMs` passed without one. */
function healthWithin(
  daemon: DaemonPort,
  target: string,
  path: '/livez' | '/readyz',
  timeoutMs: number,
): Promise<HealthAnswer | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const check = path.slice(1);
      resolve({
        status: 503,
        body: `[-]daemon failed: the daemon's thread did not answer within ${timeoutMs} ms\n${check} check failed\n`,
      });
    }, timeoutMs);
    daemon.health(target).then(
      (answer) => {
        clearTimeout(timer);
        resolve(answer);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** An HTTP-level refusal with a stable code. */
class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly issues: readonly string[];
  constructor(statusCode: number, code: string, message: string, issues: readonly string[] = []) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
    this.issues = issues;
  }
}

/** Each route, for the 405 answer and the OpenAPI listing. */
const ROUTES = [
  ['POST', '/v1/operations'],
  ['GET', '/v1/operations/:id'],
  ['DELETE', '/v1/operations/:id'],
  ['POST', '/v1/operations/:id/cancel'],
  ['GET', '/v1/operations/:id/receipt'],
  ['POST', '/v1/verify'],
  ['GET', '/v1/checkpoint'],
  ['GET', '/v1/checkpoint/consistency'],
  ['GET', '/v1/keys'],
  ['GET', '/v1/diagnostics'],
  ['GET', '/v1/logs'],
  ['GET', '/v1/slo'],
  ['GET', '/v1/cluster'],
  ['GET', '/livez'],
  ['GET', '/readyz'],
  ['GET', '/metrics'],
  ['GET', '/openapi.json'],
] as const;

/** The routes of the API as `METHOD path` (for clients and docs). */
export const HTTP_ROUTES: readonly string[] = ROUTES.map(([method, url]) => `${method} ${url}`);

const routeMatchers = ROUTES.map(([method, url]) => ({
  method,
  pattern: new RegExp(`^${url.replace(/:[a-z]+/g, '[^/]+')}/?$`),
}));

const errorBody = (code: string, message: string, issues: readonly string[] = [], extra = {}): ErrorBody => ({
  error: { code, message, issues: [...issues], ...extra },
});

/** Iterative depth check: a recursive one could itself overflow on the input it guards against. */
function deeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

const bearer = /^Bearer +([\x21-\x7e]{1,512}) *$/i;

/**
 * Builds the HTTP API over a running daemon (not listening: `app.inject()` or `app.listen()`).
 * Bearer tokens with scopes `submit`, `read`, `admin`; zod-validated requests; every
 * client mistake is a 4xx `{ error: { code, message, issues } }`.
 * @example
 * const app = await createHttpApi({ daemon, tokens: openTokenStore(dataDir), telemetry });
 * await app.listen({ host: '127.0.0.1', port: 8787 });
 */
export async function createHttpApi(options: HttpApiOptions): Promise<FastifyInstance> {
  const checked = HttpApiLimitsSchema.safeParse({
    bodyLimitBytes: options.bodyLimitBytes,
    rateLimit: options.rateLimit,
    maxWaiting: options.maxWaiting,
    maxWaitingBytes: options.maxWaitingBytes,
    healthTimeoutMs: options.healthTimeoutMs,
    version: options.version,
  });
  if (!checked.success) throw InvalidInputError.fromZod('HTTP API options', checked.error);
  const { tokens } = options;
  const daemon = portOf(options.daemon, options.telemetry);
  const bodyLimit = checked.data.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const limits = checked.data.rateLimit ?? DEFAULT_RATE_LIMIT;
  const maxWaiting = checked.data.maxWaiting ?? DEFAULT_MAX_WAITING;
  const maxWaitingBytes = checked.data.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES;
  const healthTimeoutMs = checked.data.healthTimeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  let waiting = 0;
  let waitingBytes = 0;
  /**
   * Runs `wait` (a request's hold) within the budget of held requests, else `now` (answer
   * at once). A client that goes away ends its hold (`wait`'s signal aborts), and with it
   * the daemon's waiter: it no longer holds a place in the budget until its wait runs out.
   */
  const held = async <T>(
    reply: FastifyReply,
    ms: number,
    bytes: number,
    wait: (signal: AbortSignal) => Promise<T>,
    now: () => Promise<T>,
  ): Promise<T> => {
    if (ms <= 0 || waiting >= maxWaiting || waitingBytes + bytes > maxWaitingBytes) return now();
    const response = reply.raw;
    const gone = new AbortController();
    const onClose = () => {
      if (!response.writableFinished) gone.abort();
    };
    response.once('close', onClose);
    if (response.socket === null || response.socket.destroyed) gone.abort();
    waiting++;
    waitingBytes += bytes;
    try {
      return await wait(gone.signal);
    } finally {
      response.off('close', onClose);
      waiting--;
      waitingBytes -= bytes;
    }
  };
  const bytesOf = (request: { headers: Record<string, unknown> }): number =>
    Number(request.headers['content-length'] ?? 0) || 0;

  const app = Fastify({
    logger: false, // errors go to the daemon's logger below; requests are never logged with their headers
    bodyLimit,
    return503OnClosing: true,
    frameworkErrors: (error, _request, reply) => {
      // Malformed URLs and the like: the router's own refusals, in our error shape.
      const status = typeof error.statusCode === 'number' && error.statusCode < 500 ? error.statusCode : 400;
      void (reply as FastifyReply).code(status).send(errorBody(error.code ?? 'UNRDF_HTTP_BAD_REQUEST', error.message));
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  // Responses are plain JSON: the zod response schemas document them (OpenAPI) and clients
  // parse with them, but a response never turns into a 500 over schema drift.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  const jsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    jsonParser(request, body as string, (error: Error | null, value?: unknown) => {
      if (error) return done(error as FastifyError, undefined);
      if (deeperThan(value, MAX_JSON_DEPTH)) {
        return done(
          new HttpError(400, 'UNRDF_HTTP_TOO_DEEP', `JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused.`, [
            `(root): nesting depth over ${MAX_JSON_DEPTH}`,
          ]) as unknown as FastifyError,
          undefined,
        );
      }
      done(null, value);
    });
  });

  // Authentication first (RFC 6750): strangers get a 401 before their body is read.
  app.addHook('onRequest', async (request, reply) => {
    const scope = request.routeOptions.config?.scope;
    if (scope === undefined || scope === 'open') return;
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? bearer.exec(header) : null;
    const identity = match?.[1] === undefined ? undefined : tokens.verify(match[1]);
    if (identity === undefined) {
      // RFC 6750 §3: no error code when no credentials were sent at all.
      reply.header(
        'www-authenticate',
        header === undefined ? 'Bearer realm="unrdf"' : 'Bearer realm="unrdf", error="invalid_token"',
      );
      throw new HttpError(
        401,
        'UNRDF_HTTP_UNAUTHENTICATED',
        header === undefined
          ? 'Send an API token: Authorization: Bearer <token> (the admin token is in <dataDir>/admin.token).'
          : 'The token is not valid; check it or create a new one.',
      );
    }
    if (!scopeAllows(identity.scopes, scope)) {
      reply.header('www-authenticate', `Bearer realm="unrdf", error="insufficient_scope", scope="${scope}"`);
      throw new HttpError(
        403,
        'UNRDF_HTTP_FORBIDDEN',
        `This token lacks the '${scope}' scope; use a token that has it (or admin).`,
      );
    }
    request.identity = identity;
  });

  // Requests in progress per connection, so that close() can tell a connection with nothing
  // to answer: Node's closeIdleConnections() leaves one that never sent a byte (a client's
  // spare pre-opened connection, a TCP health check, a port scan), and with no timeout on
  // it, close() would wait for that client to hang up.
  const connections = new Map<Socket, number>();
  app.server.on('connection', (socket: Socket) => {
    connections.set(socket, 0);
    socket.once('close', () => connections.delete(socket));
  });
  app.server.on('request', (request, response) => {
    const socket = request.socket;
    connections.set(socket, (connections.get(socket) ?? 0) + 1);
    response.once('close', () => {
      if (connections.has(socket)) connections.set(socket, Math.max(0, (connections.get(socket) ?? 1) - 1));
    });
  });

  // Long polls end when the server closes instead of holding close() up to MAX_WAIT_MS.
  // Node closes the connections idle when close() starts; the ones busy then go idle once
  // they answer and would stay open until their keep-alive timeout: close those as they do,
  // and any connection with no request in progress.
  app.addHook('preClose', async () => {
    daemon.endWaits();
    const closeQuiet = () => {
      app.server.closeIdleConnections();
      for (const [socket, requests] of connections) if (requests === 0) socket.destroy();
    };
    closeQuiet();
    const sweep = setInterval(closeQuiet, CLOSE_SWEEP_MS);
    app.server.once('close', () => clearInterval(sweep));
  });

  if (limits !== false) {
    await app.register(rateLimit, {
      global: true,
      max: limits.max,
      timeWindow: limits.timeWindowMs,
      // Per token: authentication ran first. Open routes count per client address.
      keyGenerator: (request) => (request.identity ? `token:${request.identity.id}` : `ip:${request.ip}`),
      errorResponseBuilder: (_request, context) =>
        new HttpError(
          429,
          'UNRDF_HTTP_RATE_LIMITED',
          `Rate limit of ${context.max} requests per ${context.after} exceeded; retry after ${Math.ceil(context.ttl / 1000)} s.`,
        ),
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'unrdf daemon',
        description: 'Durable background operations with cryptographic receipts in a signed RFC 9162 Merkle ledger.',
        version: options.version ?? '0.1.0',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });

  app.setErrorHandler((error: unknown, request, reply) => {
    const send = (status: number, body: ErrorBody) =>
      (reply as FastifyReply).code(status).type('application/json').send(body);
    if (hasZodFastifySchemaValidationErrors(error)) {
      const where = (error as { validationContext?: string }).validationContext ?? 'request';
      const issues = error.validation.map((issue) => {
        const path = issue.instancePath.split('/').filter(Boolean).join('.');
        return `${path === '' ? '(root)' : path}: ${issue.message}`;
      });
      return send(
        400,
        errorBody('UNRDF_HTTP_INVALID_REQUEST', `Invalid ${where}; nothing was done. Fix these and retry.`, issues),
      );
    }
    if (error instanceof HttpError) return send(error.statusCode, errorBody(error.code, error.message, error.issues));
    if (error instanceof InvalidInputError) {
      return send(400, errorBody(error.code, error.message.split('\n')[0] ?? error.message, error.issues));
    }
    if (error instanceof UnknownTypeError) {
      return send(
        422,
        errorBody(error.code, error.message, [`type: no handler for '${error.type}'`], { known: [...error.known] }),
      );
    }
    if (error instanceof NotRunningError) {
      reply.header('retry-after', '1');
      return send(503, errorBody(error.code, error.message));
    }
    const status = (error as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Fastify's own refusals: body too large, bad JSON, unsupported media type, ...
      const e = error as FastifyError;
      return send(status, errorBody(e.code ?? 'UNRDF_HTTP_BAD_REQUEST', e.message));
    }
    daemon.logError(
      { err: { name: (error as Error).name, message: (error as Error).message }, route: request.routeOptions.url },
      'http request failed',
    );
    return send(500, errorBody('UNRDF_HTTP_INTERNAL', 'The daemon failed to answer; see its log and retry.'));
  });

  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed: string[] = [...new Set(routeMatchers.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length > 0) {
      if (allowed.includes('GET')) allowed.push('HEAD');
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send(errorBody('UNRDF_HTTP_METHOD_NOT_ALLOWED', `Use ${allowed.join(' or ')} for ${path}.`));
    }
    return reply
      .code(404)
      .send(errorBody('UNRDF_HTTP_NOT_FOUND', `No route ${request.method} ${path}; see /openapi.json.`));
  });

  const api = app.withTypeProvider<ZodTypeProvider>();
  const errors = { 400: ErrorBodySchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 404: ErrorBodySchema };
  const security = [{ bearer: [] }];

  const operationOr404 = async (id: string) => {
    const view = await daemon.get(id);
    if (view === undefined) {
      throw new HttpError(404, 'UNRDF_HTTP_OPERATION_NOT_FOUND', `No operation ${id} (it may have expired).`);
    }
    return view;
  };

  api.post('/v1/operations', {
    config: { scope: 'submit' },
    schema: {
      summary:
        'Submit an operation; answers 202 once it is durable, or with ?wait=<ms> 200 once it is final with a durable receipt',
      security,
      querystring: SubmitQuerySchema,
      body: SubmitBodySchema,
      response: { 200: OperationViewSchema, 202: OperationViewSchema, ...errors, 422: ErrorBodySchema },
    },
    handler: async (request, reply) => {
      // With ?wait the client holds the outcome and receipt after one round trip instead
      // of a POST and a GET ?wait; 202 still means "durable, not final yet".
      const wait = request.query.wait ?? 0;
      const { accepted, final } = await held(
        reply,
        wait,
        bytesOf(request),
        (signal) => daemon.submitAndWait(request.body, wait, signal),
        async () => ({ accepted: await daemon.submit(request.body), final: undefined }),
      );
      reply.header('location', `/v1/operations/${encodeURIComponent(accepted.id)}`);
      return final === undefined ? reply.code(202).send(accepted) : reply.code(200).send(final);
    },
  });

  api.get('/v1/operations/:id', {
    config: { scope: 'read' },
    schema: {
      summary: 'An operation; ?wait=<ms> waits for its final state and durable receipt',
      security,
      params: OperationParamsSchema,
      querystring: GetOperationQuerySchema,
      response: { 200: OperationViewSchema, ...errors },
    },
    handler: async (request, reply) => {
      const { id } = request.params;
      // waitFor answers at once for an operation that is final already (one read, not two).
      const wait = request.query.wait ?? 0;
      return (
        (await held(
          reply,
          wait,
          bytesOf(request),
          (signal) => daemon.waitFor(id, wait, signal),
          async () => undefined,
        )) ?? operationOr404(id)
      );
    },
  });

  const cancel = async (id: string) => {
    await operationOr404(id);
    const cancelled = await daemon.cancel(id);
    return { cancelled, operation: await operationOr404(id) };
  };
  const cancelSchema = {
    summary: 'Cancel a pending or running operation (cancelled: false when it is already final)',
    security,
    params: OperationParamsSchema,
    response: { 200: CancelResultSchema, ...errors },
  };
  api.delete('/v1/operations/:id', {
    config: { scope: 'submit' },
    schema: cancelSchema,
    handler: (request) => cancel(request.params.id),
  });
  api.post('/v1/operations/:id/cancel', {
    config: { scope: 'submit' },
    schema: cancelSchema,
    handler: (request) => cancel(request.params.id),
  });

  api.get('/v1/operations/:id/receipt', {
    config: { scope: 'read' },
    schema: {
      summary: 'The receipt, its inclusion proof and the signed checkpoint (404 until final and durable)',
      security,
      params: OperationParamsSchema,
      response: { 200: ReceiptBundleBodySchema, ...errors },
    },
    handler: async (request) => {
      const { id } = request.params;
      await operationOr404(id);
      const bundle = await daemon.receipt(id);
      if (bundle === undefined) {
        throw new HttpError(
          404,
          'UNRDF_HTTP_RECEIPT_NOT_READY',
          `Operation ${id} has no durable receipt yet; wait for it (GET /v1/operations/${id}?wait=10000) and retry.`,
        );
      }
      return bundle;
    },
  });

  api.post('/v1/verify', {
    config: { scope: 'read' },
    schema: {
      summary: 'Verify a receipt bundle against this ledger (200 with the verdict, valid or not)',
      security,
      body: ReceiptBundleBodySchema,
      response: { 200: VerdictSchema, ...errors },
    },
    handler: async (request) => daemon.verify(request.body),
  });

  api.get('/v1/checkpoint', {
    config: { scope: 'read' },
    schema: {
      summary: 'The latest signed checkpoint (C2SP signed note, text/plain)',
      security,
      response: { 200: z.string(), ...errors },
    },
    handler: async (_request, reply) => {
      const note = await daemon.checkpoint();
      if (note === undefined) {
        throw new HttpError(404, 'UNRDF_HTTP_LEDGER_EMPTY', 'The ledger is empty: no checkpoint was signed yet.');
      }
      return reply
        .type('text/plain; charset=utf-8')
        .serializer((s: string) => s)
        .send(note);
    },
  });

  api.get('/v1/checkpoint/consistency', {
    config: { scope: 'read' },
    schema: {
      summary: 'A consistency proof between two signed checkpoints (to: default the latest)',
      security,
      querystring: ConsistencyQuerySchema,
      response: { 200: ConsistencyAnswerSchema, ...errors },
    },
    handler: async (request) => daemon.consistency(request.query.from, request.query.to),
  });

  // Open: verifier keys are public by design (C2SP signed notes); an offline verifier
  // needs them without holding an API token, and they let nobody sign anything.
  api.get('/v1/keys', {
    config: { scope: 'open' },
    schema: {
      summary: 'Trusted verifier keys with the tree sizes each may sign (public; no token)',
      response: { 200: TrustedKeysSchema },
    },
    handler: () => daemon.keys(),
  });

  // Health answers from the diagnostics' cache, exempt from tokens and rate limits
  // (Kubernetes probes carry neither).
  for (const path of ['/livez', '/readyz'] as const) {
    api.get(path, {
      config: { scope: 'open', rateLimit: false },
      schema: {
        summary: `${path === '/livez' ? 'Liveness' : 'Readiness'} (?verbose, ?exclude=<check>)`,
        querystring: z.object({
          verbose: z.string().optional(),
          exclude: z.union([z.string(), z.array(z.string())]).optional(),
        }),
      },
      handler: async (request, reply) => {
        const answer = await healthWithin(daemon, request.url, path, healthTimeoutMs);
        if (answer === undefined) {
          return reply.code(404).send(errorBody('UNRDF_HTTP_NOT_FOUND', `No route ${path}.`));
        }
        return reply
          .code(answer.status)
          .type('text/plain; charset=utf-8')
          .header('cache-control', 'no-store')
          .serializer((text: string) => text)
          .send(answer.body);
      },
    });
  }

  api.get('/metrics', {
    config: { scope: 'read' },
    schema: {
      summary: 'Prometheus text exposition 0.0.4 of the OpenTelemetry metrics',
      security,
      response: { 200: z.string(), 401: ErrorBodySchema, 403: ErrorBodySchema },
    },
    handler: async (_request, reply) => {
      const text = await daemon.metricsText();
      return reply
        .type(PROMETHEUS_CONTENT_TYPE)
        .serializer((s: string) => s)
        .send(text);
    },
  });

  api.get('/v1/diagnostics', {
    config: { scope: 'admin' },
    schema: {
      summary: 'The diagnostic report: json, md (for people) or tar (a .tar.gz debug bundle)',
      security,
      querystring: DiagnosticsQuerySchema,
      response: { 200: z.unknown(), ...errors },
    },
    handler: async (request, reply) => {
      const report = await daemon.report();
      const format = request.query.format;
      if (format === 'json') return reply.send(report);
      // Loaded on first use: the rest of the server runs without the diagnostics package.
      const { renderReportMarkdown, writeDebugBundle } = await import('@unrdf/diagnostics');
      if (format === 'md') {
        return reply
          .type('text/markdown; charset=utf-8')
          .serializer((s: string) => s)
          .send(renderReportMarkdown(report));
      }
      const dir = await mkdtemp(join(tmpdir(), 'unrdf-http-bundle-'));
      try {
        const file = join(dir, 'unrdf-diagnostics.tar.gz');
        await writeDebugBundle(report, file);
        const bytes = await readFile(file);
        return reply
          .type('application/gzip')
          .header('content-disposition', 'attachment; filename="unrdf-diagnostics.tar.gz"')
          .send(bytes);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  });

  api.get('/v1/logs', {
    config: { scope: 'read' },
    schema: {
      summary: 'Log records of this node (after a sequence number or since a time)',
      security,
      querystring: LogsQuerySchema,
      response: { 200: LogPageSchema, ...errors },
    },
    handler: async (request) => {
      const { sinceMs, afterSeq, limit } = request.query;
      const page = await daemon.logs({
        ...(sinceMs === undefined ? {} : { sinceWallMs: sinceMs }),
        ...(afterSeq === undefined ? {} : { afterSeq }),
        limit: limit ?? 1000,
      });
      return page as unknown as z.infer<typeof LogPageSchema>;
    },
  });

  api.get('/v1/slo', {
    config: { scope: 'read' },
    schema: {
      summary: 'Each SLO with its error budget and burn rates',
      security,
      response: { 200: SloAnswerSchema, ...errors },
    },
    handler: async () => ({ slos: (await daemon.slo()) as unknown as Record<string, unknown>[] }),
  });

  api.get('/v1/cluster', {
    config: { scope: 'read' },
    schema: {
      summary: 'Who leads and how far the log is (a single node is its own leader)',
      security,
      response: { 200: ClusterViewSchema, ...errors },
    },
    handler: async () => standaloneCluster(daemon.nodeId, await daemon.checkpoint()),
  });

  api.get('/openapi.json', {
    config: { scope: 'open' },
    schema: { hide: true },
    handler: async () => app.swagger(),
  });

  await app.ready();
  return app;
}

/** The daemon as a port (wrapping one on this thread). */
function portOf(daemon: Daemon | DaemonPort, telemetry: Telemetry | undefined): DaemonPort {
  if ('kind' in daemon && daemon.kind === 'daemon-port') return daemon;
  if (telemetry === undefined) throw new TypeError('createHttpApi: a daemon on this thread needs its telemetry');
  return localDaemonPort(daemon as Daemon, telemetry);
}

/** Tree size of a signed checkpoint note (C2SP tlog-checkpoint: origin, size, root hash). */
function treeSizeOf(note: string | undefined): number {
  const size = note?.split('\n')[1];
  return size !== undefined && /^\d{1,16}$/.test(size) ? Number(size) : 0;
}

/** The cluster view of a single node; cluster mode fills the same shape from Raft. */
function standaloneCluster(nodeId: string, checkpoint: string | undefined): ClusterView {
  const size = treeSizeOf(checkpoint);
  return {
    nodeId,
    mode: 'standalone',
    role: 'standalone',
    leaderId: nodeId,
    term: 0,
    commitIndex: size,
    appliedIndex: size,
    members: [{ id: nodeId, role: 'standalone', voter: true, reachable: true, commitIndex: size, appliedIndex: size }],
    quorum: 1,
    failureTolerance: 0,
  };
}

/**
 * Starts the HTTP API on `host:port` (default 127.0.0.1:8787).
 * @example
 * await using server = await startHttpServer({ daemon, tokens, telemetry, port: 0 });
 * await fetch(`${server.url}/livez`);
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const app = await createHttpApi(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 8787 });
  const { port } = app.server.address() as AddressInfo;
  const close = () => app.close();
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    app,
    close,
    [Symbol.asyncDispose]: close,
  };
}
