import { createHash } from 'node:crypto';
import fc from 'fast-check';
import rdfCanonize from 'rdf-canonize';
import { describe, expect, it } from 'vitest';
import { canonicalDescription, changeDigest, entityDigest, sortedUniqueLines } from '../src/rdf/canonical.js';

const ALICE = 'https://example.org/people/alice';

function canonical(data: string, format: 'text/turtle' | 'application/n-triples' = 'text/turtle') {
  const result = canonicalDescription(data, format);
  if (!result.ok) throw new Error(result.issues.join('\n'));
  return result.value;
}

function issues(data: string, limits?: Parameters<typeof canonicalDescription>[2]) {
  const result = canonicalDescription(data, 'text/turtle', limits);
  if (result.ok) throw new Error('expected the data to be refused');
  return result.issues;
}

describe('canonicalDescription', () => {
  it('gives isomorphic graphs the same canonical N-Quads and digest whatever their blank node labels', () => {
    const a = canonical(`@prefix s: <https://schema.org/> .
      <${ALICE}> s:name "Alice" ; s:address _:home .
      _:home s:city "Paris" ; s:geo _:g . _:g s:lat 48.85 .`);
    const b = canonical(
      [
        `_:zz <https://schema.org/lat> "48.85"^^<http://www.w3.org/2001/XMLSchema#decimal> .`,
        `_:q <https://schema.org/geo> _:zz .`,
        `<${ALICE}> <https://schema.org/address> _:q .`,
        `_:q <https://schema.org/city> "Paris" .`,
        `<${ALICE}> <https://schema.org/name> "Alice" .`,
      ].join('\n'),
      'application/n-triples',
    );
    expect(b.nquads).toBe(a.nquads);
    expect(changeDigest('create', b.nquads)).toEqual(changeDigest('create', a.nquads));
    expect(a.subject).toBe(ALICE);
    expect(a.triples).toBe(5);
    expect(a.nquads).toContain('_:c14n');
  });

  it('gives different graphs different digests', () => {
    const a = canonical(`<${ALICE}> <https://schema.org/name> "Alice" .`);
    const b = canonical(`<${ALICE}> <https://schema.org/name> "Alicia" .`);
    const c = canonical(`<${ALICE}> <https://schema.org/name> "Alice"@en .`);
    expect(new Set([a.nquads, b.nquads, c.nquads]).size).toBe(3);
    expect(entityDigest(a.nquads)).not.toEqual(entityDigest(b.nquads));
    expect(entityDigest(a.nquads)).not.toEqual(entityDigest(c.nquads));
  });

  it('separates the change digest by operation type', () => {
    const { nquads } = canonical(`<${ALICE}> <https://schema.org/name> "Alice" .`);
    expect(changeDigest('create', nquads)).not.toEqual(changeDigest('update', nquads));
  });

  it('computes digests an auditor can recompute from the documented encoding', () => {
    const { nquads } = canonical(`<${ALICE}> <https://schema.org/name> "Alice" .`);
    const expected = createHash('sha256').update(`unrdf-rdf-change/v1\0update\0${nquads}`).digest();
    expect(Buffer.from(changeDigest('update', nquads))).toEqual(expected);
    expect(Buffer.from(entityDigest(nquads))).toEqual(createHash('sha256').update(nquads).digest());
    expect(nquads).toBe(`<${ALICE}> <https://schema.org/name> "Alice" .\n`);
  });

  it('counts a repeated triple once', () => {
    const value = canonical(`<${ALICE}> <https://schema.org/name> "A" . <${ALICE}> <https://schema.org/name> "A" .`);
    expect(value.triples).toBe(1);
  });

  it('gives a graph one canonical form whatever triples on its blank nodes repeat (a graph is a set)', () => {
    // rdf-canonize counts each quad it is given: a repeat changes a blank node's hashes and
    // could swap the canonical labels of _:a and _:b.
    for (let i = 0; i < 50; i++) {
      const once = `<${ALICE}> <urn:p> _:a . _:a <urn:q> "x${i}" . <${ALICE}> <urn:p> _:b . _:b <urn:q> "y${i}" .`;
      const twice = `${once} _:a <urn:q> "x${i}" .`;
      expect(canonical(twice).nquads, `x${i}`).toBe(canonical(once).nquads);
    }
  });

  it('agrees with the asynchronous canonize of rdf-canonize', async () => {
    const data = `<${ALICE}> <https://schema.org/knows> [ <https://schema.org/knows> [ <https://schema.org/name> "x" ] ], [ <https://schema.org/name> "x" ] .`;
    const { nquads } = canonical(data);
    const { Parser } = await import('n3');
    const reference = await rdfCanonize.canonize(new Parser().parse(data), { algorithm: 'RDFC-1.0' });
    expect(nquads).toBe(sortedUniqueLines(reference));
  });

  it('refuses a triple about another IRI subject', () => {
    expect(
      issues(`<${ALICE}> <https://schema.org/knows> <https://example.org/bob> .
      <https://example.org/bob> <https://schema.org/name> "Bob" .`),
    ).toEqual([expect.stringMatching(/^data: describes 2 IRI subjects .*<https:\/\/example.org\/bob>/)]);
  });

  it('refuses a blank node subject not reachable from the entity', () => {
    expect(issues(`<${ALICE}> <https://schema.org/name> "A" . _:x <https://schema.org/name> "stray" .`)).toEqual([
      expect.stringMatching(
        /^data: blank node _:\S+ is a subject but is not reachable from <https:\/\/example.org\/people\/alice>/,
      ),
    ]);
  });

  it('refuses syntax errors, relative IRIs, empty data and oversize data with path: message issues', () => {
    expect(issues(`<${ALICE}> <https://schema.org/name> "A"`)[0]).toMatch(/^data: is not valid text\/turtle: .*line 1/);
    expect(issues(`<thing> <https://schema.org/name> "A" .`)).toEqual([
      'data: triple 1: subject <thing> is not an absolute IRI',
    ]);
    expect(issues(`_:x <https://schema.org/name> "A" .`)).toEqual([expect.stringMatching(/^data: has no IRI subject/)]);
    expect(issues('# nothing here\n')).toEqual(['data: describes no triples; an entity needs at least one']);
    expect(
      issues(`<${ALICE}> <https://schema.org/name> "A" .`, {
        maxDataBytes: 10,
        maxTriples: 10,
        canonicalizeTimeoutMs: 1000,
      }),
    ).toEqual([expect.stringMatching(/^data: is \d+ bytes; at most 10 are allowed$/)]);
    expect(
      issues(`<${ALICE}> <https://schema.org/a> 1, 2, 3 .`, {
        maxDataBytes: 1000,
        maxTriples: 2,
        canonicalizeTimeoutMs: 1000,
      }),
    ).toEqual(['data: holds 3 triples; at most 2 are allowed']);
  });

  it('refuses a blank-node clique too costly to canonicalize instead of running without bound', () => {
    const lines: string[] = [];
    for (let i = 0; i < 6; i++) {
      lines.push(`<${ALICE}> <https://ex.org/has> _:b${i} .`);
      for (let j = 0; j < 6; j++) if (i !== j) lines.push(`_:b${i} <https://ex.org/p> _:b${j} .`);
    }
    expect(issues(lines.join('\n'))).toEqual([expect.stringMatching(/^data: is too complex to canonicalize: /)]);
  });

  it('reads each description on its own: nothing carries over from an earlier one that failed or set a base', () => {
    const valid = `<${ALICE}> <https://schema.org/name> "A" .`;
    const expected = canonical(valid).nquads;
    // A lexical error part-way through, on line 3: the next parse starts over at line 1.
    expect(issues(`<${ALICE}>\n<https://schema.org/name>\n"A`)[0]).toMatch(/line 3/);
    expect(issues(`<${ALICE}> <https://schema.org/name> "A"`)[0]).toMatch(/line 1\b/);
    expect(canonical(valid).nquads).toBe(expected);
    // An @base resolves relative IRIs in its own description only.
    expect(canonical(`@base <https://example.org/people/> .\n<alice> <https://schema.org/name> "A" .`).nquads).toBe(
      expected,
    );
    expect(issues(`<alice> <https://schema.org/name> "A" .`)).toEqual([
      'data: triple 1: subject <alice> is not an absolute IRI',
    ]);
    const triples = `<${ALICE}> <https://schema.org/name> "A" .\n`;
    expect(canonicalDescription(`<${ALICE}> <https://schema.org/name> "A`, 'application/n-triples').ok).toBe(false);
    expect(canonical(triples, 'application/n-triples').nquads).toBe(expected);
  });

  it('refuses N-Triples data that is really Turtle', () => {
    const result = canonicalDescription(
      `@prefix s: <https://schema.org/> . <${ALICE}> s:name "A" .`,
      'application/n-triples',
    );
    expect(result.ok).toBe(false);
  });

  it('is independent of blank node labels and triple order (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(3), fc.constantFrom('a', 'b', 'c'), fc.string({ maxLength: 4 })), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.integer({ min: 0, max: 1000 }),
        (items, salt) => {
          // The entity links to blank nodes 0..3; each item gives one of them a property.
          const write = (label: (n: number) => string, order: (xs: string[]) => string[]) => {
            const lines = [0, 1, 2, 3].map((n) => `<${ALICE}> <https://ex.org/has> ${label(n)} .`);
            for (const [n, p, v] of items) lines.push(`${label(n)} <https://ex.org/${p}> ${JSON.stringify(v)} .`);
            return order(lines).join('\n');
          };
          const a = canonical(
            write(
              (n) => `_:n${n}`,
              (xs) => xs,
            ),
          );
          const b = canonical(
            write(
              (n) => `_:m${(n * 7 + salt) % 1000}x${n}`,
              (xs) => [...xs].reverse(),
            ),
          );
          expect(b.nquads).toBe(a.nquads);
        },
      ),
      { numRuns: 100 },
    );
  });
});
