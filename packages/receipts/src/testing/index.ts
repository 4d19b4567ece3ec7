// `@unrdf/receipts/testing`: conformance self-tests for verifiers (browser-safe).
export {
  type HonestConsistency,
  type HonestReceipt,
  runTamperSweep,
  type SweepInput,
  type SweepResult,
  tamperNote,
  tamperProof,
  tamperReceipt,
} from './tamper-sweep.js';
