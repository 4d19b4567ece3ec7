import { createHash, createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { z } from 'zod';
import { MAX_FRAME_BYTES } from './internal/limits.js';
import { decodeMessage, encodeMessage } from './internal/message-codec.js';
import type { Message, NodeId, SnapshotRequest } from './types.js';

/**
 * Raft peer transport over TCP: length-prefixed frames, one outbound stream per peer
 * (writes are pipelined; a peer that cannot keep up has messages dropped, which Raft
 * tolerates, rather than unbounded buffering), and mutual authentication.
 *
 * Authentication (an HMAC handshake over the shared cluster secret, in the style of a
 * PSK challenge-response): the dialer sends a fresh nonce, the listener proves knowledge
 * of the secret over both nonces and both ids, the dialer proves it back; both derive a
 * per-connection key and every later frame carries HMAC-SHA256(key, sequence || frame)
 * (truncated to 16 bytes), so a process without the secret can neither join, vote, nor
 * inject or replay a frame. Messages whose `from` is not the authenticated peer are dropped.
 *
 * A snapshot (Raft §7) travels on a connection of its own, in chunks (etcd's snapshot
 * stream): a first frame with the image's size, its SHA-256 and the message header, then
 * the image in frames of `snapshotChunkBytes`. The receiver assembles it into a buffer of
 * the announced size (bounded by `maxSnapshotBytes`) and hands the message on only when
 * every byte arrived and the digest matches; a stream cut part-way is discarded, and the
 * leader sends the snapshot again (after an election timeout).
 */

const PROTOCOL = 'unrdf-raft/1';
const MAC_BYTES = 16;
/**
 * Frames before the handshake completes (hello, proof: a few hundred bytes). Until a peer
 * has proven the cluster secret it may not make us buffer more than this.
 */
const HANDSHAKE_MAX_FRAME_BYTES = 4 * 1024;
const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** SQLite's default maximum blob length: storage could not hold a larger image anyway. */
const DEFAULT_MAX_SNAPSHOT_BYTES = 1_000_000_000;
/** Snapshot stream, first frame: u64 image size | 32-byte SHA-256 | message header. */
const SNAPSHOT_BEGIN_BYTES = 8 + 32;
const EMPTY = new Uint8Array(0);
const HANDSHAKE_TIMEOUT_MS = 2000;

const Address = z.object({ host: z.string().min(1), port: z.number().int().min(0).max(65535) });

const TcpTransportOptionsSchema = z.object({
  id: z.string().min(1),
  listen: Address,
  /** Every other member and where it listens. */
  peers: z.record(z.string(), Address),
  /** At least 16 bytes, shared by every member and by nobody else. */
  clusterSecret: z.union([z.string().min(16), z.instanceof(Uint8Array).refine((b) => b.length >= 16)]),
  clusterId: z.string().min(1).optional(),
  /** Per peer: messages beyond this many buffered bytes are dropped. */
  maxBufferedBytes: z.number().int().positive().optional(),
  /** Bytes of snapshot image per frame on the snapshot stream (default 1 MiB). */
  snapshotChunkBytes: z.number().int().positive().optional(),
  /** Largest snapshot image accepted from a peer (default 1 GB, SQLite's blob limit). */
  maxSnapshotBytes: z.number().int().positive().optional(),
  /** A snapshot stream ended before the whole image arrived (or failed its digest); it was discarded. */
  onSnapshotDiscarded: z
    .custom<(peer: NodeId, received: number, size: number) => void>((v) => typeof v === 'function')
    .optional(),
  onMessage: z.custom<(message: Message) => void>((v) => typeof v === 'function'),
  /** An authenticated connection from `peer` closed: it may have crashed. */
  onPeerDown: z.custom<(peer: NodeId) => void>((v) => typeof v === 'function').optional(),
  /** Connection attempts that failed authentication (for metrics and tests). */
  onAuthFailure: z.custom<(reason: string) => void>((v) => typeof v === 'function').optional(),
});

/** Options of {@link createTcpTransport}. */
export type TcpTransportOptions = z.input<typeof TcpTransportOptionsSchema>;

type Resolved = z.output<typeof TcpTransportOptionsSchema>;

// Keys are imported once as KeyObjects: createHmac() with raw bytes re-imports the key on
// every call, which cost a third of the CPU of a busy node.
const hmac = (key: KeyObject, ...parts: (string | Uint8Array)[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const part of parts) {
    h.update(part);
    h.update('\u0000');
  }
  return h.digest();
};

/** Splits a byte stream into u32-length-prefixed frames of at most `maxFrameBytes`. */
class FrameReader {
  /** Raised once the peer is authenticated (a frame announcing more fails the stream). */
  maxFrameBytes = HANDSHAKE_MAX_FRAME_BYTES;
  /** A frame announced more than `maxFrameBytes`. */
  oversized = false;
  private buffer: Buffer = Buffer.alloc(0);
  /** Chunks of a frame still incomplete, joined once it is (no copying per TCP chunk). */
  private parts: Buffer[] = [];
  private partsLength = 0;
  private needed = 0;

  push(chunk: Buffer, onFrame: (frame: Buffer) => boolean): boolean {
    if (this.needed > 0) {
      this.parts.push(chunk);
      this.partsLength += chunk.length;
      if (this.partsLength < this.needed) return true;
      this.buffer = Buffer.concat(this.parts, this.partsLength);
      this.parts = [];
      this.partsLength = 0;
      this.needed = 0;
    } else {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    }
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length > this.maxFrameBytes) {
        this.oversized = true;
        return false;
      }
      if (this.buffer.length < 4 + length) {
        // Wait for the rest of a large frame without re-joining the buffer on every chunk.
        if (length > 64 * 1024) {
          this.parts = [this.buffer];
          this.partsLength = this.buffer.length;
          this.needed = 4 + length;
          this.buffer = Buffer.alloc(0);
        }
        break;
      }
      const frame = this.buffer.subarray(4, 4 + length);
      this.buffer = this.buffer.subarray(4 + length);
      if (!onFrame(frame)) return false;
    }
    return true;
  }
}

