// The Node-only part of @unrdf/receipts: the SQLite ledger, key files and node:crypto
// backends. Import it as `@unrdf/receipts/ledger`; the package index stays browser-safe.
export { generateKeyFiles, type KeyFiles, loadSignerKeyFile, loadVerifierKeyFile } from './key-file.js';
export {
  type AppendedReceipt,
  type Ledger,
  type OpenLedgerOptions,
  OpenLedgerOptionsSchema,
  openLedger,
  openLedgerSync,
  type ReceiptBundle,
} from './ledger.js';
export { nodeSigner } from './node-crypto.js';
