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
  nodeHash,
  perfectNodesFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(`entry ${i}`));

describe('RFC 9162 Merkle tree', () => {
  it('hashes any text or bytes, of any length, exactly as a fresh SHA-256 over prefix and input', () => {
    const reference = (prefix: number, ...parts: (string | Uint8Array)[]) => {
      const hash = createHash('sha256').update(Buffer.from([prefix]));
      for (const part of parts) hash.update(part);
      return hash.digest('hex');
    };
    const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 3000 }), fc.string({ maxLength: 9000 }));
    fc.assert(
      fc.property(text, fc.uint8Array({ maxLength: 9000 }), (entry, bytes) => {
        expect(leafHash(entry).toString('hex')).toBe(reference(0, entry));
        expect(leafHash(bytes).toString('hex')).toBe(reference(0, bytes));
        // The reused buffer must not leak one input into the next hash.
        expect(leafHash(entry).toString('hex')).toBe(reference(0, entry));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 40 }),
        (a, b) => {
          expect(nodeHash(a, b).toString('hex')).toBe(reference(1, a, b));
          expect(nodeHash(a, a).toString('hex')).toBe(reference(1, a, a));
        },
      ),
      { numRuns: 300 },
    );
  });

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
