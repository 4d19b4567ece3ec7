import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { platformTree } from '../src/internal/sha256.js';
import { createVerifiedNodes, verifyInclusionCached, verifyInclusionWith } from '../src/internal/tree.js';
import { hashLeaf, inclusionProof, merkleRoot } from '../src/merkle.js';
import { hex, probes, toHex } from './vectors.js';

describe('verifyInclusionCached', () => {
  it('answers every verifier probe like RFC 9162 §2.1.3.2, cold and warm', () => {
    for (const p of probes) {
      if (p.kind !== 'inclusion') continue;
      const args = [hex(p.leafHash), p.leafIndex, p.treeSize, p.proof.map(hex), hex(p.root)] as const;
      expect(verifyInclusionCached(platformTree, ...args, undefined)).toBe(!p.strictWantErr);
      expect(verifyInclusionWith(platformTree, ...args)).toBe(!p.strictWantErr);
    }
  });

  it('gives the same answer as the uncached verifier on honest and corrupted proofs, with a warm cache', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 5 })), {
          minLength: 1,
          maxLength: 40,
        }),
        (size, queries) => {
          const leaves = Array.from({ length: size }, (_, i) => hashLeaf(Uint8Array.of(i & 255, i >> 8, 7)));
          const root = merkleRoot(leaves);
          const cache = createVerifiedNodes(size % 2 === 0 ? 40 : 1 << 18); // small: exercises the reset
          const hexCache = createVerifiedNodes(size % 2 === 0 ? 40 : 1 << 18); // the same, fed hex proofs
          for (const [a, b, c, mode] of queries) {
            const index = a % size;
            let proof = inclusionProof(leaves, index);
            let leafIndex = index;
            let treeSize = size;
            if (mode === 1 && proof.length > 0) {
              const at = b % proof.length;
              const bad = Uint8Array.from(proof[at] as Uint8Array);
              bad[c % 32] = (bad[c % 32] as number) ^ (1 << (c % 8));
              proof = proof.with(at, bad);
            } else if (mode === 2) {
              leafIndex = b % size;
            } else if (mode === 3) {
              treeSize = size + 1 + (b % 3);
            } else if (mode === 4 && proof.length > 0) {
              proof = proof.slice(0, -1);
            } else if (mode === 5) {
              proof = [...proof, leaves[b % size] as Uint8Array];
            }
            const leaf = leaves[index] as Uint8Array;
            const expected = verifyInclusionWith(platformTree, leaf, leafIndex, treeSize, proof, root);
            expect(verifyInclusionCached(platformTree, leaf, leafIndex, treeSize, proof, root, cache)).toBe(expected);
            const hexProof = proof.map(toHex);
            expect(verifyInclusionCached(platformTree, leaf, leafIndex, treeSize, hexProof, root, hexCache)).toBe(
              expected,
            );
            if (expected && hexProof.length > 0) {
              // The same proof with one element's text not strict lowercase hex: rejected,
              // whether the element would be hashed or matched against a verified node.
              const at = b % hexProof.length;
              const text = hexProof[at] as string;
              const spoiled = /[a-f]/.test(text)
                ? text.replace(/[a-f]/, (ch) => ch.toUpperCase())
                : `${text.slice(0, 63)}g`;
              const args = [leaf, leafIndex, treeSize, hexProof.with(at, spoiled), root] as const;
              expect(verifyInclusionCached(platformTree, ...args, hexCache)).toBe(false);
            }
            if (mode === 0) expect(expected).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('stops hashing early once the path meets a verified node', () => {
    const leaves = Array.from({ length: 1024 }, (_, i) => hashLeaf(Uint8Array.of(i & 255, i >> 8)));
    const root = merkleRoot(leaves);
    const cache = createVerifiedNodes();
    let hashes = 0;
    const counting = {
      ...platformTree,
      children: (l: Uint8Array, r: Uint8Array) => {
        hashes++;
        return platformTree.children(l, r);
      },
    };
    expect(verifyInclusionCached(counting, leaves[0], 0, 1024, inclusionProof(leaves, 0), root, cache)).toBe(true);
    expect(hashes).toBe(10);
    hashes = 0;
    expect(verifyInclusionCached(counting, leaves[2], 2, 1024, inclusionProof(leaves, 2), root, cache)).toBe(true);
    expect(hashes).toBe(1); // node (1, 1) was a verified sibling on the first path
  });
});
