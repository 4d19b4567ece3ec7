// The jtbd4-diagnostics floor: a bare node:http server in its own process that answers
// every request with "ok" (no load, no handler, no logging). A round trip to it is what
// loopback HTTP between two processes costs on this machine at that moment.
// Usage: echo-server (prints "listening <url>"; exits when its stdin closes)
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((_, res) => {
  res.end('ok');
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
// The benchmark holds our stdin: when it goes, so do we (no orphan servers).
process.stdin.on('close', () => process.exit(0)).resume();
process.on('SIGTERM', () => process.exit(0));
