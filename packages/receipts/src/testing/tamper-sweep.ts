/**
 * A tamper sweep: takes honest receipts, proofs and checkpoints and derives every
 * systematic corruption of them (every bit of every field, hash and signed byte; changed
 * indices and sizes; truncated, extended and reordered proofs; swapped roots; replays
 * under other checkpoints; forks), then counts how many a verifier wrongly accepts.
 * Browser-safe, so a verifier can run it as a self-test anywhere. The package's tests
 * run a small sweep; the jtbd1-receipts benchmark runs 300,000 + 300,000 cases.
 */
import { fromHex, toHex, utf8 } from '../internal/bytes.js';
import type { Receipt } from '../receipt.js';
import type { ConsistencyProofJson, InclusionProofJson, ReceiptVerifier } from '../verify.js';

/** One honest receipt with its proof against `checkpoint` (which covers it). */
export interface HonestReceipt {
  readonly receipt: Receipt;
  readonly proof: InclusionProofJson;
  readonly checkpoint: string;
}

/** Two honest checkpoints of one ledger and the consistency proof between them. */
export interface HonestConsistency {
  readonly older: string;
  readonly newer: string;
  readonly proof: ConsistencyProofJson;
}

/** What a sweep starts from: honest material of one ledger, and material it must not accept. */
export interface SweepInput {
  readonly honest: readonly HonestReceipt[];
  /**
   * Signed checkpoints none of the honest receipts may verify against with its proof:
   * other sizes of the same ledger, other ledgers, a fork signed with the real key, notes
   * signed by untrusted keys.
   */
  readonly otherCheckpoints: readonly string[];
  readonly consistency?: readonly HonestConsistency[];
  /** Checkpoints that fork the honest ledger (same key, other history): never consistent with it. */
  readonly forkedCheckpoints?: readonly string[];
}

/** How many cases ran and which ones the verifier got wrong (both lists must be empty). */
export interface SweepResult {
  readonly honestCases: number;
  readonly tamperedCases: number;
  /** Labels of tampered cases the verifier accepted (must be empty). */
  readonly falseAccepts: readonly string[];
  /** Labels of honest cases the verifier did not accept (must be empty). */
  readonly falseRejects: readonly string[];
}

/** A mutated input and a label saying what was done. */
interface Tampered<T> {
  readonly label: string;
  readonly value: T;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

function* flipBitsOfString(text: string): Generator<string> {
  const bytes = utf8(text);
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const copy = Uint8Array.from(bytes);
      copy[i] = (copy[i] as number) ^ (1 << bit);
      const mutated = decoder.decode(copy);
      if (mutated !== text) yield mutated;
    }
  }
}

function* flipBitsOfHex(hex: string): Generator<string> {
  const bytes = fromHex(hex);
  if (!bytes) return;
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const copy = Uint8Array.from(bytes);
      copy[i] = (copy[i] as number) ^ (1 << bit);
      yield toHex(copy);
    }
  }
}

function* mutateValue(value: unknown, path: string): Generator<Tampered<unknown>> {
  if (typeof value === 'string') {
    if (/^[0-9a-f]{64}$/.test(value)) {
      let n = 0;
      for (const v of flipBitsOfHex(value)) yield { label: `${path} hash bit ${n++}`, value: v };
      if (value.toUpperCase() !== value) yield { label: `${path} upper-case`, value: value.toUpperCase() };
    }
    let n = 0;
    for (const v of flipBitsOfString(value)) yield { label: `${path} text bit ${n++}`, value: v };
    yield { label: `${path} emptied`, value: '' };
    yield { label: `${path} extended`, value: `${value}x` };
  } else if (typeof value === 'number') {
    for (let bit = 0; bit < 53; bit++) {
      const v = Number(BigInt(value) ^ (1n << BigInt(bit)));
      if (Number.isSafeInteger(v)) yield { label: `${path} bit ${bit}`, value: v };
    }
    yield { label: `${path} negated`, value: -value - 1 };
    yield { label: `${path} fractional`, value: value + 0.5 };
    yield { label: `${path} as string`, value: String(value) };
  } else if (value === null) {
    yield { label: `${path} null to hash`, value: '0'.repeat(64) };
    yield { label: `${path} null to empty`, value: '' };
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      for (const m of mutateValue(inner, `${path}.${key}`))
        yield { label: m.label, value: { ...value, [key]: m.value } };
      const { [key]: _removed, ...rest } = value as Record<string, unknown>;
      yield { label: `${path}.${key} removed`, value: rest };
    }
    yield { label: `${path} extra field`, value: { ...value, extra: 1 } };
  }
}

