import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  batchMemberProof,
  buildBatchBody,
  buildReceipt,
  createOperationId,
  encodeReceipt,
  generateNoteKey,
  hashLeaf,
  InvalidInputError,
  merkleRoot,
  parseReceipt,
  parseSignerKey,
  type Receipt,
  receiptHash,
  receiptLeafHash,
  signCheckpoint,
  verifyBatchMember,
} from '../src/index.js';
import {
  canonicalMemberText,
  canonicalText,
  memberHash,
  ReceiptBodySchema,
  ReceiptSchema,
  readValidBody,
  readValidReceipt,
  validatedLeafHash,
} from '../src/receipt.js';
import { bodyFor } from './fixtures.js';

const origin = 'example.com/ledger';
const first = buildReceipt(bodyFor(1), { origin, leafIndex: 0, previousReceiptHash: null });

describe('buildReceipt', () => {
  it('is deterministic: the same inputs give the same bytes and hash', () => {
    const again = buildReceipt(bodyFor(1), { origin, leafIndex: 0, previousReceiptHash: null });
    expect(encodeReceipt(again)).toEqual(encodeReceipt(first));
    expect(receiptHash(again)).toBe(receiptHash(first));
  });

  it('rejects a chain position that does not match the leaf index', () => {
    expect(() => buildReceipt(bodyFor(2), { origin, leafIndex: 1, previousReceiptHash: null })).toThrow(
      InvalidInputError,
    );
    expect(() => buildReceipt(bodyFor(2), { origin, leafIndex: 0, previousReceiptHash: receiptHash(first) })).toThrow(
      /previousReceiptHash/,
    );
  });

  it('rejects timestamps out of order', () => {
    const body = { ...bodyFor(3), startedAt: bodyFor(3).submittedAt - 1 };
    expect(() => buildReceipt(body, { origin, leafIndex: 0, previousReceiptHash: null })).toThrow(/submittedAt/);
  });
});

describe('receiptHash', () => {
  it('is SHA-256 over the domain tag, a NUL and the RFC 8785 bytes (what an auditor recomputes)', () => {
    const jcs = canonicalize(first) as string;
    expect(new TextDecoder().decode(encodeReceipt(first))).toBe(jcs);
    const expected = createHash('sha256').update('unrdf-receipt/v1\0').update(jcs).digest('hex');
    expect(receiptHash(first)).toBe(expected);
    expect(receiptLeafHash(first)).toEqual(hashLeaf(Buffer.from(expected, 'hex')));
  });

  it('ignores key order (canonical) but changes with any field', () => {
    const reordered = Object.fromEntries(Object.entries(first).reverse()) as Receipt;
    expect(receiptHash(reordered)).toBe(receiptHash(first));
    expect(receiptHash({ ...first, attempt: first.attempt + 1 })).not.toBe(receiptHash(first));
  });
});

