import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { httpDiagnosticNode, NodeQueryError } from '../src/index.js';
import { listen } from './support/http-node.js';

const answer = JSON.stringify({ schema: 'unrdf.diagnostics.node-snapshot/v1', nodeId: 'n1' });
const deadline = () => AbortSignal.timeout(5000);

describe('httpDiagnosticNode', () => {
  describe('fetchSnapshot', () => {
    it('reuses one kept-alive connection for successive snapshots', async () => {
      const node = await listen((_, res) => res.end(answer));
      // Node's agent retires an idle socket 1 s before the server's advertised Keep-Alive timeout.
      node.server.keepAliveTimeout = 5000;
      let connections = 0;
      node.server.on('connection', () => connections++);
      try {
        const client = httpDiagnosticNode({ id: 'n1', url: node.url });
        for (let i = 0; i < 3; i++) expect(await client.fetchSnapshot({}, deadline())).toMatchObject({ nodeId: 'n1' });
        expect(connections).toBe(1);
      } finally {
        await node.close();
      }
    });

    it('sends once more on a fresh connection when the node drops the reused one before answering', async () => {
      const served = new WeakMap<Socket, number>();
      let connections = 0;
      const node = await listen((req, res) => {
        const n = (served.get(req.socket) ?? 0) + 1;
        served.set(req.socket, n);
        // The race of a keep-alive timeout: the node closes the idle socket as the request arrives.
        if (n === 2) req.socket.destroy();
        else res.end(answer);
      });
      node.server.keepAliveTimeout = 5000;
      node.server.on('connection', () => connections++);
      try {
        const client = httpDiagnosticNode({ id: 'n1', url: node.url });
        await client.fetchSnapshot({}, deadline());
        expect(await client.fetchSnapshot({}, deadline())).toMatchObject({ nodeId: 'n1' });
        expect(connections).toBe(2);
      } finally {
        await node.close();
      }
    });

    it('does not send again when a fresh connection fails: the node is reported unreachable', async () => {
      let requests = 0;
      const node = await listen((req) => {
        requests++;
        req.socket.destroy();
      });
      try {
        const client = httpDiagnosticNode({ id: 'n1', url: node.url });
        const error = await client.fetchSnapshot({}, deadline()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NodeQueryError);
        expect(error).toMatchObject({ reason: 'unreachable' });
        expect(requests).toBe(1);
      } finally {
        await node.close();
      }
    });
  });
});
