import { type ChildProcess, spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { freePort } from '@unrdf/test-utils';
import { ensureAptCommand } from '../harness/apt-command.js';

/**
 * A 3-member etcd cluster on loopback (Debian's `etcd-server`, etcd 3.4), for a side-by-side
 * write-path comparison with @unrdf/raft in the same run: same machine, same moment, same
 * kind of client (HTTP/1.1 keep-alive through etcd's JSON gateway, `/v3/kv/put`). The
 * gateway costs etcd a little (it relays each request over gRPC inside the process), so
 * the issue's anchors, measured with etcd's own gRPC benchmark tool, stay in the report.
 */

/** Installs etcd if it is missing (apt-get, root); resolves with why not when it cannot. */
export function ensureEtcd(timeoutMs = 120_000): Promise<{ ok: true } | { ok: false; reason: string }> {
  return ensureAptCommand('etcd', 'etcd-server', timeoutMs);
}

export class EtcdCluster {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 });
  private readonly children: ChildProcess[] = [];
  readonly clientPorts: number[] = [];

  private constructor() {}

  /** Starts 3 members at etcd's default timings (heartbeat 100 ms, election 1,000 ms), fsync on. */
  static async start(dataDir: string, timeoutMs = 30_000): Promise<EtcdCluster> {
    const cluster = new EtcdCluster();
    const peerPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      cluster.clientPorts.push(await freePort());
      peerPorts.push(await freePort());
    }
    const initial = peerPorts.map((p, i) => `e${i + 1}=http://127.0.0.1:${p}`).join(',');
    try {
      for (let i = 0; i < 3; i++) {
        const client = `http://127.0.0.1:${cluster.clientPorts[i]}`;
        const peer = `http://127.0.0.1:${peerPorts[i]}`;
        const child = spawn(
          'etcd',
          [
            `--name=e${i + 1}`,
            `--data-dir=${join(dataDir, `e${i + 1}`)}`,
            `--listen-client-urls=${client}`,
            `--advertise-client-urls=${client}`,
            `--listen-peer-urls=${peer}`,
            `--initial-advertise-peer-urls=${peer}`,
            `--initial-cluster=${initial}`,
            '--initial-cluster-state=new',
            '--initial-cluster-token=unrdf-bench',
            '--heartbeat-interval=100',
            '--election-timeout=1000',
            '--logger=zap',
            '--log-level=error',
          ],
          { stdio: ['ignore', 'ignore', 'ignore'] },
        );
        cluster.children.push(child);
      }
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if ((await cluster.leaderPort()) !== undefined) return cluster;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('etcd elected no leader in time');
    } catch (error) {
      await cluster.close();
      throw error;
    }
  }

  /** POSTs JSON to a member over the keep-alive agent. */
  post(port: number, path: string, body: unknown, timeoutMs = 2000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body));
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            try {
              const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
              if (res.statusCode === 200) resolve(json);
              else reject(new Error(`etcd ${path}: ${res.statusCode} ${JSON.stringify(json)}`));
            } catch (error) {
              reject(error as Error);
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`etcd ${path} timed out`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** The member processes' ids (for CPU accounting). */
  get pids(): number[] {
    return this.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** The client port of the member that leads, once every member agrees on one. */
  async leaderPort(): Promise<number | undefined> {
    try {
      const statuses = await Promise.all(
        this.clientPorts.map((port) => this.post(port, '/v3/maintenance/status', {}, 1000)),
      );
      const leaders = new Set(statuses.map((s) => String(s.leader)));
      if (leaders.size !== 1) return undefined;
      const leader = [...leaders][0];
      const index = statuses.findIndex((s) => String((s.header as { member_id?: unknown }).member_id) === leader);
      return index < 0 || leader === '0' ? undefined : this.clientPorts[index];
    } catch {
      return undefined;
    }
  }

  /** Puts `value` under `key` on the member at `port` (the leader, to match our client). */
  async put(port: number, key: string, value: string): Promise<void> {
    await this.post(port, '/v3/kv/put', {
      key: Buffer.from(key).toString('base64'),
      value: Buffer.from(value).toString('base64'),
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    this.agent.destroy();
  }
}
