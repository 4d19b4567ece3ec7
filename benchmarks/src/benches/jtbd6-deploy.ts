import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@unrdf/test-utils';
import { startEcho } from '../daemon/processes.js';
import type { BenchContext, Benchmark } from '../harness/benchmark.js';
import { LatencyHistogram } from '../harness/histogram.js';
import type { MetricInput } from '../harness/report.js';

// JTBD 6, deployment time: the spec's pipeline (SLO-SPEC.md, JTBD 6, "Measurement Method")
// run for real on this repo, from a clean clone of its HEAD:
//   build    = git clone + bootstrap (Node 24, pnpm, dependencies: ./run) + `./run build`
//   quality  = `./run lint` + `./run typecheck` (the spec's "Lint + Quality" stage)
//   test     = `./run test`, the whole suite (full runs only)
//   artifact = `pnpm pack` of every published package, then installed from the tarballs
//              alone into an empty project and imported (there is no registry to publish to)
//   notes    = `changeset version` (CHANGELOG.md of every package with a pending changeset)
//   rollout  = the running daemon (previous version) stopped with SIGTERM (graceful drain)
//              and the new one started on the same data directory and port, until /readyz
//   smoke    = the README's CLI path against it: submit --wait, receipt --out, verify --key
//              (offline), plus an operation from before the rollout still final with a receipt
//   rollback = the new version stopped and the previous one started again, until /readyz
// Rollout, smoke and rollback are repeated (cycles) for their distribution. The previous
// version is this working copy's app, the new one the clone's: the same code unless the
// working copy has changes, so the figures are the procedure's cost, not a migration's.
// Baseline, same run: a bare Node process (the echo server) from spawn to its first answer.

/** SLO-SPEC.md, JTBD 6, "Key Metrics" (s); the SLO statement bounds the total at 360 s. */
const SPEC = {
  build: 30,
  test: 60,
  artifact: 30,
  notes: 15,
  rollout: 120,
  smoke: 30,
  total: 285,
  rollback: 60,
  successPct: 99.5,
  quality: 10,
} as const;

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OLD_BIN = join(ROOT, 'apps/daemon/bin/unrdf-daemon.mjs');

/**
 * The environment of a new user's shell: none of this repo's tools on PATH (the clone's
 * `./run` bootstraps its own Node and pnpm), none of the variables `pnpm run` set for us.
 * The rest stays (proxies, CA bundles: what this machine needs to reach the registry).
 */
function newUserEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_OPTIONS$|NODE_PATH$|TSX_)/i.test(key)) continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => dir !== '' && !dir.startsWith(ROOT))
    .join(':');
  env.TURBO_TELEMETRY_DISABLED = '1';
  return env;
}

interface RunOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs: number;
  /** Resolve with the exit code instead of rejecting when it fails (not when it times out). */
  readonly allowFailure?: boolean;
}

/**
 * Runs a command to its end with its output in `<logs>/<name>.log`; resolves with its wall
 * time (ms) and stdout, rejects with the log's tail when it fails or runs out of time.
 */
function runLogged(
  logDir: string,
  name: string,
  command: string,
  args: readonly string[],
  options: RunOptions,
): Promise<{ ms: number; stdout: string; code: number | null }> {
  const logPath = join(logDir, `${name}.log`);
  const log = createWriteStream(logPath);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? newUserEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so that a timeout stops what it started too (e.g. npm under ./run).
      detached: true,
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      log.write(chunk);
      if (stdout.length < 1 << 20) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => log.write(chunk));
    const killGroup = () => {
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(killGroup, options.timeoutMs);
    process.once('exit', killGroup);
    child.once('error', (error) => {
      clearTimeout(timer);
      process.off('exit', killGroup);
      log.end();
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      process.off('exit', killGroup);
      const ms = performance.now() - started;
      log.end(() => {
        if (code === 0 || (options.allowFailure && signal === null)) return resolve({ ms, stdout, code });
        const tail = readFileSync(logPath, 'utf8').split('\n').slice(-25).join('\n');
        reject(
          new Error(
            `${name}: \`${command} ${args.join(' ')}\` ${signal ? `killed by ${signal}` : `exited ${code}`} after ${(ms / 1000).toFixed(1)} s:\n${tail}`,
          ),
        );
      });
    });
  });
}

