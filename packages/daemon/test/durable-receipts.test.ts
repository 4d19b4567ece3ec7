import type { ApplyExtension } from '@unrdf/queue';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { createDaemon } from '../src/index.js';

const N = 200;

/**
 * One group commit C1 finishes N operations (over the inline-fsync limit of 64, so its
 * fsync runs on the thread pool); while that fsync runs, a cancel commits C2 with one
 * more receipt. When C1 turns durable its N transitions are published one by one. The
 * receipt extension once released C1 for the first of them and, finding C1 gone for the
 * second, every later batch too (C2 included): the daemon then showed C2's receipt, and
 * a checkpoint covering it, before C2 was on disk.
 */
async function runOnce(): Promise<{ precondition: boolean; shownEarly: boolean }> {
  await using dir = await tempDir('daemon');
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let running = 0;
  let c2 = '';
  let c2Committed = false;
  let c2ReleasedLogged = false;
  let sawC1Release = false;
  let preconditionAtC1Release = false;
  let shownEarly = false;
  let triggered = false;
  let completesInTx = 0;
  let cancelInTx = false;
  // eslint-disable-next-line prefer-const
  let daemon: ReturnType<typeof createDaemon>;
  const probe: ApplyExtension = {
    name: 'probe',
    watches: ['complete', 'cancel'],
    afterApply({ command }) {
      if (command.kind === 'complete') completesInTx++;
      if (command.kind === 'cancel' && command.id === c2) cancelInTx = true;
    },
    afterCommit() {
      if (cancelInTx) c2Committed = true;
      if (completesInTx > 64 && !triggered) {
        triggered = true;
        // Right after C1's COMMIT, while its fsync runs: commit C2.
        queueMicrotask(() => void daemon.cancel(c2));
      }
      completesInTx = 0;
      cancelInTx = false;
    },
    afterRollback() {
      completesInTx = 0;
      cancelInTx = false;
    },
  };
  daemon = createDaemon({
    dataDir: dir.path,
    extensions: [probe],
    diagnostics: {
      logLevel: 'info',
      echo: {
        write(line: string) {
          if (!line.includes('operation finished')) return;
          const record = JSON.parse(line) as { op?: string };
          if (record.op === c2) {
            c2ReleasedLogged = true;
            return;
          }
          if (!sawC1Release) {
            sawC1Release = true;
            preconditionAtC1Release = c2Committed && !c2ReleasedLogged;
          }
          if (!c2ReleasedLogged && c2 !== '') {
            const view = daemon.get(c2);
            if (view?.receipt != null || daemon.receipt(c2) !== undefined) shownEarly = true;
          }
        },
      },
    },
  });
  daemon.handle('g', async () => {
    running++;
    await gate;
    return null;
  });
  daemon.handle('u', () => null);
  await daemon.start();
  try {
    const ops = [];
    for (let i = 0; i < N; i++) ops.push(daemon.submit({ type: 'g', subject: `urn:g:${i}` }));
    const views = await Promise.all(ops);
    c2 = (await daemon.submit({ type: 'u', subject: 'urn:u', runAt: Date.now() + 600_000 })).id;
    for (let i = 0; i < 500 && running < N; i++) await new Promise((r) => setTimeout(r, 10));
    expect(running).toBe(N);
    release();
    await Promise.all(views.map((v) => daemon.waitFor(v.id, { timeoutMs: 20_000 })));
    await daemon.waitFor(c2, { timeoutMs: 20_000 });
  } finally {
    await daemon.close();
  }
  return { precondition: preconditionAtC1Release, shownEarly };
}

describe('receipts shown only once durable', () => {
  it('never shows a receipt of a later commit while an earlier one is released, operation by operation', async () => {
    let last = { precondition: false, shownEarly: false };
    for (let attempt = 0; attempt < 4; attempt++) {
      last = await runOnce();
      if (last.precondition) break;
    }
    // precondition: C2 had committed (not yet durable) when C1 was released
    expect(last.precondition).toBe(true);
    expect(last.shownEarly).toBe(false);
  }, 120_000);
});
