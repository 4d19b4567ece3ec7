import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of one peer link that can silently drop traffic (a partition). */
export interface FaultProxy extends AsyncDisposable {
  /** Where to dial instead of the target. */
  readonly port: number;
  /**
   * While on, bytes in both directions are discarded and connections stay open: nothing
   * is closed, so only timeouts can notice (unlike a crash). Turning it off cuts the
   * connections once so both ends re-handshake on a clean stream.
   */
  partition(on: boolean): void;
  readonly partitioned: boolean;
  /**
   * Arms a cut: the first connection to forward `bytes` bytes from its dialer (counted from
   * its start) is cut there, both ends closed, like a stream broken part-way; then disarms.
   */
  cutAfter(bytes: number): void;
  /** Connections cut by {@link cutAfter} so far. */
  readonly cuts: number;
  close(): Promise<void>;
}

/**
 * Starts a fault-injecting proxy on 127.0.0.1 forwarding to `target` (for real-process
 * partition tests and the failover benchmark; never for production traffic).
 */
export async function createFaultProxy(target: { host: string; port: number }, listenPort = 0): Promise<FaultProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let partitioned = false;
  let cutAt: number | undefined;
  let cuts = 0;
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.host, port: target.port, noDelay: true });
    client.setNoDelay(true);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    let forwarded = 0;
    client.on('data', (chunk) => {
      if (partitioned) return;
      if (cutAt === undefined || forwarded + chunk.length < cutAt) {
        forwarded += chunk.length;
        upstream.write(chunk);
        return;
      }
      // Forward up to the cut, then close both ends.
      const allowed = chunk.subarray(0, cutAt - forwarded);
      cutAt = undefined;
      cuts++;
      upstream.end(allowed, () => upstream.destroy());
      client.destroy();
    });
    upstream.on('data', (chunk) => {
      if (!partitioned) client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(listenPort, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const close = async () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    get partitioned() {
      return partitioned;
    },
    partition(on: boolean) {
      if (partitioned && !on) {
        // Dropped bytes broke the framing and MAC sequence of open streams: start over.
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        pairs.clear();
      }
      partitioned = on;
    },
    cutAfter(bytes: number) {
      cutAt = bytes;
    },
    get cuts() {
      return cuts;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
