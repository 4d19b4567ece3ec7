import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  buildBatchBody,
  createReceiptVerifier,
  generateNoteKey,
  type OperationType,
  parseSignerKey,
  type Receipt,
  type ReceiptBody,
  signCheckpoint,
  verifyReceipt,
} from '@unrdf/receipts';
import { type AppendedReceipt, type Ledger, openLedger } from '@unrdf/receipts/ledger';
import { type HonestReceipt, runTamperSweep } from '@unrdf/receipts/testing';
import { sqliteDurableCommitRate } from '../baselines/durable-commit.js';
import { nobleSha256Rate, nodeSha256Rate } from '../baselines/hashing.js';
import type { BenchContext, Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';
import { errorRateMetrics, type MetricInput, rateUpperBound95 } from '../harness/report.js';
import { syntheticSingleBody } from '../receipts/bodies.js';

// JTBD 1 (receipt generation) and the offline half of JTBD 2 (verification) of the SLO
// spec, on @unrdf/receipts alone: latency from submission to a *durable* receipt with
// its leaf index (SQLite WAL; the WAL fdatasynced after COMMIT, on the event loop for a
// small batch on a fast disk, else on the thread pool; group commit, one signed
// checkpoint per batch), per operation type at 1,000/s; the same load under both
// durability modes, alternating (fsync after COMMIT vs inside it); a run offered the
// 20,000/s goal rate, below saturation (what completes per second there and the latency
// a caller sees); a sustained run offered 25,000/s, above the goal so the rate it
// sustains is the ledger's, not the generator's (1,000,000 receipts in the full run;
// its latency is queueing behind the offer); proof generation on the
// resulting ledger; offline verification; and the tamper sweep (300,000 tampered +
// 300,000 honest cases in the full run).

const ORIGIN = 'bench.unrdf.example/ledger';
const TYPES = ['create', 'update', 'delete', 'batch'] as const satisfies readonly OperationType[];
/** SLO-SPEC.md, JTBD 1, "Performance Targets by Operation Type" (ms). */
const SPEC_BY_TYPE: Record<(typeof TYPES)[number], { p50: number; p95: number; p99: number }> = {
  create: { p50: 3, p95: 12, p99: 40 },
  update: { p50: 5, p95: 18, p99: 45 },
  delete: { p50: 4, p95: 15, p99: 42 },
  batch: { p50: 8, p95: 22, p99: 55 },
};
const SPEC = { p50: 5, p95: 15, p99: 45, p999: 100, successPct: 99.95, collisionsPerMillion: 0 } as const;
const SPEC_VERIFY = { falsePct: 0.001 } as const;
/** Offered above the 20,000/s goal: completions per second then measure capacity, not the offer. */
const SUSTAINED_OFFERED_PER_SEC = 25_000;
const GOAL = { p99: 5, sustained: 20_000, proofMs: 1, verifyPerSec: 20_000 } as const;

/** A body of `type`; a batch aggregates 10 to 16 member operations through a Merkle root. */
function bodyOf(type: OperationType, n: number, now: number): ReceiptBody {
  if (type !== 'batch') return syntheticSingleBody(type, n, now);
  const members = Array.from({ length: 10 + (n % 7) }, (_, i) =>
    syntheticSingleBody((['create', 'update', 'delete'] as const)[i % 3] as 'create', n * 16 + i, now),
  );
  const { type: _t, ...facts } = syntheticSingleBody('create', n, now);
  return buildBatchBody(facts, members);
}

/** Receipt-hash collisions: 64-bit prefixes in a set, full hashes compared on a prefix hit. */
class CollisionCounter {
  readonly #seen = new Map<bigint, string>();
  collisions = 0;
  add(receiptHash: string): void {
    const prefix = BigInt(`0x${receiptHash.slice(0, 16)}`);
    const earlier = this.#seen.get(prefix);
    if (earlier === undefined) this.#seen.set(prefix, receiptHash);
    else if (earlier === receiptHash) this.collisions++;
  }
  get size(): number {
    return this.#seen.size;
  }
}

/**
 * The disk's own fsync latency, the floor under any durable P99: a 4 KiB append, then
 * fdatasync, `count` times in a row on a scratch file (what each small group commit does).
 */
function fdatasyncLatency(dir: string, count: number) {
  const path = join(dir, 'fdatasync-probe');
  const fd = openSync(path, 'w');
  const page = new Uint8Array(4096).fill(1);
  const latency = new LatencyHistogram();
  try {
    for (let i = 0; i < count; i++) {
      writeSync(fd, page);
      const t0 = performance.now();
      fdatasyncSync(fd);
      latency.record(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
  }
  return latency.summary();
}

/**
 * The same 1,000/s load on fresh ledgers in each durability mode, alternating (in-commit,
 * after-commit, in-commit, after-commit) so the shared machine's disk and the JIT's
 * warm-up weigh on both alike: P99 and CPU per receipt.
 */
async function durabilityModes(ctx: BenchContext, signerKey: string) {
  const count = ctx.quick ? 2000 : 5000;
  type Mode = 'fsync-after-commit' | 'fsync-in-commit';
  const acc: Record<Mode, { latency: LatencyHistogram; cpuMicros: number; completed: number }> = {
    'fsync-after-commit': { latency: new LatencyHistogram(), cpuMicros: 0, completed: 0 },
    'fsync-in-commit': { latency: new LatencyHistogram(), cpuMicros: 0, completed: 0 },
  };
  for (const [round, durability] of (
    ['fsync-in-commit', 'fsync-after-commit', 'fsync-in-commit', 'fsync-after-commit'] as const
  ).entries()) {
    await using ledger = await openLedger({
      path: join(ctx.scratchDir, `mode-${round}-${durability}.db`),
      origin: ORIGIN,
      signers: [{ signer: signerKey }],
      durability,
    });
    const cpu = process.cpuUsage();
    const result = await openLoop({
      ratePerSec: 1000,
      durationMs: count,
      fire: async (_intendedAt, i) => {
        await ledger.append(
          syntheticSingleBody((['create', 'update', 'delete'] as const)[i % 3] as 'create', i, Date.now()),
        );
      },
      onTick: (done, total) => ctx.progress.update(done, total, `durability ${durability}`),
    });
    const used = process.cpuUsage(cpu);
    acc[durability].latency.merge(result.latency);
    acc[durability].cpuMicros += used.user + used.system;
    acc[durability].completed += result.completed;
  }
  const summarise = (mode: Mode) => {
    const s = acc[mode].latency.summary();
    return { p99: s.p99, p999: s.p999, cpuMicros: acc[mode].cpuMicros / Math.max(1, acc[mode].completed) };
  };
  return { 'fsync-after-commit': summarise('fsync-after-commit'), 'fsync-in-commit': summarise('fsync-in-commit') };
}

async function perTypeLatency(ctx: BenchContext, ledger: Ledger, collisions: CollisionCounter) {
  // Quick: 10,000 operations at 1,000/s with the four types interleaved (2,500 each).
  // Full: 10,000 operations of each type at 1,000/s, one type after the other.
  const byType = new Map(TYPES.map((t) => [t, new LatencyHistogram()]));
  const all = new LatencyHistogram();
  let issued = 0;
  let failed = 0;
  const runs = ctx.quick ? [{ types: TYPES, count: 10_000 }] : TYPES.map((t) => ({ types: [t], count: 10_000 }));
  const cpu = process.cpuUsage();
  for (const run of runs) {
    const result = await openLoop({
      ratePerSec: 1000,
      durationMs: run.count,
      fire: async (intendedAt, i) => {
        const type = run.types[i % run.types.length] as (typeof TYPES)[number];
        const appended = await ledger.append(bodyOf(type, issued + i, Date.now()));
        const latency = performance.now() - intendedAt;
        byType.get(type)?.record(latency);
        collisions.add(appended.receiptHash);
      },
      onTick: (done, total) => ctx.progress.update(done, total, `per-type latency (${run.types.join(',')})`),
    });
    issued += result.issued;
    failed += result.errors;
    all.merge(result.latency);
  }
  const used = process.cpuUsage(cpu);
  return { byType, all, issued, failed, cpuMicros: (used.user + used.system) / Math.max(1, issued - failed) };
}

/**
 * An open-loop run on the shared ledger at `rate` receipts/s: what completes per
 * second, per CPU-second, and the latency at that rate.
 */
async function sustained(
  ctx: BenchContext,
  ledger: Ledger,
  collisions: CollisionCounter,
  rate: number,
  total: number,
  firstN: number,
) {
  const checkpoints: AppendedReceipt[] = [];
  const cpu = process.cpuUsage();
  const result = await openLoop({
    ratePerSec: rate,
    durationMs: (total / rate) * 1000,
    fire: async (_intendedAt, i) => {
      const type = (['create', 'update', 'delete'] as const)[i % 3] as 'create';
      const appended = await ledger.append(syntheticSingleBody(type, firstN + i, Date.now()));
      collisions.add(appended.receiptHash);
      if (i % 50_000 === 0) checkpoints.push(appended);
    },
    onTick: (done, t) => ctx.progress.update(done, t, `sustained ${rate}/s`),
  });
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return {
    result,
    perSec: (result.completed * 1000) / result.elapsedMs,
    perCpuSec: result.completed / cpuSeconds,
    checkpoints,
  };
}

function proofGeneration(ledger: Ledger, samples: number) {
  const size = ledger.size();
  const inclusion = new LatencyHistogram();
  const consistency = new LatencyHistogram();
  for (let i = 0; i < samples; i++) {
    const leaf = Math.floor(Math.random() * size);
    const t0 = performance.now();
    ledger.inclusionProof(leaf, size);
    inclusion.record(performance.now() - t0);
    const old = 1 + Math.floor(Math.random() * (size - 1));
    const t1 = performance.now();
    ledger.consistencyProof(old, size);
    consistency.record(performance.now() - t1);
  }
  return { size, inclusion, consistency };
}

/**
 * Verifies `count` distinct honest receipts offline (proofs fetched first, not timed).
 * `batch-cached`: one `createReceiptVerifier` for all of them, against the one latest
 * checkpoint, so its signature is checked once and proven nodes are remembered (an
 * auditor checking a batch). `per-receipt`: `verifyReceipt` each time, as a one-off
 * verifier does: trusted keys parsed, the checkpoint's signature checked, nothing cached.
 */
function offlineVerification(ctx: BenchContext, ledger: Ledger, count: number, mode: 'batch-cached' | 'per-receipt') {
  const cached = createReceiptVerifier({ trustedKeys: ledger.trustedKeys });
  const verify =
    mode === 'batch-cached'
      ? (receipt: Receipt, proof: unknown, checkpoint: string) => cached.verify(receipt, proof, checkpoint)
      : (receipt: Receipt, proof: unknown, checkpoint: string) =>
          verifyReceipt(receipt, proof, checkpoint, ledger.trustedKeys);
  const checkpoint = ledger.latestCheckpoint() as string;
  const size = ledger.size();
  const latency = new LatencyHistogram();
  let verified = 0;
  let falseRejects = 0;
  let verifyMs = 0;
  let cpuMicros = 0;
  const chunk = 5000;
  for (let start = 0; start < count; start += chunk) {
    const items: { receipt: Receipt; proof: unknown }[] = [];
    for (let k = start; k < Math.min(count, start + chunk); k++) {
      const leaf = Math.floor((k * size) / count); // spread over the whole ledger
      items.push({ receipt: ledger.receipt(leaf) as Receipt, proof: ledger.inclusionProof(leaf, size) });
    }
    const t0 = performance.now();
    const cpu = process.cpuUsage();
    for (const item of items) {
      const s = performance.now();
      if (verify(item.receipt, item.proof, checkpoint).status !== 'valid') falseRejects++;
      latency.record(performance.now() - s);
    }
    verifyMs += performance.now() - t0;
    const used = process.cpuUsage(cpu);
    cpuMicros += used.user + used.system;
    verified += items.length;
    ctx.progress.update(verified, count, `offline verification (${mode})`);
  }
  return {
    verified,
    falseRejects,
    latency,
    perSec: (verified * 1000) / verifyMs,
    perCpuSec: verified / (cpuMicros / 1e6),
  };
}

async function tamperSweep(ctx: BenchContext, ledger: Ledger, signerKey: string, picks: number) {
  const size = ledger.size();
  const latest = ledger.latestCheckpoint() as string;
  // Twins of the honest ledger: another origin (same key), a fork (same origin and key,
  // other history), an impostor key, and a correctly signed head with a forged root.
  const twin = async (file: string, origin: string, skey: string, from: number) => {
    const l = await openLedger({ path: join(ctx.scratchDir, file), origin, signers: [{ signer: skey }] });
    for (let i = 0; i < 64; i++) await l.append(syntheticSingleBody('create', from + i, 1_800_000_000_000));
    return l;
  };
  const impostorKey = generateNoteKey(ORIGIN);
  await using foreign = await twin('foreign.db', 'other.unrdf.example/ledger', signerKey, 0);
  await using forked = await twin('forked.db', ORIGIN, signerKey, 5_000_000);
  await using impostor = await twin('impostor.db', ORIGIN, impostorKey.signerKey, 0);
  const signer = parseSignerKey(signerKey);
  const earlier = Math.max(1, Math.floor(size / 2));
  const honest: HonestReceipt[] = Array.from({ length: picks }, (_, k) => {
    const leaf = Math.floor(((k + 0.5) * size) / picks);
    return { receipt: ledger.receipt(leaf) as Receipt, proof: ledger.inclusionProof(leaf, size), checkpoint: latest };
  });
  const otherCheckpoints = [
    signCheckpoint({ origin: ORIGIN, size: earlier, root: ledger.root(earlier) }, [signer]),
    foreign.latestCheckpoint() as string,
    forked.latestCheckpoint() as string,
    impostor.latestCheckpoint() as string,
    signCheckpoint({ origin: ORIGIN, size, root: forked.root() }, [signer]),
    signCheckpoint({ origin: ORIGIN, size, root: ledger.root(size) }, [parseSignerKey(impostorKey.signerKey)]),
    signCheckpoint({ origin: 'other.unrdf.example/ledger', size, root: ledger.root(size) }, [signer]),
  ].filter((c) => c !== latest);
  const verifier = createReceiptVerifier({ trustedKeys: ledger.trustedKeys });
  const older = signCheckpoint({ origin: ORIGIN, size: earlier, root: ledger.root(earlier) }, [signer]);
  return runTamperSweep(
    {
      honest,
      otherCheckpoints,
      consistency: [{ older, newer: latest, proof: ledger.consistencyProof(earlier, size) }],
      forkedCheckpoints: [
        signCheckpoint({ origin: ORIGIN, size, root: forked.root() }, [signer]),
        signCheckpoint({ origin: ORIGIN, size: earlier, root: forked.root() }, [signer]),
      ],
    },
    verifier,
    (h, t) => ctx.progress.update(h + t, 0, `tamper sweep: ${t} tampered`),
  );
}

/**
 * JTBD 1 receipts end to end on the ledger: durable receipt latency per operation type,
 * sustained group-commit throughput, proof generation, offline verification and the
 * tamper sweep, against raw SHA-256 and fsynced-commit baselines from the same run.
 */
export const benchmark: Benchmark = {
  name: 'jtbd1-receipts',
  description:
    'durable receipt latency per operation type at 1,000/s, a run at the 20,000/s goal rate, sustained run offered 25,000/s (1M receipts full), proof generation, offline verification, tamper sweep',
  async run(ctx) {
    const { quick } = ctx;
    const loadBefore = loadavg()[0] ?? 0;
    ctx.progress.update(0, 0, 'baselines');
    const rawNode = nodeSha256Rate(quick ? 1000 : 3000);
    const rawNoble = nobleSha256Rate(quick ? 1000 : 3000);
    const commit = sqliteDurableCommitRate(ctx.scratchDir, quick ? 1000 : 3000);
    const disk = fdatasyncLatency(ctx.scratchDir, quick ? 1000 : 3000);

    const key = generateNoteKey(ORIGIN);
    await using ledger = await openLedger({
      path: join(ctx.scratchDir, 'ledger.db'),
      origin: ORIGIN,
      signers: [{ signer: key.signerKey }],
    });
    const collisions = new CollisionCounter();
    const perType = await perTypeLatency(ctx, ledger, collisions);
    const modes = await durabilityModes(ctx, key.signerKey);
    // At the goal rate first (below saturation: the latency a caller sees there), then
    // offered above it (what completes per second is then the ledger's capacity).
    const atGoal = await sustained(ctx, ledger, collisions, GOAL.sustained, quick ? 60_000 : 200_000, 3_000_000);
    const sus = await sustained(
      ctx,
      ledger,
      collisions,
      SUSTAINED_OFFERED_PER_SEC,
      quick ? 100_000 : 1_000_000,
      1_000_000,
    );
    ctx.progress.update(0, 0, 'proof generation');
    const proofs = proofGeneration(ledger, quick ? 2_000 : 20_000);
    const verification = offlineVerification(ctx, ledger, quick ? 20_000 : 300_000, 'batch-cached');
    const perReceipt = offlineVerification(ctx, ledger, quick ? 2_000 : 20_000, 'per-receipt');
    const sweep = await tamperSweep(ctx, ledger, key.signerKey, quick ? 3 : 32);

    const issued = perType.issued + atGoal.result.issued + sus.result.issued;
    const completed = perType.issued - perType.failed + atGoal.result.completed + sus.result.completed;
    const a = perType.all.summary();
    const s = sus.result.latency.summary();
    const g = atGoal.result.latency.summary();
    const honestTotal = verification.verified + perReceipt.verified + sweep.honestCases;
    const falseRejects = verification.falseRejects + perReceipt.falseRejects + sweep.falseRejects.length;
    const falseAccepts = sweep.falseAccepts.length;
    // Offered 25,000/s: if nearly all of it completed per second, the figure is the offer's,
    // and the ledger's capacity is only known to be at least that.
    const sustainedOfferBound = sus.perSec >= 0.98 * SUSTAINED_OFFERED_PER_SEC;
    const metrics: Record<string, MetricInput> = {
      receipt_p50_ms: { value: a.p50, unit: 'ms', better: 'lower', specTarget: SPEC.p50, samples: a.count },
      receipt_p95_ms: { value: a.p95, unit: 'ms', better: 'lower', specTarget: SPEC.p95, samples: a.count },
      receipt_p99_ms: {
        value: a.p99,
        unit: 'ms',
        better: 'lower',
        specTarget: SPEC.p99,
        goal: GOAL.p99,
        samples: a.count,
      },
      receipt_p999_ms: { value: a.p999, unit: 'ms', better: 'lower', specTarget: SPEC.p999, samples: a.count },
      receipt_cpu_us: { value: perType.cpuMicros, unit: 'µs', better: 'lower' },
      fsync_after_commit_p99_ms: {
        value: modes['fsync-after-commit'].p99,
        unit: 'ms',
        better: 'lower',
        specTarget: SPEC.p99,
        goal: GOAL.p99,
      },
      receipt_p99_vs_fdatasync_p99: { value: a.p99 / disk.p99, unit: 'x', better: 'lower' },
      fsync_after_commit_p99_vs_in_commit: {
        value: modes['fsync-after-commit'].p99 / modes['fsync-in-commit'].p99,
        unit: 'x',
        better: 'lower',
      },
      fsync_after_commit_cpu_us: { value: modes['fsync-after-commit'].cpuMicros, unit: 'µs', better: 'lower' },
    };
    for (const type of TYPES) {
      const t = (perType.byType.get(type) as LatencyHistogram).summary();
      const spec = SPEC_BY_TYPE[type];
      const ms = { unit: 'ms', better: 'lower' as const, samples: t.count };
      metrics[`${type}_p50_ms`] = { value: t.p50, ...ms, specTarget: spec.p50 };
      metrics[`${type}_p95_ms`] = { value: t.p95, ...ms, specTarget: spec.p95 };
      metrics[`${type}_p99_ms`] = { value: t.p99, ...ms, specTarget: spec.p99, goal: GOAL.p99 };
      metrics[`${type}_p999_ms`] = { value: t.p999, ...ms };
    }
    // The spec's 0.001 % is judged on each rate's 95 % upper bound (errorRateMetrics).
    const falseAcceptRows = errorRateMetrics(falseAccepts, sweep.tamperedCases, 'cases', SPEC_VERIFY.falsePct);
    const falseRejectRows = errorRateMetrics(falseRejects, honestTotal, 'cases', SPEC_VERIFY.falsePct);
    Object.assign(metrics, {
      success_rate_pct: {
        value: (completed / issued) * 100,
        unit: '%',
        better: 'higher',
        specTarget: SPEC.successPct,
      },
      hash_collisions_per_million: {
        value: (collisions.collisions / collisions.size) * 1_000_000,
        unit: '/M',
        better: 'lower',
        specTarget: SPEC.collisionsPerMillion,
      },
      // No goal here: offered exactly 20,000/s, what completes per second is bounded by the
      // offer (and the drain at the end); capacity is sustained_receipts_per_s below.
      at_goal_rate_receipts_per_s: { value: atGoal.perSec, unit: 'receipt/s', better: 'higher' },
      at_goal_rate_p50_ms: { value: g.p50, unit: 'ms', better: 'lower', specTarget: SPEC.p50 },
      at_goal_rate_p99_ms: { value: g.p99, unit: 'ms', better: 'lower', specTarget: SPEC.p99 },
      at_goal_rate_p999_ms: { value: g.p999, unit: 'ms', better: 'lower', specTarget: SPEC.p999 },
      at_goal_rate_receipts_per_cpu_s: { value: atGoal.perCpuSec, unit: 'receipt/cpu-s', better: 'higher' },
      // When it kept up with the offer this is the offer's rate, a lower bound on capacity
      // (it still shows the 20,000/s goal, which is below the offer); a note says so.
      sustained_receipts_per_s: {
        value: sus.perSec,
        unit: 'receipt/s',
        better: 'higher',
        goal: GOAL.sustained,
      },
      sustained_receipts_per_cpu_s: { value: sus.perCpuSec, unit: 'receipt/cpu-s', better: 'higher' },
      sustained_p50_ms: { value: s.p50, unit: 'ms', better: 'lower', specTarget: SPEC.p50 },
      sustained_p95_ms: { value: s.p95, unit: 'ms', better: 'lower', specTarget: SPEC.p95 },
      sustained_p99_ms: { value: s.p99, unit: 'ms', better: 'lower', specTarget: SPEC.p99 },
      sustained_p999_ms: { value: s.p999, unit: 'ms', better: 'lower', specTarget: SPEC.p999 },
      sustained_vs_raw_sha256: { value: sus.perSec / rawNode.perSecond, unit: 'x', better: 'higher' },
      proof_gen_p50_ms: { value: proofs.inclusion.percentile(50), unit: 'ms', better: 'lower', goal: GOAL.proofMs },
      proof_gen_p99_ms: { value: proofs.inclusion.percentile(99), unit: 'ms', better: 'lower', goal: GOAL.proofMs },
      consistency_proof_p99_ms: { value: proofs.consistency.percentile(99), unit: 'ms', better: 'lower' },
      // Offline verification, two ways. The 20,000/s goal is judged on the batch figure:
      // one verifier for many receipts of one checkpoint (its signature checked once, proven
      // nodes cached), as its name says. A one-off verifier per receipt (verifyReceipt) pays
      // the Ed25519 check each time: its own row, no goal.
      verify_batch_cached_receipts_per_s: {
        value: verification.perSec,
        unit: 'receipt/s',
        better: 'higher',
        goal: GOAL.verifyPerSec,
      },
      verify_batch_cached_receipts_per_cpu_s: {
        value: verification.perCpuSec,
        unit: 'receipt/cpu-s',
        better: 'higher',
      },
      verify_batch_cached_cpu_us: { value: 1e6 / verification.perCpuSec, unit: 'µs', better: 'lower' },
      verify_batch_cached_per_cpu_s_vs_raw_sha256: {
        value: verification.perCpuSec / rawNode.perSecond,
        unit: 'x',
        better: 'higher',
      },
      // In process, cached: nothing like JTBD 2's 120 s network verification, so no spec target.
      verify_batch_cached_p99_ms: {
        value: verification.latency.percentile(99),
        unit: 'ms',
        better: 'lower',
        samples: verification.latency.count,
      },
      verify_batch_cached_vs_raw_sha256: {
        value: verification.perSec / rawNode.perSecond,
        unit: 'x',
        better: 'higher',
      },
      verify_per_receipt_uncached_receipts_per_s: { value: perReceipt.perSec, unit: 'receipt/s', better: 'higher' },
      verify_per_receipt_uncached_cpu_us: { value: 1e6 / perReceipt.perCpuSec, unit: 'µs', better: 'lower' },
      verify_per_receipt_uncached_p99_ms: {
        value: perReceipt.latency.percentile(99),
        unit: 'ms',
        better: 'lower',
        samples: perReceipt.latency.count,
      },
      // Observed counts against our goal of none; the spec's 0.001 % is judged on the 95 %
      // upper bound of each rate (rule of three with none observed: 3/n), so a run with
      // fewer than 300,000 cases cannot show it.
      false_accepts: falseAcceptRows.count,
      false_accept_rate_pct: falseAcceptRows.pct,
      false_accept_rate_upper95_pct: falseAcceptRows.upper95,
      false_rejects: falseRejectRows.count,
      false_reject_rate_pct: falseRejectRows.pct,
      false_reject_rate_upper95_pct: falseRejectRows.upper95,
      tampered_cases: { value: sweep.tamperedCases, unit: 'cases', better: 'higher', goal: quick ? null : 300_000 },
      honest_cases: { value: honestTotal, unit: 'cases', better: 'higher', goal: quick ? null : 300_000 },
    } satisfies Record<string, MetricInput>);
    return {
      metrics,
      baselines: {
        sha256_64B_node_crypto: {
          value: rawNode.perSecond,
          unit: 'hash/s',
          note: 'raw SHA-256, node:crypto, same run',
        },
        sha256_64B_noble: { value: rawNoble.perSecond, unit: 'hash/s', note: 'raw SHA-256, @noble/hashes, same run' },
        sqlite_full_commits: {
          value: commit.perSecond,
          unit: 'commit/s',
          note: 'sequential one-row SQLite commits, WAL + synchronous=FULL (an fsync each)',
        },
        fdatasync_4k_p50_ms: {
          value: disk.p50,
          unit: 'ms',
          note: 'one 4 KiB append + fdatasync on the scratch disk, same run',
        },
        fdatasync_4k_p99_ms: {
          value: disk.p99,
          unit: 'ms',
          note: 'the same, P99: the floor under any durable P99 here',
        },
        fsync_in_commit_p99_ms: {
          value: modes['fsync-in-commit'].p99,
          unit: 'ms',
          note: "the ledger at 1,000/s with durability 'fsync-in-commit' (synchronous=FULL), alternating with the same load in the default mode",
        },
        fsync_in_commit_cpu_us: {
          value: modes['fsync-in-commit'].cpuMicros,
          unit: 'µs',
          note: 'CPU per receipt of that run (process.cpuUsage, generator included)',
        },
      },
      notes: [
        `Machine load average (1 min) ${loadBefore.toFixed(1)} at the start, ${(loadavg()[0] ?? 0).toFixed(1)} at the end, on a machine shared with other work.`,
        'Rates per CPU-second divide by the CPU time this process used (load generator included): what the code costs, whatever else the machine runs.',
        `Latency runs from each arrival's intended time (open loop) to the durable receipt (default durability: the WAL fdatasync after COMMIT returned).`,
        `Durability modes: 2 x ${ctx.quick ? '2,000' : '5,000'} receipts at 1,000/s per mode on fresh ledgers, alternating in-commit / after-commit: fsync after COMMIT P99 ${modes['fsync-after-commit'].p99.toFixed(2)} ms (P99.9 ${modes['fsync-after-commit'].p999.toFixed(2)}), fsync inside COMMIT P99 ${modes['fsync-in-commit'].p99.toFixed(2)} ms (P99.9 ${modes['fsync-in-commit'].p999.toFixed(2)}).`,
        'CPU figures (µs) are process CPU time per receipt (process.cpuUsage, load generator and thread-pool fsyncs included).',
        quick
          ? 'Per-type: 10,000 operations at 1,000/s, the four types interleaved (2,500 each).'
          : 'Per-type: 10,000 operations of each type at 1,000/s.',
        `At the goal rate: ${atGoal.result.issued.toLocaleString('en-US')} receipts offered at ${GOAL.sustained.toLocaleString('en-US')}/s, below saturation (at_goal_rate_*: what completed per second and the latency there); ${atGoal.result.errors} errors.`,
        `Sustained: ${sus.result.issued.toLocaleString('en-US')} receipts offered at ${SUSTAINED_OFFERED_PER_SEC.toLocaleString('en-US')}/s, above the goal (throughput is what completed: the ledger's capacity when it falls behind the offer; latency at that rate is queueing once the offer exceeds it); ${sus.result.errors} errors.`,
        ...(sustainedOfferBound
          ? [
              `sustained_receipts_per_s is BOUNDED BY THE OFFER, not capacity: ${Math.round(sus.perSec).toLocaleString('en-US')}/s completed is at least 98 % of the ${SUSTAINED_OFFERED_PER_SEC.toLocaleString('en-US')}/s offered, so the ledger's capacity is only known to be at least this much.`,
            ]
          : []),
        `Offline verification: verify_batch_cached_* is ${verification.verified.toLocaleString('en-US')} receipts verified by one createReceiptVerifier against one checkpoint (its signature checked once, proven nodes cached: a batch audit), the figure the 20,000/s goal is judged on; verify_per_receipt_uncached_* is ${perReceipt.verified.toLocaleString('en-US')} receipts through verifyReceipt (keys parsed and the checkpoint signature checked for each receipt, nothing cached: a one-off verifier), no goal. Both in process; JTBD 2's network verification is jtbd2-verify.`,
        `False accept / reject rates: *_upper95_pct are 95 % upper confidence bounds (rule of three, 3/n, with none observed; one-sided Wilson score bound otherwise), judged against the spec's 0.001 %: ${sweep.tamperedCases.toLocaleString('en-US')} tampered cases bound the false-accept rate at ${(100 * rateUpperBound95(falseAccepts, sweep.tamperedCases)).toPrecision(2)} %; 300,000 with none accepted are needed to show 0.001 %.`,
        `Proofs generated on a ledger of ${proofs.size.toLocaleString('en-US')} leaves${quick ? ' (the full run passes 1,000,000)' : ''}.`,
        `Batch receipts aggregate 10-16 member operations; member hashing is inside the measured latency.`,
        `Tamper sweep: ${sweep.tamperedCases.toLocaleString('en-US')} tampered cases, ${sweep.falseAccepts.length} accepted; honest: ${honestTotal.toLocaleString('en-US')}, ${falseRejects} rejected.`,
        `Receipt hashes: ${collisions.size.toLocaleString('en-US')} distinct 64-bit prefixes, ${collisions.collisions} full collisions.`,
        ...sweep.falseAccepts.slice(0, 5).map((l) => `FALSE ACCEPT: ${l}`),
      ],
    };
  },
};
