// Offline-verification profiler for @unrdf/receipts: builds (once, cached in --dir) a
// ledger of --leaves receipts, then verifies --count receipts spread over it with a
// fresh createReceiptVerifier per round, as jtbd1-receipts does, and prints CPU per
// receipt (process.cpuUsage) next to raw SHA-256 speed measured in the same process, so
// figures from a busy shared machine compare by ratio.
//
//   cd benchmarks && npx tsx --conditions=@unrdf/source src/receipts/verify-profile.ts \
//     [--leaves 110000] [--count 20000] [--rounds 5] [--dir /tmp/receipts-profile]
//     [--variant base=/tmp/base/packages/receipts/src/index.ts] [--no-current]
// With variants (another checkout's receipts index) it alternates them round by round.
//   (profile: node --cpu-prof --import tsx --conditions=@unrdf/source src/receipts/verify-profile.ts)
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createOperationId, createReceiptVerifier, generateNoteKey, type Receipt } from '@unrdf/receipts';
import { openLedger } from '@unrdf/receipts/ledger';
import { nodeSha256Rate } from '../baselines/hashing.js';

const { values } = parseArgs({
  options: {
    leaves: { type: 'string', default: '110000' },
    count: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
    dir: { type: 'string', default: '/tmp/receipts-profile' },
    variant: { type: 'string', multiple: true, default: [] },
    'no-current': { type: 'boolean', default: false },
    /** Live objects kept on the heap meanwhile (as a long benchmark run has): entries of a Map. */
    ballast: { type: 'string', default: '0' },
  },
});
const leaves = Number(values.leaves);
const count = Number(values.count);
const rounds = Number(values.rounds);
const ORIGIN = 'bench.unrdf.example/ledger';
mkdirSync(values.dir, { recursive: true });
const path = join(values.dir, `verify-${leaves}.db`);
const keyPath = join(values.dir, `verify-${leaves}.skey.txt`);
const fresh = !existsSync(path);
const { readFileSync, writeFileSync } = await import('node:fs');
if (fresh) writeFileSync(keyPath, generateNoteKey(ORIGIN).signerKey);
const signerKey = readFileSync(keyPath, 'utf8');
const hex = (n: number) => n.toString(16).padStart(64, '0');
const ledger = await openLedger({
  path,
  origin: ORIGIN,
  signers: [{ signer: signerKey }],
  durability: 'fsync-in-commit',
});
if (fresh) {
  const t0 = performance.now();
  for (let done = 0; done < leaves; ) {
    const n = Math.min(4096, leaves - done);
    await Promise.all(
      Array.from({ length: n }, (_, k) =>
        ledger.append({
          operationId: createOperationId(),
          type: (['create', 'update', 'delete'] as const)[(done + k) % 3] as 'create',
          subject: `urn:unrdf:entity:${(done + k) % 10_007}`,
          inputDigest: hex(done + k),
          outputDigest: hex(done + k + 1),
          outcome: { status: 'succeeded' },
          attempt: 1,
          submittedAt: 1_796_000_000_000 + done + k,
          startedAt: 1_796_000_000_000 + done + k,
          finishedAt: 1_796_000_000_000 + done + k,
          nodeId: 'bench-node-1',
        }),
      ),
    );
    done += n;
  }
  process.stdout.write(`built ${leaves} leaves in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
}
const size = ledger.size();
const checkpoint = ledger.latestCheckpoint() as string;
const items: { receipt: Receipt; proof: unknown }[] = [];
for (let k = 0; k < count; k++) {
  const leaf = Math.floor((k * size) / count);
  items.push({ receipt: ledger.receipt(leaf) as Receipt, proof: ledger.inclusionProof(leaf, size) });
}
const trustedKeys = ledger.trustedKeys;
await ledger.close();

type Create = typeof createReceiptVerifier;
const variants: { name: string; create: Create; perRound: number[] }[] = values['no-current']
  ? []
  : [{ name: 'current', create: createReceiptVerifier, perRound: [] }];
for (const v of values.variant) {
  const [name, script] = v.split('=');
  if (name === undefined || script === undefined) throw new Error(`--variant name=path, got ${v}`);
  const module = (await import(script)) as { createReceiptVerifier: Create };
  variants.push({ name, create: module.createReceiptVerifier, perRound: [] });
}
const ballast = new Map<bigint, string>();
for (let i = 0; i < Number(values.ballast); i++) ballast.set(BigInt(i) * 7919n, hex(i));
const sha = nodeSha256Rate(1000);
for (let round = 0; round < rounds * variants.length; round++) {
  const variant = variants[round % variants.length] as (typeof variants)[number];
  const verifier = variant.create({ trustedKeys });
  let invalid = 0;
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (const item of items) if (verifier.verify(item.receipt, item.proof, checkpoint).status !== 'valid') invalid++;
  const wall = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  const cpuMicros = (used.user + used.system) / items.length;
  variant.perRound.push(cpuMicros);
  process.stdout.write(
    `${variant.name} round ${Math.floor(round / variants.length)}: ${cpuMicros.toFixed(1)} µs CPU/receipt, ${((items.length * 1000) / wall).toFixed(0)}/s wall, ${invalid} invalid\n`,
  );
}
for (const v of variants) {
  const sorted = [...v.perRound].sort((a, b) => a - b);
  const best = sorted[0] as number;
  const median = sorted[Math.floor(sorted.length / 2)] as number;
  process.stdout.write(
    `${v.name}: best ${best.toFixed(1)} µs CPU/receipt (${(1e6 / best).toFixed(0)}/cpu-s, ${(1e6 / best / sha.perSecond).toFixed(3)}x raw SHA-256), median ${median.toFixed(1)} µs\n`,
  );
}
process.stdout.write(
  `raw SHA-256 (64 B, node:crypto) ${sha.perSecond.toFixed(0)}/s in this process; ballast ${ballast.size} entries\n`,
);
