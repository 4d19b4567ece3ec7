// A real process whose last act is closing a ledger that checkpointed its WAL on the
// worker thread: it must finish closing (and print so) before the process exits.
import { openLedger } from '../../src/ledger/index.js';
import { bodies } from '../fixtures.js';

const [path, signerKey] = process.argv.slice(2);
if (!path || !signerKey) throw new Error('usage: ledger-close-last <db path> <signer key>');
const ledger = await openLedger({
  path,
  origin: 'example.com/close/ledger',
  signers: [{ signer: signerKey }],
  checkpointBytes: 64 * 1024,
});
for (let round = 0; round < 40; round++) await Promise.all(bodies(8, round * 8).map((b) => ledger.append(b)));
await ledger.close();
process.stdout.write(`closed ${320}\n`);
