import { hash } from 'node:crypto';
import { Lexer, Parser, type Quad, type Term } from 'n3';
import rdfCanonize from 'rdf-canonize';

/** The RDF syntaxes an entity description may be written in. */
export const RDF_FORMATS = ['text/turtle', 'application/n-triples'] as const;
export type RdfFormat = (typeof RDF_FORMATS)[number];

/** Bounds on one entity description (defaults: 1 MiB, 10 000 triples, 1 s of canonicalization). */
export interface DescriptionLimits {
  readonly maxDataBytes: number;
  readonly maxTriples: number;
  readonly canonicalizeTimeoutMs: number;
}

export const DEFAULT_LIMITS: DescriptionLimits = Object.freeze({
  maxDataBytes: 1024 * 1024,
  maxTriples: 10_000,
  canonicalizeTimeoutMs: 1000,
});

/** An entity description, checked and in canonical form. */
export interface CanonicalDescription {
  /** The one IRI subject of the description (the entity). */
  readonly subject: string;
  /** RDFC-1.0 canonical N-Quads: one line per distinct triple, sorted, each ending in `\n`. */
  readonly nquads: string;
  readonly triples: number;
}

/** Either a canonical description or the `path: message` lines saying why the data was refused. */
export type DescriptionResult =
  | { readonly ok: true; readonly value: CanonicalDescription }
  | { readonly ok: false; readonly issues: readonly string[] };

// An absolute IRI (RFC 3987 §2.2 `scheme ":" ...`) without the characters N-Triples forbids in
// IRIREF (RDF 1.1 N-Triples §7: controls, space, <>"{}|^`\); C1 controls are not IRI characters either.
const ABSOLUTE_IRI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\p{Cc} <>"{}|\\^`]*$/u;

/** True when `value` is an absolute IRI that N-Quads can carry. */
export function isAbsoluteIri(value: string): boolean {
  return ABSOLUTE_IRI.test(value);
}

const MAX_ISSUES = 20;

// One lexer per syntax, shared by every parse on this thread: a lexer compiles 18 sticky
// regular expressions when built, and built per request they were the largest share of the
// HTTP thread's objects that outlived a scavenge. A parse is synchronous and the lexer
// starts over with each input (`_startTokenization`). The parser itself is built per
// parse: an `@base` directive changes its base IRI for the parses after it.
const LEXERS: Readonly<Record<RdfFormat, Lexer>> = {
  'text/turtle': new Lexer({ lineMode: false }),
  'application/n-triples': new Lexer({ lineMode: true }),
};
/** N3.js's parser takes a `lexer` option (N3Parser.js); @types/n3 does not list it. */
type ParserOptions = ConstructorParameters<typeof Parser>[0] & { readonly lexer: Lexer };

/**
 * Parses Turtle or N-Triples describing one entity, checks it and canonicalizes it (RDFC-1.0).
 *
 * The description must: fit the limits, hold at least one triple, use absolute IRIs only,
 * have exactly one IRI subject (the entity) and only blank-node subjects reachable from it,
 * and be in the default graph. Issues are `path: message` lines under `path`.
 */
export function canonicalDescription(
  data: string,
  format: RdfFormat,
  limits: DescriptionLimits = DEFAULT_LIMITS,
  path = 'data',
): DescriptionResult {
  const fail = (...messages: string[]): DescriptionResult => ({
    ok: false,
    issues: messages.slice(0, MAX_ISSUES).map((m) => `${path}: ${m}`),
  });
  const bytes = Buffer.byteLength(data, 'utf8');
  if (bytes > limits.maxDataBytes) return fail(`is ${bytes} bytes; at most ${limits.maxDataBytes} are allowed`);

  let quads: Quad[];
  try {
    quads = new Parser({ format, lexer: LEXERS[format] } as ParserOptions).parse(data);
  } catch (error) {
    return fail(`is not valid ${format}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (quads.length === 0) return fail('describes no triples; an entity needs at least one');
  if (quads.length > limits.maxTriples) {
    return fail(`holds ${quads.length} triples; at most ${limits.maxTriples} are allowed`);
  }

  const issues: string[] = [];
  const iriSubjects = new Set<string>();
  quads.forEach((quad, i) => {
    const at = `triple ${i + 1}`;
    if (quad.graph.termType !== 'DefaultGraph') issues.push(`${at}: named graphs are not allowed`);
    for (const [role, term] of [
      ['subject', quad.subject],
      ['predicate', quad.predicate],
      ['object', quad.object],
    ] as const) {
      const problem = termProblem(term);
      if (problem !== undefined) issues.push(`${at}: ${role} ${problem}`);
    }
    if (quad.subject.termType === 'NamedNode') iriSubjects.add(quad.subject.value);
  });
  if (iriSubjects.size !== 1) {
    issues.push(
      iriSubjects.size === 0
        ? 'has no IRI subject; describe the entity with triples whose subject is its IRI'
        : `describes ${iriSubjects.size} IRI subjects (${[...iriSubjects]
            .slice(0, 3)
            .map((s) => `<${s}>`)
            .join(
              ', ',
            )}${iriSubjects.size > 3 ? ', ...' : ''}); every triple's subject must be the entity or a blank node reachable from it`,
    );
  }
  if (issues.length > 0) return fail(...issues);
  const [subject] = iriSubjects as Set<string> & { size: 1 };
  const unreachable = unreachableBlankSubjects(quads, subject as string);
  if (unreachable.length > 0) {
    return fail(
      ...unreachable.map(
        (label) => `blank node _:${label} is a subject but is not reachable from <${subject}>; link it from the entity`,
      ),
    );
  }

  let canonical: string;
  try {
    // RDF Dataset Canonicalization (RDFC-1.0), https://www.w3.org/TR/rdf-canon/ — the sync
    // implementation because receipt digests are computed synchronously at submit. maxWorkFactor 1
    // bounds the N-Degree Hash Quads work (§4.8) so "poison" graphs are refused, not run for ever.
    canonical = rdfCanonize._canonizeSync(uniqueQuads(quads), {
      algorithm: 'RDFC-1.0',
      maxWorkFactor: 1,
      timeout: limits.canonicalizeTimeoutMs,
      rejectURDNA2015: true,
    });
  } catch (error) {
    return fail(`is too complex to canonicalize: ${error instanceof Error ? error.message : String(error)}`);
  }
  const nquads = sortedUniqueLines(canonical);
  return { ok: true, value: { subject: subject as string, nquads, triples: countLines(nquads) } };
}

