// Write-path profiler for @unrdf/raft: 3 node processes on loopback (no fault proxies),
// 256-byte puts through the HTTP client, sequential and 64 in flight (the workload of
// write-path.ts). With several node programs (--variant name=path/to/node-process.ts) and
// --etcd it alternates them round by round in one run, so a busy shared machine affects
// each alike; compare the ratios, and the CPU per write, which load barely moves.
//
//   cd benchmarks && npx tsx --conditions=@unrdf/source src/raft/write-path-profile.ts \
//     [--rounds 3] [--seconds 3] [--variant base=/tmp/base/scripts/node-process.ts] [--etcd]
//     [--only seq|flight] [--cpu-prof DIR] [--keep]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ProcessCluster, SessionClient } from '@unrdf/raft/testing';
import { EtcdCluster, ensureEtcd } from './etcd-cluster.js';
import { measureWritePath, type WritePathResult } from './write-path.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    variant: { type: 'string', multiple: true, default: [] },
    etcd: { type: 'boolean', default: false },
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
if (values.etcd) {
  const etcd = await ensureEtcd();
  if (etcd.ok) variants.push({ name: 'etcd', script: undefined });
  else process.stdout.write(`etcd skipped: ${etcd.reason}\n`);
}
const phases = {
  sequentialMs: values.only === 'flight' ? 0 : seconds * 1000,
  inflightMs: values.only === 'seq' ? 0 : seconds * 1000,
};

async function measureEtcd(dir: string): Promise<WritePathResult> {
  const etcd = await EtcdCluster.start(dir);
  try {
    const port = (await etcd.leaderPort()) as number;
    return await measureWritePath(() => (key, value) => etcd.put(port, key, value), { ...phases, pids: etcd.pids });
  } finally {
    await etcd.close();
  }
}

async function measure(name: string, script: string | undefined, round: number): Promise<WritePathResult> {
  const dir = mkdtempSync(join(tmpdir(), 'raft-write-'));
  if (name === 'etcd') {
    try {
      return await measureEtcd(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const profDir = values['cpu-prof'];
  const execArgv = profDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, `${name}-${round}`)}`] : [];
  const cluster = await ProcessCluster.start({
    dataDir: dir,
    ...(script === undefined ? {} : { nodeScript: script }),
    execArgv,
  });
  try {
    await cluster.settled();
    const pids = cluster.running.map((id) => cluster.pid(id) as number);
    return await measureWritePath(
      (clientId) => {
        const client = new SessionClient(cluster, clientId);
        return async (key, value) => {
          await client.put(key, value);
        };
      },
      { ...phases, pids },
    );
  } finally {
    // SIGTERM first: a clean exit writes --cpu-prof profiles.
    for (const id of cluster.running) await cluster.stop(id);
    await cluster.close();
    if (values.keep) process.stdout.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, WritePathResult[]>(variants.map((v) => [v.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const v of variants) {
    const r = await measure(v.name, v.script, round);
    results.get(v.name)?.push(r);
    process.stdout.write(
      `round ${round} ${v.name.padEnd(10)} seq P50 ${r.sequential.percentile(50).toFixed(2)} ms P99 ${r.sequential.percentile(99).toFixed(2)} ms ${Math.round(r.sequentialRate)}/s | 64 in flight ${Math.round(r.inflightRate)}/s P50 ${r.inflight.percentile(50).toFixed(2)} ms | server CPU ms per 1,000 writes: seq ${Math.round(r.sequentialCpuPer1000)}, 64 in flight ${Math.round(r.inflightCpuPer1000)}\n`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const first = variants[0]?.name ?? '';
const summary = (name: string) => {
  const rs = results.get(name) ?? [];
  return {
    seq: median(rs.map((r) => r.sequential.percentile(50))),
    flight: median(rs.map((r) => r.inflightRate)),
    seqCpu: median(rs.map((r) => r.sequentialCpuPer1000)),
    flightCpu: median(rs.map((r) => r.inflightCpuPer1000)),
  };
};
const base = summary(first);
for (const v of variants) {
  const s = summary(v.name);
  process.stdout.write(
    `median ${v.name.padEnd(10)} seq P50 ${s.seq.toFixed(2)} ms (${(s.seq / base.seq).toFixed(2)}x ${first}) | 64 in flight ${Math.round(s.flight)}/s (${(s.flight / base.flight).toFixed(2)}x) | CPU ms/1,000 writes seq ${Math.round(s.seqCpu)} (${(s.seqCpu / base.seqCpu).toFixed(2)}x), 64 in flight ${Math.round(s.flightCpu)} (${(s.flightCpu / base.flightCpu).toFixed(2)}x)\n`,
  );
}
process.exit(0);
