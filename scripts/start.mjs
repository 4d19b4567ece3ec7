// `./run start`: starts the reference daemon (apps/daemon) on its embedded default.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const app = new URL('../apps/daemon/package.json', import.meta.url);
if (!existsSync(app)) {
  process.stderr.write(
    'unrdf daemon: not built yet. The reference app (apps/daemon) does not exist in this\n' +
      'checkout; the packages it composes are being built first (see the README).\n',
  );
  process.exit(1);
}
const child = spawn('pnpm', ['--filter', '@unrdf/daemon-app', 'run', 'start', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
