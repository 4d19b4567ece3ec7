// The baselines of the end-to-end benchmarks: a bare Fastify server in its own process,
// answering the same shapes of request as the daemon (a 202 with a small JSON body for a
// POST, a small JSON document for a GET) with no work behind them. What the daemon adds
// on top of this is its own cost; what this costs is the floor of HTTP on this machine.
//
// With `--durable <file>`, each POST is first written to a SQLite database (WAL,
// synchronous=FULL: COMMIT fsyncs the WAL) in one transaction per event-loop turn, and
// answered once that COMMIT returned: the floor of an acknowledgement that is on disk,
// with nothing else (no queue, receipt or ledger) behind it.
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values: args } = parseArgs({ options: { durable: { type: 'string' } } });

/** Resolves each body's row id once a COMMIT holding it returned (one COMMIT per event-loop turn). */
function durableLog(file: string): (body: string) => Promise<number> {
  const db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;');
  db.exec('CREATE TABLE IF NOT EXISTS op (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO op (body) VALUES (?)');
  let pending: { body: string; resolve: (id: number) => void; reject: (error: unknown) => void }[] = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    try {
      db.exec('BEGIN');
      const ids = batch.map((p) => Number(insert.run(p.body).lastInsertRowid));
      db.exec('COMMIT');
      for (const [i, p] of batch.entries()) p.resolve(ids[i] as number);
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      for (const p of batch) p.reject(error);
    }
  };
  return (body) =>
    new Promise((resolve, reject) => {
      if (pending.push({ body, resolve, reject }) === 1) setImmediate(flush);
    });
}

const write = args.durable === undefined ? undefined : durableLog(args.durable);
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
let counter = 0;
app.post('/v1/operations', async (request, reply) => {
  counter++;
  const id = write === undefined ? counter : await write(JSON.stringify(request.body));
  return reply.code(202).send({ id: `echo-${id}`, state: 'pending' });
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
