import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@unrdf/test-utils';
import { Redis } from 'ioredis';
import { ensureAptCommand } from '../harness/apt-command.js';

/**
 * A throwaway Redis server for the side-by-side BullMQ run of `jtbd5-throughput`: Debian's
 * `redis-server`, on 127.0.0.1 at a free port, its data in a temporary directory, with
 * the append-only file synced on every write (`appendonly yes`, `appendfsync always`:
 * Redis fsyncs the AOF before it replies, so an acknowledged write survives a power cut,
 * https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/). No RDB
 * snapshots (`save ""`), so no fork in the middle of a run. Killed and removed by `stop()`.
 */

/** The durability class printed next to every BullMQ figure. */
export const REDIS_DURABILITY = 'Redis AOF, appendfsync always: durable per write';

/** Installs redis-server if it is missing (apt-get, root); resolves with why not when it cannot. */
export function ensureRedisServer(timeoutMs = 180_000): Promise<{ ok: true } | { ok: false; reason: string }> {
  return ensureAptCommand('redis-server', 'redis-server', timeoutMs);
}

export class RedisServer {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly port: number;
  readonly version: string;

  private constructor(child: ChildProcess, dir: string, port: number, version: string) {
    this.#child = child;
    this.#dir = dir;
    this.port = port;
    this.version = version;
  }

  /** Starts the server and resolves once it answers PING. */
  static async start(timeoutMs = 15_000): Promise<RedisServer> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'unrdf-redis-'));
    const child = spawn(
      'redis-server',
      [
        '--bind',
        '127.0.0.1',
        '--port',
        String(port),
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'yes',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
        // BullMQ's advice for a queue: never evict its keys.
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2000);
    });
    const until = Date.now() + timeoutMs;
    const probe = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    try {
      while (Date.now() < until) {
        if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr.trim()}`);
        try {
          if (probe.status !== 'ready') await probe.connect();
          if ((await probe.ping()) === 'PONG') {
            const info = await probe.info('server');
            const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
            return new RedisServer(child, dir, port, version);
          }
        } catch {
          probe.disconnect();
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      throw new Error('redis-server did not answer in time');
    } catch (error) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw error;
    } finally {
      probe.disconnect();
    }
  }

  /** A new client connection (BullMQ wants `maxRetriesPerRequest: null` for its workers). */
  connect(): Redis {
    return new Redis({ host: '127.0.0.1', port: this.port, maxRetriesPerRequest: null });
  }

  /** Kills the server and removes its data. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
