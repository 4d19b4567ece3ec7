import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ConsistencyProofJson,
  createReceiptVerifier,
  generateNoteKey,
  type InclusionProofJson,
  openCheckpoint,
  parseSignerKey,
  type Receipt,
  signCheckpoint,
  type TrustedKey,
  verifyReceipt,
} from '@unrdf/receipts';
import { type HonestReceipt, runTamperSweep } from '@unrdf/receipts/testing';
import type { Pool } from 'undici';
import { APP_LAYOUT_NOTE, poolFor, requestJson, startApp, startEcho, warmEcho } from '../daemon/processes.js';
import { awaitReceipt, createOf, submit } from '../daemon/workload.js';
import type { Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram } from '../harness/histogram.js';
import { openLoop } from '../harness/open-loop.js';
import { errorRateMetrics } from '../harness/report.js';

// JTBD 2 on a single node: a verifier fetches a receipt with its inclusion proof and the
// signed checkpoint from the app (GET /v1/operations/:id/receipt) and verifies it
// offline (verifyReceipt: the checkpoint's Ed25519 signature, then the RFC 9162 proof),
// with nothing cached between receipts. One in ten fetched bundles is also tampered with
// and must be refused (false positives); every untampered one must verify (false negatives).
// Then a tamper sweep (@unrdf/receipts/testing) over bundles as fetched, with the app's
// own checkpoints, consistency proof and key: every systematic corruption must be refused
// and every honest case accepted, in numbers that can show the spec's 0.001 % (full run).

const SPEC = { p50Ms: 5000, p99Ms: 120_000, successPct: 99.9, falsePct: 0.001 } as const;
const GOAL_P99_MS = 20;
const RATE = 200;

interface Bundle {
  readonly receipt: Record<string, unknown>;
  readonly proof: unknown;
  readonly checkpoint: string;
}

function trustedKeysOf(answer: unknown): TrustedKey[] {
  if (Array.isArray(answer)) return answer as TrustedKey[];
  const o = answer as { trustedKeys?: TrustedKey[]; keys?: TrustedKey[] };
  const keys = o.trustedKeys ?? o.keys;
  if (!Array.isArray(keys)) throw new Error(`GET /v1/keys: no key list in ${JSON.stringify(answer).slice(0, 200)}`);
  return keys;
}

/**
 * Every systematic corruption of bundles as the app served them (runTamperSweep), against
 * the app's key, its checkpoints of two sizes and the consistency proof between them, and
 * notes the app never signed: its key over a forged root or another origin, another key
 * over its root. The verifier is cached (one signature check per note), so the run can
 * afford the 300,000 cases that show 0.001 %.
 */
async function appTamperSweep(
  pool: Pool,
  token: string,
  dataDir: string,
  bundles: readonly Bundle[],
  trustedKeys: readonly TrustedKey[],
  onProgress: (tampered: number) => void,
) {
  // The newest signed head among the bundles (each is proved against the newest note covering it).
  const heads = bundles.map((b) => {
    const opened = openCheckpoint(b.checkpoint, trustedKeys);
    if (!opened.ok) throw new Error(`a fetched checkpoint does not open: ${opened.reason}`);
    return opened.checkpoint;
  });
  const head = heads.reduce((a, b) => (b.size > a.size ? b : a));
  const earlier = Math.max(1, Math.floor(head.size / 2));
  const consistency = await requestJson<{
    from: { checkpoint: string };
    to: { checkpoint: string };
    proof: ConsistencyProofJson;
  }>(pool, 'GET', `/v1/checkpoint/consistency?from=${earlier}&to=${head.size}`, { token });
  // The app's own signing key (keys/ledger-1.skey): what an attacker who stole it could sign.
  const appSigner = parseSignerKey(readFileSync(join(dataDir, 'keys', 'ledger-1.skey'), 'utf8').trim());
  const impostor = parseSignerKey(generateNoteKey(head.origin).signerKey);
  const forgedRoot = new Uint8Array(randomBytes(32));
  // The app's key over a root its ledger never had: another history (a fork) at its size.
  const forgedHead = signCheckpoint({ origin: head.origin, size: head.size, root: forgedRoot }, [appSigner]);
  const honest: HonestReceipt[] = bundles.map((b) => ({
    receipt: b.receipt as unknown as Receipt,
    proof: b.proof as InclusionProofJson,
    checkpoint: b.checkpoint,
  }));
  return runTamperSweep(
    {
      honest,
      otherCheckpoints: [
        consistency.from.checkpoint,
        forgedHead,
        signCheckpoint({ origin: head.origin, size: head.size, root: head.root }, [impostor]),
        signCheckpoint({ origin: 'other.unrdf.example/ledger', size: head.size, root: head.root }, [appSigner]),
      ].filter((c) => !bundles.some((b) => b.checkpoint === c)),
      consistency: [{ older: consistency.from.checkpoint, newer: consistency.to.checkpoint, proof: consistency.proof }],
      forkedCheckpoints: [
        forgedHead,
        signCheckpoint({ origin: head.origin, size: earlier, root: forgedRoot }, [appSigner]),
      ],
    },
    createReceiptVerifier({ trustedKeys }),
    (_honest, tampered) => onProgress(tampered),
  );
}

