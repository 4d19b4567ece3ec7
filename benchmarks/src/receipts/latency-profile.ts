// Low-rate latency profiler for @unrdf/receipts: the jtbd1-receipts load (durable
// appends at --rate/s, open loop) on fresh ledgers, alternating durability modes and
// variants (another checkout's ledger module) round by round, with a null load (the
// same generator, appends replaced by a resolved promise) measured in the same run. It
// prints P50/P99/P99.9, the event loop's longest stall, and CPU per receipt
// (process.cpuUsage) with and without the generator's own share, so figures from a busy
// shared machine compare by ratio.
//
//   cd benchmarks && npx tsx --conditions=@unrdf/source src/receipts/latency-profile.ts \
//     [--rounds 3] [--seconds 3] [--rate 1000] [--mode fsync-after-commit --mode fsync-in-commit]
//     [--variant base=/tmp/base/packages/receipts/src/ledger/index.ts] [--dir /tmp/receipts-profile]
//     [--type batch]  (batch receipts of 10-16 members, each body built by that variant's
//                      buildBatchBody inside the measured latency, as in jtbd1-receipts)
import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { buildBatchBody, generateNoteKey, type ReceiptBody } from '@unrdf/receipts';
import { openLedger } from '@unrdf/receipts/ledger';
import { LatencyHistogram } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';
import { rotatingSingleBody } from './bodies.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    rate: { type: 'string', default: '1000' },
    mode: { type: 'string', multiple: true, default: [] },
    variant: { type: 'string', multiple: true, default: [] },
    'no-current': { type: 'boolean', default: false },
    dir: { type: 'string', default: '/tmp/receipts-profile' },
    type: { type: 'string', default: 'single' },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const modes = (values.mode.length > 0 ? values.mode : ['fsync-after-commit', 'fsync-in-commit']) as (
  | 'fsync-after-commit'
  | 'fsync-in-commit'
)[];
type Open = typeof openLedger;
type BuildBatch = typeof buildBatchBody;
const variants: { name: string; open: Open; buildBatch: BuildBatch }[] = values['no-current']
  ? []
  : [{ name: 'current', open: openLedger, buildBatch: buildBatchBody }];
for (const v of values.variant) {
  const [name, script] = v.split('=');
  if (name === undefined || script === undefined) throw new Error(`--variant name=path, got ${v}`);
  const core = (await import(script.replace(/ledger\/index\.ts$/, 'index.ts'))) as { buildBatchBody: BuildBatch };
  variants.push({
    name,
    open: ((await import(script)) as { openLedger: Open }).openLedger,
    buildBatch: core.buildBatchBody,
  });
}
const ORIGIN = 'bench.unrdf.example/ledger';
const signerKey = generateNoteKey(ORIGIN).signerKey;
const dir = join(values.dir, `latency-${process.pid}`);
mkdirSync(dir, { recursive: true });
const single = rotatingSingleBody;
/** As jtbd1-receipts: a batch of 10 to 16 members, hashed by `build` (inside the measured latency). */
const body = (i: number, build: BuildBatch): ReceiptBody => {
  if (values.type !== 'batch') return single(i);
  const members = Array.from({ length: 10 + (i % 7) }, (_, k) => single(i * 16 + k));
  const { type: _t, ...facts } = single(i);
  return build(facts, members);
};

interface Acc {
  latency: LatencyHistogram;
  cpuMicros: number;
  completed: number;
  maxStallMs: number;
  elapsedMs: number;
}
const acc = new Map<string, Acc>();
const record = (
  key: string,
  r: { latency: LatencyHistogram; completed: number; elapsedMs: number },
  cpu: number,
  stall: number,
) => {
  const a = acc.get(key) ?? {
    latency: new LatencyHistogram(),
    cpuMicros: 0,
    completed: 0,
    maxStallMs: 0,
    elapsedMs: 0,
  };
  a.elapsedMs += r.elapsedMs;
  a.latency.merge(r.latency);
  a.cpuMicros += cpu;
  a.completed += r.completed;
  a.maxStallMs = Math.max(a.maxStallMs, stall);
  acc.set(key, a);
};

const load0 = loadavg()[0] ?? 0;
let file = 0;
for (let round = 0; round < rounds; round++) {
  const roundLine: string[] = [];
  for (const mode of [...modes, 'null' as const]) {
    for (const variant of mode === 'null'
      ? [{ name: 'generator', open: openLedger, buildBatch: buildBatchBody }]
      : variants) {
      const key = mode === 'null' ? 'null load' : `${variant.name} ${mode}`;
      const ledger =
        mode === 'null'
          ? undefined
          : await variant.open({
              path: join(dir, `l${file++}.db`),
              origin: ORIGIN,
              signers: [{ signer: signerKey }],
              durability: mode,
            });
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      const cpu = process.cpuUsage();
      const result = await openLoop({
        ratePerSec: rate,
        durationMs: seconds * 1000,
        fire: (_at, i) =>
          ledger ? ledger.append(body(i, variant.buildBatch)) : Promise.resolve(body(i, variant.buildBatch)),
      });
      const used = process.cpuUsage(cpu);
      delay.disable();
      await ledger?.close();
      record(key, result, used.user + used.system, delay.max / 1e6);
      const r = result.latency.summary();
      roundLine.push(`${key} ${r.p99.toFixed(1)}`);
    }
  }
  // Per round, so a disturbance that hit one slot shows as such.
  process.stdout.write(`round ${round} P99 ms: ${roundLine.join(', ')} (load ${(loadavg()[0] ?? 0).toFixed(1)})\n`);
}
const generatorCpu = (() => {
  const n = acc.get('null load');
  return n ? n.cpuMicros / Math.max(1, n.completed) : 0;
})();
for (const [key, a] of acc) {
  const s = a.latency.summary();
  const cpu = a.cpuMicros / Math.max(1, a.completed);
  process.stdout.write(
    `${key.padEnd(32)} P50 ${s.p50.toFixed(2)} P99 ${s.p99.toFixed(2)} P99.9 ${s.p999.toFixed(2)} ms; loop stall max ${a.maxStallMs.toFixed(1)} ms; CPU ${cpu.toFixed(0)} µs/receipt (${(cpu - generatorCpu).toFixed(0)} without the generator); ${((a.completed * 1000) / a.elapsedMs).toFixed(0)}/s\n`,
  );
}
process.stdout.write(`load average ${load0.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)}\n`);
rmSync(dir, { recursive: true, force: true });
