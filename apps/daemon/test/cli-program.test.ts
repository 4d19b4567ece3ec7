// The CLI in-process against an app on loopback: what its exit codes and outputs promise.
import { tempDir } from '@unrdf/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, startApp } from '../src/app.js';
import { openTokenStore } from '../src/auth/tokens.js';
import { runCli } from '../src/cli/program.js';

function capture() {
  let out = '';
  let err = '';
  return {
    io: {
      stdout: { write: (s: string | Uint8Array) => (out += typeof s === 'string' ? s : Buffer.from(s).toString()) },
      stderr: { write: (s: string) => (err += s) },
      env: {},
    },
    out: () => out,
    err: () => err,
  };
}

describe('unrdf-daemon CLI, in process', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let app: App;
  let submitOnly: string;
  const cli = async (...argv: string[]) => {
    const t = capture();
    const code = await runCli(argv, t.io);
    return { code, stdout: t.out(), stderr: t.err() };
  };
  const client = () => ['--url', app.url, '--data-dir', dir.path];

  beforeAll(async () => {
    dir = await tempDir('cli-program');
    submitOnly = openTokenStore(dir.path).createToken(['submit']).token;
    app = await startApp({ dataDir: dir.path, port: 0, logLevel: 'silent', httpThreads: 0 });
  }, 60_000);
  afterAll(async () => {
    await app?.close({ drainMs: 100 });
    await dir?.[Symbol.asyncDispose]();
  });

  it('prints help and exits 0 for --help, `help` and `help <command>`; 2 for a group without its command', async () => {
    for (const argv of [['--help'], ['help'], ['help', 'submit'], ['submit', '--help']]) {
      expect((await cli(...argv)).code, argv.join(' ')).toBe(0);
    }
    expect((await cli('keys')).code).toBe(2);
  });

  it('prints the report as JSON with --json, and refuses --json with another --format', async () => {
    const json = await cli('report', '--json', ...client());
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ schema: expect.any(String) });
    expect((await cli('report', '--json', '--format', 'md', ...client())).code).toBe(2);
  });

  it('answers a path --out cannot write with exit 2 and no stack trace', async () => {
    const result = await cli('report', '--format', 'md', '--out', dir.join('missing', 'report.md'), ...client());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--out: cannot write');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses operation ids made only of dots (URL dot-segments)', async () => {
    for (const id of ['.', '..']) expect((await cli('status', id, ...client())).code, id).toBe(2);
  });

  it("says a submit-only token's operation was accepted when it cannot read its outcome", async () => {
    const waited = await cli(
      'submit',
      '--type',
      'sleep',
      '--subject',
      'urn:cli:1',
      '--input',
      '{"ms":3000}',
      '--wait',
      '--timeout',
      '1000',
      '--url',
      app.url,
      '--token',
      submitOnly,
    );
    expect(waited.code).toBe(1);
    expect(waited.stderr).toMatch(/operation \S+ was accepted, but this token may not read it/);
  });
});
