import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { createFaultProxy, type FaultProxy } from '@unrdf/raft/testing';

const require = createRequire(import.meta.url);
const RAFT_DIR = dirname(require.resolve('@unrdf/raft/package.json'));
const NODE_SCRIPT = join(RAFT_DIR, 'scripts', 'node-process.ts');

export interface StateEvent {
  readonly node: string;
  readonly role: string;
  readonly term: number;
  readonly leader: string | undefined;
  readonly at: number;
}

export interface NodeStatus {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** A small HTTP/1.1 keep-alive client (fetch adds ~1 ms of overhead per call here). */
export function httpJson(
  port: number,
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: payload ? 'POST' : 'GET',
        agent,
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
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Three @unrdf/raft node processes on loopback (its scripts/node-process.ts), every peer
 * link through a fault proxy, state-change events collected from their stdout.
 */
export class ProcessCluster {
  readonly children = new Map<string, ChildProcess>();
  readonly proxies = new Map<string, FaultProxy>();
  readonly events: StateEvent[] = [];
  readonly members: Record<string, { host: string; port: number }> = {};
  readonly clientPorts: Record<string, number> = {};

  private constructor(
    private readonly dataDir: string,
    private readonly nodeScript: string,
    private readonly execArgv: readonly string[],
  ) {}

  /**
   * `proxies: false` connects peers directly (for write-path measurements); `nodeScript`
   * runs another node program (an older build, for A/B runs); `execArgv` adds Node flags.
   */
  static async start(
    dataDir: string,
    size = 3,
    options: { proxies?: boolean; nodeScript?: string; execArgv?: readonly string[] } = {},
  ): Promise<ProcessCluster> {
    const cluster = new ProcessCluster(dataDir, options.nodeScript ?? NODE_SCRIPT, options.execArgv ?? []);
    for (let i = 1; i <= size; i++) {
      cluster.members[`n${i}`] = { host: '127.0.0.1', port: await freePort() };
      cluster.clientPorts[`n${i}`] = await freePort();
    }
    for (const from of options.proxies === false ? [] : cluster.ids) {
      for (const to of cluster.ids) {
        if (from !== to)
          cluster.proxies.set(
            `${from}>${to}`,
            await createFaultProxy(cluster.members[to] as { host: string; port: number }),
          );
      }
    }
    await Promise.all(cluster.ids.map((id) => cluster.startNode(id)));
    return cluster;
  }

  get ids(): string[] {
    return Object.keys(this.members);
  }

  async startNode(id: string): Promise<void> {
    const view: Record<string, { host: string; port: number }> = {};
    for (const [peer, address] of Object.entries(this.members)) {
      const proxy = this.proxies.get(`${id}>${peer}`);
      view[peer] = proxy ? { host: '127.0.0.1', port: proxy.port } : address;
    }
    const child = spawn(
      process.execPath,
      [
        ...this.execArgv,
        '--conditions=@unrdf/source',
        '--import',
        require.resolve('tsx'),
        this.nodeScript,
        id,
        JSON.stringify(view),
        join(this.dataDir, id),
        String(this.clientPorts[id]),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.children.set(id, child);
    let buffered = '';
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${id} did not start: ${stderr}`)), 30_000);
      child.once('exit', () => reject(new Error(`${id} exited: ${stderr}`)));
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
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

  /** SIGKILL: no cleanup; the kernel closes its sockets at once. */
  async kill9(id: string): Promise<void> {
    const child = this.children.get(id);
    if (child === undefined) return;
    this.children.delete(id);
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  /** SIGTERM (a clean exit, so `--cpu-prof` writes its profile), SIGKILL after `graceMs`. */
  async stop(id: string, graceMs = 5000): Promise<void> {
    const child = this.children.get(id);
    if (child === undefined) return;
    this.children.delete(id);
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }

  isolate(id: string): void {
    for (const [link, proxy] of this.proxies) {
      const [from, to] = link.split('>');
      if (from === id || to === id) proxy.partition(true);
    }
  }

  heal(): void {
    for (const proxy of this.proxies.values()) proxy.partition(false);
  }

  async status(id: string): Promise<NodeStatus | undefined> {
    try {
      const { json } = await httpJson(this.clientPorts[id] as number, '/status', undefined, 1000);
      return json as unknown as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** The leader all live nodes agree on, with every live node applied up to its commit. */
  async settled(timeoutMs = 30_000): Promise<NodeStatus> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const statuses = (await Promise.all([...this.children.keys()].map((id) => this.status(id)))).filter(
        (s): s is NodeStatus => s !== undefined,
      );
      const leader = statuses.find((s) => s.role === 'leader');
      if (
        leader !== undefined &&
        statuses.length === this.children.size &&
        statuses.every((s) => s.leader === leader.id && s.appliedIndex >= leader.commitIndex - 1)
      ) {
        return leader;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('cluster did not settle');
  }

  async dump(id: string): Promise<string[]> {
    const { json } = await httpJson(this.clientPorts[id] as number, '/dump', undefined, 5000);
    return json.applied as string[];
  }

  async close(): Promise<void> {
    for (const id of [...this.children.keys()]) await this.kill9(id);
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    agent.destroy();
  }
}

/**
 * A client that writes through whichever node leads: on a refusal it follows the leader
 * hint, on an error it tries the next node, always with the same (clientId, sequence), so
 * a retried write is applied once.
 */
export class SessionClient {
  private target: string;
  private sequence = 0;

  constructor(
    private readonly cluster: ProcessCluster,
    readonly clientId: string,
  ) {
    this.target = cluster.ids[0] as string;
  }

  /** Writes `value` under `key`; resolves with the node that acknowledged it and when. */
  async put(
    key: string,
    value: string,
    attemptTimeoutMs = 1000,
    giveUpMs = 60_000,
  ): Promise<{ node: string; at: number }> {
    this.sequence++;
    const until = Date.now() + giveUpMs;
    while (Date.now() < until) {
      const target = this.target;
      try {
        const { status, json } = await httpJson(
          this.cluster.clientPorts[target] as number,
          '/put',
          { key, value, clientId: this.clientId, sequence: this.sequence },
          attemptTimeoutMs,
        );
        if (status === 200) return { node: target, at: Date.now() };
        if (status === 503 && typeof json.leader === 'string') {
          this.target = json.leader;
          continue;
        }
      } catch {
        // refused, reset or timed out: try the next node
      }
      const ids = this.cluster.ids;
      this.target = ids[(ids.indexOf(target) + 1) % ids.length] as string;
      await new Promise((r) => setTimeout(r, 2));
    }
    throw new Error(`write ${this.clientId}#${this.sequence} not acknowledged`);
  }
}