/** Polls `url` until it answers 200; resolves with when it did (performance.now()). */
async function untilOk(url: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the process exited (${child.exitCode ?? child.signalCode}) before ${url} answered 200`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now();
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

/** A daemon process of one version on the deployment's data directory and port. */
interface Running {
  readonly child: ChildProcess;
  readonly stderr: () => string;
}

function spawnDaemon(bin: string, dataDir: string, port: number): Running {
  const child = spawn(
    process.execPath,
    [bin, 'start', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warn'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  child.once('exit', () => process.off('exit', reap));
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err = (err + c).slice(-4096);
  });
  return { child, stderr: () => err };
}

/** SIGTERM (graceful: drain, release the data directory's lock) and wait for the exit. */
function stopGracefully(running: Running, timeoutMs: number): Promise<void> {
  const { child } = running;
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the daemon did not stop within ${timeoutMs} ms of SIGTERM`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`the daemon exited ${code} on SIGTERM: ${running.stderr().slice(-800)}`));
    });
    child.kill('SIGTERM');
  });
}

/** Replaces `current` by a daemon from `bin`: resolves once the new one is ready, with the time it took. */
async function switchTo(
  current: Running | undefined,
  bin: string,
  dataDir: string,
  port: number,
): Promise<{ running: Running; ms: number; stopMs: number }> {
  const started = performance.now();
  if (current) await stopGracefully(current, 30_000);
  const stopMs = performance.now() - started;
  const running = spawnDaemon(bin, dataDir, port);
  try {
    const readyAt = await untilOk(`http://127.0.0.1:${port}/readyz`, running.child, 60_000);
    return { running, ms: readyAt - started, stopMs };
  } catch (error) {
    running.child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}: ${running.stderr().slice(-800)}`);
  }
}

/**
 * The README's path, with the new version's CLI: submit --wait, fetch the receipt bundle,
 * verify it offline with the verifier key; and `earlierId` (submitted before the switch)
 * still final with its receipt.
 */
async function smoke(
  bin: string,
  dataDir: string,
  port: number,
  scratch: string,
  logDir: string,
  tag: string,
  earlierId: string,
): Promise<{ ms: number; id: string }> {
  const started = performance.now();
  const url = `http://127.0.0.1:${port}`;
  const cli = (name: string, args: readonly string[]) =>
    runLogged(logDir, `smoke-${tag}-${name}`, process.execPath, [bin, ...args], {
      cwd: scratch,
      env: process.env,
      timeoutMs: 60_000,
    });
  const common = ['--url', url, '--data-dir', dataDir];
  const submitted = await cli('submit', [
    'submit',
    ...common,
    '--type',
    'sleep',
    '--subject',
    `urn:unrdf:smoke:${tag}`,
    '--input',
    '{"ms":10}',
    '--wait',
    '--json',
  ]);
  const view = JSON.parse(submitted.stdout) as { id: string; outcome: string | null };
  if (view.outcome !== 'succeeded') throw new Error(`smoke ${tag}: the operation ended ${view.outcome}`);
  const bundle = join(scratch, `receipt-${tag}.json`);
  await cli('receipt', ['receipt', view.id, ...common, '--out', bundle]);
  await cli('verify', ['verify', bundle, '--key', join(dataDir, 'keys', 'keys.json'), '--json']);
  const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  const earlier = await fetch(`${url}/v1/operations/${earlierId}/receipt`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = (await earlier.json()) as { receipt?: { operationId?: string } };
  if (earlier.status !== 200 || body.receipt?.operationId !== earlierId) {
    throw new Error(
      `smoke ${tag}: operation ${earlierId} from before the switch has no receipt (HTTP ${earlier.status})`,
    );
  }
  return { ms: performance.now() - started, id: view.id };
}

/** The baseline: a bare Node + Fastify process (the echo server) from spawn to its first answer. */
async function bareStartMs(): Promise<number> {
  const started = performance.now();
  const echo = await startEcho();
  try {
    return (await untilOk(`${echo.url}/v1/operations/x`, echo.child, 60_000)) - started;
  } finally {
    await echo.stop();
  }
}

const seconds = (ms: number) => ms / 1000;
const s = (value: number | null, specTarget: number | null, extra: Partial<MetricInput> = {}): MetricInput => ({
  value,
  unit: 's',
  better: 'lower',
  specTarget,
  ...extra,
});

async function stage<T>(ctx: BenchContext, name: string, work: () => Promise<T>): Promise<T> {
  ctx.progress.update(0, 0, name);
  ctx.log(`jtbd6-deploy: ${name}…`);
  return work();
}

export const benchmark: Benchmark = {
  name: 'jtbd6-deploy',
  description:
    'JTBD 6 deployment time: clone, bootstrap, build, lint/typecheck, test, pack, release notes, rollout, smoke, rollback',
  async run(ctx) {
    const cycles = ctx.quick ? 2 : 10;
    const logDir = join(ctx.scratchDir, 'logs');
    const clone = join(ctx.scratchDir, 'clone');
    const dataDir = join(ctx.scratchDir, 'data');
    mkdirSync(logDir, { recursive: true });
    const run = (name: string, command: string, args: readonly string[], timeoutMs = 600_000) =>
      runLogged(logDir, name, command, args, { cwd: clone, timeoutMs });
    const cloneRun = (name: string, args: readonly string[], timeoutMs?: number) =>
      run(name, join(clone, 'run'), args, timeoutMs);

    // Build (the spec's step 2: from `git clone` + install to dist/ ready).
    const checkout = await stage(ctx, 'git clone', () =>
      runLogged(logDir, 'clone', 'git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone], {
        cwd: ctx.scratchDir,
        timeoutMs: 120_000,
      }),
    );
    const head = (await run('head', 'git', ['rev-parse', '--short', 'HEAD'])).stdout.trim();
    const install = await stage(ctx, 'bootstrap (./run: Node, pnpm, dependencies)', () =>
      cloneRun('install', ['pnpm', '--version']),
    );
    const build = await stage(ctx, 'build (./run build)', () => cloneRun('build', ['build']));
    const distReady = ['receipts', 'raft', 'queue', 'diagnostics', 'daemon'].every((p) =>
      existsSync(join(clone, 'packages', p, 'dist', 'index.js')),
    );
    if (!distReady) throw new Error('build: a package has no dist/index.js');
    // Lint and typecheck (off the spec's critical path), and the whole test suite: full runs only.
    const lint = ctx.quick ? null : await stage(ctx, 'lint (./run lint)', () => cloneRun('lint', ['lint']));
    const typecheck = ctx.quick
      ? null
      : await stage(ctx, 'typecheck (./run typecheck)', () => cloneRun('typecheck', ['typecheck']));

    // The suite's last line is `tests: N passed, N failed, N skipped`. A red suite is a
    // failed deployment: reported (test_failures), and the rest of the pipeline still timed.
    let testMs: number | null = null;
    let testSummary = 'not run (quick)';
    let testFailures: number | null = null;
    if (!ctx.quick) {
      const tested = await stage(ctx, 'test (./run test, the whole suite)', () =>
        runLogged(logDir, 'test', join(clone, 'run'), ['test'], {
          cwd: clone,
          timeoutMs: 30 * 60_000,
          allowFailure: true,
        }),
      );
      testMs = tested.ms;
      const summary = /tests: (\d+) passed, (\d+) failed, (\d+) skipped/.exec(tested.stdout);
      testSummary = summary?.[0] ?? `no summary line, exit ${tested.code}`;
      testFailures = summary === null ? null : Number(summary[2]);
      if (tested.code !== 0 && testFailures === 0) testFailures = null;
    }

    // Artifact: pack the published packages, then prove the tarballs alone install and import.
    const artifacts = join(ctx.scratchDir, 'artifacts');
    const consumer = join(ctx.scratchDir, 'consumer');
    mkdirSync(consumer, { recursive: true });
    writeFileSync(join(consumer, 'package.json'), '{"name":"consumer","private":true,"type":"module"}\n');
    const pack = await stage(ctx, 'pack', () =>
      cloneRun('pack', [
        'pnpm',
        '-r',
        '--filter',
        './packages/*',
        '--filter',
        '!@unrdf/test-utils',
        'pack',
        '--pack-destination',
        artifacts,
      ]),
    );
    const tarballs = readdirSync(artifacts).filter((f) => f.endsWith('.tgz'));
    const tarballBytes = tarballs.reduce((sum, f) => sum + statSync(join(artifacts, f)).size, 0);
    const consumed = await stage(ctx, 'install the tarballs into an empty project', () =>
      runLogged(
        logDir,
        'consume',
        'npm',
        ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs.map((f) => join(artifacts, f))],
        { cwd: consumer, timeoutMs: 300_000 },
      ),
    );
    const imported = await runLogged(
      logDir,
      'consume-import',
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const d = await import('@unrdf/daemon'); if (typeof d.createDaemon !== 'function') process.exit(1);",
      ],
      { cwd: consumer, timeoutMs: 60_000 },
    );

    // Release notes: the pending changesets into versions and CHANGELOG.md files.
    const pendingChangesets = readdirSync(join(clone, '.changeset')).filter(
      (f) => f.endsWith('.md') && f !== 'README.md',
    ).length;
    const notes = await stage(ctx, 'release notes (changeset version)', () =>
      cloneRun('notes', ['pnpm', 'changeset', 'version']),
    );
    const changelogs = ['packages', 'apps']
      .flatMap((group) => readdirSync(join(clone, group)).map((dir) => join(clone, group, dir, 'CHANGELOG.md')))
      .filter((file) => existsSync(file)).length;

    // Rollout, smoke and rollback, `cycles` times, on one data directory and port.
    const newBin = join(clone, 'apps/daemon/bin/unrdf-daemon.mjs');
    // One port for every version, as a service keeps its address.
    const port = await freePort();
    const rollout = new LatencyHistogram();
    const rollback = new LatencyHistogram();
    const smokeTimes = new LatencyHistogram();
    const stops = new LatencyHistogram();
    const bare = new LatencyHistogram();
    let failedCycles = 0;
    const failures: string[] = [];
    let firstRolloutMs: number | null = null;
    let firstSmokeMs: number | null = null;
    let current = (await switchTo(undefined, OLD_BIN, dataDir, port)).running;
    try {
      const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
      const submitted = await fetch(`http://127.0.0.1:${port}/v1/operations?wait=30000`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'sleep', subject: 'urn:unrdf:before-rollout', input: { ms: 1 } }),
      });
      let earlierId = ((await submitted.json()) as { id: string }).id;
      for (let c = 0; c < cycles; c++) {
        ctx.progress.update(c, cycles, 'rollout / smoke / rollback');
        try {
          const out = await switchTo(current, newBin, dataDir, port);
          current = out.running;
          const checked = await smoke(newBin, dataDir, port, ctx.scratchDir, logDir, `c${c}`, earlierId);
          const back = await switchTo(current, OLD_BIN, dataDir, port);
          current = back.running;
          // The previous version reads what the new one wrote (its receipt included).
          await smoke(OLD_BIN, dataDir, port, ctx.scratchDir, logDir, `c${c}-back`, checked.id);
          rollout.record(out.ms);
          stops.record(out.stopMs);
          stops.record(back.stopMs);
          smokeTimes.record(checked.ms);
          rollback.record(back.ms);
          firstRolloutMs ??= out.ms;
          firstSmokeMs ??= checked.ms;
          earlierId = checked.id;
        } catch (error) {
          failedCycles++;
          failures.push((error as Error).message.split('\n')[0] ?? '');
          if (current.child.exitCode !== null || current.child.signalCode !== null) {
            current = (await switchTo(undefined, OLD_BIN, dataDir, port)).running;
          }
        }
        bare.record(await bareStartMs());
      }
    } finally {
      await stopGracefully(current, 30_000).catch(() => current.child.kill('SIGKILL'));
    }

    const buildMs = checkout.ms + install.ms + build.ms;
    const rolloutP50 = rollout.count === 0 ? null : rollout.summary().p50;
    const smokeP50 = smokeTimes.count === 0 ? null : smokeTimes.summary().p50;
    const pipelineMs =
      testMs === null || firstRolloutMs === null || firstSmokeMs === null
        ? null
        : buildMs + testMs + pack.ms + notes.ms + firstRolloutMs + firstSmokeMs;
    const ok = cycles - failedCycles;
    const metrics: Record<string, MetricInput> = {
      build_s: s(seconds(buildMs), SPEC.build),
      clone_s: s(seconds(checkout.ms), null),
      bootstrap_install_s: s(seconds(install.ms), null),
      compile_s: s(seconds(build.ms), null),
      quality_s: s(lint === null || typecheck === null ? null : seconds(lint.ms + typecheck.ms), SPEC.quality),
      test_s: s(testMs === null ? null : seconds(testMs), SPEC.test),
      // Null (FAIL) when the suite printed no summary or exited non-zero with none failed.
      test_failures: { value: testFailures, unit: 'count', better: 'lower', goal: 0 },
      artifact_pack_s: s(seconds(pack.ms), SPEC.artifact),
      artifact_install_s: s(seconds(consumed.ms + imported.ms), null),
      release_notes_s: s(seconds(notes.ms), SPEC.notes),
      rollout_s_p50: s(rolloutP50 === null ? null : seconds(rolloutP50), SPEC.rollout, { samples: rollout.count }),
      rollout_s_max: s(rollout.count === 0 ? null : seconds(rollout.summary().max), SPEC.rollout, {
        samples: rollout.count,
      }),
      graceful_stop_s_p50: s(stops.count === 0 ? null : seconds(stops.summary().p50), null, { samples: stops.count }),
      smoke_s_p50: s(smokeP50 === null ? null : seconds(smokeP50), SPEC.smoke, { samples: smokeTimes.count }),
      rollback_s_p50: s(rollback.count === 0 ? null : seconds(rollback.summary().p50), SPEC.rollback, {
        samples: rollback.count,
      }),
      rollback_s_max: s(rollback.count === 0 ? null : seconds(rollback.summary().max), SPEC.rollback, {
        samples: rollback.count,
      }),
      // Null (FAIL) in a quick run, which does not run the test suite.
      total_s: s(pipelineMs === null ? null : seconds(pipelineMs), SPEC.total, {
        ...(testFailures === 0 ? {} : { cannotPass: `the test suite was not green (${testSummary})` }),
      }),
      cycles_failed: { value: failedCycles, unit: 'count', better: 'lower', goal: 0 },
      cycle_success_pct: {
        value: (100 * ok) / cycles,
        unit: '%',
        better: 'higher',
        specTarget: SPEC.successPct,
        samples: cycles,
      },
    };
    return {
      metrics,
      baselines: {
        bare_node_start_s_p50: {
          value: bare.count === 0 ? null : seconds(bare.summary().p50),
          unit: 's',
          note: 'a bare Node + Fastify process (the echo server, through tsx) from spawn to its first 200: the floor under rollout and rollback',
        },
        rollout_vs_bare_start: {
          value: rolloutP50 === null || bare.count === 0 ? null : rolloutP50 / bare.summary().p50,
          unit: 'x',
          note: 'rollout P50 over the bare process start P50 (rollout also drains and stops the previous version)',
        },
      },
      notes: [
        `Pipeline from a clean clone of ${head}: clone ${seconds(checkout.ms).toFixed(1)} s, bootstrap ${seconds(install.ms).toFixed(1)} s, build ${seconds(build.ms).toFixed(1)} s, lint ${lint === null ? 'not run' : `${seconds(lint.ms).toFixed(1)} s`}, typecheck ${typecheck === null ? 'not run' : `${seconds(typecheck.ms).toFixed(1)} s`}, test ${testMs === null ? 'not run' : `${seconds(testMs).toFixed(1)} s (${testSummary})`}, pack ${seconds(pack.ms).toFixed(1)} s (${tarballs.length} tarballs, ${Math.round(tarballBytes / 1024)} KiB), tarballs installed and imported in an empty project ${seconds(consumed.ms + imported.ms).toFixed(1)} s, changeset version ${seconds(notes.ms).toFixed(1)} s (${pendingChangesets} changesets, ${changelogs} CHANGELOG.md).`,
        'build_s is the spec\'s "build phase": git clone through dist/ ready, bootstrap included. The clone starts with none of the tools, but this machine\'s npm and pnpm caches are warm (as a CI runner with a cache is); a cold cache adds the download of Node (~30 MB) and every dependency.',
        'Artifact: packed, not published (no registry to publish to here); artifact_install_s proves the tarballs alone install from the npm registry for their third-party dependencies and import.',
        `Rollout/rollback: ${cycles} cycles on one data directory and port, each SIGTERM (graceful drain) of the running version, start of the other, until GET /readyz answers 200; the smoke runs after each switch (submit --wait, receipt --out, verify --key offline, an operation from before the switch still has its receipt). total_s = build + test + pack + notes + the first rollout and smoke, as the spec sums it.`,
        "The previous version is this working copy's app and the new one the clone's: the same code unless the working copy differs from HEAD, so these are the procedure's times, not a schema migration's.",
        `The spec's total target is ${SPEC.total} s (its SLO statement bounds it at 360 s).`,
        ...(failures.length === 0 ? [] : [`Failed cycles: ${failures.slice(0, 5).join(' | ')}`]),
      ],
    };
  },
};
