// The browser-safe core: nothing here imports a node: module. The SQLite ledger and
// key files live behind the `@unrdf/receipts/ledger` subpath.
export { InvalidInputError, KeyError, LedgerError, MerkleRangeError, ReceiptsError } from './errors.js';
export {
  consistencyProof,
  hashChildren,
  hashLeaf,
  inclusionProof,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