/**
 * The triples without repeats. An RDF graph is a set of triples (RDF 1.1 Concepts §3),
 * but rdf-canonize counts every quad object it is given: a repeated triple on a blank
 * node changes that node's hashes (RDFC-1.0 §4.6) and can swap canonical labels, so
 * one graph would get two canonical forms. N3 term ids are unambiguous, and subject and
 * predicate ids (IRIs, blank nodes) hold no newline.
 */
function uniqueQuads(quads: readonly Quad[]): Quad[] {
  const seen = new Set<string>();
  return quads.filter((q) => {
    const key = `${q.subject.id}\n${q.predicate.id}\n${q.object.id}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function termProblem(term: Term): string | undefined {
  switch (term.termType) {
    case 'NamedNode':
      return isAbsoluteIri(term.value) ? undefined : `<${term.value}> is not an absolute IRI`;
    case 'BlankNode':
      return undefined;
    case 'Literal': {
      const datatype = term.datatype.value;
      if (!isAbsoluteIri(datatype)) return `has datatype <${datatype}>, which is not an absolute IRI`;
      // RDF 1.2 base directions are not part of RDFC-1.0 N-Quads: refuse rather than drop them.
      const direction = (term as { direction?: unknown }).direction;
      return typeof direction === 'string' && direction !== '' ? 'is a literal with a base direction' : undefined;
    }
    default:
      return `is a ${term.termType}; only IRIs, blank nodes and literals are allowed`;
  }
}

function unreachableBlankSubjects(quads: readonly Quad[], root: string): string[] {
  const edges = new Map<string, string[]>();
  const key = (term: Term) => (term.termType === 'BlankNode' ? `_:${term.value}` : `<${term.value}>`);
  for (const quad of quads) {
    if (quad.object.termType !== 'BlankNode') continue;
    const from = key(quad.subject);
    const list = edges.get(from) ?? [];
    list.push(key(quad.object));
    edges.set(from, list);
  }
  const seen = new Set<string>([`<${root}>`]);
  const stack = [`<${root}>`];
  while (stack.length > 0) {
    for (const next of edges.get(stack.pop() as string) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  const unreachable = new Set<string>();
  for (const quad of quads) {
    if (quad.subject.termType === 'BlankNode' && !seen.has(key(quad.subject))) unreachable.add(quad.subject.value);
  }
  return [...unreachable];
}

/** Sorted, de-duplicated N-Quads lines (an RDF graph is a set: a repeated triple counts once). */
export function sortedUniqueLines(nquads: string): string {
  const lines = [...new Set(nquads.split('\n').filter((line) => line !== ''))];
  // RDFC-1.0 §4.4.3 orders canonical N-Quads in Unicode code point order; JS `<` compares
  // UTF-16 code units, which differs only above U+FFFF, so compare code points explicitly.
  lines.sort(compareCodePoints);
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Surrogates (U+D800-DFFF) encode code points above U+FFFF, so they rank after U+E000-FFFF.
function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

/** Number of lines (triples) in canonical N-Quads. */
export function countLines(nquads: string): number {
  let count = 0;
  for (let i = nquads.indexOf('\n'); i !== -1; i = nquads.indexOf('\n', i + 1)) count++;
  return count;
}

/** The domain-separation tag of a single change's input digest. */
export const CHANGE_DIGEST_TAG = 'unrdf-rdf-change/v1';
/** The domain-separation tag of a batch's input digest. */
export const BATCH_DIGEST_TAG = 'unrdf-rdf-batch/v1';
/** The domain-separation tag of a batch's output digest. */
export const BATCH_OUTPUT_DIGEST_TAG = 'unrdf-rdf-batch-output/v1';

/** SHA-256 of a string's UTF-8 bytes. */
export function sha256(text: string): Uint8Array {
  const digest = hash('sha256', text, 'buffer');
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/**
 * The input digest of one change:
 * `SHA-256( "unrdf-rdf-change/v1" 0x00 type 0x00 canonicalNQuads )` over UTF-8, where
 * `canonicalNQuads` is the RDFC-1.0 N-Quads of the new description (empty for delete).
 * The subject is not repeated here: the receipt commits to it (and the N-Quads name it).
 */
export function changeDigest(type: 'create' | 'update' | 'delete', nquads: string): Uint8Array {
  return sha256(`${CHANGE_DIGEST_TAG}\0${type}\0${nquads}`);
}

/** The output digest of one change: SHA-256 of the entity's canonical N-Quads after it. */
export function entityDigest(nquads: string): Uint8Array {
  return sha256(nquads);
}
