import { connect, createServer, type Socket } from 'node:net';
import { freePort, waitFor } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES } from '../src/internal/limits.js';
import { createTcpTransport, type TcpTransport } from '../src/tcp-transport.js';
import { createFaultProxy } from '../src/testing/fault-proxy.js';
import type { AppendRequest, Message } from '../src/types.js';

const SECRET = 'correct horse battery staple';

async function pair(secretB = SECRET) {
  const [portA, portB] = [await freePort(), await freePort()];
  const got = { a: [] as Message[], b: [] as Message[] };
  const failures: string[] = [];
  const down: string[] = [];
  const a = await createTcpTransport({
    id: 'a',
    listen: { host: '127.0.0.1', port: portA },
    peers: { b: { host: '127.0.0.1', port: portB } },
    clusterSecret: SECRET,
    onMessage: (m) => got.a.push(m),
    onAuthFailure: (reason) => failures.push(`a: ${reason}`),
    onPeerDown: (peer) => down.push(peer),
  });
  const b = await createTcpTransport({
    id: 'b',
    listen: { host: '127.0.0.1', port: portB },
    peers: { a: { host: '127.0.0.1', port: portA } },
    clusterSecret: secretB,
    onMessage: (m) => got.b.push(m),
    onAuthFailure: (reason) => failures.push(`b: ${reason}`),
  });
  return { a, b, got, failures, down, portA, portB };
}

const append = (from: string, to: string, n: number): AppendRequest => ({
  type: 'append',
  from,
  to,
  term: 3,
  prevLogIndex: n,
  prevLogTerm: 2,
  commit: n,
  entries: [
    { index: n + 1, term: 3, data: new Uint8Array(256).fill(n % 256) },
    { index: n + 2, term: 3, data: new Uint8Array(0) },
  ],
});

