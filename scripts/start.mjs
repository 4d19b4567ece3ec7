// `./run start`: starts the reference daemon (apps/daemon) on its embedded default.
// It runs the app's bin with this Node directly (not through another `pnpm run`), so
// Ctrl-C reaches the daemon once and its exit code is the command's.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../apps/daemon/bin/unrdf-daemon.mjs', import.meta.url));
const child = spawn(process.execPath, [bin, 'start', ...process.argv.slice(2)], { stdio: 'inherit' });
// The terminal sends SIGINT to the whole process group, the daemon included: passing it
// on as well would count as a second signal (exit at once). Forward only SIGTERM.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