const frame = (payload: Uint8Array, mac?: Uint8Array): Buffer => {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length + (mac?.length ?? 0));
  return mac ? Buffer.concat([head, mac, payload]) : Buffer.concat([head, payload]);
};

/**
 * u32 length | 16-byte MAC | payload, in one allocation; the MAC is
 * HMAC-SHA256(key, u64 sequence || 0 || payload || 0), truncated (see {@link hmac}).
 */
const macFrame = (key: KeyObject, seq: bigint, payload: Uint8Array): Buffer => {
  const out = Buffer.allocUnsafe(4 + MAC_BYTES + payload.length);
  out.writeUInt32BE(MAC_BYTES + payload.length, 0);
  out.writeBigUInt64BE(seq, 4); // scratch for the sequence number, overwritten by the MAC
  const h = createHmac('sha256', key);
  h.update(out.subarray(4, 12));
  h.update(SEPARATOR);
  h.update(payload);
  h.update(SEPARATOR);
  h.digest().copy(out, 4, 0, MAC_BYTES);
  out.set(payload, 4 + MAC_BYTES);
  return out;
};
const SEPARATOR = Buffer.from([0]);

const seqBytes = (seq: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(seq);
  return b;
};

interface Outbound {
  socket: Socket | undefined;
  key: KeyObject | undefined;
  seq: bigint;
  connecting: boolean;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
}

/** A peer link not yet dialled: no socket, no session key, the first reconnect delay. */
const newOutbound = (): Outbound => ({
  socket: undefined,
  key: undefined,
  seq: 0n,
  connecting: false,
  backoffMs: 20,
  timer: undefined,
});

/** The TCP transport of one node. */
export class TcpTransport implements AsyncDisposable {
  private readonly server: Server;
  private readonly secret: KeyObject;
  private readonly cluster: string;
  private readonly outbound = new Map<NodeId, Outbound>();
  private readonly inbound = new Set<Socket>();
  /** Each peer's newest authenticated raft stream to us (its close is what onPeerDown reports). */
  private readonly latestInbound = new Map<NodeId, Socket>();
  private readonly snapshotSockets = new Set<Socket>();
  private closed = false;
  /** Messages dropped because a peer was unreachable or too slow. */
  dropped = 0;
  /** Snapshot streams from peers that ended before the whole image arrived. */
  snapshotsDiscarded = 0;
  /** Members we may dial and accept, by id (changes with membership). */
  private readonly addresses = new Map<NodeId, { host: string; port: number }>();

