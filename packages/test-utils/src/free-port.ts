import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The lowest port handed out: above the usual service ports (databases, dev servers, ours at 8787). */
const LOWEST = 20_000;

/**
 * Where the kernel's ephemeral ports (the source ports of outgoing connections) start:
 * Linux's `ip_local_port_range`, else the IANA range's start (RFC 6335 §6).
 */
function ephemeralStart(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low !== undefined && Number.isInteger(low) && low > LOWEST + 1000) return low;
  } catch {
    // Not Linux, or no procfs.
  }
  return 49_152;
}

const EPHEMERAL_START = ephemeralStart();

/** Resolves true when `port` could be bound on `host` just now (and releases it). */
function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A TCP port on loopback that was free a moment ago, for a server a test starts later.
 * It is drawn at random below the ephemeral range: a port the OS picked from that range
 * (port 0) is also what it hands out as the source port of the next outgoing connection,
 * so with other tests connecting in parallel it could be taken before the server binds it
 * (seen as EADDRINUSE). Another test drawing the same port in between remains possible,
 * but rare; bind promptly.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (EPHEMERAL_START - LOWEST));
    if (await canListen(host, port)) return port;
  }
  throw new Error(`no free port on ${host} in ${LOWEST}-${EPHEMERAL_START - 1} after 200 tries`);
}
