// The browser-safe core: nothing here imports a node: module. The SQLite ledger and
// key files live behind the `@unrdf/receipts/ledger` subpath.

export {
  type Checkpoint,
  formatCheckpoint,
  type OpenedCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  type TrustedKey,
} from './checkpoint.js';
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
export {
  cosignNote,
  encodeSignerKey,
  encodeVerifierKey,
  generateNoteKey,
  keyIdOf,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from './note.js';
export {
  batchMemberProof,
  buildBatchBody,
  buildReceipt,
  createOperationId,
  encodeReceipt,
  type LedgerPosition,
  MAX_RECEIPT_JSON_BYTES,
  type OperationType,
  parseReceipt,
  parseReceiptBody,
  RECEIPT_FORMAT,
  type Receipt,
  type ReceiptBody,
  ReceiptSchema,
  receiptHash,
  receiptLeafHash,
  type SingleReceiptBody,
  verifyBatchMember,
} from './receipt.js';
export {
  type ConsistencyProofJson,
  ConsistencyProofSchema,
  createReceiptVerifier,
  type InclusionProofJson,
  InclusionProofSchema,
  type ReceiptVerifier,
  type ReceiptVerifierOptions,
  type Verdict,
  verifyCheckpointConsistency,
  verifyReceipt,
  verifyReceiptChain,
} from './verify.js';