describe('TcpTransport', () => {
  it('delivers framed messages both ways in order, entry bytes intact', async () => {
    const { a, b, got } = await pair();
    try {
      await waitFor(() => a.isConnected('b') && b.isConnected('a'), { timeoutMs: 5000 });
      const batch = Array.from({ length: 200 }, (_, i) => append('a', 'b', i));
      a.send(batch);
      b.send([{ type: 'heartbeatResponse', from: 'b', to: 'a', term: 3, context: 'r1' }]);
      await waitFor(() => got.b.length === 200 && got.a.length === 1, { timeoutMs: 5000 });
      expect(got.b).toEqual(batch);
      expect(got.a).toEqual([{ type: 'heartbeatResponse', from: 'b', to: 'a', term: 3, context: 'r1' }]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('carries a snapshot image as raw bytes', async () => {
    const { a, b, got } = await pair();
    try {
      await waitFor(() => a.isConnected('b'), { timeoutMs: 5000 });
      const image = new Uint8Array(100_000).map((_, i) => i % 251);
      a.send([{ type: 'snapshot', from: 'a', to: 'b', term: 2, snapshot: { index: 40, term: 2, data: image } }]);
      await waitFor(() => got.b.length === 1, { timeoutMs: 5000 });
      expect(got.b[0]).toEqual({
        type: 'snapshot',
        from: 'a',
        to: 'b',
        term: 2,
        snapshot: { index: 40, term: 2, data: image },
      });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('streams a snapshot larger than the old 64 MB frame limit in chunks, with its membership', async () => {
    const { a, b, got } = await pair();
    try {
      await waitFor(() => a.isConnected('b'), { timeoutMs: 5000 });
      const image = new Uint8Array(65 * 1024 * 1024 + 17);
      for (let i = 0; i < image.length; i += 4093) image[i] = (i / 4093) % 256;
      const config = { voters: ['a', 'b', 'c'], learners: ['d'] };
      a.send([{ type: 'snapshot', from: 'a', to: 'b', term: 2, snapshot: { index: 9, term: 2, data: image, config } }]);
      await waitFor(() => got.b.length === 1, { timeoutMs: 60_000 });
      const message = got.b[0] as Message & { type: 'snapshot' };
      expect(message.snapshot.config).toEqual(config);
      expect(message.snapshot.data.length).toBe(image.length);
      expect(Buffer.from(message.snapshot.data).equals(Buffer.from(image))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  }, 90_000);

  it('discards a snapshot whose stream is cut part-way, and takes the resent one whole', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    await using proxy = await createFaultProxy({ host: '127.0.0.1', port: portB });
    const got: Message[] = [];
    const discarded: { peer: string; received: number; size: number }[] = [];
    const a = await createTcpTransport({
      id: 'a',
      listen: { host: '127.0.0.1', port: portA },
      peers: { b: { host: '127.0.0.1', port: proxy.port } },
      clusterSecret: SECRET,
      snapshotChunkBytes: 64 * 1024,
      onMessage: () => {},
    });
    const b = await createTcpTransport({
      id: 'b',
      listen: { host: '127.0.0.1', port: portB },
      peers: { a: { host: '127.0.0.1', port: portA } },
      clusterSecret: SECRET,
      onMessage: (m) => got.push(m),
      onSnapshotDiscarded: (peer, received, size) => discarded.push({ peer, received, size }),
    });
    try {
      await waitFor(() => a.isConnected('b'), { timeoutMs: 5000 });
      const image = new Uint8Array(2 * 1024 * 1024).map((_, i) => (i * 7) % 256);
      const snapshot: Message = {
        type: 'snapshot',
        from: 'a',
        to: 'b',
        term: 3,
        snapshot: { index: 70, term: 3, data: image },
      };
      // The first connection to carry 1 MiB (the snapshot stream) breaks there: half the image.
      proxy.cutAfter(1024 * 1024);
      a.send([snapshot]);
      await waitFor(() => discarded.length === 1, { timeoutMs: 10_000 });
      expect(discarded[0]?.peer).toBe('a');
      expect(discarded[0]?.size).toBe(image.length);
      expect(discarded[0]?.received).toBeGreaterThan(0);
      expect(discarded[0]?.received).toBeLessThan(image.length);
      expect(b.snapshotsDiscarded).toBe(1);
      expect(proxy.cuts).toBe(1);
      expect(got).toEqual([]);
      // The leader sends it again (after an election timeout); this time it arrives whole.
      a.send([snapshot]);
      await waitFor(() => got.length === 1, { timeoutMs: 10_000 });
      expect(got[0]).toEqual(snapshot);
      expect(b.snapshotsDiscarded).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses a peer without the cluster secret: nothing it sends is delivered', async () => {
    const { a, b, got, failures } = await pair('a different secret of length');
    try {
      await waitFor(() => failures.length >= 2, { timeoutMs: 5000 });
      expect(a.isConnected('b')).toBe(false);
      expect(b.isConnected('a')).toBe(false);
      b.send([append('b', 'a', 1)]);
      a.send([append('a', 'b', 1)]);
      await new Promise((r) => setTimeout(r, 100));
      expect(got).toEqual({ a: [], b: [] });
      expect(failures.some((f) => f.includes('failed to prove the cluster secret'))).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('drops a raw connection that skips the handshake and injects a vote', async () => {
    const { a, b, got, failures, portA } = await pair();
    try {
      const socket = connect({ host: '127.0.0.1', port: portA });
      await new Promise((r) => socket.once('connect', r));
      const body = Buffer.from(
        JSON.stringify({ type: 'vote', from: 'b', to: 'a', term: 99, lastLogIndex: 9, lastLogTerm: 9 }),
      );
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      socket.write(Buffer.concat([head, body]));
      await waitFor(() => failures.some((f) => f.startsWith('a: wrong protocol')), { timeoutMs: 5000 });
      await waitFor(() => socket.destroyed || socket.readableEnded, { timeoutMs: 5000 });
      expect(got.a.filter((m) => m.type === 'vote')).toEqual([]);
      socket.destroy();
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('drops a message an authenticated peer sends in another member’s name', async () => {
    const { a, b, got } = await pair();
    try {
      await waitFor(() => b.isConnected('a'), { timeoutMs: 5000 });
      b.send([{ type: 'heartbeatResponse', from: 'b', to: 'a', term: 1 }]);
      (b as unknown as { send(m: Message[]): void }).send([
        { type: 'heartbeatResponse', from: 'c', to: 'a', term: 1 } as Message,
      ]);
      await waitFor(() => got.a.length === 1, { timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 50));
      expect(got.a.map((m) => m.from)).toEqual(['b']);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses an unauthenticated frame larger than a handshake needs at once, without buffering it', async () => {
    const { a, b, failures, portA } = await pair();
    const socket = connect({ host: '127.0.0.1', port: portA });
    try {
      await new Promise((r) => socket.once('connect', r));
      socket.on('error', () => {});
      const head = Buffer.alloc(4);
      head.writeUInt32BE(60 * 1024 * 1024);
      socket.write(head);
      socket.write(Buffer.alloc(1024 * 1024, 0x41));
      await waitFor(() => socket.destroyed || socket.readableEnded, { timeoutMs: 5000 });
      // Refused for its size, not left to the handshake timeout.
      expect(failures).toContain('a: oversized frame before authentication');
    } finally {
      socket.destroy();
      await a.close();
      await b.close();
    }
  });

  it('refuses an oversized frame from whoever answers a dial before it proved the cluster secret', async () => {
    const accepted: Socket[] = [];
    const impostor = createServer((socket: Socket) => {
      accepted.push(socket);
      socket.on('error', () => {});
      const head = Buffer.alloc(4);
      head.writeUInt32BE(60 * 1024 * 1024);
      socket.write(head);
    });
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', () => r()));
    const address = impostor.address() as { port: number };
    const failures: string[] = [];
    const a = await createTcpTransport({
      id: 'a',
      listen: { host: '127.0.0.1', port: await freePort() },
      peers: { b: { host: '127.0.0.1', port: address.port } },
      clusterSecret: SECRET,
      onMessage: () => {},
      onAuthFailure: (reason) => failures.push(reason),
    });
    try {
      await waitFor(() => failures.includes('b sent an oversized frame during the handshake'), { timeoutMs: 5000 });
      expect(a.isConnected('b')).toBe(false);
    } finally {
      await a.close();
      for (const socket of accepted) socket.destroy();
      await new Promise((r) => impostor.close(r));
    }
  });

  it('drops a message too large for one frame at the sender, and keeps the stream up for the next', async () => {
    const { a, b, got, failures } = await pair();
    try {
      await waitFor(() => a.isConnected('b'), { timeoutMs: 5000 });
      const huge: AppendRequest = {
        ...append('a', 'b', 1),
        entries: [{ index: 2, term: 3, data: new Uint8Array(MAX_FRAME_BYTES) }],
      };
      a.send([huge]);
      a.send([append('a', 'b', 7)]);
      await waitFor(() => got.b.length === 1, { timeoutMs: 5000 });
      expect((got.b[0] as AppendRequest).prevLogIndex).toBe(7);
      expect(a.dropped).toBe(1);
      expect(failures).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('reports a peer down only when its newest stream closes, not an older one closing late', async () => {
    const { a, b, down, portA } = await pair();
    // A second process speaking as b (b's restart, say) connects while the first is still up.
    const b2 = await createTcpTransport({
      id: 'b',
      listen: { host: '127.0.0.1', port: await freePort() },
      peers: { a: { host: '127.0.0.1', port: portA } },
      clusterSecret: SECRET,
      onMessage: () => {},
    });
    let open: TcpTransport[] = [a, b, b2];
    try {
      await waitFor(() => b.isConnected('a') && b2.isConnected('a'), { timeoutMs: 5000 });
      // Ordered after b2's handshake on a's side: b2's message arrives on its authenticated stream.
      b2.send([{ type: 'heartbeatResponse', from: 'b', to: 'a', term: 1 }]);
      await new Promise((r) => setTimeout(r, 100));
      await b.close();
      await new Promise((r) => setTimeout(r, 200));
      expect(down).toEqual([]);
      await b2.close();
      await waitFor(() => down.includes('b'), { timeoutMs: 2000 });
      open = [a];
    } finally {
      await Promise.all(open.map((t) => t.close()));
    }
  });

  it('reports a peer down as soon as its authenticated connection closes', async () => {
    const { a, b, down } = await pair();
    let closedB: TcpTransport | undefined = b;
    try {
      await waitFor(() => b.isConnected('a'), { timeoutMs: 5000 });
      await b.close();
      closedB = undefined;
      await waitFor(() => down.includes('b'), { timeoutMs: 2000 });
    } finally {
      await a.close();
      await closedB?.close();
    }
  });
});
