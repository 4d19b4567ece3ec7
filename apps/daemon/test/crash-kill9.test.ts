// kill -9 under load, 20 times: the reference app as a real process on loopback, with
// create/update/sleep operations submitted concurrently over HTTP while it dies. What
// must hold: nothing acknowledged (202) is lost, every finished operation has exactly
// one receipt, the signed checkpoints before and after every crash are consistent
// (RFC 9162 §2.1.4), every receipt verifies offline with the CLI, and every RDF entity
// holds exactly the changes of its completed operations (committed with their final states).
import { readFileSync, writeFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { type TrustedKey, verifyCheckpointConsistency } from '@unrdf/receipts';
import { type NodeProcess, spawnNode, type TempDir, tempDir } from '@unrdf/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The bin, run on plain Node as users run it (it loads the sources itself). */
const BIN = fileURLToPath(new URL('../bin/unrdf-daemon.mjs', import.meta.url));

// Explicit bounds of the whole run (2 cores: about 1 s per restart, short bursts between kills).
const KILLS = 20;
const WORKERS = 8;
/** A burst ends with the kill once this many submits of the round were acknowledged (random in range). */
const ACKS_PER_BURST = { min: 8, max: 30 } as const;
const START_TIMEOUT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 10_000;
const SETTLE_TIMEOUT_MS = 60_000;
const CLI_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 180_000;

const CLEAN_ENV = { UNRDF_URL: '', UNRDF_TOKEN: '', UNRDF_DATA_DIR: '', INIT_CWD: '' };
const FINAL = new Set(['completed', 'dead', 'cancelled']);

/** A small seeded PRNG (mulberry32) so a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Checkpoint {
  readonly treeSize: number;
  readonly note: string;
  readonly where: string;
}

interface Running {
  readonly process: NodeProcess;
  readonly url: string;
}

async function startApp(dataDir: string): Promise<Running> {
  const child = spawnNode(BIN, { tsx: false, args: ['start', '--data-dir', dataDir, '--port', '0'], env: CLEAN_ENV });
  const line = await child.waitForLine(/"msg":"listening"/, START_TIMEOUT_MS);
  return { process: child, url: (JSON.parse(line.input ?? '') as { url: string }).url };
}

const treeSizeOf = (note: string) => Number(note.split('\n')[1]);

/** Runs `task` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(lanes);
}

describe('the app under kill -9', () => {
  let dir: TempDir;
  let running: Running | undefined;

  beforeAll(async () => {
    dir = await tempDir('crash');
  });

  afterAll(async () => {
    await running?.process.kill9();
    await dir.remove();
  }, 20_000);

  it(
    `loses no acknowledged operation and keeps one receipt per operation over ${KILLS} kills under load`,
    async () => {
      const began = performance.now();
      const seed = Date.now() % 1_000_000;
      const random = prng(seed);
      const dataDir = dir.join('data');
      const acknowledged = new Map<string, string>(); // id -> type
      const createdSubjects: string[] = [];
      const checkpoints: Checkpoint[] = [];
      let token = '';
      let subjectCounter = 0;
      let unacknowledged = 0;

      const api = async (url: string, path: string, init: RequestInit = {}) =>
        fetch(`${url}${path}`, {
          ...init,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });

      const latestCheckpoint = async (url: string, where: string): Promise<Checkpoint | undefined> => {
        const response = await api(url, '/v1/checkpoint');
        if (response.status === 404) return undefined;
        expect(response.status).toBe(200);
        const note = await response.text();
        return { treeSize: treeSizeOf(note), note, where };
      };

      const trustedKeys = async (url: string): Promise<TrustedKey[]> => {
        const response = await api(url, '/v1/keys');
        expect(response.status).toBe(200);
        return ((await response.json()) as { keys: TrustedKey[] }).keys;
      };

      /** Proves the newest recorded checkpoints consistent with the one before them, through the API. */
      const checkConsistency = async (url: string, from: Checkpoint, to: Checkpoint, keys: readonly TrustedKey[]) => {
        if (from.treeSize === to.treeSize) {
          expect(to.note, `${from.where} -> ${to.where}`).toBe(from.note);
          return;
        }
        expect(to.treeSize, `${from.where} -> ${to.where}: the ledger never shrinks`).toBeGreaterThan(from.treeSize);
        const response = await api(url, `/v1/checkpoint/consistency?from=${from.treeSize}&to=${to.treeSize}`);
        expect(response.status).toBe(200);
        const answer = (await response.json()) as {
          from: { checkpoint: string };
          to: { checkpoint: string };
          proof: unknown;
        };
        // The daemon still serves the very checkpoints we saw (the same signed bytes).
        expect(answer.from.checkpoint).toBe(from.note);
        expect(answer.to.checkpoint).toBe(to.note);
        const verdict = verifyCheckpointConsistency(from.note, to.note, answer.proof, keys);
        expect(verdict, `${from.where} -> ${to.where}`).toEqual({ status: 'valid' });
      };

      let checked = 0;
      /** Checks every consecutive pair of recorded checkpoints not checked yet. */
      const checkPending = async (url: string, keys: readonly TrustedKey[]) => {
        for (; checked + 1 < checkpoints.length; checked++) {
          await checkConsistency(url, checkpoints[checked] as Checkpoint, checkpoints[checked + 1] as Checkpoint, keys);
        }
      };

      const nextOperation = () => {
        const roll = random();
        if (roll < 0.4 || createdSubjects.length === 0) {
          const subject = `https://example.org/crash/${++subjectCounter}`;
          return {
            type: 'create',
            subject,
            input: { data: `<${subject}> <https://example.org/value> "0" .` },
            onAck: () => createdSubjects.push(subject),
          };
        }
        if (roll < 0.7) {
          const subject = createdSubjects[Math.floor(random() * createdSubjects.length)] as string;
          return {
            type: 'update',
            subject,
            input: { data: `<${subject}> <https://example.org/value> "${Math.floor(random() * 1e9)}" .` },
            onAck: () => {},
          };
        }
        return {
          type: 'sleep',
          subject: `urn:example:sleep:${Math.floor(random() * 8)}`,
          input: { ms: Math.floor(random() * 30) },
          onAck: () => {},
        };
      };

      /** Submits concurrently until `target` submits of this burst are acknowledged, then kills the process. */
      const burstAndKill = async (app: Running, round: number) => {
        const target = ACKS_PER_BURST.min + Math.floor(random() * (ACKS_PER_BURST.max - ACKS_PER_BURST.min + 1));
        let acks = 0;
        let killed = false;
        let killing: Promise<void> | undefined;
        const kill = () => {
          killing ??= (async () => {
            // The checkpoint at the kill point: served while submits are still in flight.
            const atKill = await latestCheckpoint(app.url, `kill ${round}`).catch(() => undefined);
            await app.process.kill9();
            killed = true;
            if (atKill !== undefined) checkpoints.push(atKill);
          })();
          return killing;
        };
        const worker = async () => {
          while (!killed) {
            const op = nextOperation();
            try {
              const response = await api(app.url, '/v1/operations', {
                method: 'POST',
                body: JSON.stringify({ type: op.type, subject: op.subject, input: op.input }),
              });
              if (response.status !== 202) {
                throw new Error(`submit answered ${response.status}: ${await response.text()}`);
              }
              const { id } = (await response.json()) as { id: string };
              acknowledged.set(id, op.type);
              op.onAck();
              if (++acks >= target) void kill();
            } catch (error) {
              // Connection refused or reset by the kill: not acknowledged, so nothing is promised.
              if (!(error instanceof TypeError) && !(error instanceof DOMException)) throw error;
              unacknowledged++;
              await killing;
              return;
            }
          }
        };
        await Promise.all(Array.from({ length: WORKERS }, worker));
        await kill();
      };

      const seenIds = (dataDirPath: string) => {
        const db = new DatabaseSync(`${dataDirPath}/daemon.db`, { readOnly: true });
        try {
          return new Set((db.prepare('SELECT id FROM operations').all() as { id: string }[]).map((r) => r.id));
        } finally {
          db.close();
        }
      };

      let lastRoundIds: string[] = [];
      for (let round = 1; round <= KILLS + 1; round++) {
        running = await startApp(dataDir);
        const app = running;
        if (token === '') token = readFileSync(`${dataDir}/admin.token`, 'utf8').trim();

        // Every acknowledged operation is there after the restart: all of them in the store,
        // and those of the last burst (the ones the kill could have hit) through the API too.
        const stored = seenIds(dataDir);
        const missing = [...acknowledged.keys()].filter((id) => !stored.has(id));
        expect(missing, `acknowledged operations missing after restart ${round - 1}`).toEqual([]);
        await pool(lastRoundIds, 8, async (id) => {
          const response = await api(app.url, `/v1/operations/${id}`);
          expect(response.status, `operation ${id} after restart ${round - 1}`).toBe(200);
        });

        // The checkpoint served at the last kill point and the one served now, proven consistent
        // by the restarted process (and so on along the whole sequence).
        const afterRestart = await latestCheckpoint(app.url, `restart ${round - 1}`);
        if (afterRestart !== undefined) checkpoints.push(afterRestart);
        await checkPending(app.url, await trustedKeys(app.url));
        if (round > KILLS) break;

        const ackedBefore = new Set(acknowledged.keys());
        await burstAndKill(app, round);
        lastRoundIds = [...acknowledged.keys()].filter((id) => !ackedBefore.has(id));
        running = undefined;
      }

      // The last start: let everything finish.
      const app = running as Running;
      const keys = await trustedKeys(app.url);
      const ids = [...acknowledged.keys()];
      const views = new Map<
        string,
        { state: string; outcome: string | null; receipt: unknown; error: unknown; attempts: number }
      >();
      const settleBy = performance.now() + SETTLE_TIMEOUT_MS;
      await pool(ids, 16, async (id) => {
        for (;;) {
          const wait = Math.max(0, Math.min(30_000, Math.floor(settleBy - performance.now())));
          const response = await fetch(`${app.url}/v1/operations/${id}?wait=${wait}`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(wait + REQUEST_TIMEOUT_MS),
          });
          expect(response.status).toBe(200);
          const view = (await response.json()) as {
            state: string;
            outcome: string | null;
            receipt: unknown;
            error: unknown;
            attempts: number;
          };
          if ((FINAL.has(view.state) && view.receipt !== null) || performance.now() >= settleBy) {
            views.set(id, view);
            return;
          }
        }
      });
      const notFinal = [...views].filter(([, v]) => !FINAL.has(v.state) || v.receipt === null);
      expect(notFinal, 'operations not final with a receipt in time').toEqual([]);
      const failed = [...views].filter(([, v]) => v.outcome !== 'succeeded');
      expect(failed, 'operations that did not succeed').toEqual([]);

      // Every receipt verifies offline, with the CLI, against the keys the API serves.
      writeFileSync(dir.join('keys.json'), JSON.stringify({ keys }));
      const bundleFiles: string[] = [];
      await pool(ids, 16, async (id) => {
        const response = await api(app.url, `/v1/operations/${id}/receipt`);
        expect(response.status).toBe(200);
        const file = dir.join(`receipt-${id}.json`);
        writeFileSync(file, await response.text());
        bundleFiles.push(file);
      });
      const final = await latestCheckpoint(app.url, 'final');
      if (final !== undefined) checkpoints.push(final);
      await checkPending(app.url, keys);
      expect(checked).toBe(checkpoints.length - 1);
      const verify = spawnNode(BIN, {
        tsx: false,
        args: ['verify', ...bundleFiles, '--key', dir.join('keys.json')],
        env: CLEAN_ENV,
      });
      const timer = setTimeout(() => verify.child.kill('SIGKILL'), CLI_TIMEOUT_MS);
      const { code: verifyCode } = await verify.exited;
      clearTimeout(timer);
      expect(verify.stderr()).toBe('');
      expect(verifyCode).toBe(0);
      expect(verify.stdout().match(/^valid: /gm)?.length).toBe(ids.length);

      // A clean stop, then the ledger itself: one leaf per finished operation, no operation twice.
      running = undefined;
      expect(await app.process.stop(15_000)).toBe(0);
      const db = new DatabaseSync(dir.join('data', 'daemon.db'), { readOnly: true });
      let leaves: { n: number; ops: number; size: number };
      let finalOperations: number;
      let receiptIds: Set<string>;
      let appliedBySubject: Map<string, number>;
      let entities: { subject: string; version: number; lastOpState: string | null }[];
      try {
        // The entities changed in the same commits as their operations' final states: an entity's
        // version is the number of its completed create/update operations, and its last writer is
        // a completed operation.
        appliedBySubject = new Map(
          (
            db
              .prepare(
                `SELECT json_extract(payload, '$.subject') AS subject, count(*) AS n FROM operations
                 WHERE state = 'completed' AND type IN ('create', 'update') GROUP BY subject`,
              )
              .all() as { subject: string; n: number }[]
          ).map((r) => [r.subject, r.n]),
        );
        entities = db
          .prepare(
            `SELECT e.subject, e.version, o.state AS lastOpState FROM rdf_entity e
             LEFT JOIN operations o ON o.id = e.last_op_id`,
          )
          .all() as typeof entities;
        leaves = db
          .prepare(
            'SELECT count(*) AS n, count(DISTINCT operation_id) AS ops, coalesce(max(leaf_index) + 1, 0) AS size FROM receipts_leaves',
          )
          .get() as typeof leaves;
        finalOperations = (
          db
            .prepare("SELECT count(*) AS n FROM operations WHERE state IN ('completed', 'dead', 'cancelled')")
            .get() as { n: number }
        ).n;
        receiptIds = new Set(
          (db.prepare('SELECT operation_id FROM receipts_leaves').all() as { operation_id: string }[]).map(
            (r) => r.operation_id,
          ),
        );
      } finally {
        db.close();
      }
      expect(leaves.ops).toBe(leaves.n);
      expect(leaves.size).toBe(leaves.n);
      expect(leaves.n).toBe(finalOperations);
      expect(ids.filter((id) => !receiptIds.has(id))).toEqual([]);
      expect(entities.length).toBeGreaterThan(0);
      expect(entities.length).toBe(appliedBySubject.size);
      for (const entity of entities) {
        expect(entity.lastOpState, entity.subject).toBe('completed');
        expect(entity.version, entity.subject).toBe(appliedBySubject.get(entity.subject));
      }

      const seconds = (performance.now() - began) / 1000;
      console.log(
        `crash-kill9: seed ${seed}, ${KILLS} kills, ${acknowledged.size} acknowledged operations ` +
          `(${[...acknowledged.values()].filter((t) => t === 'create').length} create, ` +
          `${[...acknowledged.values()].filter((t) => t === 'update').length} update, ` +
          `${[...acknowledged.values()].filter((t) => t === 'sleep').length} sleep), ` +
          `${unacknowledged} submits cut off by a kill, ${leaves.n} receipts for ${finalOperations} final operations, ` +
          `${[...views.values()].filter((v) => v.attempts > 1).length} re-run after a crash, ` +
          `${checkpoints.length} checkpoints each proven consistent with the one before, ${seconds.toFixed(1)} s`,
      );
    },
    TEST_TIMEOUT_MS,
  );
});