describe('parseReceipt', () => {
  it('round-trips a receipt through JSON', () => {
    expect(parseReceipt(JSON.stringify(first))).toEqual(first);
  });

  it('throws InvalidInputError with path: message issues for malformed input', () => {
    const cases: unknown[] = [
      '{',
      '',
      'null',
      '[]',
      JSON.stringify({ ...first, leafIndex: -1 }),
      JSON.stringify({ ...first, leafIndex: 1.5 }),
      JSON.stringify({ ...first, inputDigest: 'ABC' }),
      JSON.stringify({ ...first, extra: 1 }),
      JSON.stringify({ ...first, type: 'up sert' }),
      JSON.stringify({ ...first, type: 'batch' }), // a batch that succeeded without members
      JSON.stringify({
        ...first,
        type: 'batch',
        outcome: { status: 'failed', errorCode: 'X' },
        members: { count: 1, root: first.inputDigest },
      }), // a failed batch with members
      JSON.stringify({ ...first, format: 'unrdf-receipt/v2' }),
      JSON.stringify({ ...first, outcome: { status: 'failed' } }),
      'x'.repeat(70_000),
      `[${'['.repeat(5000)}${']'.repeat(5000)}]`,
      { ...first, attempt: '1' },
      42,
    ];
    for (const input of cases) {
      let error: unknown;
      try {
        parseReceipt(input);
      } catch (e) {
        error = e;
      }
      expect(error, String(input).slice(0, 40)).toBeInstanceOf(InvalidInputError);
      expect((error as InvalidInputError).code).toBe('UNRDF_RECEIPTS_INVALID_INPUT');
      expect((error as InvalidInputError).issues.length).toBeGreaterThan(0);
    }
    expect(() => parseReceipt(JSON.stringify({ ...first, leafIndex: -1 }))).toThrow(/leafIndex: /);
  });

  it('never throws anything but InvalidInputError on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        try {
          parseReceipt(text);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidInputError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('batch receipts', () => {
  const members = Array.from({ length: 12 }, (_, i) =>
    bodyFor(100 + i, (['create', 'update', 'delete'] as const)[i % 3]),
  );
  const facts = { ...bodyFor(99), operationId: 'batch_1' };
  const { type: _type, ...batchFacts } = facts;
  const batch = buildReceipt(buildBatchBody(batchFacts, members), { origin, leafIndex: 0, previousReceiptHash: null });

  it('commits to every member through a Merkle root', () => {
    expect(batch.type).toBe('batch');
    members.forEach((m, i) => {
      expect(verifyBatchMember(m, i, batchMemberProof(members, i), batch)).toBe(true);
    });
  });

  it('rejects a changed, moved or foreign member', () => {
    const proof = batchMemberProof(members, 4);
    expect(verifyBatchMember({ ...members[4], attempt: 9 }, 4, proof, batch)).toBe(false);
    expect(verifyBatchMember(members[4], 5, proof, batch)).toBe(false);
    expect(verifyBatchMember(bodyFor(500), 4, proof, batch)).toBe(false);
    expect(verifyBatchMember(members[4], 4, proof, first)).toBe(false);
    expect(verifyBatchMember('junk', 4, proof, batch)).toBe(false);
  });

  it('refuses an empty batch', () => {
    expect(() => buildBatchBody(batchFacts, [])).toThrow(InvalidInputError);
  });

  it('makes a failed batch a receipt without members (none took effect), and refuses members on one', () => {
    const failedFacts = { ...batchFacts, outputDigest: null, outcome: { status: 'failed' as const, errorCode: 'E' } };
    const failed = buildReceipt(
      { ...failedFacts, type: 'batch' },
      { origin, leafIndex: 1, previousReceiptHash: receiptHash(batch) },
    );
    expect(parseReceipt(JSON.stringify(failed))).toEqual(failed);
    expect('members' in failed).toBe(false);
    expect(verifyBatchMember(members[0], 0, batchMemberProof(members, 0), failed)).toBe(false);
    expect(() => buildBatchBody(failedFacts, members)).toThrow(/members: a batch that succeeded carries members/);
  });

  it('roots its members as memberHash (through the RFC 8785 library) says', () => {
    const root = merkleRoot(members.map((m) => hashLeaf(memberHash(m))));
    expect(batch).toMatchObject({ type: 'batch', members: { count: 12, root: toHexBytes(root) } });
  });

  it('refuses an invalid member or invalid facts with the schema issues', () => {
    const bad = members.map((m, i) => (i === 3 ? { ...m, inputDigest: 'XYZ' } : m));
    expect(() => buildBatchBody(batchFacts, bad)).toThrow(/members\.3\.inputDigest/);
    const nested = members.map((m, i) => (i === 5 ? { ...m, type: 'batch' } : m));
    expect(() => buildBatchBody(batchFacts, nested as typeof members)).toThrow(/members\.5\.type/);
    expect(() => buildBatchBody({ ...batchFacts, startedAt: batchFacts.submittedAt - 1 }, members)).toThrow(
      InvalidInputError,
    );
  });
});

describe('createOperationId', () => {
  it('returns distinct URL-safe nanoids', () => {
    const ids = new Set(Array.from({ length: 1000 }, createOperationId));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{21}$/);
  });
});

describe('canonicalText (internal fast path)', () => {
  const text = fc.oneof(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
  );
  const digest = fc.stringMatching(/^[0-9a-f]{64}$/);
  const millis = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const arbReceipt = fc
    .record({
      operationId: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
      type: fc.constantFrom('create', 'update', 'delete', 'batch'),
      subject: text,
      inputDigest: digest,
      outputDigest: fc.option(digest, { nil: null }),
      outcome: fc.oneof(
        fc.constant({ status: 'succeeded' as const }),
        fc.record({ status: fc.constant('failed' as const), errorCode: fc.stringMatching(/^[A-Z0-9_]{1,20}$/) }),
      ),
      attempt: fc.integer({ min: 1, max: 1_000_000 }),
      times: fc.tuple(millis, millis, millis).map((t) => t.sort((a, b) => a - b)),
      nodeId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,20}$/),
      leafIndex: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      previous: digest,
      members: fc.record({ count: fc.integer({ min: 1, max: 1_000_000 }), root: digest }),
    })
    .map(({ times, previous, members, type, ...rest }) =>
      parseReceipt({
        ...rest,
        type,
        ...(type === 'batch' && rest.outcome.status === 'succeeded' ? { members } : {}),
        format: 'unrdf-receipt/v1',
        origin: 'example.com/ünïcode/ledger',
        previousReceiptHash: previous,
        submittedAt: times[0],
        startedAt: times[1],
        finishedAt: times[2],
      }),
    );

  it('is byte-identical to the canonicalize library on arbitrary valid receipts', () => {
    fc.assert(
      fc.property(arbReceipt, (r) => {
        expect(canonicalText(r)).toBe(canonicalize(r));
        if (r.type !== 'batch') {
          const { format: _f, origin: _o, leafIndex: _l, previousReceiptHash: _p, ...member } = r;
          expect(canonicalMemberText(member)).toBe(canonicalize(member));
        }
        expect(toHexBytes(validatedLeafHash(r))).toBe(toHexBytes(receiptLeafHash(r)));
      }),
      { numRuns: 500 },
    );
  });

  it('readValidReceipt and readValidBody accept only what the schemas accept, with the same data', () => {
    const keys = [...Object.keys(first), 'members', 'extra'];
    const mutation = fc.record({
      key: fc.constantFrom(...keys),
      action: fc.constantFrom('set', 'delete', 'nest'),
      value: fc.oneof(
        fc.jsonValue(),
        fc.constantFrom(0, -1, 1.5, 2 ** 53, '', 'a'.repeat(65), null, '\ud800', 'a\tb', 'a\rb', 'x\u007f', '+a', ' a'),
      ),
    });
    fc.assert(
      fc.property(arbReceipt, fc.array(mutation, { maxLength: 3 }), (valid, mutations) => {
        const candidate: Record<string, unknown> = JSON.parse(JSON.stringify(valid));
        for (const m of mutations) {
          if (m.action === 'delete') delete candidate[m.key];
          else if (m.action === 'set') candidate[m.key] = m.value;
          else {
            const inner = candidate[m.key === 'members' ? 'members' : 'outcome'] as Record<string, unknown>;
            if (inner && typeof inner === 'object') inner[m.key] = m.value;
          }
        }
        const fast = readValidReceipt(candidate);
        const parsed = ReceiptSchema.safeParse(candidate);
        if (mutations.length === 0) expect(fast).toEqual(parsed.data);
        if (fast !== undefined) {
          expect(parsed.success).toBe(true);
          expect(fast).toEqual(parsed.data);
        }
        // The same for bodies: the candidate without its ledger position.
        const { format: _f, origin: _o, leafIndex: _l, previousReceiptHash: _p, ...body } = candidate;
        const fastBody = readValidBody(body);
        const parsedBody = ReceiptBodySchema.safeParse(body);
        if (mutations.length === 0) expect(fastBody).toEqual(parsedBody.data);
        if (fastBody !== undefined) {
          expect(parsedBody.success).toBe(true);
          expect(fastBody).toEqual(parsedBody.data);
        }
        expect(readValidBody(candidate)).toBeUndefined(); // position fields are not body fields
      }),
      { numRuns: 1500 },
    );
    // Only plain objects take the fast path; the schema decides everything else.
    expect(readValidReceipt(Object.assign(Object.create({ inherited: 1 }), first))).toBeUndefined();
    expect(readValidReceipt(JSON.stringify(first))).toBeUndefined();
  });
});

