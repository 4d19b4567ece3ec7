import { randomUUID } from 'node:crypto';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { z } from 'zod';
import { InvalidOptionsError } from './errors.js';
import { parseOptions } from './internal/parse.js';

/**
 * `livez`: is *this process* alive (restart me if not). It must never depend on
 * storage, peers or the network: a liveness check that fails when a dependency is
 * down turns one outage into a restart storm. `readyz`: should traffic come here.
 * (Kubernetes API health endpoints, kubernetes.io/docs/reference/using-api/health-checks.)
 */
export type HealthEndpoint = 'livez' | 'readyz';

/** A liveness check: synchronous and process-local by construction (no I/O can hide in it). */
export interface LivenessCheck {
  readonly name: string;
  readonly endpoint: 'livez';
  /** Returns normally when healthy (optionally a detail), throws when not. */
  run(): string | undefined;
}

/** A readiness check: may do I/O; it runs in the background and its last result is served. */
export interface ReadinessCheck {
  readonly name: string;
  readonly endpoint: 'readyz';
  /** Resolves when ready (optionally a detail), rejects when not; must honour `signal`. */
  run(signal: AbortSignal): Promise<string | undefined>;
  /** How often it runs (default: the health's intervalMs). */
  readonly intervalMs?: number;
}

export type HealthCheck = LivenessCheck | ReadinessCheck;

/** The cached outcome of one check. */
export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly message: string;
  /** Wall time of the last completed run; null when it has not run yet. */
  readonly checkedAt: number | null;
  readonly durationMs: number | null;
  /** True when the last result is older than staleAfterMs (then it counts as failed). */
  readonly stale: boolean;
  readonly excluded: boolean;
}

/** What a `livez`/`readyz` request gets: the HTTP status and body to send, and the per-check detail. */
export interface HealthResponse {
  readonly endpoint: HealthEndpoint;
  readonly ok: boolean;
  readonly httpStatus: 200 | 503;
  /** Kubernetes' text format: `ok`, or `[+]name ok` / `[-]name failed: reason` lines when verbose or failing. */
  readonly body: string;
  readonly checks: readonly CheckResult[];
}

/** `?verbose` and `?exclude=<check>` (repeatable), as Kubernetes accepts them. */
export interface HealthQuery {
  readonly verbose?: boolean;
  readonly exclude?: readonly string[];
}

const HealthOptionsSchema = z.object({
  checks: z.array(z.custom<HealthCheck>((v) => typeof v === 'object' && v !== null && 'run' in v && 'name' in v)),
  /** Default interval between background runs of a readiness check. */
  intervalMs: z.number().int().positive().optional(),
  /** A readiness run that takes longer than this fails (and is aborted). */
  timeoutMs: z.number().int().positive().optional(),
  /** A result older than this counts as failed (default: per check, 3 of its intervals plus the timeout). */
  staleAfterMs: z.number().int().positive().optional(),
  clock: z.custom<() => number>((v) => typeof v === 'function').optional(),
});
export type HealthOptions = z.input<typeof HealthOptionsSchema>;

export const DEFAULT_HEALTH_INTERVAL_MS = 1000;
// The kubelet's default probe timeout (timeoutSeconds: 1).
export const DEFAULT_HEALTH_TIMEOUT_MS = 1000;

