import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  hashChildren,
  hashLeaf,
  inclusionProof,
  MerkleRangeError,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from '../src/index.js';
import { hex, kat, probes, toHex } from './vectors.js';

const leafHashes = kat.leaves.map((l) => hex(l.leafHash));

describe('RFC 9162 known answers', () => {
  it('reproduces every hasher vector', () => {
    for (const v of kat.hasher) {
      const got =
        v.op === 'emptyRoot'
          ? merkleRoot([])
          : v.op === 'leaf'
            ? hashLeaf(hex(v.input ?? ''))
            : hashChildren(hex(v.left ?? ''), hex(v.right ?? ''));
      expect(toHex(got), v.op).toBe(v.expect);
    }
  });

  it('reproduces the 8 reference leaf hashes and every complete-subtree hash', () => {
    for (const l of kat.leaves) expect(toHex(hashLeaf(hex(l.input)))).toBe(l.leafHash);
    kat.nodeHashes.levels.forEach((level, depth) => {
      level.forEach((node, i) => {
        const width = 2 ** depth;
        expect(toHex(merkleRoot(leafHashes.slice(i * width, (i + 1) * width)))).toBe(node);
      });
    });
  });

  it('reproduces the roots of sizes 0..8', () => {
    expect(kat.roots).toHaveLength(9);
    for (const r of kat.roots) expect(toHex(merkleRoot(leafHashes.slice(0, r.treeSize)))).toBe(r.root);
  });

  it('emits byte-identical inclusion proofs and verifies them', () => {
    expect(kat.inclusion).toHaveLength(36);
    for (const v of kat.inclusion) {
      const tree = leafHashes.slice(0, v.treeSize);
      expect(inclusionProof(tree, v.leafIndex).map(toHex)).toEqual(v.proof);
      expect(verifyInclusion(hex(v.leafHash), v.leafIndex, v.treeSize, v.proof.map(hex), hex(v.root))).toBe(true);
    }
  });

  it('emits byte-identical consistency proofs and verifies them', () => {
    expect(kat.consistency).toHaveLength(36);
    for (const v of kat.consistency) {
      const tree = leafHashes.slice(0, v.size2);
      expect(consistencyProof(tree, v.size1).map(toHex)).toEqual(v.proof);
      expect(verifyConsistency(v.size1, v.size2, hex(v.root1), hex(v.root2), v.proof.map(hex))).toBe(true);
    }
  });

  it('answers all 196 verifier probes as a strict verifier must', () => {
    expect(probes).toHaveLength(196);
    const wrong: string[] = [];
    for (const p of probes) {
      const ok =
        p.kind === 'inclusion'
          ? verifyInclusion(hex(p.leafHash), p.leafIndex, p.treeSize, p.proof.map(hex), hex(p.root))
          : verifyConsistency(p.size1, p.size2, hex(p.root1), hex(p.root2), p.proof.map(hex));
      if (ok === p.strictWantErr) wrong.push(`${p.file}: ${p.desc}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('verifyInclusion', () => {
  const root = merkleRoot(leafHashes);
  const proof = inclusionProof(leafHashes, 3);
  const leaf = leafHashes[3] as Uint8Array;

  it('returns false, never throws, on hostile input', () => {
    const hostile: unknown[] = [undefined, null, 1.5, -1, Number.NaN, 2 ** 53, '3', {}, [], new Uint8Array(31)];
    for (const h of hostile) {
      expect(verifyInclusion(h as Uint8Array, 3, 8, proof, root)).toBe(false);
      expect(verifyInclusion(leaf, h as number, 8, proof, root)).toBe(false);
      expect(verifyInclusion(leaf, 3, h as number, proof, root)).toBe(false);
      expect(verifyInclusion(leaf, 3, 8, h as Uint8Array[], root)).toBe(false);
      expect(verifyInclusion(leaf, 3, 8, [...proof, h as Uint8Array], root)).toBe(false);
      expect(verifyInclusion(leaf, 3, 8, proof, h as Uint8Array)).toBe(false);
    }
    const throwing = new Proxy([], {
      get() {
        throw new Error('boom');
      },
    });
    expect(verifyInclusion(leaf, 3, 8, throwing, root)).toBe(false);
    expect(verifyInclusion(leaf, 3, 8, proof, root)).toBe(true);
  });
});

describe('verifyConsistency', () => {
  it('returns false, never throws, on hostile input', () => {
    const proof = consistencyProof(leafHashes, 3);
    const r3 = merkleRoot(leafHashes.slice(0, 3));
    const r8 = merkleRoot(leafHashes);
    const hostile: unknown[] = [
      undefined,
      null,
      1.5,
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '3',
      {},
      new Uint8Array(33),
    ];
    for (const h of hostile) {
      expect(verifyConsistency(h as number, 8, r3, r8, proof)).toBe(false);
      expect(verifyConsistency(3, h as number, r3, r8, proof)).toBe(false);
      expect(verifyConsistency(3, 8, h as Uint8Array, r8, proof)).toBe(false);
      expect(verifyConsistency(3, 8, r3, h as Uint8Array, proof)).toBe(false);
      expect(verifyConsistency(3, 8, r3, r8, h as Uint8Array[])).toBe(false);
    }
    expect(verifyConsistency(3, 8, r3, r8, proof)).toBe(true);
  });

  it('accepts the empty tree as a prefix of any tree, with an empty proof', () => {
    expect(verifyConsistency(0, 8, merkleRoot([]), merkleRoot(leafHashes), [])).toBe(true);
    expect(verifyConsistency(0, 8, leafHashes[0] as Uint8Array, merkleRoot(leafHashes), [])).toBe(false);
  });
});

describe('proof generators', () => {
  it('throw MerkleRangeError for indices outside the tree', () => {
    expect(() => inclusionProof(leafHashes, 8)).toThrow(MerkleRangeError);
    expect(() => inclusionProof([], 0)).toThrow(MerkleRangeError);
    expect(() => inclusionProof(leafHashes, 1.5)).toThrow(MerkleRangeError);
    expect(() => consistencyProof(leafHashes, 9)).toThrow(MerkleRangeError);
    expect(() => consistencyProof(leafHashes, -1)).toThrow(MerkleRangeError);
    expect(() => merkleRoot([new Uint8Array(31)])).toThrow(MerkleRangeError);
  });
});

const arbTree = fc
  .integer({ min: 1, max: 70 })
  .map((n) => Array.from({ length: n }, (_, i) => hashLeaf(Uint8Array.of(i & 255, i >> 8))));

describe('Merkle properties (fast-check)', () => {
  it('every inclusion proof verifies, and fails for any other index, size or leaf', () => {
    fc.assert(
      fc.property(arbTree, fc.nat(), fc.nat(), (tree, a, b) => {
        const index = a % tree.length;
        const root = merkleRoot(tree);
        const proof = inclusionProof(tree, index);
        expect(verifyInclusion(tree[index] as Uint8Array, index, tree.length, proof, root)).toBe(true);
        const other = b % tree.length;
        if (other !== index) {
          expect(verifyInclusion(tree[other] as Uint8Array, index, tree.length, proof, root)).toBe(false);
          expect(verifyInclusion(tree[index] as Uint8Array, other, tree.length, proof, root)).toBe(false);
        }
        expect(verifyInclusion(tree[index] as Uint8Array, index, tree.length, proof.slice(1), root)).toBe(
          proof.length === 0,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('every consistency proof verifies, and a changed old leaf breaks it', () => {
    fc.assert(
      fc.property(arbTree, fc.nat(), fc.nat(), (tree, a, b) => {
        const oldSize = a % (tree.length + 1);
        const proof = consistencyProof(tree, oldSize);
        const oldRoot = merkleRoot(tree.slice(0, oldSize));
        const root = merkleRoot(tree);
        expect(verifyConsistency(oldSize, tree.length, oldRoot, root, proof)).toBe(true);
        if (oldSize > 0) {
          const forked = [...tree];
          forked[b % oldSize] = hashLeaf(Uint8Array.of(255, 255, 255));
          expect(verifyConsistency(oldSize, tree.length, merkleRoot(forked.slice(0, oldSize)), root, proof)).toBe(
            false,
          );
          if (oldSize < tree.length) {
            expect(verifyConsistency(oldSize, tree.length, oldRoot, merkleRoot(forked), proof)).toBe(false);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('roots agree with a plain recursive definition over node:crypto', () => {
    const h = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
    const mth = (d: Uint8Array[]): Uint8Array => {
      if (d.length === 0) return h(new Uint8Array());
      if (d.length === 1) return h(Uint8Array.of(0, ...(d[0] as Uint8Array)));
      let k = 1;
      while (k * 2 < d.length) k *= 2;
      return h(Uint8Array.of(1, ...mth(d.slice(0, k)), ...mth(d.slice(k))));
    };
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 40 }), (inputs) => {
        expect(toHex(merkleRoot(inputs.map(hashLeaf)))).toBe(toHex(mth(inputs)));
      }),
      { numRuns: 200 },
    );
  });

  it('noble and node:crypto SHA-256 agree on random inputs', () => {
    for (let i = 0; i < 500; i++) {
      const data = randomBytes(i % 300);
      expect(toHex(hashLeaf(data))).toBe(createHash('sha256').update(Uint8Array.of(0)).update(data).digest('hex'));
    }
  });
});
