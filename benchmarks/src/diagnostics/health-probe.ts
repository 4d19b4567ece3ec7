// The jtbd4-diagnostics health prober, in its own process: nothing else runs on its
// event loop (no aggregator, no load generator, no report), as a kubelet or load
// balancer probes a node. It sends the health checks and the floors interleaved on
// one schedule (each round in a random order), so they see the same moments of the
// machine and never queue behind each other in this process; each target has its own
// kept-alive connection, opened and warmed before measuring.
// Usage: health-probe '<json config>' (see ProbeConfig); prints "result <json>" and exits.
import { Agent, request } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';

interface ProbeTarget {
  /** What the figures are filed under (e.g. "health", "node_echo", "echo"). */
  readonly kind: string;
  readonly url: string;
}

interface ProbeConfig {
  /** Sent in rounds, each round in a random order, at `ratePerSec` in total. */
  readonly targets: readonly ProbeTarget[];
  readonly ratePerSec: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** Per kind: every sample in ms. */
interface KindSamples {
  /** From the request being handed to the socket to the last byte of the answer. */
  roundTrip: number[];
  /** How late this process' timer sent it (its own scheduling, not the server's). */
  lateness: number[];
  /** From the intended send time to the last byte (open loop: lateness included). */
  fromIntended: number[];
  errors: number;
  failures: Record<string, number>;
}

const config = JSON.parse(process.argv[2] ?? '') as ProbeConfig;
// One socket per origin, kept alive; Nagle off (a request is one write anyway).
const agent = new Agent({ keepAlive: true, maxSockets: 2, maxFreeSockets: 2, keepAliveMsecs: 1000 });

// Connections this process opened: with keep-alive, one or two per target in all.
const sockets = new WeakSet<object>();
let socketsOpened = 0;

function send(url: string): Promise<{ status: number; body: string; sentAt: number; doneAt: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sentAt, doneAt: performance.now() }));
    });
    req.on('error', reject);
    req.on('socket', (socket) => {
      if (sockets.has(socket)) return;
      sockets.add(socket);
      socketsOpened++;
      socket.setNoDelay(true);
    });
    const sentAt = performance.now();
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Each round of targets is sent in a fresh random order (a seeded PRNG: mulberry32).
// In a fixed order every target would always follow the same one: a node's health
// check would always find it idle for most of a round, and its echo right after would
// always find it just woken, which on a VM is a systematic difference of ~0.2 ms.
let seed = 0x5eed;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const a = out[i] as T;
    out[i] = out[j] as T;
    out[j] = a;
  }
  return out;
}

async function run(durationMs: number, samples: Map<string, KindSamples> | undefined): Promise<void> {
  const intervalMs = 1000 / config.ratePerSec;
  const total = Math.floor((config.ratePerSec * durationMs) / 1000);
  const pending: Promise<void>[] = [];
  let order: ProbeTarget[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const intendedAt = start + i * intervalMs;
    const wait = intendedAt - performance.now();
    if (wait > 0) await sleep(wait);
    if (i % config.targets.length === 0) order = shuffled(config.targets);
    const target = order[i % config.targets.length];
    if (!target) continue;
    const lateness = performance.now() - intendedAt;
    pending.push(
      send(target.url).then(
        ({ status, body, sentAt, doneAt }) => {
          const s = samples?.get(target.kind);
          if (!s) return;
          if (status !== 200) {
            s.errors++;
            const reason = body.split('\n').find((l) => l.startsWith('[-]')) ?? `HTTP ${status}`;
            s.failures[reason] = (s.failures[reason] ?? 0) + 1;
            return;
          }
          s.roundTrip.push(doneAt - sentAt);
          s.lateness.push(lateness);
          s.fromIntended.push(doneAt - intendedAt);
        },
        (error: unknown) => {
          const s = samples?.get(target.kind);
          if (!s) return;
          s.errors++;
          const reason = error instanceof Error ? error.message : String(error);
          s.failures[reason] = (s.failures[reason] ?? 0) + 1;
        },
      ),
    );
  }
  await Promise.all(pending);
}

// Unmeasured warm-up: connections opened, both sides' code compiled.
await run(config.warmupMs, undefined);
// Then this process' heap is settled once, so that a full collection of the warm-up's
// garbage does not land in the measured phase (the benchmark passes --expose-gc).
(globalThis as { gc?: () => void }).gc?.();

const samples = new Map<string, KindSamples>();
for (const t of config.targets) {
  samples.set(t.kind, { roundTrip: [], lateness: [], fromIntended: [], errors: 0, failures: {} });
}
// This process' own GC pauses while measuring (no event-loop delay monitor: its timer
// would keep the process awake and change what is measured).
let gcPauseMs = 0;
let gcPauses = 0;
const gc = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcPauseMs += e.duration;
    gcPauses++;
  }
});
gc.observe({ entryTypes: ['gc'] });
await run(config.durationMs, samples);
await sleep(0);
gc.disconnect();

process.stdout.write(
  `result ${JSON.stringify({
    kinds: Object.fromEntries(samples),
    probe: {
      gcPauses,
      gcPauseMs,
      socketsOpened,
    },
  })}\n`,
  () => {
    agent.destroy();
    process.exit(0);
  },
);