  private readonly options: Resolved;
  constructor(options: Resolved) {
    this.options = options;
    this.secret = createSecretKey(
      typeof options.clusterSecret === 'string'
        ? Buffer.from(options.clusterSecret, 'utf8')
        : Buffer.from(options.clusterSecret),
    );
    this.cluster = options.clusterId ?? 'default';
    this.server = createServer((socket) => this.accept(socket));
    for (const [peer, address] of Object.entries(options.peers)) this.addresses.set(peer, address);
    for (const peer of Object.keys(options.peers)) this.outbound.set(peer, newOutbound());
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.listen.port, this.options.listen.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    for (const peer of this.outbound.keys()) this.dial(peer);
  }

  /**
   * Sends each message to its peer; never blocks, never throws for a down peer. The frames
   * of one call leave in one write per peer (corked), not one system call per message.
   */
  send(messages: readonly Message[]): void {
    const limit = this.options.maxBufferedBytes ?? 16 * 1024 * 1024;
    const corked: Socket[] = [];
    for (const message of messages) {
      if (message.type === 'snapshot') {
        this.sendSnapshotStream(message);
        continue;
      }
      const out = this.outbound.get(message.to);
      if (out === undefined) continue;
      const socket = out.socket;
      if (socket === undefined || out.key === undefined || socket.writableLength > limit) {
        this.dropped++;
        continue;
      }
      const payload = encodeMessage(message);
      if (MAC_BYTES + payload.length > MAX_FRAME_BYTES) {
        // The peer would refuse the frame and drop the stream (and every message behind it);
        // the core keeps appends within a frame, so only a misconfigured caller gets here.
        this.dropped++;
        continue;
      }
      if (messages.length > 1 && !socket.writableCorked) {
        socket.cork();
        corked.push(socket);
      }
      socket.write(macFrame(out.key, out.seq++, payload));
    }
    for (const socket of corked) socket.uncork();
  }

  /** A member joined (membership change): dial it and accept it. */
  addPeer(peer: NodeId, address: { host: string; port: number }): void {
    if (peer === this.options.id || this.closed) return;
    const known = this.addresses.get(peer);
    this.addresses.set(peer, address);
    if (known !== undefined && known.host === address.host && known.port === address.port) return;
    const existing = this.outbound.get(peer);
    if (existing) {
      if (existing.timer) clearTimeout(existing.timer);
      existing.socket?.destroy();
    }
    this.outbound.set(peer, newOutbound());
    this.dial(peer);
  }

  /** A member left: stop dialling it and refuse its connections. */
  removePeer(peer: NodeId): void {
    this.addresses.delete(peer);
    const out = this.outbound.get(peer);
    if (out === undefined) return;
    this.outbound.delete(peer);
    if (out.timer) clearTimeout(out.timer);
    out.socket?.destroy();
  }

