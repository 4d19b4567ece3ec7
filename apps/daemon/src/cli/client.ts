import { CliError, failure, usageError } from './errors.js';

/** How the CLI reaches a running daemon. */
export interface ClientOptions {
  readonly url: string;
  readonly token: string | undefined;
  /** Per request (default 30 s). */
  readonly timeoutMs?: number;
}

/** A response the CLI understood: status and body (JSON, text or bytes by content type). */
export interface ClientResponse {
  readonly status: number;
  readonly contentType: string;
  readonly json: unknown;
  readonly text: string;
  readonly bytes: Uint8Array;
}

/** Pulls `path: message` lines out of an error body, whatever envelope the API chose. */
export function errorLines(body: unknown): { message: string; issues: string[] } {
  if (typeof body !== 'object' || body === null) return { message: String(body ?? ''), issues: [] };
  const b = body as Record<string, unknown>;
  const inner = (typeof b.error === 'object' && b.error !== null ? b.error : b) as Record<string, unknown>;
  const message =
    typeof inner.message === 'string'
      ? inner.message
      : typeof b.message === 'string'
        ? b.message
        : JSON.stringify(body);
  const raw = inner.issues ?? b.issues;
  const issues = Array.isArray(raw)
    ? raw.map((issue) => {
        if (typeof issue === 'string') return issue;
        const i = issue as { path?: unknown; message?: unknown };
        const path = Array.isArray(i.path) ? i.path.join('.') : typeof i.path === 'string' ? i.path : '(root)';
        return `${path || '(root)'}: ${String(i.message)}`;
      })
    : [];
  return { message, issues };
}

/**
 * Calls the daemon's HTTP API. Maps what goes wrong to exit codes: unreachable, 401/403,
 * 404 and 5xx are failures (1); 400/409/413/415/422 are bad input (2) with the API's issues.
 * @throws {CliError}
 */
export async function request(
  client: ClientOptions,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  options: { readonly allow?: readonly number[] } = {},
): Promise<ClientResponse> {
  const url = new URL(path, client.url.endsWith('/') ? client.url : `${client.url}/`);
  const headers: Record<string, string> = { accept: 'application/json, text/plain;q=0.9, */*;q=0.5' };
  if (client.token !== undefined) headers.authorization = `Bearer ${client.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(client.timeoutMs ?? 30_000),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (error as Error).message;
    throw failure(
      `cannot reach the daemon at ${client.url} (${why}); is it running? (start it with: unrdf-daemon start)`,
      {
        cause: error,
      },
    );
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const contentType = response.headers.get('content-type') ?? '';
  const text =
    contentType.startsWith('application/json') || contentType.startsWith('text/')
      ? new TextDecoder().decode(bytes)
      : '';
  let json: unknown;
  if (contentType.startsWith('application/json')) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  const result = { status: response.status, contentType, json, text, bytes };
  if (response.ok || options.allow?.includes(response.status)) return result;
  const { message, issues } = errorLines(json ?? text);
  const what = `${method} ${url.pathname}`;
  if (response.status === 401 || response.status === 403) {
    throw failure(
      `${what}: ${response.status} ${message}\ngive a token with --token or $UNRDF_TOKEN (the daemon wrote one to <data-dir>/admin.token)`,
    );
  }
  if ([400, 409, 413, 415, 422].includes(response.status)) {
    throw usageError(`${what}: ${response.status} ${message}`, issues);
  }
  throw new CliError(`${what}: ${response.status} ${message}`, 1, issues);
}