export const benchmark: Benchmark = {
  name: 'jtbd2-verify',
  description: 'JTBD 2 on one node: receipt + proof fetch over HTTP and offline verification, per receipt',
  async run(ctx) {
    const receipts = ctx.quick ? 500 : 5000;
    const durationMs = ctx.quick ? 3000 : 20_000;
    const app = await startApp(join(ctx.scratchDir, 'app'));
    const echo = await startEcho();
    const pool = poolFor(app.url);
    const echoPool = poolFor(echo.url);
    try {
      const ids: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < receipts) {
          const i = next++;
          const { id } = await submit(pool, app.token, createOf(`v${i}`, i));
          await awaitReceipt(pool, app.token, id);
          ids.push(id);
          ctx.progress.update(ids.length, receipts, 'creating receipts');
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      const trustedKeys = trustedKeysOf(await requestJson(pool, 'GET', '/v1/keys', { token: app.token }));

      // The first bundles fetched (distinct receipts) are also the tamper sweep's honest material.
      const picks = ctx.quick ? 3 : 40; // about 8,300 tampered cases each
      const swept: Bundle[] = [];
      let valid = 0;
      let falseNegatives = 0;
      let tamperedChecked = 0;
      let falsePositives = 0;
      const verifyOnly = new LatencyHistogram();
      const result = await openLoop({
        ratePerSec: RATE,
        durationMs,
        fire: async (_intendedAt, i) => {
          const id = ids[(i * 7919) % ids.length] as string;
          const bundle = await requestJson<Bundle>(pool, 'GET', `/v1/operations/${id}/receipt`, { token: app.token });
          if (swept.length < picks && !swept.some((b) => b.receipt.operationId === bundle.receipt.operationId))
            swept.push(bundle);
          const started = performance.now();
          const verdict = verifyReceipt(bundle.receipt, bundle.proof, bundle.checkpoint, trustedKeys);
          verifyOnly.record(performance.now() - started);
          if (verdict.status === 'valid') valid++;
          else falseNegatives++;
          if (i % 10 === 0) {
            tamperedChecked++;
            const forged = { ...bundle.receipt, finishedAt: (bundle.receipt.finishedAt as number) + 1 };
            if (verifyReceipt(forged, bundle.proof, bundle.checkpoint, trustedKeys).status === 'valid')
              falsePositives++;
          }
        },
        onTick: (done, total) => ctx.progress.update(done, total, `fetch + verify at ${RATE}/s`),
      });
      await warmEcho(echoPool);
      const echoResult = await openLoop({
        ratePerSec: RATE,
        durationMs: Math.min(durationMs, 5000),
        fire: async (_t, i) => requestJson(echoPool, 'GET', `/v1/operations/e${i}/receipt`),
        onTick: (done, total) => ctx.progress.update(done, total, 'echo baseline'),
      });
      const sweep = await appTamperSweep(pool, app.token, app.dataDir, swept, trustedKeys, (tampered) =>
        ctx.progress.update(tampered, 0, `tamper sweep: ${tampered} tampered`),
      );
      const l = result.latency.summary();
      const checked = valid + falseNegatives;
      // Every request issued counts: a fetch that failed is a verification that did not happen.
      const issued = result.issued;
      const failedFetches = result.errors;
      // The spec's 0.001 % is judged on each rate's 95 % upper bound (errorRateMetrics).
      // Fetched-and-verified cases and the sweep's together.
      const honestCases = checked + sweep.honestCases;
      const tamperedCases = tamperedChecked + sweep.tamperedCases;
      const negativeRows = errorRateMetrics(
        falseNegatives + sweep.falseRejects.length,
        honestCases,
        'count',
        SPEC.falsePct,
      );
      const positiveRows = errorRateMetrics(
        falsePositives + sweep.falseAccepts.length,
        tamperedCases,
        'count',
        SPEC.falsePct,
      );
      return {
        metrics: {
          p50_ms: { value: l.p50, unit: 'ms', better: 'lower', specTarget: SPEC.p50Ms, samples: l.count },
          p95_ms: { value: l.p95, unit: 'ms', better: 'lower', samples: l.count },
          p99_ms: {
            value: l.p99,
            unit: 'ms',
            better: 'lower',
            specTarget: SPEC.p99Ms,
            goal: GOAL_P99_MS,
            samples: l.count,
          },
          p999_ms: { value: l.p999, unit: 'ms', better: 'lower', samples: l.count },
          offline_verify_p99_ms: {
            value: verifyOnly.summary().p99,
            unit: 'ms',
            better: 'lower',
            samples: verifyOnly.count,
          },
          success_rate_pct: {
            value: issued === 0 ? 0 : (100 * valid) / issued,
            unit: '%',
            better: 'higher',
            specTarget: SPEC.successPct,
            samples: issued,
          },
          failed_fetches: { value: failedFetches, unit: 'count', better: 'lower', goal: 0 },
          // The spec's 0.001 % is judged on the 95 % upper bound of each rate, not on the
          // observed rate: 0 in n cases only shows a rate below 3/n (rule of three), so a
          // run needs 300,000 cases before it can show 0.001 %.
          false_negatives: negativeRows.count,
          false_negative_pct: negativeRows.pct,
          false_negative_upper95_pct: negativeRows.upper95,
          false_positives: positiveRows.count,
          false_positive_pct: positiveRows.pct,
          false_positive_upper95_pct: positiveRows.upper95,
          // Information: distinct honest receipts are what this ledger holds (the upper bound row judges them).
          honest_cases: { value: honestCases, unit: 'cases', better: 'higher' },
          tampered_cases: { value: tamperedCases, unit: 'cases', better: 'higher', goal: ctx.quick ? null : 300_000 },
          p99_vs_echo: { value: l.p99 / Math.max(echoResult.latency.summary().p99, 0.001), unit: 'x', better: 'lower' },
        },
        baselines: {
          echo_get_p99_ms: {
            value: echoResult.latency.summary().p99,
            unit: 'ms',
            note: 'bare Fastify GET of a small JSON document, same client and rate',
          },
        },
        notes: [
          `${ids.length} receipts in the ledger; ${issued} fetches issued at ${RATE}/s, ${checked} fetched and verified, ${failedFetches} failed (counted as failures in success_rate_pct: it is verified / issued), ${tamperedChecked} tampered copies checked.`,
          `Tamper sweep over ${swept.length} bundles as fetched, with the app's checkpoints of two sizes, its consistency proof and its signing key (a forged root and another origin under it), and another key over its root: ${sweep.tamperedCases.toLocaleString('en-US')} tampered cases, ${sweep.falseAccepts.length} accepted${sweep.falseAccepts.length === 0 ? '' : ` (${sweep.falseAccepts.slice(0, 3).join('; ')})`}; ${sweep.honestCases.toLocaleString('en-US')} honest, ${sweep.falseRejects.length} rejected.`,
          `False positive / negative rates: the *_upper95_pct rows are the 95 % upper confidence bounds (rule of three, 3/n, with none observed; one-sided Wilson score bound otherwise) and carry the spec's 0.001 % target, over the fetched bundles and the sweep together: ${tamperedCases.toLocaleString('en-US')} tampered and ${honestCases.toLocaleString('en-US')} honest cases; showing 0.001 % takes 300,000 of each with none wrong. A full run's sweep reaches that for tampered cases; honest cases are bounded by the receipts this ledger holds, so the false-negative side of 0.001 % is shown by jtbd1-receipts (300,000 distinct receipts through the same verifier).`,
          'Each verification checks the checkpoint signature afresh (no verifier cache), as a one-off auditor would.',
          APP_LAYOUT_NOTE,
        ],
      };
    } finally {
      await Promise.all([pool.close(), echoPool.close()]);
      await Promise.all([app.stop(), echo.stop()]);
    }
  },
};
