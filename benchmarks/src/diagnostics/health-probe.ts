// The jtbd4-diagnostics health prober, in its own process: nothing else runs on its
// event loop (no aggregator, no load generator, no report), as a kubelet or load
// balancer probes a node. It sends the health checks and the floors interleaved on
// one schedule, so they see the same moments of the machine and never queue behind
// each other in this process; each target has its own kept-alive connection, opened
// and warmed before measuring.
// Usage: health-probe '<json config>' (see ProbeConfig); prints "result <json>" and exits.
import { Agent, request } from 'node:http';
import { PerformanceObserver } from 'node:perf_hooks';

interface ProbeTarget {
  /** What the figures are filed under (e.g. "health", "node_echo", "echo"). */
  readonly kind: string;
  readonly url: string;
}

interface ProbeConfig {
  /** Sent in this order, round robin, at `ratePerSec` in total. */
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

async function run(durationMs: number, samples: Map<string, KindSamples> | undefined): Promise<void> {
  const intervalMs = 1000 / config.ratePerSec;
  const total = Math.floor((config.ratePerSec * durationMs) / 1000);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const intendedAt = start + i * intervalMs;
    const wait = intendedAt - performance.now();
    if (wait > 0) await sleep(wait);
    const target = config.targets[i % config.targets.length];
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
