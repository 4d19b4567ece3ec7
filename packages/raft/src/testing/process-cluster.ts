import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { createFaultProxy, type FaultProxy } from './fault-proxy.js';

/** The node program: one Raft node with a small HTTP client API (see the script's header). */
const NODE_SCRIPT = fileURLToPath(new URL('../../scripts/node-process.ts', import.meta.url));
const require = createRequire(import.meta.url);

const ProcessClusterOptionsSchema = z.object({
  /** Each node keeps its data in `<dataDir>/<id>`; the caller owns (and removes) the directory. */
  dataDir: z.string().min(1),
  size: z.number().int().min(1).max(9).optional(),
  /** Route every peer link through a fault proxy, so {@link ProcessCluster.isolate} can partition it. */
  proxies: z.boolean().optional(),
  /** Another node program with the same command line (an older build, for A/B runs). */
  nodeScript: z.string().min(1).optional(),
  /** Extra Node flags for every node process (e.g. `--cpu-prof`). */
  execArgv: z.array(z.string()).optional(),
  /** How long a node may take to print `ready` (default 30 s). */
  startTimeoutMs: z.number().int().positive().optional(),
});

/** Options of {@link ProcessCluster.start}. */
export type ProcessClusterOptions = z.input<typeof ProcessClusterOptionsSchema>;

/** What a node's `/status` reports. */
export interface ClusterNodeStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
}

/** What a node process reports at `/dump`: its applied writes, its log and its status. */
export interface ClusterNodeDump {
  readonly applied: string[];
  /** The Raft log after the latest snapshot: [index, term, data in base64]. */
  readonly log: readonly (readonly [number, number, string])[];
  readonly status: ClusterNodeStatus;
}

/** A role or leader change a node printed (`state <role> <term> <leader> <epoch ms>`). */
export interface StateEvent {
  readonly node: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | undefined;
  readonly at: number;
}

/** An HTTP answer of a node. */
export interface NodeReply {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

/** Resolves true when `port` could be bound on loopback just now (and releases it). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A loopback port that was free a moment ago, drawn below 32768 where Linux's ephemeral
 * range starts by default: a port the OS picked (port 0) is also the next source port of
 * an outgoing connection, and could be taken by one before the node binds it.
 */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (await canListen(port)) return port;
  }
  throw new Error('no free loopback port in 20000-32767 after 200 tries');
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Real Raft node processes on 127.0.0.1 (this package's `scripts/node-process.ts` under
 * tsx), each with its own data directory and client port, optionally with a fault proxy
 * on every peer link. For the real-process tests and the failover benchmark; every wait
 * is bounded.
 * @example
 * await using cluster = await ProcessCluster.start({ dataDir, proxies: true });
 * const leader = await cluster.leader();
 * await new SessionClient(cluster, 'writer').put('k', 'v');
 */
