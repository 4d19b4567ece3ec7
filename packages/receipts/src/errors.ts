/**
 * The base of every error this package throws: a stable `code` to branch on and a
 * message that says what to do next.
 */
export abstract class ReceiptsError extends Error {
  abstract readonly code: string;
}

/** An argument is outside the range the operation is defined for (a caller's bug). */
export class MerkleRangeError extends ReceiptsError {
  override readonly name = 'MerkleRangeError';
  readonly code = 'UNRDF_RECEIPTS_MERKLE_RANGE';
}

/** Input from outside (JSON, a note, a key) failed validation; `issues` lists `path: message` lines. */
export class InvalidInputError extends ReceiptsError {
  override readonly name = 'InvalidInputError';
  readonly code = 'UNRDF_RECEIPTS_INVALID_INPUT';
  readonly what: string;
  readonly issues: readonly string[];
  constructor(what: string, issues: readonly string[], options?: ErrorOptions) {
    super(`Invalid ${what}: ${issues.join('; ')}. Fix the input and retry.`, options);
    this.what = what;
    this.issues = issues;
  }
}

/** A signing or verifier key is malformed, has the wrong permissions, or does not match its id. */
export class KeyError extends ReceiptsError {
  override readonly name = 'KeyError';
  readonly code = 'UNRDF_RECEIPTS_KEY';
}

/** The ledger's storage is closed, corrupt, or was used outside the transaction contract. */
export class LedgerError extends ReceiptsError {
  override readonly name = 'LedgerError';
  readonly code = 'UNRDF_RECEIPTS_LEDGER';
}
