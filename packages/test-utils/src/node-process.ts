import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { waitFor } from './wait-for.js';

const require = createRequire(import.meta.url);

/** A TypeScript program run as a real child process (tsx, workspace source condition). */
export interface NodeProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line matching `pattern` (bounded by timeoutMs). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGKILL: no cleanup, no flush; the crash a test wants. Resolves once it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code (null if killed). */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SpawnNodeOptions {
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /**
   * Default true: tsx and the `@unrdf/source` condition load `script` and the workspace
   * packages from source. False runs `script` on plain Node, e.g. a bin that loads its
   * sources itself, as users run it.
   */
  readonly tsx?: boolean;
}

/**
 * Starts `script` (a .ts file, or any script with `tsx: false`) in its own Node process
 * on the current Node.
 */
export function spawnNode(script: string, options: SpawnNodeOptions = {}): NodeProcess {
  const loader = options.tsx === false ? [] : ['--conditions=@unrdf/source', '--import', require.resolve('tsx')];
  const child = spawn(process.execPath, [...loader, script, ...(options.args ?? [])], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const stop = async (graceMs = 5000) => {
    if (gone) return (await exited).code;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const { code } = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    child,
    pid: child.pid,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLine: (pattern, timeoutMs = 10_000) =>
      waitFor(
        () => {
          // Line by line (a pattern anchored with ^ names a line), and before the exit
          // check: a process that printed the line and then exited between two polls passed.
          const match = out
            .split('\n')
            .map((line) => line.match(pattern))
            .find((m) => m !== null);
          if (match !== undefined) return match;
          if (gone) throw new Error(`process exited; stderr:\n${err.slice(-2000)}`);
          return undefined;
        },
        { timeoutMs, what: `stdout of ${script} matches ${pattern}` },
      ),
    kill9: async () => {
      if (gone) return;
      child.kill('SIGKILL');
      await exited;
    },
    stop,
    [Symbol.asyncDispose]: async () => {
      await stop(2000);
    },
  };
}
