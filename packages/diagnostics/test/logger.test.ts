import { readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnNode, tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import { createHlc, createNodeLogger, decodeHlc, mergeLogs, readLogSegments } from '../src/index.js';

describe('createNodeLogger', () => {
  it('stamps every record with node id, a gapless seq and an increasing HLC', async () => {
    await using log = createNodeLogger({ nodeId: 'n1', level: 'info' });
    log.logger.info('one');
    log.logger.debug('filtered out: takes no seq');
    log.logger.child({ component: 'queue' }).warn({ op: 'op-1' }, 'two');
    log.logger.error(new Error('boom'), 'three');
    const page = await log.read();
    expect(page.records.map((r) => [r.node, r.seq, r.msg])).toEqual([
      ['n1', 1, 'one'],
      ['n1', 2, 'two'],
      ['n1', 3, 'three'],
    ]);
    expect(page.records[1]).toMatchObject({ component: 'queue', op: 'op-1', level: 40 });
    const stamps = page.records.map((r) => r.hlc);
    expect([...stamps].sort()).toEqual(stamps);
    expect(new Set(stamps).size).toBe(3);
    expect(decodeHlc(stamps[0] ?? '')).toBeDefined();
    expect(page.lastSeq).toBe(3);
  });

  it('echoes every record it keeps to the echo stream, as the same JSON line', async () => {
    const echoed: string[] = [];
    await using log = createNodeLogger({ nodeId: 'n1', echo: { write: (line: string) => echoed.push(line) } });
    log.logger.info({ op: 'op-1' }, 'one');
    log.logger.debug('filtered out');
    const page = await log.read();
    expect(echoed).toHaveLength(1);
    expect(JSON.parse(echoed[0] ?? '')).toEqual(page.records[0]);
  });

  it('does not let a caller forge node, seq or hlc', async () => {
    await using log = createNodeLogger({ nodeId: 'n1' });
    log.logger.info({ node: 'evil', seq: 999, hlc: 'x' }, 'forged?');
    log.logger.child({ node: 'child' }).info('bound?');
    const records = (await log.read()).records;
    expect(records.map((r) => [r.node, r.seq])).toEqual([
      ['n1', 1],
      ['n1', 2],
    ]);
    expect(decodeHlc(records[0]?.hlc ?? '')).toBeDefined();
  });

  it("neither changes the caller's object nor fails on a frozen one", async () => {
    await using log = createNodeLogger({ nodeId: 'n1' });
    const context: Record<string, unknown> = { op: 'op-1' };
    log.logger.info(context, 'hello');
    expect(context).toEqual({ op: 'op-1' });
    expect(() => log.logger.info(Object.freeze({ op: 'op-2' }), 'frozen context')).not.toThrow();
    const records = (await log.read()).records;
    expect(records.map((r) => [r.seq, r.op])).toEqual([
      [1, 'op-1'],
      [2, 'op-2'],
    ]);
  });

  it('leaves no seq hole when a log call throws after the record was stamped', async () => {
    await using log = createNodeLogger({ nodeId: 'n1' });
    log.logger.info('one');
    const throwing = {
      get detail(): string {
        throw new Error('getter failed');
      },
    };
    expect(() => log.logger.info(throwing, 'two')).toThrow('getter failed');
    log.logger.info('three');
    const page = await log.read();
    expect(page.records.map((r) => [r.seq, r.msg])).toEqual([
      [1, 'one'],
      [2, 'three'],
    ]);
    expect(page.lastSeq).toBe(2);
  });

  it('keeps memory bounded and reads older records back from disk', async () => {
    await using dir = await tempDir('diag-log');
    await using log = createNodeLogger({ nodeId: 'n1', ringSize: 50, segmentDir: dir.path });
    for (let i = 0; i < 500; i++) log.logger.info({ i }, 'r');
    const cursorPage = await log.read({ afterSeq: 100, limit: 1000 });
    expect(cursorPage.records.map((r) => r.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 101));
    const tail = await log.read({ limit: 10 });
    expect(tail.records.map((r) => r.seq)).toEqual([491, 492, 493, 494, 495, 496, 497, 498, 499, 500]);
    expect(tail.truncated).toBe(true);
    expect(tail.oldestAvailableSeq).toBe(1);
  });

  it('filters by wall time and drops segments past retention', async () => {
    await using dir = await tempDir('diag-log');
    let now = 1_700_000_000_000;
    const clock = () => now;
    await using log = createNodeLogger({
      nodeId: 'n1',
      clock,
      hlc: createHlc({ clock }),
      ringSize: 10,
      segmentDir: dir.path,
      segmentSpanMs: 60_000,
      retentionMs: 5 * 60_000,
    });
    for (let minute = 0; minute < 12; minute++) {
      for (let i = 0; i < 5; i++) log.logger.info({ minute }, 'tick');
      now += 60_000;
    }
    log.flushSync();
    const segments = readdirSync(dir.path).filter((name) => name.startsWith('seg-'));
    expect(segments.length).toBeLessThanOrEqual(7); // ~5 minutes of 1-minute segments, plus the open one
    const recent = await log.read({ sinceWallMs: now - 3 * 60_000 });
    expect(new Set(recent.records.map((r) => r.minute))).toEqual(new Set([9, 10, 11]));
    expect(recent.records).toHaveLength(15);
    const onDisk = await readLogSegments(dir.path);
    expect(onDisk.at(-1)?.seq).toBe(60);
    expect(onDisk[0]?.minute).toBeGreaterThanOrEqual(5);
  });

  it('continues the seq after a restart on the same segments', async () => {
    await using dir = await tempDir('diag-log');
    const first = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path });
    for (let i = 0; i < 7; i++) first.logger.info('before');
    await first.close();
    await using second = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path });
    second.logger.info('after');
    expect(second.lastSeq()).toBe(8);
    second.flushSync();
    expect((await readLogSegments(dir.path)).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('never reuses a seq after an unclean stop, and declares the skipped ones', async () => {
    await using dir = await tempDir('diag-log');
    const crashed = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path });
    for (let i = 0; i < 5; i++) crashed.logger.info('before the crash');
    crashed.flushSync(); // seqs 1-5 reach the disk; 1-10000 are reserved; then no close()
    crashed.logger.info('in memory only: lost in the crash'); // seq 6, read by a collector, never on disk
    const seen = (await crashed.read()).records;
    await using reopened = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path });
    reopened.logger.info('after the restart');
    const after = (await reopened.read({ afterSeq: 6 })).records;
    expect(after.map((r) => [r.seq, r.msg])).toEqual([
      [10_001, 'log reopened after an unclean stop; these seqs were never written to disk'],
      [10_002, 'after the restart'],
    ]);
    expect(after[0]?.seqSkipped).toEqual([6, 10_000]);
    const merged = mergeLogs([
      { nodeId: 'n1', records: [...seen, ...after], nodeLastSeq: 10_002, expectedFirstSeq: 1 },
    ]);
    expect(merged.records).toHaveLength(8); // nothing dropped as a duplicate
    expect(merged.completeness[0]).toMatchObject({ status: 'complete', gaps: [], skipped: [[6, 10_000]] });
    await crashed.close();
  });

  it('declares the skipped seqs whatever the level, even one that filters warn', async () => {
    for (const level of ['error', 'silent'] as const) {
      await using dir = await tempDir('diag-log');
      // A previous process reserved seqs 1-10000 and crashed before writing any.
      writeFileSync(dir.join('seq.reserved'), '10000');
      await using log = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path, level });
      log.logger.error('after the restart');
      const page = await log.read();
      expect(page.records[0]?.seqSkipped).toEqual([1, 10_000]);
      const merged = mergeLogs([
        { nodeId: 'n1', records: page.records, nodeLastSeq: page.lastSeq, expectedFirstSeq: 1 },
      ]);
      expect(merged.completeness[0]).toMatchObject({ status: 'complete', skipped: [[1, 10_000]], missing: 0 });
    }
  });

  it('continues the HLC after a restart, even when the wall clock stepped back', async () => {
    await using dir = await tempDir('diag-log');
    let now = 1_800_000_000_000;
    const first = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path, clock: () => now });
    first.logger.info('before the restart');
    first.logger.info('before the restart');
    await first.close();
    now -= 2000; // NTP stepped the clock back 2 s while the process restarted
    const second = createNodeLogger({ nodeId: 'n1', segmentDir: dir.path, clock: () => now });
    second.logger.info('after the restart');
    await second.close();
    const records = await readLogSegments(dir.path);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    // Encoded stamps sort as the clock orders them.
    const [, beforeRestart, afterRestart] = records.map((r) => r.hlc);
    expect((afterRestart ?? '') > (beforeRestart ?? '')).toBe(true);
    expect(mergeLogs([{ nodeId: 'n1', records, nodeLastSeq: 3 }]).records.map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  it('reads on when retention deletes a segment during the read, and says the page is cut', async () => {
    await using dir = await tempDir('diag-log');
    let now = 1_800_000_000_000;
    await using log = createNodeLogger({
      nodeId: 'n1',
      segmentDir: dir.path,
      clock: () => now,
      ringSize: 2,
      segmentSpanMs: 1000,
      retentionMs: 5000,
    });
    for (let i = 0; i < 4; i++) {
      log.logger.info({ i }, 'r');
      now += 1000;
    }
    const reading = log.read(); // lists the segments, then reads them asynchronously
    now += 10_000;
    log.logger.info('late'); // rotates: retention deletes the oldest segments meanwhile
    const page = await reading;
    expect(page.truncated).toBe(true);
    expect(page.records.at(-1)?.msg).toBe('late');
  });

  it('loses nothing when the process calls process.exit right after logging', async () => {
    await using dir = await tempDir('diag-log');
    const script = fileURLToPath(new URL('./fixtures/log-then-exit.ts', import.meta.url));
    await using child = spawnNode(script, { args: [dir.path, '2000'] });
    const { code } = await child.exited;
    expect(code).toBe(0);
    const records = await readLogSegments(dir.path);
    expect(records).toHaveLength(2000);
    expect(records.at(-1)).toMatchObject({ node: 'exit-node', seq: 2000, i: 1999 });
  });
});
