import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The repo's shared installer (also what .ci/run calls): `ensure-apt-command.sh promtool prometheus`.
const script = fileURLToPath(new URL('../../../../scripts/ensure-apt-command.sh', import.meta.url));

const onPath = () => spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;

/** Installs promtool (Debian package `prometheus`) when it is missing; idempotent. */
export function ensurePromtool(): void {
  if (onPath()) return;
  execFileSync('sh', [script, 'promtool', 'prometheus'], { stdio: 'inherit', timeout: 300_000 });
  if (!onPath()) throw new Error('promtool is still missing after scripts/ensure-apt-command.sh promtool prometheus');
}

/** Runs `promtool <args>` with `input` on stdin; returns exit code and output. */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}
