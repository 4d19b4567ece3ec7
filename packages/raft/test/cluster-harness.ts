import { freePort, type NodeProcess, spawnNode, type TempDir, tempDir } from '@unrdf/test-utils';

import { createFaultProxy, type FaultProxy } from '../src/testing/fault-proxy.js';

const NODE_SCRIPT = new URL('../scripts/node-process.ts', import.meta.url).pathname;

export interface NodeStatus {
  id: string;
  role: string;
  term: number;
  leader: string | null;
  commitIndex: number;
  appliedIndex: number;
}

/** Three (or more) real node processes on loopback, each with its own data directory. */
export class ProcessCluster implements AsyncDisposable {
  readonly processes = new Map<string, NodeProcess>();
  /** proxies.get(`${from}>${to}`): the link `from` dials to reach `to`. */
  readonly proxies = new Map<string, FaultProxy>();
  private constructor(
    readonly dir: TempDir,
    readonly members: Record<string, { host: string; port: number }>,
    readonly clientPorts: Record<string, number>,
  ) {}

  /** With `proxies`, every peer link goes through a fault proxy so tests can partition it. */
  static async start(size = 3, options: { proxies?: boolean } = {}): Promise<ProcessCluster> {
    const dir = await tempDir('raft-cluster');
    const members: Record<string, { host: string; port: number }> = {};
    const clientPorts: Record<string, number> = {};
    for (let i = 1; i <= size; i++) {
      members[`n${i}`] = { host: '127.0.0.1', port: await freePort() };
      clientPorts[`n${i}`] = await freePort();
    }
    const cluster = new ProcessCluster(dir, members, clientPorts);
    if (options.proxies) {
      for (const from of Object.keys(members)) {
        for (const [to, address] of Object.entries(members)) {
          if (from !== to) cluster.proxies.set(`${from}>${to}`, await createFaultProxy(address));
        }
      }
    }
    await Promise.all(Object.keys(members).map((id) => cluster.startNode(id)));
    return cluster;
  }

  get ids(): string[] {
    return Object.keys(this.members);
  }

  async startNode(id: string): Promise<void> {
    const child = spawnNode(NODE_SCRIPT, {
      args: [id, JSON.stringify(this.viewOf(id)), this.dir.join(id), String(this.clientPorts[id])],
    });
    this.processes.set(id, child);
    await child.waitForLine(/^ready /, 20_000);
  }

  /** Node `id`'s member map: its own address, and its proxies to the others when there are any. */
  private viewOf(id: string): Record<string, { host: string; port: number }> {
    const view: Record<string, { host: string; port: number }> = {};
    for (const [peer, address] of Object.entries(this.members)) {
      const proxy = this.proxies.get(`${id}>${peer}`);
      view[peer] = proxy ? { host: '127.0.0.1', port: proxy.port } : address;
    }
    return view;
  }

  /** Cuts every link to and from `id` without closing anything. */
  isolate(id: string): void {
    for (const [link, proxy] of this.proxies) {
      const [from, to] = link.split('>');
      if (from === id || to === id) proxy.partition(true);
    }
  }

  heal(): void {
    for (const proxy of this.proxies.values()) proxy.partition(false);
  }

  async kill9(id: string): Promise<void> {
    await this.processes.get(id)?.kill9();
    this.processes.delete(id);
  }

  url(id: string, path: string): string {
    return `http://127.0.0.1:${this.clientPorts[id]}${path}`;
  }

  async status(id: string): Promise<NodeStatus | undefined> {
    try {
      const res = await fetch(this.url(id, '/status'), { signal: AbortSignal.timeout(1000) });
      return (await res.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** The node every live member agrees leads, once there is one (bounded wait). */
  async leader(timeoutMs = 15_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const statuses = (await Promise.all([...this.processes.keys()].map((id) => this.status(id)))).filter(
        (s): s is NodeStatus => s !== undefined,
      );
      const leaders = statuses.filter((s) => s.role === 'leader');
      if (leaders.length === 1 && statuses.every((s) => s.leader === leaders[0]?.id)) return leaders[0]?.id as string;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('no agreed leader in time');
  }

  /**
   * Puts one value with a client session, retrying (same sequence) on other nodes until
   * it is acknowledged or `timeoutMs` passes. Returns the node that acknowledged.
   */
  async put(key: string, value: string, clientId: string, sequence: number, timeoutMs = 15_000): Promise<string> {
    const until = Date.now() + timeoutMs;
    let target = this.guess ?? (this.ids[0] as string);
    while (Date.now() < until) {
      try {
        const res = await fetch(this.url(target, '/put'), {
          method: 'POST',
          body: JSON.stringify({ key, value, clientId, sequence }),
          signal: AbortSignal.timeout(3000),
        });
        const body = (await res.json()) as { leader?: string | null };
        if (res.status === 200) {
          this.guess = target;
          return target;
        }
        if (res.status === 503 && body.leader) {
          target = body.leader;
          continue;
        }
      } catch {
        // connection refused / reset / timeout: the node may be dead
      }
      const ids = this.ids;
      target = ids[(ids.indexOf(target) + 1) % ids.length] as string;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`put ${clientId}#${sequence} not acknowledged within ${timeoutMs} ms`);
  }

  guess: string | undefined;

  async dump(id: string): Promise<{ applied: string[]; status: NodeStatus }> {
    const res = await fetch(this.url(id, '/dump'), { signal: AbortSignal.timeout(2000) });
    return (await res.json()) as { applied: string[]; status: NodeStatus };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => p.stop(2000)));
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
    await this.dir.remove();
  }
}
