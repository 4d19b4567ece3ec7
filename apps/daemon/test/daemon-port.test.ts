// The port between the HTTP front and the daemon, over a real MessageChannel with a real
// daemon behind it: what crosses, what fails, and what happens at close.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MessageChannel } from 'node:worker_threads';
import { InvalidInputError, NotRunningError, type SubmitDefinition, UnknownTypeError } from '@unrdf/daemon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { localDaemonPort, remoteDaemonPort, serveDaemonPort } from '../src/http/daemon-port.js';
import { startTestDaemon, type TestDaemon } from './support/test-daemon.js';

let test: TestDaemon;

beforeAll(async () => {
  test = await startTestDaemon('daemon-port');
}, 60_000);

afterAll(async () => {
  await test?.close();
});

/** A remote port over a fresh channel to `local`. */
function connect(local: ReturnType<typeof localDaemonPort>, definitions: Record<string, SubmitDefinition> = {}) {
  const { port1, port2 } = new MessageChannel();
  const stop = serveDaemonPort(port1, local);
  const remote = remoteDaemonPort(port2, test.daemon.nodeId, definitions);
  return {
    remote,
    close() {
      remote.close();
      stop();
      port1.close();
    },
  };
}

describe('localDaemonPort', () => {
  it('keeps nothing of a finished wait, and endWaits ends the waits in progress', async () => {
    const local = localDaemonPort(test.daemon, test.telemetry);
    const { final } = await local.submitAndWait({ type: 'greet', subject: 'urn:port:w', input: { name: 'W' } }, 10_000);
    const id = final?.id as string;
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const waits = async (n: number) => {
      for (let i = 0; i < n; i++) await local.waitFor(id, 10_000);
    };
    await waits(2_000); // warm up
    gc();
    const before = getHeapStatistics().used_heap_size;
    await waits(20_000);
    gc();
    // A Promise.race on one long-lived promise kept ~650 bytes per wait (13 MB here).
    expect(getHeapStatistics().used_heap_size - before).toBeLessThan(4 * 1024 * 1024);

    const gate = await local.submit({ type: 'gate', subject: 'urn:port:w2' });
    const pending = local.waitFor(gate.id, 30_000);
    local.endWaits();
    expect(await pending).toBeUndefined();
    expect(await local.waitFor(gate.id, 30_000)).toBeUndefined(); // ended: later waits do not wait
    test.release();
  }, 60_000);
});

describe('remoteDaemonPort over serveDaemonPort', () => {
  it('carries answers and rebuilds the typed errors, with their issues', async () => {
    const { remote, close } = connect(localDaemonPort(test.daemon, test.telemetry));
    try {
      const { accepted, final } = await remote.submitAndWait(
        { type: 'greet', subject: 'urn:port:1', input: { name: 'Ada' } },
        10_000,
      );
      expect(final).toMatchObject({ id: accepted.id, state: 'completed', output: { hello: 'Ada' } });
      expect(final?.receipt).not.toBeNull();
      const invalid = await remote.submit({ type: 'greet', subject: '' }).catch((e: unknown) => e);
      expect(invalid).toBeInstanceOf(InvalidInputError);
      expect((invalid as InvalidInputError).issues.join('\n')).toMatch(/^subject: /m);
      const unknown = await remote.submit({ type: 'nope', subject: 'urn:x' }).catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(UnknownTypeError);
      expect((unknown as UnknownTypeError).known.toSorted()).toEqual(['gate', 'greet']);
    } finally {
      close();
    }
  });

  it('checks and digests the types it has definitions for on its own side, and forwards the rest', async () => {
    const digested: unknown[] = [];
    const greet: SubmitDefinition = {
      inputSchema: z.strictObject({ name: z.string().min(1) }),
      inputDigest: (input) => {
        digested.push(input);
        return new Uint8Array(32).fill(7);
      },
    };
    const { remote, close } = connect(localDaemonPort(test.daemon, test.telemetry), { greet });
    try {
      const { accepted, final } = await remote.submitAndWait(
        { type: 'greet', subject: 'urn:port:3', input: { name: 'Bo' } },
        10_000,
      );
      expect(final).toMatchObject({ state: 'completed', output: { hello: 'Bo' } });
      expect(digested).toEqual([{ name: 'Bo' }]);
      // The receipt commits to the digest computed on this side of the channel.
      expect(test.daemon.receipt(accepted.id)?.receipt.inputDigest).toBe('07'.repeat(32));
      const refused = await remote
        .submit({ type: 'greet', subject: 'urn:port:3', input: { name: '' } })
        .catch((e) => e);
      expect(refused).toBeInstanceOf(InvalidInputError);
      expect((refused as InvalidInputError).issues.join('\n')).toMatch(/^input\.name: /m);
      expect(digested).toHaveLength(1);
      // A type without a definition here crosses as it came: the daemon checks it.
      const unknown = await remote.submit({ type: 'nope', subject: 'urn:x' }).catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(UnknownTypeError);
      const gate = await remote.submit({ type: 'gate', subject: 'urn:port:4' });
      test.release();
      expect(await remote.waitFor(gate.id, 10_000)).toMatchObject({ state: 'completed' });
    } finally {
      close();
    }
  });

  it('fails only the call whose answer cannot be cloned, and keeps serving', async () => {
    const local = localDaemonPort(test.daemon, test.telemetry);
    const { remote, close } = connect({ ...local, report: async () => ({ render: () => 'x' }) as never });
    try {
      await expect(remote.report()).rejects.toMatchObject({ name: 'DataCloneError' });
      expect(await remote.checkpoint()).toMatch(/^unrdf-daemon\/node-1\n\d+\n/);
    } finally {
      close();
    }
  });

  it('rejects the calls still waiting when it closes, and every later one', async () => {
    const { remote, close } = connect(localDaemonPort(test.daemon, test.telemetry));
    const accepted = await remote.submit({ type: 'gate', subject: 'urn:port:2' });
    const waiting = remote.waitFor(accepted.id, 30_000);
    close();
    await expect(waiting).rejects.toBeInstanceOf(NotRunningError);
    await expect(remote.get(accepted.id)).rejects.toBeInstanceOf(NotRunningError);
    test.release();
  });
});