export class ProcessCluster implements AsyncDisposable {
  readonly members: Record<string, { host: string; port: number }> = {};
  readonly clientPorts: Record<string, number> = {};
  /** proxies.get(`${from}>${to}`): the link `from` dials to reach `to`. */
  readonly proxies = new Map<string, FaultProxy>();
  /** Every role or leader change the nodes printed, in arrival order. */
  readonly events: StateEvent[] = [];
  private readonly children = new Map<string, ChildProcess>();
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });
  private closed = false;

  private readonly options: z.output<typeof ProcessClusterOptionsSchema>;
  private constructor(options: z.output<typeof ProcessClusterOptionsSchema>) {
    this.options = options;
  }

  /**
   * Starts the nodes (n1..n<size>) and resolves once each printed `ready`.
   * @throws {z.ZodError} on invalid options; an Error when a node exits or is not ready in time.
   */
  static async start(options: ProcessClusterOptions): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(ProcessClusterOptionsSchema.parse(options));
    const size = cluster.options.size ?? 3;
    for (let i = 1; i <= size; i++) {
      cluster.members[`n${i}`] = { host: '127.0.0.1', port: await freePort() };
      cluster.clientPorts[`n${i}`] = await freePort();
    }
    try {
      if (cluster.options.proxies) {
        for (const from of cluster.ids) {
          for (const [to, address] of Object.entries(cluster.members)) {
            if (from !== to) cluster.proxies.set(`${from}>${to}`, await createFaultProxy(address));
          }
        }
      }
      await Promise.all(cluster.ids.map((id) => cluster.startNode(id)));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Every member, running or not. */
  get ids(): string[] {
    return Object.keys(this.members);
  }

  /** The process id of node `id`, while it runs. */
  pid(id: string): number | undefined {
    return this.children.get(id)?.pid;
  }

  /** The members whose process is running. */
  get running(): string[] {
    return [...this.children.keys()];
  }

  /** Starts (or restarts, on its old data) node `id`; resolves once it serves. */
  async startNode(id: string): Promise<void> {
    const view: Record<string, { host: string; port: number }> = {};
    for (const [peer, address] of Object.entries(this.members)) {
      const proxy = this.proxies.get(`${id}>${peer}`);
      view[peer] = proxy ? { host: '127.0.0.1', port: proxy.port } : address;
    }
    const child = spawn(
      process.execPath,
      [
        ...(this.options.execArgv ?? []),
        '--conditions=@unrdf/source',
        '--import',
        require.resolve('tsx'),
        this.options.nodeScript ?? NODE_SCRIPT,
        id,
        JSON.stringify(view),
        join(this.options.dataDir, id),
        String(this.clientPorts[id]),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.children.set(id, child);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    let buffered = '';
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(timer);
        reject(new Error(`node ${id} ${why}; stderr:\n${stderr}`));
      };
      const timer = setTimeout(() => fail('printed no ready line in time'), this.options.startTimeoutMs ?? 30_000);
      child.once('exit', (code, signal) => fail(`exited (${signal ?? code}) before it was ready`));
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line.startsWith('ready ')) {
            clearTimeout(timer);
            resolve();
          }
          const m = /^state (\S+) (\d+) (\S+) (\d+)$/.exec(line);
          if (m) {
            this.events.push({
              node: id,
              role: m[1] as string,
              term: Number(m[2]),
              leader: m[3] === '-' ? undefined : m[3],
              at: Number(m[4]),
            });
          }
        }
      });
    });
  }

  /** SIGKILL: no cleanup, no flush; the kernel closes its sockets at once. Resolves once it is gone. */
  async kill9(id: string): Promise<void> {
    await this.terminate(id, 'SIGKILL', 0);
  }

  /** SIGTERM (a clean exit: `--cpu-prof` writes its profile), SIGKILL after `graceMs`. */
  async stop(id: string, graceMs = 5000): Promise<void> {
    await this.terminate(id, 'SIGTERM', graceMs);
  }

  private async terminate(id: string, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const child = this.children.get(id);
    if (child === undefined) return;
    this.children.delete(id);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  /**
   * Cuts the links of `id` without closing anything (needs `proxies`): every link to and
   * from it (`both`), or only those to it (`in`: it hears no one, everyone still hears it)
   * or from it (`out`). Each node sends on the link it dials, so one direction is one set
   * of links: an asymmetric partition.
   */
  isolate(id: string, direction: 'both' | 'in' | 'out' = 'both'): void {
    if (this.proxies.size === 0) throw new Error('isolate() needs a cluster started with proxies: true');
    for (const [link, proxy] of this.proxies) {
      const [from, to] = link.split('>');
      if ((direction !== 'in' && from === id) || (direction !== 'out' && to === id)) proxy.partition(true);
    }
  }

  /** Ends every partition. */
  heal(): void {
    for (const proxy of this.proxies.values()) proxy.partition(false);
  }

  /** One HTTP/1.1 keep-alive request to node `id` (GET without a body, POST with one). */
  request(id: string, path: string, body?: unknown, timeoutMs = 2000): Promise<NodeReply> {
    const port = this.clientPorts[id];
    if (port === undefined) return Promise.reject(new Error(`unknown node ${id}`));
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: payload ? 'POST' : 'GET',
          agent: this.agent,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
            } catch (error) {
              reject(error as Error);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`request to ${id}${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Node `id`'s status, or undefined when it does not answer within a second. */
  async status(id: string): Promise<ClusterNodeStatus | undefined> {
    try {
      return (await this.request(id, '/status', undefined, 1000)).json as unknown as ClusterNodeStatus;
    } catch {
      return undefined;
    }
  }

  private async agreedLeader(caughtUp: boolean): Promise<ClusterNodeStatus | undefined> {
    const running = this.running;
    const statuses = (await Promise.all(running.map((id) => this.status(id)))).filter(
      (s): s is ClusterNodeStatus => s !== undefined,
    );
    const leaders = statuses.filter((s) => s.role === 'leader');
    const leader = leaders[0];
    if (leaders.length !== 1 || leader === undefined || statuses.length !== running.length) return undefined;
    const agreed = statuses.every(
      (s) => s.leader === leader.id && (!caughtUp || s.appliedIndex >= leader.commitIndex - 1),
    );
    return agreed ? leader : undefined;
  }

  /**
   * The id of the one leader every running node agrees on (bounded wait).
   * @throws {Error} when there is none within `timeoutMs`.
   */
  async leader(timeoutMs = 15_000): Promise<string> {
    return (await this.waitForLeader(false, timeoutMs)).id;
  }

  /**
   * The leader's status once every running node agrees on it and has applied up to (one
   * short of) its commit index: a quiet point between benchmark phases.
   * @throws {Error} when the cluster does not settle within `timeoutMs`.
   */
  async settled(timeoutMs = 30_000): Promise<ClusterNodeStatus> {
    return await this.waitForLeader(true, timeoutMs);
  }

  private async waitForLeader(caughtUp: boolean, timeoutMs: number): Promise<ClusterNodeStatus> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const leader = await this.agreedLeader(caughtUp);
      if (leader !== undefined) return leader;
      await pause(20);
    }
    throw new Error(`no agreed leader${caughtUp ? ' with caught-up followers' : ''} within ${timeoutMs} ms`);
  }

  /** Every write node `id` applied, in order, its Raft log and its status. */
  async dump(id: string): Promise<ClusterNodeDump> {
    const { json } = await this.request(id, '/dump', undefined, 5000);
    return json as unknown as ClusterNodeDump;
  }

  /**
   * Every running node's dump once they all applied the same writes and hold the same log
   * (followers learn the last commit index a tick or a heartbeat after the leader); after
   * `timeoutMs` the dumps as they are, so the caller can report the difference.
   */
  async converged(timeoutMs = 15_000): Promise<ClusterNodeDump[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const dumps = await Promise.all(this.running.map((id) => this.dump(id)));
      const same = new Set(dumps.map((d) => `${d.applied.join('\n')}|${JSON.stringify(d.log)}`)).size === 1;
      if (same || Date.now() >= until) return dumps;
      await pause(50);
    }
  }

  /** Stops every node (SIGTERM, SIGKILL after 2 s) and proxy. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.running.map((id) => this.stop(id, 2000)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    this.agent.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * A client with a session (thesis §6.3) that writes through whichever node leads: on a
 * refusal it follows the leader hint, on an error or timeout it tries the next node,
 * always with the same (clientId, sequence), so a retried write is applied once.
 */
export class SessionClient {
  /** The node tried first; set it to make the client start somewhere else. */
  target: string;
  /** The sequence number of the last write. */
  sequence = 0;

  private readonly cluster: ProcessCluster;
  readonly clientId: string;
  constructor(cluster: ProcessCluster, clientId: string) {
    this.cluster = cluster;
    this.clientId = clientId;
    this.target = cluster.ids[0] as string;
  }

  /**
   * Writes `value` under `key` with the next sequence number; resolves with the node that
   * acknowledged it and when (epoch ms).
   * @throws {Error} when no node acknowledges it within `giveUpMs`.
   */
  async put(
    key: string,
    value: string,
    options: { readonly attemptTimeoutMs?: number; readonly giveUpMs?: number } = {},
  ): Promise<{ node: string; at: number }> {
    this.sequence++;
    const giveUpMs = options.giveUpMs ?? 60_000;
    const until = Date.now() + giveUpMs;
    const body = { key, value, clientId: this.clientId, sequence: this.sequence };
    while (Date.now() < until) {
      const target = this.target;
      try {
        const { status, json } = await this.cluster.request(target, '/put', body, options.attemptTimeoutMs ?? 1000);
        if (status === 200) return { node: target, at: Date.now() };
        if (status === 503 && typeof json.leader === 'string' && json.leader !== target) {
          this.target = json.leader;
          continue;
        }
      } catch {
        // refused, reset or timed out: the node may be dead or cut off
      }
      const ids = this.cluster.ids;
      this.target = ids[(ids.indexOf(target) + 1) % ids.length] as string;
      await pause(2);
    }
    throw new Error(`write ${this.clientId}#${this.sequence} not acknowledged within ${giveUpMs} ms`);
  }
}
