// The unrdf-daemon CLI as users run it: its bin in real processes against a
// daemon started with `start --port 0` on a temporary data directory, loopback only.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { type NodeProcess, spawnNode, type TempDir, tempDir, waitFor } from '@unrdf/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The bin, run on plain Node as users run it (it loads the sources itself). */
const BIN = fileURLToPath(new URL('../bin/unrdf-daemon.mjs', import.meta.url));
/** One CLI run (a fresh Node process) takes about half a second; bound each one. */
const CLI_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 30_000;

/** No ambient configuration leaks into the processes under test. */
const CLEAN_ENV = { UNRDF_URL: '', UNRDF_TOKEN: '', UNRDF_DATA_DIR: '', INIT_CWD: '' };

interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function cli(args: readonly string[], env: Record<string, string> = {}, cwd?: string): Promise<CliRun> {
  const child = spawnNode(BIN, {
    tsx: false,
    args,
    env: { ...CLEAN_ENV, ...env },
    ...(cwd === undefined ? {} : { cwd }),
  });
  const timer = setTimeout(() => child.child.kill('SIGKILL'), CLI_TIMEOUT_MS);
  const { code } = await child.exited;
  clearTimeout(timer);
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

interface Started {
  readonly process: NodeProcess;
  readonly url: string;
}

async function startDaemon(dataDir: string, extra: readonly string[] = []): Promise<Started> {
  const child = spawnNode(BIN, {
    tsx: false,
    args: ['start', '--data-dir', dataDir, '--port', '0', ...extra],
    env: CLEAN_ENV,
  });
  const line = await child.waitForLine(/"msg":"listening"/, START_TIMEOUT_MS);
  const url = (JSON.parse(line.input ?? '') as { url: string }).url;
  // The banner (stderr) follows the log line (stdout): on a loaded machine it may arrive later.
  await waitFor(() => (child.stderr().includes('curl -sS -X POST') ? true : undefined), {
    timeoutMs: START_TIMEOUT_MS,
    what: 'the start banner on stderr',
  });
  return { process: child, url };
}

const json = (text: string) => JSON.parse(text) as Record<string, unknown>;

describe('unrdf-daemon CLI', () => {
  let dir: TempDir;
  let dataDir: string;
  let daemon: Started | undefined;
  /** Client flags of the running daemon (the token comes from <data-dir>/admin.token). */
  let client: string[];
  let firstId: string;

  beforeAll(async () => {
    dir = await tempDir('cli');
    dataDir = dir.join('data');
    daemon = await startDaemon(dataDir);
    client = ['--url', daemon.url, '--data-dir', dataDir];
  }, START_TIMEOUT_MS + 5_000);

  afterAll(async () => {
    await daemon?.process.stop(10_000);
    await dir.remove();
  }, 20_000);

  describe('start', () => {
    it('prints the URL, the admin token file (0600) and the verifier key file (0644) in its banner', () => {
      const stderr = daemon?.process.stderr() ?? '';
      const tokenPath = `${dataDir}/admin.token`;
      const vkeyPath = `${dataDir}/keys/ledger-1.vkey`;
      expect(stderr).toContain(`URL:           ${daemon?.url}`);
      expect(stderr).toContain(tokenPath);
      expect(stderr).toContain(vkeyPath);
      expect(stderr).toContain('curl -sS -X POST');
      expect(stderr).toContain(`${tokenPath} (mode 0600, created now)`);
      expect(stderr).not.toContain('WARNING');
      expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
      expect(statSync(vkeyPath).mode & 0o777).toBe(0o644);
      expect(readFileSync(`${dataDir}/daemon.lock`, 'utf8').trim()).toBe(String(daemon?.process.pid));
    });

    it(
      'warns in its banner when others can read the admin token file, with its real mode',
      async () => {
        const other = dir.join('exposed');
        const first = await startDaemon(other);
        expect(await first.process.stop(10_000)).toBe(0);
        chmodSync(join(other, 'admin.token'), 0o644);
        const again = await startDaemon(other);
        try {
          const stderr = again.process.stderr();
          expect(stderr).toContain(`${join(other, 'admin.token')} (mode 0644)`);
          expect(stderr).toContain('WARNING: others can read the admin token (mode 0644); chmod 600');
        } finally {
          await again.process.stop(10_000);
        }
      },
      2 * START_TIMEOUT_MS,
    );

    it(
      'refuses to start, exit 1 and no stack trace, when others can write tokens.json',
      async () => {
        const other = dir.join('writable-tokens');
        mkdirSync(other, { mode: 0o700 });
        writeFileSync(join(other, 'tokens.json'), '{"version":1,"tokens":[]}\n');
        chmodSync(join(other, 'tokens.json'), 0o666);
        const run = await cli(['start', '--data-dir', other, '--port', '0']);
        expect(run.code).toBe(1);
        expect(run.stderr).toContain('tokens.json is writable by others (mode 666)');
        expect(run.stderr).not.toMatch(/^\s+at /m);
      },
      CLI_TIMEOUT_MS,
    );

    it('writes structured logs as JSON lines on stdout', () => {
      const lines = (daemon?.process.stdout() ?? '').split('\n').filter((l) => l !== '');
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(json(line)).toHaveProperty('msg');
    });

    it(
      'refuses a second daemon on the same data directory with exit code 1',
      async () => {
        const run = await cli(['start', '--data-dir', dataDir, '--port', '0']);
        expect(run.code).toBe(1);
        expect(run.stderr).toContain(`in use by process ${daemon?.process.pid}`);
      },
      CLI_TIMEOUT_MS,
    );

    it(
      'runs the HTTP API on the daemon thread with --http-threads 0, the same answers',
      async () => {
        const sameThreadDir = dir.join('same-thread');
        const same = await startDaemon(sameThreadDir, ['--http-threads', '0']);
        try {
          const submitted = await cli([
            ...['submit', '--url', same.url, '--data-dir', sameThreadDir],
            ...['--type', 'sleep', '--subject', 'urn:example:cli:same', '--input', '{"ms":1}', '--wait', '--json'],
          ]);
          expect(submitted.code).toBe(0);
          expect(json(submitted.stdout)).toMatchObject({ state: 'completed', outcome: 'succeeded' });
          const refused = await cli([
            ...['submit', '--url', same.url, '--data-dir', sameThreadDir],
            ...['--type', 'nope', '--subject', 'urn:x'],
          ]);
          // The daemon's typed refusal (422, unknown type) reaches the CLI as bad input: exit 2.
          expect([refused.code, refused.stderr]).toEqual([2, expect.stringContaining("no handler for 'nope'")]);
        } finally {
          expect(await same.process.stop(10_000)).toBe(0);
        }
      },
      START_TIMEOUT_MS + 4 * CLI_TIMEOUT_MS,
    );
  });

  describe('submit, receipt, verify', () => {
    it(
      'submits, waits for the outcome, fetches the receipt and verifies it offline',
      async () => {
        const submitted = await cli([
          'submit',
          ...client,
          '--type',
          'sleep',
          '--subject',
          'urn:example:cli:1',
          '--input',
          '{"ms":5}',
          '--wait',
          '--json',
        ]);
        expect(submitted.stderr).toBe('');
        expect(submitted.code).toBe(0);
        const view = json(submitted.stdout);
        expect(view).toMatchObject({ type: 'sleep', state: 'completed', outcome: 'succeeded' });
        expect((view.output as { sleptMs: number }).sleptMs).toBeGreaterThanOrEqual(5);
        expect(view.receipt).not.toBeNull();
        firstId = String(view.id);

        const bundlePath = dir.join('bundle.json');
        const fetched = await cli(['receipt', firstId, ...client, '--out', bundlePath]);
        expect(fetched.code, `${fetched.stderr}\nsubmit printed: ${submitted.stdout}`).toBe(0);
        const bundle = json(readFileSync(bundlePath, 'utf8'));
        expect(Object.keys(bundle).sort()).toEqual(['checkpoint', 'proof', 'receipt']);

        const verified = await cli(['verify', bundlePath, '--key', `${dataDir}/keys/ledger-1.vkey`]);
        expect(verified.stdout).toContain(`valid: operation ${firstId}`);
        expect(verified.code).toBe(0);
      },
      4 * CLI_TIMEOUT_MS,
    );

    it(
      'rejects a tampered bundle with exit code 1 and a bad bundle file with 2',
      async () => {
        const bundle = json(readFileSync(dir.join('bundle.json'), 'utf8'));
        const receipt = bundle.receipt as Record<string, unknown>;
        const tampered = { ...bundle, receipt: { ...receipt, subject: 'urn:example:cli:forged' } };
        writeFileSync(dir.join('tampered.json'), JSON.stringify(tampered));
        writeFileSync(dir.join('broken.json'), '{"receipt":');
        const vkey = `${dataDir}/keys/ledger-1.vkey`;
        const [forged, broken, missingKey] = await Promise.all([
          cli(['verify', dir.join('tampered.json'), '--key', vkey, '--json']),
          cli(['verify', dir.join('broken.json'), '--key', vkey]),
          cli(['verify', dir.join('bundle.json'), '--key', dir.join('no-such.vkey')]),
        ]);
        expect(forged.code).toBe(1);
        expect((json(forged.stdout).verdict as { status: string }).status).toBe('invalid');
        expect(broken.code).toBe(2);
        expect(broken.stderr).toContain('is not valid JSON');
        expect(missingKey.code).toBe(2);
        expect(missingKey.stderr).toContain('no such file');
      },
      CLI_TIMEOUT_MS,
    );

    it(
      'answers status of an operation and of the node',
      async () => {
        const [operation, node] = await Promise.all([
          cli(['status', firstId, ...client, '--json']),
          cli(['status', ...client, '--json']),
        ]);
        expect(operation.code).toBe(0);
        expect(json(operation.stdout)).toMatchObject({ id: firstId, state: 'completed' });
        expect(node.code).toBe(0);
        expect(json(node.stdout)).toMatchObject({ live: true, ready: true });
        expect(json(node.stdout).treeSize).toBeGreaterThanOrEqual(1);
      },
      CLI_TIMEOUT_MS,
    );
  });

  describe('exit codes', () => {
    it(
      'exits 2 with `path: message` lines for bad input and usage errors',
      async () => {
        const [badInput, badJson, missingType, badPort, unknownOption] = await Promise.all([
          cli(['submit', ...client, '--type', 'sleep', '--subject', 'urn:x', '--input', '{"ms":-1}']),
          cli(['submit', ...client, '--type', 'sleep', '--subject', 'urn:x', '--input', '{ms:1}']),
          cli(['submit', ...client, '--subject', 'urn:x']),
          cli(['start', '--data-dir', dir.join('other'), '--port', 'eighty']),
          cli(['verify', dir.join('bundle.json'), '--kee', 'x']),
        ]);
        const badThreads = await cli(['start', '--data-dir', dir.join('other'), '--http-threads', '2']);
        // A handler module named without ./ is a package name to Node; the error says how to name the file.
        writeFileSync(dir.join('my-handlers.mjs'), 'export const handlers = {};\n');
        const bareModule = await cli(
          ['start', '--data-dir', dir.join('bare'), '--port', '0', '--handlers', 'my-handlers.mjs'],
          {},
          dir.path,
        );
        expect(bareModule.code).toBe(2);
        expect(bareModule.stderr).toContain(
          "'my-handlers.mjs' is read as a package name; for the file here, write ./my-handlers.mjs",
        );
        expect(badThreads.code).toBe(2);
        expect(badThreads.stderr).toContain('--http-threads: expected an integer from 0 to 1');
        expect(badInput.code).toBe(2);
        expect(badInput.stderr).toMatch(/^ {2}input\.ms: .*>=0/m);
        expect(badJson.code).toBe(2);
        expect(badJson.stderr).toContain('--input: not valid JSON');
        expect(missingType.code).toBe(2);
        expect(missingType.stderr).toContain("required option '--type <type>' not specified");
        expect(badPort.code).toBe(2);
        expect(badPort.stderr).toContain('--port: expected an integer from 0 to 65535');
        expect(existsSync(dir.join('other'))).toBe(false);
        expect(unknownOption.code).toBe(2);
      },
      CLI_TIMEOUT_MS,
    );

    it(
      'exits 1 when the daemon is unreachable or the token is wrong',
      async () => {
        const [unreachable, wrongToken] = await Promise.all([
          cli(['status', '--url', 'http://127.0.0.1:1', '--token', 'unrdf_x']),
          cli(['status', firstId, '--url', daemon?.url ?? '', '--token', 'unrdf_wrong']),
        ]);
        expect(unreachable.code).toBe(1);
        expect(unreachable.stderr).toContain('cannot reach the daemon at http://127.0.0.1:1');
        expect(wrongToken.code).toBe(1);
        expect(wrongToken.stderr).toContain('401');
      },
      CLI_TIMEOUT_MS,
    );

    it(
      'prints help for every command with exit code 0',
      async () => {
        const runs = await Promise.all(
          ['start', 'submit', 'status', 'receipt', 'report', 'verify'].map((command) => cli([command, '--help'])),
        );
        for (const run of runs) {
          expect(run.code).toBe(0);
          expect(run.stdout).toMatch(/^Usage: unrdf-daemon \w+/);
        }
      },
      CLI_TIMEOUT_MS,
    );

    it(
      "runs through tsx on a Node without type stripping (the bin's fallback)",
      async () => {
        // Node only runs .ts without a loader when it strips types: this passes only if the
        // bin saw `process.features.typescript` off and registered tsx instead.
        const run = await cli(['verify', '--help'], { NODE_OPTIONS: '--no-experimental-strip-types' });
        expect(run.stderr).toBe('');
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(/^Usage: unrdf-daemon verify/);
      },
      CLI_TIMEOUT_MS,
    );
  });

  describe('report', () => {
    it(
      'fetches the diagnostic report as JSON, Markdown and tar',
      async () => {
        const [asJson, asMarkdown, asTar, tarToStdout] = await Promise.all([
          cli(['report', ...client, '--format', 'json', '--out', dir.join('report.json')]),
          cli(['report', ...client]),
          cli(['report', ...client, '--format', 'tar', '--out', dir.join('report.tar.gz')]),
          cli(['report', ...client, '--format', 'tar']),
        ]);
        expect(asJson.code).toBe(0);
        expect(json(readFileSync(dir.join('report.json'), 'utf8'))).toHaveProperty('nodes');
        expect(asMarkdown.code).toBe(0);
        expect(asMarkdown.stdout).toMatch(/^# /);
        expect(asTar.code).toBe(0);
        // A gzipped tar: gzip's magic, then POSIX ustar's at offset 257 of the first header block.
        const gz = readFileSync(dir.join('report.tar.gz'));
        expect([...gz.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
        expect(gunzipSync(gz).subarray(257, 262).toString('latin1')).toBe('ustar');
        expect(tarToStdout.code).toBe(2);
      },
      CLI_TIMEOUT_MS,
    );
  });

  describe('keys rotate and shutdown', () => {
    it(
      'refuses while the daemon runs, stops on SIGTERM, rotates, and old receipts verify with the new key list',
      async () => {
        const refused = await cli(['keys', 'rotate', '--data-dir', dataDir]);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain(`the daemon (process ${daemon?.process.pid}) is running`);

        const running = daemon as Started;
        daemon = undefined;
        expect(await running.process.stop(15_000)).toBe(0);
        expect(running.process.stderr()).toContain('stopped');
        expect(existsSync(`${dataDir}/daemon.lock`)).toBe(false);

        const rotated = await cli(['keys', 'rotate', '--data-dir', dataDir, '--json']);
        expect(rotated.code).toBe(0);
        const key = json(rotated.stdout) as { verifierKey: string; fromSize: number; verifierKeyPath: string };
        expect(key.verifierKeyPath).toBe(`${dataDir}/keys/ledger-2.vkey`);
        expect(key.fromSize).toBeGreaterThanOrEqual(2); // after the ledger's leaves (at least one receipt)

        // Restart with a handler module: its type runs beside the built-in ones, and the
        // built-in type it replaces (update) is checked by the module's definition, not on the
        // HTTP thread with the built-in schema (which would refuse this input).
        const module = dir.join('echo-handlers.mjs');
        writeFileSync(
          module,
          'export const handlers = { echo: { handler: (input) => ({ echoed: input }) }, update: { handler: (input) => ({ replaced: input }) } };\n',
        );
        daemon = await startDaemon(dataDir, ['--handlers', module]);
        client = ['--url', daemon.url, '--data-dir', dataDir];
        const submitted = await cli([
          'submit',
          ...client,
          '--type',
          'echo',
          '--subject',
          'urn:example:cli:2',
          '--input',
          '{"hello":"world"}',
          '--wait',
          '--json',
        ]);
        expect(submitted.code).toBe(0);
        expect(json(submitted.stdout).output).toEqual({ echoed: { hello: 'world' } });
        const replaced = await cli([
          ...['submit', ...client, '--type', 'update', '--subject', 'urn:example:cli:3'],
          ...['--input', '{"seconds":1}', '--wait', '--json'],
        ]);
        expect(replaced.code, replaced.stderr).toBe(0);
        expect(json(replaced.stdout).output).toEqual({ replaced: { seconds: 1 } });
        const secondId = String(json(submitted.stdout).id);
        const fetched = await cli(['receipt', secondId, ...client, '--out', dir.join('bundle-2.json')]);
        expect(fetched.code).toBe(0);

        // The key list as the API serves it, and as the data directory keeps it.
        const keys = await fetch(`${daemon.url}/v1/keys`, {
          headers: { authorization: `Bearer ${readFileSync(`${dataDir}/admin.token`, 'utf8').trim()}` },
        });
        expect(keys.status).toBe(200);
        writeFileSync(dir.join('keys-api.json'), await keys.text());
        const keysJson = `${dataDir}/keys/keys.json`;
        const oldKey = `${dataDir}/keys/ledger-1.vkey`;
        const [oldApi, newApi, oldDisk, newDisk, newWithOldKeyOnly] = await Promise.all([
          cli(['verify', dir.join('bundle.json'), '--key', dir.join('keys-api.json')]),
          cli(['verify', dir.join('bundle-2.json'), '--key', dir.join('keys-api.json')]),
          cli(['verify', dir.join('bundle.json'), '--key', keysJson]),
          cli(['verify', dir.join('bundle-2.json'), '--key', keysJson]),
          cli(['verify', dir.join('bundle-2.json'), '--key', oldKey]),
        ]);
        expect([oldApi.code, newApi.code, oldDisk.code, newDisk.code]).toEqual([0, 0, 0, 0]);
        // The new checkpoint is signed by the new key only.
        expect(newWithOldKeyOnly.code).toBe(1);
      },
      8 * CLI_TIMEOUT_MS,
    );

    it(
      'exits at once on a second, different signal while it drains',
      async () => {
        const current = daemon as Started;
        daemon = undefined;
        const token = readFileSync(`${dataDir}/admin.token`, 'utf8').trim();
        const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
        // A long sleep keeps the drain (10 s by default) busy: only the second signal ends the process sooner.
        const accepted = await fetch(`${current.url}/v1/operations`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ type: 'sleep', subject: 'urn:example:cli:long', input: { ms: 60_000 } }),
        });
        expect(accepted.status).toBe(202);
        const { id } = (await accepted.json()) as { id: string };
        await waitFor(
          async () => {
            const view = (await (await fetch(`${current.url}/v1/operations/${id}`, { headers })).json()) as {
              state: string;
            };
            return view.state === 'running';
          },
          { timeoutMs: 10_000, what: 'the long sleep runs' },
        );
        current.process.child.kill('SIGTERM');
        await waitFor(() => current.process.stderr().includes('SIGTERM: shutting down'), { timeoutMs: 10_000 });
        const secondAt = performance.now();
        current.process.child.kill('SIGINT');
        const { code } = await current.process.exited;
        expect(code).toBe(1);
        expect(performance.now() - secondAt).toBeLessThan(5_000);
        expect(current.process.stderr()).toContain('SIGINT again: exiting now');
      },
      3 * CLI_TIMEOUT_MS,
    );

    it(
      'shuts down gracefully on a signal that arrives while it starts (exit 0, lock released)',
      async () => {
        // A handler module that holds the start up until the test has sent its signal.
        const marker = dir.join('slow-loading');
        const release = dir.join('slow-release');
        const module = dir.join('slow-handlers.mjs');
        writeFileSync(
          module,
          [
            "import { existsSync, writeFileSync } from 'node:fs';",
            `writeFileSync(${JSON.stringify(marker)}, 'loading');`,
            `while (!existsSync(${JSON.stringify(release)})) await new Promise((r) => setTimeout(r, 20));`,
            'export const handlers = {};',
            '',
          ].join('\n'),
        );
        const slowDir = dir.join('slow-data');
        const child = spawnNode(BIN, {
          tsx: false,
          args: ['start', '--data-dir', slowDir, '--port', '0', '--handlers', module],
          env: CLEAN_ENV,
        });
        await waitFor(() => existsSync(marker) || undefined, { timeoutMs: START_TIMEOUT_MS, what: 'the module loads' });
        child.child.kill('SIGTERM');
        await waitFor(() => child.stderr().includes('SIGTERM: shutting down once started') || undefined, {
          timeoutMs: 10_000,
          what: 'the signal is taken',
        });
        writeFileSync(release, 'go');
        const { code, signal } = await child.exited;
        expect([code, signal]).toEqual([0, null]);
        expect(child.stderr()).toMatch(/SIGTERM: shutting down \(draining[^\n]*\n[\s\S]*stopped\n/);
        expect(existsSync(join(slowDir, 'daemon.lock'))).toBe(false);
      },
      3 * CLI_TIMEOUT_MS,
    );
  });
});
