// A real process that appends to a ledger until it is killed, printing each batch's
// highest leaf index once its append promises resolved (i.e. once it is durable).
import { openLedger } from '../../src/ledger/index.js';
import { bodyFor } from '../fixtures.js';

const [path, signerKey, durability = 'fsync-after-commit', checkpointBytes] = process.argv.slice(2);
if (!path || !signerKey) throw new Error('usage: ledger-writer <db path> <signer key> [durability] [checkpoint bytes]');
if (durability !== 'fsync-after-commit' && durability !== 'fsync-in-commit') throw new Error('bad durability');
const ledger = await openLedger({
  path,
  origin: 'example.com/crash/ledger',
  signers: [{ signer: signerKey }],
  durability,
  ...(checkpointBytes ? { checkpointBytes: Number(checkpointBytes) } : {}),
});
const start = ledger.size();
process.stdout.write(`ready ${start}\n`);
for (let n = start; n < start + 10_000_000; n += 64) {
  const batch = Array.from({ length: 64 }, (_, i) => ledger.append(bodyFor(n + i)));
  const results = await Promise.all(batch);
  process.stdout.write(`durable ${Math.max(...results.map((r) => r.leafIndex))}\n`);
}
