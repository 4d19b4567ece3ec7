import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repo's single apt-get installer: `ensure-apt-command.sh COMMAND PACKAGE`. */
const ENSURE_APT = fileURLToPath(new URL('../../../scripts/ensure-apt-command.sh', import.meta.url));

/**
 * Makes `command` available, installing Debian `pkg` with apt-get when it is missing (as
 * root); resolves with why not when it cannot, so a benchmark can skip that contender.
 */
export function ensureAptCommand(
  command: string,
  pkg: string,
  timeoutMs: number,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    execFile('sh', [ENSURE_APT, command, pkg], { timeout: timeoutMs }, (error, _stdout, stderr) => {
      resolve(
        error ? { ok: false, reason: (stderr || error.message).trim().split('\n').slice(-1)[0] ?? '' } : { ok: true },
      );
    });
  });
}