/** Health endpoints served from cached state. */
export interface Health extends AsyncDisposable {
  /** Answers at once from the cache: never waits for a check. */
  livez(query?: HealthQuery | URLSearchParams): HealthResponse;
  readyz(query?: HealthQuery | URLSearchParams): HealthResponse;
  /** Runs every readiness check now and waits for them (startup, tests). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

interface Slot {
  readonly check: HealthCheck;
  ok: boolean;
  message: string;
  checkedAt: number | null;
  durationMs: number | null;
  running: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

function toQuery(query: HealthQuery | URLSearchParams | undefined): HealthQuery {
  if (!(query instanceof URLSearchParams)) return query ?? {};
  const verbose = query.get('verbose');
  return { verbose: verbose !== null && verbose !== 'false' && verbose !== '0', exclude: query.getAll('exclude') };
}

/**
 * Creates `livez`/`readyz` over the given checks. Readiness checks run in the
 * background on their interval with a timeout; requests read the cached results
 * and never block on I/O. A check that has not run yet, failed, timed out or whose
 * result went stale makes its endpoint fail.
 * @throws InvalidOptionsError on bad options or duplicate check names.
 * @example
 * const health = createHealth({ checks: [pingCheck(), storageWritableCheck('/var/lib/unrdf')] });
 * await health.refresh();
 * const { httpStatus, body } = health.readyz(new URL(req.url, 'http://x').searchParams);
 */
export function createHealth(options: HealthOptions): Health {
  const opts = parseOptions(HealthOptionsSchema, options, 'health options');
  const clock = opts.clock ?? Date.now;
  const intervalMs = opts.intervalMs ?? DEFAULT_HEALTH_INTERVAL_MS;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS;
  // Per check: one with a longer interval of its own is not stale between its runs.
  const staleAfterMs = (check: HealthCheck) =>
    opts.staleAfterMs ?? 3 * ((check.endpoint === 'readyz' ? check.intervalMs : undefined) ?? intervalMs) + timeoutMs;
  const names = opts.checks.map((c) => c.name);
  const bad = names.filter((n, i) => !NAME.test(n) || names.indexOf(n) !== i);
  if (bad.length)
    throw new InvalidOptionsError(
      'health options',
      bad.map((n) => `checks: bad or duplicate name "${n}"`),
    );

  const slots: Slot[] = opts.checks.map((check) => ({
    check,
    ok: false,
    message: 'not checked yet',
    checkedAt: null,
    durationMs: null,
    running: undefined,
    timer: undefined,
  }));
  let closed = false;
  const controller = new AbortController();

  const runReadiness = (slot: Slot): Promise<void> => {
    if (slot.running) return slot.running;
    const check = slot.check as ReadinessCheck;
    const started = performance.now();
    const deadline = new AbortController();
    const signal = AbortSignal.any([controller.signal, deadline.signal]);
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    timer.unref();
    let onAbort: (() => void) | undefined;
    // Raced against the check (which may ignore its signal), and always raced: created
    // only together with the race, so its rejection is never unhandled.
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () =>
        reject(new Error(controller.signal.aborted ? 'health closed' : `timed out after ${timeoutMs} ms`));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    // A check that throws instead of rejecting fails the same way; it must not escape
    // into createHealth or the timer that runs it.
    let run: Promise<string | undefined>;
    try {
      run = check.run(signal);
    } catch (error) {
      run = Promise.reject(error);
    }
    slot.running = Promise.race([run, timedOut])
      .then(
        (detail) => {
          slot.ok = true;
          slot.message = detail ?? 'ok';
        },
        (error: unknown) => {
          slot.ok = false;
          slot.message = error instanceof Error ? error.message : String(error);
        },
      )
      .finally(() => {
        clearTimeout(timer);
        if (onAbort) signal.removeEventListener('abort', onAbort);
        slot.checkedAt = clock();
        slot.durationMs = performance.now() - started;
        slot.running = undefined;
      });
    return slot.running;
  };

  const schedule = (slot: Slot) => {
    if (closed) return;
    const every = (slot.check as ReadinessCheck).intervalMs ?? intervalMs;
    slot.timer = setTimeout(() => {
      void runReadiness(slot).finally(() => schedule(slot));
    }, every);
    slot.timer.unref();
  };

  for (const slot of slots) {
    if (slot.check.endpoint !== 'readyz') continue;
    void runReadiness(slot).finally(() => schedule(slot));
  }

  const answer = (endpoint: HealthEndpoint, raw: HealthQuery | URLSearchParams | undefined): HealthResponse => {
    const query = toQuery(raw);
    const exclude = new Set(query.exclude ?? []);
    const now = clock();
    const results: CheckResult[] = [];
    for (const slot of slots) {
      if (slot.check.endpoint !== endpoint && !(endpoint === 'readyz' && slot.check.endpoint === 'livez')) continue;
      if (slot.check.endpoint === 'livez') {
        // Liveness checks are synchronous and process-local: run them inline.
        const started = performance.now();
        try {
          slot.message = slot.check.run() ?? 'ok';
          slot.ok = true;
        } catch (error) {
          slot.ok = false;
          slot.message = error instanceof Error ? error.message : String(error);
        }
        slot.checkedAt = now;
        slot.durationMs = performance.now() - started;
      }
      const stale = slot.checkedAt !== null && now - slot.checkedAt > staleAfterMs(slot.check);
      results.push({
        name: slot.check.name,
        ok: slot.ok && !stale && slot.checkedAt !== null,
        message: stale ? `stale: last result ${now - (slot.checkedAt ?? now)} ms old (${slot.message})` : slot.message,
        checkedAt: slot.checkedAt,
        durationMs: slot.durationMs,
        stale,
        excluded: exclude.has(slot.check.name),
      });
    }
    const ok = results.every((r) => r.ok || r.excluded);
    const unknown = [...exclude].filter((name) => !results.some((r) => r.name === name));
    const lines = results.map((r) =>
      r.excluded ? `[+]${r.name} excluded: ok` : r.ok ? `[+]${r.name} ok` : `[-]${r.name} failed: ${r.message}`,
    );
    if (unknown.length) {
      lines.push(
        `warn: some health checks cannot be excluded: no matches for ${unknown.map((u) => `"${u}"`).join(',')}`,
      );
    }
    lines.push(`${endpoint} check ${ok ? 'passed' : 'failed'}`);
    const body = ok && !query.verbose ? 'ok' : lines.join('\n');
    return { endpoint, ok, httpStatus: ok ? 200 : 503, body, checks: results };
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    controller.abort();
    for (const slot of slots) clearTimeout(slot.timer);
    await Promise.allSettled(slots.map((s) => s.running));
  };

  return {
    livez: (query) => answer('livez', query),
    readyz: (query) => answer('readyz', query),
    refresh: async () => {
      await Promise.all(slots.filter((s) => s.check.endpoint === 'readyz').map((s) => runReadiness(s)));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The trivial liveness check: the process answers at all. */
export function pingCheck(): LivenessCheck {
  return { name: 'ping', endpoint: 'livez', run: () => undefined };
}

/**
 * Liveness fails when the event loop has been blocked longer than `maxDelayMs`
 * (p99 of the loop delay since the last answer). Generous by default: a busy
 * process is alive; only a wedged one should be restarted.
 */
export function eventLoopCheck(options: { maxDelayMs?: number } = {}): LivenessCheck & { close(): void } {
  const maxDelayMs = options.maxDelayMs ?? 5000;
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  return {
    name: 'event-loop',
    endpoint: 'livez',
    run() {
      const p99Ms = histogram.count > 0 ? histogram.percentile(99) / 1e6 : 0;
      histogram.reset();
      if (p99Ms > maxDelayMs)
        throw new Error(`event loop blocked: p99 delay ${p99Ms.toFixed(0)} ms > ${maxDelayMs} ms`);
      return `p99 delay ${p99Ms.toFixed(1)} ms`;
    },
    close: () => histogram.disable(),
  };
}

/** Readiness: `dir` accepts a durable write (create, write, fsync, unlink a probe file). */
export function storageWritableCheck(dir: string, intervalMs?: number): ReadinessCheck {
  return {
    name: 'storage',
    endpoint: 'readyz',
    ...(intervalMs === undefined ? {} : { intervalMs }),
    async run(signal) {
      await mkdir(dir, { recursive: true });
      const probe = join(dir, `.readyz-${randomUUID()}`);
      const file = await open(probe, 'w');
      try {
        await file.writeFile('probe', { signal });
        await file.sync();
      } finally {
        await file.close();
        await unlink(probe).catch(() => undefined);
      }
      return 'writable';
    },
  };
}

/** What the consensus module tells readiness. */
export interface ConsensusStatus {
  /** A single-node deployment has no leader election and is ready on its own. */
  readonly singleNode: boolean;
  readonly leaderId: string | undefined;
  readonly term: number;
}

/** Readiness: a leader is known (or this is a single node). */
export function raftLeaderCheck(status: () => ConsensusStatus | Promise<ConsensusStatus>): ReadinessCheck {
  return {
    name: 'raft',
    endpoint: 'readyz',
    async run() {
      const s = await status();
      if (s.singleNode) return 'single node';
      if (s.leaderId === undefined) throw new Error(`no leader in term ${s.term}`);
      return `leader ${s.leaderId} in term ${s.term}`;
    },
  };
}

/** Readiness: the operation queue accepts work. */
export function queueAcceptingCheck(
  status: () => { accepting: boolean; reason?: string } | Promise<{ accepting: boolean; reason?: string }>,
): ReadinessCheck {
  return {
    name: 'queue',
    endpoint: 'readyz',
    async run() {
      const s = await status();
      if (!s.accepting) throw new Error(s.reason ?? 'queue is not accepting operations');
      return 'accepting';
    },
  };
}
