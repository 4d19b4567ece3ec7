// Entry point of `unrdf-daemon` (bin/unrdf-daemon.mjs runs it with tsx and the @unrdf/source condition).
import { runCli } from './program.js';

// Run through `pnpm run start|cli`, the process starts in apps/daemon; relative paths the user
// typed (--out, --input-file, bundles, --handlers) mean the directory pnpm was run from.
const event = process.env.npm_lifecycle_event;
const initCwd = process.env.INIT_CWD;
if ((event === 'start' || event === 'cli') && initCwd !== undefined && initCwd !== '') process.chdir(initCwd);

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
// Explicit exit: a closed daemon may leave idle handles (timers, the metrics reader) behind.
process.exit(code);
