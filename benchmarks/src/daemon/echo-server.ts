// The baseline of the end-to-end benchmarks: a bare Fastify server in its own process,
// answering the same shapes of request as the daemon (a 202 with a small JSON body for a
// POST, a small JSON document for a GET) with no work behind them. What the daemon adds
// on top of this is its own cost; what this costs is the floor of HTTP on this machine.
import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
let counter = 0;
app.post('/v1/operations', async (_request, reply) => {
  counter++;
  return reply.code(202).send({ id: `echo-${counter}`, state: 'pending' });
});
app.get('/v1/operations/:id', async (request) => ({ id: (request.params as { id: string }).id, state: 'completed' }));
app.get('/v1/operations/:id/receipt', async (request) => ({
  receipt: { operationId: (request.params as { id: string }).id },
  proof: { leafIndex: 0, treeSize: 1, hashes: [] },
  checkpoint: 'echo\n1\n\n',
}));
const address = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening ${address}\n`);
// The benchmark holds our stdin: when it goes away, so do we.
process.stdin.on('close', () => void app.close().then(() => process.exit(0))).resume();
