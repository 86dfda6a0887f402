import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  appendLeaf,
  buildConsistencyProof,
  buildInclusionProof,
  emptyFrontier,
  frontierRoot,
  leafHash,
  merkleRoot,
  perfectNodesFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(`entry ${i}`));

describe('RFC 9162 Merkle tree', () => {
  it('hashes leaves with a 0x00 prefix and the empty tree as SHA-256("")', () => {
    expect(leafHash('x').toString('hex')).toBe(
      createHash('sha256')
        .update(Buffer.from([0]))
        .update('x')
        .digest('hex'),
    );
    expect(EMPTY_ROOT.toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('the incremental frontier gives the same root as the recursive definition', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 70 }), (n) => {
        const all = leaves(n);
        let frontier = emptyFrontier();
        for (const leaf of all) frontier = appendLeaf(frontier, leaf).frontier;
        expect(frontierRoot(frontier).equals(merkleRoot(all))).toBe(true);
      }),
    );
  });

  it('inclusion proofs verify, and fail for another leaf, index or root', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 64 }).chain((size) => fc.tuple(fc.constant(size), fc.nat(size - 1))),
        async ([size, index]) => {
          const all = leaves(size);
          const root = merkleRoot(all);
          const proof = await buildInclusionProof(index, size, perfectNodesFromLeaves(all));
          const leaf = all[index] as Buffer;
          expect(verifyInclusion({ index, size, leaf, proof, root })).toBe(true);
          expect(verifyInclusion({ index, size, leaf: leafHash('forged'), proof, root })).toBe(false);
          if (size > 1)
            expect(verifyInclusion({ index: (index + 1) % size, size, leaf, proof, root })).toBe(false);
          expect(verifyInclusion({ index, size, leaf, proof, root: leafHash('other root') })).toBe(false);
        },
      ),
    );
  });

  it('consistency proofs verify between any two sizes, and fail against a forked history', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 64 })
          .chain((newSize) => fc.tuple(fc.integer({ min: 1, max: newSize }), fc.constant(newSize))),
        async ([oldSize, newSize]) => {
          const all = leaves(newSize);
          const oldRoot = merkleRoot(all.slice(0, oldSize));
          const newRoot = merkleRoot(all);
          const proof = await buildConsistencyProof(oldSize, newSize, perfectNodesFromLeaves(all));
          expect(verifyConsistency({ oldSize, newSize, oldRoot, newRoot, proof })).toBe(true);
          const forked = all.slice();
          forked[oldSize - 1] = leafHash('forked');
          const forkRoot = merkleRoot(forked.slice(0, oldSize));
          if (oldSize < newSize) {
            expect(verifyConsistency({ oldSize, newSize, oldRoot: forkRoot, newRoot, proof })).toBe(false);
          }
        },
      ),
    );
  });
});
