// The HTTP front's thread: the Fastify API over a port to the daemon on the main thread
// (started by front.ts through bin/http-front-worker.mjs). Its modules load while the main
// thread starts the daemon; it listens once told the daemon runs.
import { type MessagePort, parentPort, workerData } from 'node:worker_threads';
import { openTokenStore } from '../auth/tokens.js';
import { builtinSubmitDefinitions } from '../handlers/builtins.js';
import { remoteDaemonPort } from './daemon-port.js';
import type { FrontCommand, FrontMessage, FrontWorkerData } from './front.js';
import { startHttpServer } from './server.js';

const data = workerData as FrontWorkerData & { readonly channel: MessagePort };
const parent = parentPort as MessagePort;
const send = (message: FrontMessage) => parent.postMessage(message);
const builtins = builtinSubmitDefinitions();

const { frontTypes } = await new Promise<Extract<FrontCommand, { type: 'listen' }>>((resolve) => {
  const onCommand = (command: FrontCommand) => {
    if (command.type !== 'listen') return;
    parent.off('message', onCommand);
    resolve(command);
  };
  parent.on('message', onCommand);
});
const daemon = remoteDaemonPort(
  data.channel,
  data.nodeId,
  Object.fromEntries(frontTypes.flatMap((type) => (builtins[type] ? [[type, builtins[type]]] : []))),
);

try {
  const server = await startHttpServer({
    daemon,
    tokens: openTokenStore(data.dataDir),
    host: data.host,
    port: data.port,
    ...(data.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: data.bodyLimitBytes }),
    ...(data.rateLimit === undefined ? {} : { rateLimit: data.rateLimit }),
    ...(data.healthTimeoutMs === undefined ? {} : { healthTimeoutMs: data.healthTimeoutMs }),
    ...(data.version === undefined ? {} : { version: data.version }),
  });
  parent.on('message', (command: FrontCommand) => {
    if (command.type !== 'close') return;
    server.close().finally(() => {
      daemon.close();
      send({ type: 'closed' });
    });
  });
  send({ type: 'listening', url: server.url, port: server.port });
} catch (error) {
  daemon.close();
  const e = error as NodeJS.ErrnoException;
  send({ type: 'failed', name: e.name, message: e.message, ...(e.code === undefined ? {} : { code: e.code }) });
}