/** Every systematic corruption of a receipt: each field's bits, type, presence. */
export function* tamperReceipt(receipt: Receipt): Generator<Tampered<unknown>> {
  yield* mutateValue(receipt, 'receipt');
  yield { label: 'receipt null', value: null };
  yield { label: 'receipt as JSON text', value: JSON.stringify(receipt) };
}

/** Every systematic corruption of an inclusion proof. */
export function* tamperProof(proof: InclusionProofJson): Generator<Tampered<unknown>> {
  const { hashes, leafIndex, treeSize } = proof;
  for (let i = 0; i < hashes.length; i++) {
    let bit = 0;
    for (const v of flipBitsOfHex(hashes[i] as string)) {
      yield { label: `proof hash ${i} bit ${bit++}`, value: { ...proof, hashes: hashes.with(i, v) } };
    }
    yield { label: `proof hash ${i} removed`, value: { ...proof, hashes: hashes.toSpliced(i, 1) } };
    yield {
      label: `proof hash ${i} duplicated`,
      value: { ...proof, hashes: hashes.toSpliced(i, 0, hashes[i] as string) },
    };
    if (i + 1 < hashes.length && hashes[i] !== hashes[i + 1]) {
      const swapped = hashes.with(i, hashes[i + 1] as string).with(i + 1, hashes[i] as string);
      yield { label: `proof hashes ${i},${i + 1} swapped`, value: { ...proof, hashes: swapped } };
    }
  }
  if (hashes.length > 1) yield { label: 'proof reversed', value: { ...proof, hashes: hashes.toReversed() } };
  yield { label: 'proof extended with zero hash', value: { ...proof, hashes: [...hashes, '0'.repeat(64)] } };
  yield { label: 'proof extended in front', value: { ...proof, hashes: ['0'.repeat(64), ...hashes] } };
  yield { label: 'proof emptied', value: { ...proof, hashes: [] } };
  const sizes = [treeSize + 1, treeSize - 1, treeSize * 2, 0, 2 ** 53 - 1, leafIndex, -1, 1.5];
  for (const s of sizes) if (s !== treeSize) yield { label: `proof treeSize ${s}`, value: { ...proof, treeSize: s } };
  const indices = [leafIndex + 1, leafIndex - 1, 0, treeSize, treeSize - 1, -1, 0.5, leafIndex ^ 1];
  for (const i of indices)
    if (i !== leafIndex) yield { label: `proof leafIndex ${i}`, value: { ...proof, leafIndex: i } };
  yield { label: 'proof not an object', value: hashes };
  yield { label: 'proof extra field', value: { ...proof, root: hashes[0] ?? '' } };
}

/** Every single-bit corruption of a signed note's bytes, plus structural damage. */
export function* tamperNote(note: string): Generator<Tampered<unknown>> {
  let n = 0;
  for (const v of flipBitsOfString(note)) yield { label: `checkpoint bit ${n++}`, value: v };
  const lines = note.split('\n');
  yield { label: 'checkpoint signature removed', value: lines.slice(0, -2).join('\n').concat('\n') };
  yield { label: 'checkpoint truncated', value: note.slice(0, -1) };
  yield { label: 'checkpoint doubled text', value: note.replace('\n\n', `\n${lines[0]}\n\n`) };
  yield { label: 'checkpoint not a string', value: utf8(note) };
}

