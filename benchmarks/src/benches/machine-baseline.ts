import { setImmediate as nextTurn } from 'node:timers/promises';
import { sqliteDurableCommitRate } from '../baselines/durable-commit.js';
import { nobleSha256Rate, nodeSha256Rate } from '../baselines/hashing.js';
import type { Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram } from '../harness/histogram.js';

/**
 * What this machine can do at all: raw hashing, an fsynced commit, an event-loop
 * turn. Every other benchmark's figures are read against these.
 */
export const benchmark: Benchmark = {
  name: 'machine-baseline',
  description: 'raw SHA-256 rate (node:crypto, @noble/hashes), fsynced SQLite commit latency, event-loop turn',
  async run({ quick, progress, scratchDir }) {
    const slice = quick ? 1000 : 5000;
    progress.update(0, 4, 'sha256 node:crypto');
    const nodeHash = nodeSha256Rate(slice);
    progress.update(1, 4, 'sha256 @noble/hashes');
    const nobleHash = nobleSha256Rate(slice);
    progress.update(2, 4, 'sqlite commit');
    const commit = sqliteDurableCommitRate(scratchDir, slice);
    progress.update(3, 4, 'event loop');
    const turns = new LatencyHistogram();
    const until = performance.now() + slice;
    while (performance.now() < until) {
      const t0 = performance.now();
      await nextTurn();
      turns.record(performance.now() - t0);
    }
    const c = commit.latency.summary();
    return {
      metrics: {
        sha256_64B_node_crypto: { value: nodeHash.perSecond, unit: 'hash/s', better: 'higher' },
        sha256_64B_noble: { value: nobleHash.perSecond, unit: 'hash/s', better: 'higher' },
        sqlite_full_commit_p50: { value: c.p50, unit: 'ms', better: 'lower' },
        sqlite_full_commit_p99: { value: c.p99, unit: 'ms', better: 'lower' },
        sqlite_full_commits: { value: commit.perSecond, unit: 'commit/s', better: 'higher' },
        event_loop_turn_p99: { value: turns.percentile(99), unit: 'ms', better: 'lower' },
      },
      notes: ['No spec targets: these are the machine ceilings other benchmarks compare against.'],
    };
  },
};
