// Entry point of `unrdf-daemon` (bin/unrdf-daemon.mjs runs it with tsx and the @unrdf/source condition).
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
// Explicit exit: a closed daemon may leave idle handles (timers, the metrics reader) behind.
process.exit(code);