const toHexBytes = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('well-formed Unicode', () => {
  it('rejects lone surrogates, which RFC 8785 cannot encode', () => {
    expect(() =>
      buildReceipt({ ...bodyFor(1), subject: 'a\ud800b' }, { origin, leafIndex: 0, previousReceiptHash: null }),
    ).toThrow(/well-formed Unicode/);
    expect(() => parseReceipt({ ...first, origin: 'x\udc00' })).toThrow(InvalidInputError);
  });
});

describe('the origin rule', () => {
  // A receipt's origin is its ledger's checkpoint origin line: signed-note text, which
  // holds no control character but newline (C2SP signed-note), and the line ends there.
  const controls = [...Array.from({ length: 32 }, (_, c) => String.fromCharCode(c)), '\u007f'];

  it('refuses ASCII control characters anywhere in the origin', () => {
    for (const c of controls) {
      for (const origin of [`${c}example.com/log`, `example.com/${c}log`, `example.com/log${c}`]) {
        expect(() => parseReceipt({ ...first, origin }), JSON.stringify(origin)).toThrow(/control characters/);
        expect(readValidReceipt({ ...first, origin })).toBeUndefined();
      }
    }
  });

  it('accepts only origins a checkpoint can be signed with, on the fast path and in the schema alike', () => {
    const signer = parseSignerKey(generateNoteKey('example.com/origin-rule').signerKey);
    const char = fc.oneof(
      fc.constantFrom(...controls, ' ', '+', '/', 'é', '\u2028', '\u00a0'),
      fc.string({ unit: 'binary', maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.array(char, { minLength: 1, maxLength: 12 }), (chars) => {
        const origin = chars.join('');
        const candidate = { ...first, origin };
        const parsed = ReceiptSchema.safeParse(candidate);
        expect(readValidReceipt(candidate) !== undefined).toBe(parsed.success);
        if (parsed.success) {
          expect(() => signCheckpoint({ origin, size: 1, root: new Uint8Array(32) }, [signer])).not.toThrow();
        }
      }),
      { numRuns: 2000 },
    );
  });
});