/**
 * Runs the sweep against a verifier. `onProgress` is called every 10,000 cases.
 * @example
 * const result = runTamperSweep(input, createReceiptVerifier({ trustedKeys: ledger.trustedKeys }));
 * if (result.falseAccepts.length > 0) throw new Error('verifier accepted a forgery');
 */
export function runTamperSweep(
  input: SweepInput,
  verifier: ReceiptVerifier,
  onProgress?: (honest: number, tampered: number) => void,
): SweepResult {
  let honestCases = 0;
  let tamperedCases = 0;
  const falseAccepts: string[] = [];
  const falseRejects: string[] = [];
  const tick = () => {
    if (onProgress && (honestCases + tamperedCases) % 10_000 === 0) onProgress(honestCases, tamperedCases);
  };
  const tampered = (label: string, receipt: unknown, proof: unknown, checkpoint: unknown) => {
    tamperedCases++;
    if (verifier.verify(receipt, proof, checkpoint).status === 'valid') falseAccepts.push(label);
    tick();
  };
  input.honest.forEach((h, k) => {
    honestCases++;
    if (verifier.verify(h.receipt, h.proof, h.checkpoint).status !== 'valid') falseRejects.push(`honest ${k}`);
    tick();
    for (const m of tamperReceipt(h.receipt)) tampered(`#${k} ${m.label}`, m.value, h.proof, h.checkpoint);
    for (const m of tamperProof(h.proof)) tampered(`#${k} ${m.label}`, h.receipt, m.value, h.checkpoint);
    for (const m of tamperNote(h.checkpoint)) tampered(`#${k} ${m.label}`, h.receipt, h.proof, m.value);
    input.otherCheckpoints.forEach((other, j) => {
      tampered(`#${k} replayed under other checkpoint ${j}`, h.receipt, h.proof, other);
    });
    // Another receipt's proof, and this proof with another receipt (same checkpoint).
    const next = input.honest[(k + 1) % input.honest.length];
    if (next && next.receipt.leafIndex !== h.receipt.leafIndex && next.checkpoint === h.checkpoint) {
      tampered(`#${k} proof of another leaf`, h.receipt, next.proof, h.checkpoint);
      tampered(
        `#${k} receipt moved to another leaf`,
        { ...h.receipt, leafIndex: next.receipt.leafIndex },
        next.proof,
        h.checkpoint,
      );
    }
  });
  for (const [k, c] of (input.consistency ?? []).entries()) {
    honestCases++;
    if (verifier.verifyConsistency(c.older, c.newer, c.proof).status !== 'valid') falseRejects.push(`consistency ${k}`);
    const check = (label: string, older: unknown, newer: unknown, proof: unknown) => {
      tamperedCases++;
      if (verifier.verifyConsistency(older, newer, proof).status === 'valid') falseAccepts.push(label);
      tick();
    };
    c.proof.hashes.forEach((hash, i) => {
      let bit = 0;
      for (const v of flipBitsOfHex(hash)) {
        check(`consistency ${k} hash ${i} bit ${bit++}`, c.older, c.newer, {
          ...c.proof,
          hashes: c.proof.hashes.with(i, v),
        });
      }
      check(`consistency ${k} hash ${i} removed`, c.older, c.newer, {
        ...c.proof,
        hashes: c.proof.hashes.toSpliced(i, 1),
      });
    });
    check(`consistency ${k} oldSize+1`, c.older, c.newer, { ...c.proof, oldSize: c.proof.oldSize + 1 });
    for (const [j, fork] of (input.forkedCheckpoints ?? []).entries()) {
      check(`consistency ${k} older vs fork ${j}`, c.older, fork, c.proof);
      check(`consistency ${k} newer vs fork ${j}`, c.newer, fork, c.proof);
    }
  }
  return { honestCases, tamperedCases, falseAccepts, falseRejects };
}
