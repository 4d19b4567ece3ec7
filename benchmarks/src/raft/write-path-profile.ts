// Write-path profiler for @unrdf/raft: 3 node processes on loopback (no fault proxies),
// 256-byte puts through the HTTP client, sequential and 64 in flight. With several node
// programs (--variant name=path/to/node-process.ts) it alternates them round by round in
// one run, so a busy shared machine affects each variant alike; compare the ratios.
//
//   pnpm --filter @unrdf/benchmarks exec tsx --conditions=@unrdf/source src/raft/write-path-profile.ts \
//     [--rounds 3] [--seconds 3] [--variant base=/tmp/base/node-process.ts] [--cpu-prof DIR]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProcessCluster, SessionClient } from '@unrdf/raft/testing';
import { LatencyHistogram } from '../harness/histogram.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    variant: { type: 'string', multiple: true, default: [] },
    'cpu-prof': { type: 'string' },
    'no-current': { type: 'boolean', default: false },
    /** Keep each cluster's data directories (and whatever the nodes wrote next to them). */
    keep: { type: 'boolean', default: false },
    /** Run only one phase (to profile it alone): seq or flight. */
    only: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const variants: { name: string; script: string | undefined }[] = values['no-current']
  ? []
  : [{ name: 'current', script: undefined }];
for (const v of values.variant) {
  const [name, script] = v.split('=');
  if (name === undefined || script === undefined) throw new Error(`--variant name=path, got ${v}`);
  variants.push({ name, script });
}
const VALUE = 'x'.repeat(256);

/**
 * CPU time (user + system, ms) the processes used so far, from /proc (Linux): unlike
 * latency, the cost per write barely moves when other work shares the machine.
 */
function cpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
    } catch {
      // not Linux, or gone
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

interface RoundResult {
  seqP50: number;
  seqP99: number;
  seqRate: number;
  flightRate: number;
  flightP50: number;
  /** CPU ms of the three node processes per 1,000 writes, sequential and 64 in flight. */
  seqCpu: number;
  flightCpu: number;
}

async function measure(name: string, script: string | undefined, round: number): Promise<RoundResult> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-write-'));
  const profDir = values['cpu-prof'];
  const execArgv = profDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, `${name}-${round}`)}`] : [];
  const cluster = await ProcessCluster.start({
    dataDir: dir,
    ...(script === undefined ? {} : { nodeScript: script }),
    execArgv,
  });
  try {
    await cluster.settled();
    const single = new SessionClient(cluster, 'seq');
    for (let i = 0; i < 100; i++) await single.put(`w${i % 16}`, VALUE);
    const pids = cluster.running.map((id) => cluster.pid(id) as number);
    const seq = new LatencyHistogram();
    let count = 0;
    const cpu0 = cpuMs(pids);
    const t0 = performance.now();
    const seqDeadline = t0 + (values.only === 'flight' ? 0 : seconds) * 1000;
    while (performance.now() < seqDeadline) {
      const s = performance.now();
      await single.put(`s${count % 16}`, VALUE);
      seq.record(performance.now() - s);
      count++;
    }
    const seqRate = (count * 1000) / (performance.now() - t0);
    const cpu1 = cpuMs(pids);
    const flight = new LatencyHistogram();
    let done = 0;
    const f0 = performance.now();
    const deadline = f0 + (values.only === 'seq' ? 0 : seconds) * 1000;
    await Promise.all(
      Array.from({ length: 64 }, async (_, c) => {
        const client = new SessionClient(cluster, `f${c}`);
        for (let i = 0; performance.now() < deadline; i++) {
          const s = performance.now();
          await client.put(`f${c}-${i % 8}`, VALUE);
          flight.record(performance.now() - s);
          done++;
        }
      }),
    );
    const flightRate = (done * 1000) / (performance.now() - f0);
    const cpu2 = cpuMs(pids);
    return {
      seqP50: seq.percentile(50),
      seqP99: seq.percentile(99),
      seqRate,
      flightRate,
      flightP50: flight.percentile(50),
      seqCpu: ((cpu1 - cpu0) * 1000) / Math.max(1, count),
      flightCpu: ((cpu2 - cpu1) * 1000) / Math.max(1, done),
    };
  } finally {
    // SIGTERM first: a clean exit writes --cpu-prof profiles.
    for (const id of cluster.running) await cluster.stop(id);
    await cluster.close();
    if (values.keep) process.stdout.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, RoundResult[]>(variants.map((v) => [v.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const v of variants) {
    const r = await measure(v.name, v.script, round);
    results.get(v.name)?.push(r);
    process.stdout.write(
      `round ${round} ${v.name.padEnd(10)} seq P50 ${r.seqP50.toFixed(2)} ms P99 ${r.seqP99.toFixed(2)} ms ${Math.round(r.seqRate)}/s | 64 in flight ${Math.round(r.flightRate)}/s P50 ${r.flightP50.toFixed(2)} ms | CPU ms per 1,000 writes: seq ${Math.round(r.seqCpu)}, 64 in flight ${Math.round(r.flightCpu)}\n`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const first = variants[0]?.name;
for (const v of variants) {
  const rs = results.get(v.name) ?? [];
  const base = results.get(first ?? '') ?? [];
  const seq = median(rs.map((r) => r.seqP50));
  const flight = median(rs.map((r) => r.flightRate));
  const seqCpu = median(rs.map((r) => r.seqCpu));
  const flightCpu = median(rs.map((r) => r.flightCpu));
  process.stdout.write(
    `median ${v.name.padEnd(10)} seq P50 ${seq.toFixed(2)} ms (${(seq / median(base.map((r) => r.seqP50))).toFixed(2)}x ${first}) | 64 in flight ${Math.round(flight)}/s (${(flight / median(base.map((r) => r.flightRate))).toFixed(2)}x ${first}) | CPU ms/1,000 writes seq ${Math.round(seqCpu)} (${(seqCpu / median(base.map((r) => r.seqCpu))).toFixed(2)}x), 64 in flight ${Math.round(flightCpu)} (${(flightCpu / median(base.map((r) => r.flightCpu))).toFixed(2)}x)\n`,
  );
}
process.exit(0);
