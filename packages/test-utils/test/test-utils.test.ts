import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort, spawnNode, tempDir, WaitForTimeoutError, waitFor } from '../src/index.js';

describe('tempDir', () => {
  it('creates a directory and removes it on dispose', async () => {
    let path = '';
    {
      await using dir = await tempDir('t');
      path = dir.path;
      await writeFile(dir.join('a.txt'), 'x');
      expect(existsSync(dir.join('a.txt'))).toBe(true);
    }
    expect(existsSync(path)).toBe(false);
  });
});

describe('freePort', () => {
  it('returns a loopback port that can be bound', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port }, resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  });

  it('draws ports below the range the kernel takes source ports of outgoing connections from', async () => {
    const range = '/proc/sys/net/ipv4/ip_local_port_range';
    const low = existsSync(range) ? Number(readFileSync(range, 'utf8').trim().split(/\s+/)[0]) : 49_152;
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(20_000);
      expect(port).toBeLessThan(low);
    }
  });
});

describe('waitFor', () => {
  it('returns the first truthy value', async () => {
    let n = 0;
    await expect(waitFor(() => (++n >= 3 ? n : undefined), { intervalMs: 1 })).resolves.toBe(3);
  });

  it('times out with what it waited for and the last error as cause', async () => {
    const error = await waitFor(
      () => {
        throw new Error('not yet');
      },
      { timeoutMs: 30, intervalMs: 5, what: 'pigs fly' },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WaitForTimeoutError);
    expect((error as Error).message).toContain('pigs fly');
    expect(((error as Error).cause as Error).message).toBe('not yet');
  });
});

describe('spawnNode', () => {
  const script = new URL('./fixtures/echo-server.ts', import.meta.url).pathname;

  it('runs a TypeScript program as a real process and reads its output', async () => {
    await using proc = spawnNode(script);
    const match = await proc.waitForLine(/listening on (\d+)/);
    const port = Number(match[1]);
    const socket = connect({ host: '127.0.0.1', port });
    socket.write('ping');
    const [data] = (await new Promise((resolve) => socket.once('data', (d) => resolve([d])))) as [Buffer];
    expect(data.toString()).toBe('ping');
    socket.destroy();
    expect(await proc.stop()).toBe(0);
  });

  it('finds a line a process printed just before it exited, anchored patterns included', async () => {
    const proc = spawnNode(new URL('./fixtures/two-lines.ts', import.meta.url).pathname);
    expect(await proc.exited).toMatchObject({ code: 0 });
    expect((await proc.waitForLine(/^second (\w+)/))[1]).toBe('line');
    await expect(proc.waitForLine(/^third/, 200)).rejects.toThrow(WaitForTimeoutError);
  });

  it('kill9 ends the process with SIGKILL', async () => {
    const proc = spawnNode(script);
    await proc.waitForLine(/listening/);
    await proc.kill9();
    expect(await proc.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });
});
