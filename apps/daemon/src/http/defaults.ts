// The HTTP API's defaults that the CLI shows in its help, and its constants: kept apart from
// server.ts so that the CLI's other commands start without loading Fastify and the rest of
// the server, and from telemetry.ts so that the HTTP front's thread loads no metrics SDK.
import { availableParallelism } from 'node:os';

/** Default rate limit per token (or per client address for open routes). */
export const DEFAULT_RATE_LIMIT = { max: 6000, timeWindowMs: 60_000 } as const;
/**
 * HTTP API threads besides the daemon's: 1 runs the API on a worker thread (see front.ts)
 * when the machine has a second core for it; on one core a second thread only adds the
 * cost of crossing between them.
 */
export const DEFAULT_HTTP_THREADS = availableParallelism() >= 2 ? 1 : 0;

/** Prometheus text exposition format 0.0.4, the content type `/metrics` answers with. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