  /** Whether an authenticated outbound stream to `peer` is up. */
  isConnected(peer: NodeId): boolean {
    return this.outbound.get(peer)?.key !== undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const out of this.outbound.values()) {
      if (out.timer) clearTimeout(out.timer);
      out.socket?.destroy();
    }
    for (const socket of this.inbound) socket.destroy();
    for (const socket of this.snapshotSockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ dialer side

  private dial(peer: NodeId): void {
    const out = this.outbound.get(peer);
    if (out === undefined || this.closed || out.connecting || out.socket) return;
    out.connecting = true;
    const retry = () => {
      out.connecting = false;
      out.socket = undefined;
      out.key = undefined;
      if (this.closed || this.outbound.get(peer) !== out) return;
      out.timer = setTimeout(() => this.dial(peer), out.backoffMs);
      out.backoffMs = Math.min(out.backoffMs * 2, 500);
    };
    const started = this.handshake(
      peer,
      'raft',
      (socket, key) => {
        out.key = key;
        out.seq = 0n;
        out.socket = socket;
        out.connecting = false;
        out.backoffMs = 20;
      },
      retry,
    );
    if (!started) retry();
  }

  /**
   * Sends one snapshot on its own authenticated connection, so a large image does not
   * hold up appends and heartbeats behind it (etcd's separate snapshot stream), in chunks
   * written as the socket drains (memory stays bounded by a chunk or two). A broken stream
   * just loses the message: the leader resends after an election timeout.
   */
  private sendSnapshotStream(message: SnapshotRequest): void {
    const image = message.snapshot.data;
    const chunkBytes = this.options.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES;
    const header = encodeMessage({ ...message, snapshot: { ...message.snapshot, data: EMPTY } });
    const begin = Buffer.allocUnsafe(SNAPSHOT_BEGIN_BYTES + header.length);
    begin.writeBigUInt64BE(BigInt(image.length), 0);
    createHash('sha256').update(image).digest().copy(begin, 8);
    begin.set(header, SNAPSHOT_BEGIN_BYTES);
    this.handshake(
      message.to,
      'snapshot',
      (socket, key) => {
        let seq = 0n;
        socket.write(macFrame(key, seq++, begin));
        let offset = 0;
        const writeChunks = (): void => {
          while (offset < image.length) {
            if (socket.destroyed) return;
            const chunk = image.subarray(offset, Math.min(offset + chunkBytes, image.length));
            offset += chunk.length;
            if (!socket.write(macFrame(key, seq++, chunk))) {
              socket.once('drain', writeChunks);
              return;
            }
          }
          socket.end();
        };
        writeChunks();
      },
      () => {},
    );
  }

  /**
   * Dials `peer` and runs the dialer's half of the handshake; `onReady` gets the
   * authenticated socket and its frame key. Returns false when the peer's address is unknown.
   */
  private handshake(
    peer: NodeId,
    stream: 'raft' | 'snapshot',
    onReady: (socket: Socket, key: KeyObject) => void,
    onClose: () => void,
  ): boolean {
    const address = this.addresses.get(peer);
    if (address === undefined || this.closed) return false;
    const socket = createConnection({ host: address.host, port: address.port, noDelay: true });
    if (stream === 'snapshot') this.snapshotSockets.add(socket);
    const nonce = randomBytes(32);
    // The listener only ever sends its proof, so the handshake's frame limit stays: whoever
    // answers at that address cannot make us buffer more before (or after) proving itself.
    const reader = new FrameReader();
    let stage: 'hello' | 'ready' = 'hello';
    const timeout = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
    socket.on('connect', () => {
      const hello = {
        p: PROTOCOL,
        c: this.cluster,
        from: this.options.id,
        to: peer,
        s: stream,
        n: nonce.toString('base64'),
      };
      socket.write(frame(Buffer.from(JSON.stringify(hello))));
    });
    socket.on('data', (chunk) => {
      const ok = reader.push(chunk, (f) => {
        if (stage !== 'hello') return false; // the listener sends nothing after its proof
        const reply = JSON.parse(f.toString('utf8')) as { n?: string; m?: string };
        const theirNonce = Buffer.from(reply.n ?? '', 'base64');
        const expected = hmac(
          this.secret,
          PROTOCOL,
          'server',
          stream,
          this.cluster,
          this.options.id,
          peer,
          nonce,
          theirNonce,
        );
        const got = Buffer.from(reply.m ?? '', 'base64');
        if (theirNonce.length !== 32 || got.length !== expected.length || !timingSafeEqual(got, expected)) {
          this.options.onAuthFailure?.(`${peer} failed to prove the cluster secret`);
          return false;
        }
        const proof = hmac(
          this.secret,
          PROTOCOL,
          'client',
          stream,
          this.cluster,
          this.options.id,
          peer,
          nonce,
          theirNonce,
        );
        socket.write(frame(Buffer.from(JSON.stringify({ m: proof.toString('base64') }))));
        clearTimeout(timeout);
        const key = createSecretKey(
          hmac(this.secret, PROTOCOL, 'session', stream, this.cluster, this.options.id, peer, nonce, theirNonce),
        );
        stage = 'ready';
        onReady(socket, key);
        return true;
      });
      if (!ok) {
        if (reader.oversized) this.options.onAuthFailure?.(`${peer} sent an oversized frame during the handshake`);
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timeout);
      this.snapshotSockets.delete(socket);
      onClose();
    });
    return true;
  }

  // ------------------------------------------------------------------ listener side

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    this.inbound.add(socket);
    const reader = new FrameReader();
    let stage: 'hello' | 'proof' | 'ready' = 'hello';
    let peer: NodeId | undefined;
    let stream: 'raft' | 'snapshot' = 'raft';
    let clientNonce: Buffer = Buffer.alloc(0);
    let ourNonce: Buffer = Buffer.alloc(0);
    let key: KeyObject | undefined;
    let seq = 0n;
    /** A snapshot being assembled on a snapshot stream. */
    let incoming: { header: SnapshotRequest; image: Uint8Array; received: number; digest: Buffer } | undefined;
    let snapshotDone = false;
    const timeout = setTimeout(() => {
      if (stage !== 'ready') {
        this.options.onAuthFailure?.('handshake timed out');
        socket.destroy();
      }
    }, HANDSHAKE_TIMEOUT_MS);
    const reject = (reason: string) => {
      this.options.onAuthFailure?.(reason);
      return false;
    };
    /** One authenticated frame of a snapshot stream: the begin frame, then image chunks. */
    const onSnapshotFrame = (payload: Buffer): boolean => {
      if (snapshotDone) return reject(`frame after the snapshot from ${peer}`);
      if (incoming === undefined) {
        if (payload.length < SNAPSHOT_BEGIN_BYTES) return reject(`short snapshot header from ${peer}`);
        const size = Number(payload.readBigUInt64BE(0));
        if (size > (this.options.maxSnapshotBytes ?? DEFAULT_MAX_SNAPSHOT_BYTES))
          return reject(`snapshot of ${size} bytes from ${peer} exceeds maxSnapshotBytes`);
        let header: Message;
        try {
          header = decodeMessage(payload.subarray(SNAPSHOT_BEGIN_BYTES));
        } catch {
          return reject(`undecodable snapshot header from ${peer}`);
        }
        if (header.type !== 'snapshot') return reject(`not a snapshot on the snapshot stream of ${peer}`);
        incoming = {
          header,
          image: new Uint8Array(size),
          received: 0,
          digest: Buffer.from(payload.subarray(8, SNAPSHOT_BEGIN_BYTES)),
        };
      } else {
        if (incoming.received + payload.length > incoming.image.length)
          return reject(`snapshot from ${peer} overruns its announced size`);
        incoming.image.set(payload, incoming.received);
        incoming.received += payload.length;
      }
      if (incoming.received < incoming.image.length) return true;
      // Complete: apply only a verified image.
      snapshotDone = true;
      const { header, image, digest } = incoming;
      incoming = undefined;
      if (!createHash('sha256').update(image).digest().equals(digest)) {
        this.snapshotsDiscarded++;
        this.options.onSnapshotDiscarded?.(peer as NodeId, image.length, image.length);
        return reject(`snapshot from ${peer} failed its digest`);
      }
      if (header.from === peer && header.to === this.options.id) {
        this.options.onMessage({ ...header, snapshot: { ...header.snapshot, data: image } });
      }
      return true;
    };
    socket.on('data', (chunk) => {
      const ok = reader.push(chunk, (f) => {
        if (stage === 'ready') {
          if (f.length < MAC_BYTES) return reject('short frame');
          const mac = f.subarray(0, MAC_BYTES);
          const payload = f.subarray(MAC_BYTES);
          const expected = hmac(key as KeyObject, seqBytes(seq++), payload).subarray(0, MAC_BYTES);
          if (!timingSafeEqual(mac, expected)) return reject(`bad frame MAC from ${peer}`);
          if (stream === 'snapshot') return onSnapshotFrame(payload);
          let message: Message;
          try {
            message = decodeMessage(payload);
          } catch {
            return reject(`undecodable frame from ${peer}`);
          }
          // An authenticated peer still cannot speak for another member.
          if (message.from === peer && message.to === this.options.id) this.options.onMessage(message);
          return true;
        }
        if (stage === 'hello') {
          let hello: { p?: string; c?: string; from?: string; to?: string; s?: string; n?: string };
          try {
            hello = JSON.parse(f.toString('utf8'));
          } catch {
            return reject('malformed hello');
          }
          if (hello.p !== PROTOCOL || hello.c !== this.cluster || hello.to !== this.options.id)
            return reject('wrong protocol, cluster or target');
          if (typeof hello.from !== 'string' || !this.addresses.has(hello.from))
            return reject(`unknown member ${hello.from}`);
          peer = hello.from;
          if (hello.s !== 'raft' && hello.s !== 'snapshot') return reject('unknown stream kind');
          stream = hello.s;
          clientNonce = Buffer.from(hello.n ?? '', 'base64');
          if (clientNonce.length !== 32) return reject('bad nonce');
          ourNonce = randomBytes(32);
          const proof = hmac(
            this.secret,
            PROTOCOL,
            'server',
            stream,
            this.cluster,
            peer,
            this.options.id,
            clientNonce,
            ourNonce,
          );
          socket.write(
            frame(Buffer.from(JSON.stringify({ n: ourNonce.toString('base64'), m: proof.toString('base64') }))),
          );
          stage = 'proof';
          return true;
        }
        // stage === 'proof'
        let reply: { m?: string };
        try {
          reply = JSON.parse(f.toString('utf8'));
        } catch {
          return reject('malformed proof');
        }
        const expected = hmac(
          this.secret,
          PROTOCOL,
          'client',
          stream,
          this.cluster,
          peer as string,
          this.options.id,
          clientNonce,
          ourNonce,
        );
        const got = Buffer.from(reply.m ?? '', 'base64');
        if (got.length !== expected.length || !timingSafeEqual(got, expected))
          return reject(`${peer} failed to prove the cluster secret`);
        key = createSecretKey(
          hmac(
            this.secret,
            PROTOCOL,
            'session',
            stream,
            this.cluster,
            peer as string,
            this.options.id,
            clientNonce,
            ourNonce,
          ),
        );
        stage = 'ready';
        reader.maxFrameBytes = MAX_FRAME_BYTES;
        if (stream === 'raft') this.latestInbound.set(peer as NodeId, socket);
        clearTimeout(timeout);
        return true;
      });
      if (!ok) {
        if (reader.oversized && stage !== 'ready') reject('oversized frame before authentication');
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timeout);
      this.inbound.delete(socket);
      if (incoming !== undefined) {
        // Cut part-way: the partial image is dropped; the leader will send it again.
        this.snapshotsDiscarded++;
        this.options.onSnapshotDiscarded?.(peer as NodeId, incoming.received, incoming.image.length);
        incoming = undefined;
      }
      // Only the end of an authenticated raft stream says anything about the peer (a
      // snapshot stream closes when its one frame is through), and only of its newest one:
      // an older stream closing late while the peer's new one is up is no news.
      if (stage !== 'ready' || stream !== 'raft' || peer === undefined || this.closed) return;
      if (this.latestInbound.get(peer) !== socket) return;
      this.latestInbound.delete(peer);
      this.options.onPeerDown?.(peer);
    });
  }
}

/**
 * Starts listening and dialling every peer.
 * @throws {z.ZodError} on invalid options; a listen error if the port is taken.
 * @example
 * const transport = await createTcpTransport({ id: 'n1', listen: { host: '127.0.0.1', port: 7001 },
 *   peers: { n2: { host: '127.0.0.1', port: 7002 } }, clusterSecret, onMessage: (m) => core.step(m) });
 */
export async function createTcpTransport(options: TcpTransportOptions): Promise<TcpTransport> {
  const transport = new TcpTransport(TcpTransportOptionsSchema.parse(options));
  await transport.listen();
  return transport;
}
