// Appends to a fresh ledger (fsync-after-commit, 256 KiB checkpoints) until its WAL
// restarts under a transaction long enough to reach past the old WAL's first one, then
// saves what was on disk around that restart: the database file, the WAL before the
// restart (as synced when the previous batch resolved) and after it. Prints
// `restart <receipts acknowledged before it>`, or `none`. Run under strace by
// crash.test.ts, which reads the order of the writes and syncs from the trace.
import { readFileSync, writeFileSync } from 'node:fs';
import { openLedger } from '../../src/ledger/index.js';
import { bodies } from '../fixtures.js';
import { firstCommitFrame } from '../wal-format.js';

const [path, signerKey, origin, outPrefix] = process.argv.slice(2);
if (!path || !signerKey || !origin || !outPrefix) {
  throw new Error('usage: ledger-wal-restart <db path> <signer key> <origin> <output prefix>');
}

const checkpointBytes = 256 * 1024;
const frameBytes = 24 + 4096;
const ledger = await openLedger({ path, origin, signers: [{ signer: signerKey }], checkpointBytes });
let acked = 0;
let found = false;
let previous = readFileSync(`${path}-wal`);
for (let round = 0; round < 400 && !found; round++) {
  const n = round % 5 === 4 ? 60 : 2; // mostly small batches, now and then a backlog
  const before = acked;
  await Promise.all(bodies(n, acked).map((b) => ledger.append(b)));
  acked += n;
  const wal = readFileSync(`${path}-wal`);
  // New salts: the WAL restarted and this batch is its first transaction.
  if (wal.length >= 32 && previous.length >= 32 && wal.readUInt32BE(16) !== previous.readUInt32BE(16)) {
    const oldCommit = firstCommitFrame(previous, 4096);
    const newCommit = firstCommitFrame(wal, 4096);
    // Below checkpointBytes, this batch started no checkpoint: no worker thread is copying
    // into the database file while it is read here (a main-thread one cannot interleave).
    if (oldCommit >= 0 && newCommit > oldCommit + 1 && 32 + (newCommit + 1) * frameBytes <= checkpointBytes) {
      writeFileSync(`${outPrefix}.db`, readFileSync(path));
      writeFileSync(`${outPrefix}.old-wal`, previous);
      writeFileSync(`${outPrefix}.new-wal`, wal);
      process.stdout.write(`restart ${before}\n`);
      found = true;
    }
  }
  previous = wal;
}
await ledger.close();
if (!found) process.stdout.write('none\n');
