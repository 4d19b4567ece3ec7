// One diagnostics node of the jtbd4-diagnostics benchmark, in its own process: 5 minutes
// of log history, then its share of the operation load, served over loopback HTTP.
// Usage: bench-node <id> <scratchDir> <opsPerSec> <loadMs> <members,comma,separated>
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import {
  createHealth,
  createHlc,
  createMetrics,
  createNodeDiagnostics,
  createNodeLogger,
  pingCheck,
  queueAcceptingCheck,
  raftLeaderCheck,
  storageWritableCheck,
} from '@unrdf/diagnostics';
import { openLoop } from '../harness/open-loop.js';

const [id, scratchDir, opsArg, loadArg, membersArg] = process.argv.slice(2);
if (!id || !scratchDir || !opsArg || !loadArg || !membersArg) throw new Error('bad arguments');
const opsPerSec = Number(opsArg);
const loadMs = Number(loadArg);
const members = membersArg.split(',');
const HISTORY_MS = 5 * 60_000;

let skewMs = 0;
const clock = () => Date.now() + skewMs;
const hlc = createHlc({ clock });
const log = createNodeLogger({ nodeId: id, hlc, clock, ringSize: 100_000, segmentDir: `${scratchDir}/${id}/logs` });
const metrics = createMetrics();
const health = createHealth({
  checks: [
    pingCheck(),
    storageWritableCheck(`${scratchDir}/${id}/data`),
    raftLeaderCheck(() => ({ singleNode: false, leaderId: members[0], term: 7 })),
    queueAcceptingCheck(() => ({ accepting: true })),
  ],
});
await health.refresh();
let applied = 0;
const diagnostics = createNodeDiagnostics({
  nodeId: id,
  version: '0.1.0',
  logger: log,
  health,
  metrics,
  dataDir: scratchDir,
  consensus: () => ({
    role: id === members[0] ? 'leader' : 'follower',
    term: 7,
    leaderId: members[0] ?? null,
    commitIndex: applied,
    appliedIndex: applied,
    lastLogIndex: applied,
    members: members.map((m) => ({ id: m, voter: true })),
  }),
});

const exactDurations: number[] = [];
const payload = Buffer.alloc(1024, 7);
function operation(opId: string, intendedAt: number): void {
  const started = performance.now();
  log.logger.info({ op: opId, type: 'create' }, 'operation started');
  createHash('sha256').update(payload).update(opId).digest(); // the receipt's hashing
  log.logger.info({ op: opId, type: 'create', outcome: 'success' }, 'operation completed');
  applied++;
  const durationMs = performance.now() - intendedAt;
  exactDurations.push(durationMs);
  metrics.recordOperation({ id: opId, type: 'create', ok: true, durationMs, queueWaitMs: started - intendedAt });
  metrics.observe('receipt', { durationMs: performance.now() - started, ok: true });
}

// History: five minutes of operations at this node's rate, stamped in the past through
// the injected clock, so the log snapshot has a full window to aggregate.
const historyOps = Math.round((opsPerSec * HISTORY_MS) / 1000);
const historyStart = Date.now() - HISTORY_MS;
for (let i = 0; i < historyOps; i++) {
  skewMs = historyStart + (i * HISTORY_MS) / historyOps - Date.now();
  log.logger.info({ op: `${id}-h${i}`, type: 'create' }, 'operation started');
  log.logger.info({ op: `${id}-h${i}`, type: 'create', outcome: 'success' }, 'operation completed');
}
skewMs = 0;

// Server-side time of each snapshot request (arrival to the last byte handed to the
// socket), with the body size, so a client can tell the node's share from the network's.
const snapshotTimes: { ms: number; bytes: number; cpuMs: number }[] = [];
// This process' garbage-collection pauses over a phase (reset, then read): what a health
// check may wait behind in this process. (No event-loop delay monitor: its timer would
// wake the process every few ms and change what is measured.)
let gcPauseMs: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauseMs.push(e.duration);
}).observe({ entryTypes: ['gc'] });

const server = createServer((req, res) => {
  if (req.url === '/bench/disturbance/reset') {
    gcPauseMs = [];
    res.end('ok');
    return;
  }
  if (req.url === '/bench/disturbance') {
    const body = {
      gcPauses: gcPauseMs.length,
      gcPauseTotalMs: gcPauseMs.reduce((a, b) => a + b, 0),
      gcPauseMaxMs: Math.max(0, ...gcPauseMs),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    return;
  }
  // The benchmark's floor for a health check: the same server and load, no handler.
  if (req.url === '/bench/echo') {
    res.end('ok');
    return;
  }
  if (req.url?.startsWith('/diagnostics/snapshot')) {
    const started = performance.now();
    const cpu = process.cpuUsage();
    let bytes = 0;
    const write = res.write.bind(res) as (body: unknown) => boolean;
    res.write = ((body: unknown) => {
      if (typeof body === 'string') bytes += Buffer.byteLength(body);
      return write(body);
    }) as typeof res.write;
    const end = res.end.bind(res) as (body?: unknown) => typeof res;
    res.end = ((body?: unknown) => {
      if (typeof body === 'string') bytes += Buffer.byteLength(body);
      return end(body);
    }) as typeof res.end;
    res.on('finish', () => {
      const used = process.cpuUsage(cpu);
      snapshotTimes.push({ ms: performance.now() - started, bytes, cpuMs: (used.user + used.system) / 1000 });
      if (snapshotTimes.length > 10_000) snapshotTimes.shift();
    });
  }
  if (diagnostics.handle(req, res)) return;
  if (req.url === '/bench/snapshot-times') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(snapshotTimes));
    return;
  }
  if (req.url === '/bench/durations') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(exactDurations));
    return;
  }
  res.writeHead(404).end();
});
server.keepAliveTimeout = 30_000;
// The prefill compressed 5 minutes of logging into about a second, which leaves the
// heap as no running node has it (a young generation grown full of survivors, a major
// collection due): settle it once before serving, as minutes of running would have
// (the benchmark passes --expose-gc), so the measured phases do not pay for the prefill.
(globalThis as { gc?: () => void }).gc?.();
server.listen(0, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${(server.address() as AddressInfo).port} history=${log.lastSeq()}`);
  void openLoop({
    ratePerSec: opsPerSec,
    durationMs: loadMs,
    fire: async (intendedAt, index) => operation(`${id}-${index}`, intendedAt),
  }).then((result) => {
    console.log(
      `load done completed=${result.completed} elapsedMs=${Math.round(result.elapsedMs)} p99=${result.latency.percentile(99)}`,
    );
  });
});
let stopping = false;
const shutdown = () => {
  if (stopping) return;
  stopping = true;
  server.closeAllConnections();
  server.close();
  void Promise.all([diagnostics.close(), health.close(), log.close()]).then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
// The benchmark holds our stdin: when it dies without stopping us (killed, crashed),
// the pipe closes and we leave too instead of serving on as an orphan.
process.stdin.on('close', shutdown).resume();
