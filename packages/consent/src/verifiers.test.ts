import { generateKeyPairSync, sign } from 'node:crypto';
import { canonicalJson } from '@privacykit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  appendLeaf,
  buildConsistencyProof,
  buildInclusionProof,
  leafHash,
  merkleRoot,
  nodeHash,
  perfectNodesFromLeaves,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import type { PerfectNodes } from './merkle.js';
import { verifyConsistencyProof, verifyInclusionProof } from './proofs.js';
import { buildReceipt, verifyReceipt } from './receipt.js';
import type { ConsentReceipt } from './receipt.js';
import { keyIdOf, loadSigningKeys, signTreeHead, verifyTreeHead } from './signing.js';
import { sampleReceipt } from './test-fixtures.js';

// The standalone verifiers answer a yes/no question about data a third party handed over (a
// receipt, a head, a proof read from JSON): whatever that data is, they answer `false`, never
// throw, and only `true` for the exact encoding the ledger itself produces.

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(`entry ${i}`));
// Not one of them is a valid position, size, hash, proof, head or receipt.
const malformed: unknown[] = [null, undefined, -1, 1.5, Number.NaN, '', 'x', '1', true, [], {}, [null]];

async function inclusionCase(size: number, seq: number) {
  const all = leaves(size);
  const proof = await buildInclusionProof(seq, size, perfectNodesFromLeaves(all));
  return {
    proof: { seq, treeSize: size, leafHash: hex(all[seq] as Buffer), proof: proof.map(hex) },
    head: { treeSize: size, rootHash: hex(merkleRoot(all)) },
  };
}

async function consistencyCase(oldSize: number, newSize: number) {
  const all = leaves(newSize);
  const proof = await buildConsistencyProof(oldSize, newSize, perfectNodesFromLeaves(all));
  return {
    proof: { oldSize, newSize, proof: proof.map(hex) },
    oldHead: { treeSize: oldSize, rootHash: hex(merkleRoot(all.slice(0, oldSize))) },
    newHead: { treeSize: newSize, rootHash: hex(merkleRoot(all)) },
  };
}

const inclusion = (proof: unknown, head: unknown) => verifyInclusionProof(proof as never, head as never);
const consistency = (proof: unknown, oldHead: unknown, newHead: unknown) =>
  verifyConsistencyProof(proof as never, oldHead as never, newHead as never);

/**
 * A tree of any size whose leaves are all the same hash: every perfect subtree of a level has
 * the same hash, so proofs and roots of trees up to 2^53 leaves are computed in O(log n).
 */
function uniformTree() {
  const levels = [leafHash('same')];
  for (let level = 1; level <= 53; level++) {
    const below = levels[level - 1] as Buffer;
    levels.push(nodeHash(below, below));
  }
  const nodes: PerfectNodes = async (wanted) => {
    const out = new Map<string, Buffer>();
    for (const { level, index } of wanted) {
      if (
        !Number.isSafeInteger(level) ||
        level < 0 ||
        level > 53 ||
        !Number.isSafeInteger(index) ||
        index < 0
      )
        throw new Error(`no perfect subtree ${level}:${index}`);
      out.set(`${level}:${index}`, levels[level] as Buffer);
    }
    return out;
  };
  const root = (size: number): Buffer => {
    if (size === 1) return levels[0] as Buffer;
    let k = 1;
    let level = 0;
    while (k * 2 < size) {
      k *= 2;
      level++;
    }
    return nodeHash(levels[level] as Buffer, root(size - k));
  };
  return { leaf: levels[0] as Buffer, nodes, root };
}

describe('verifyInclusionProof and verifyConsistencyProof', () => {
  it('answer false, without throwing, for a missing or malformed proof, head, element or hash', async () => {
    const { proof, head } = await inclusionCase(5, 1);
    expect(inclusion(proof, head)).toBe(true);
    for (const value of malformed) {
      expect(inclusion(value, head)).toBe(false);
      expect(inclusion(proof, value)).toBe(false);
      for (const field of ['seq', 'treeSize', 'leafHash', 'proof'] as const) {
        expect(inclusion({ ...proof, [field]: value }, head)).toBe(false);
      }
      for (const field of ['treeSize', 'rootHash'] as const) {
        expect(inclusion(proof, { ...head, [field]: value })).toBe(false);
      }
      expect(inclusion({ ...proof, proof: [value, ...proof.proof.slice(1)] }, head)).toBe(false);
    }
    // A sparse array: the hole reads as `undefined`.
    expect(inclusion({ ...proof, proof: new Array(proof.proof.length) }, head)).toBe(false);

    const linked = await consistencyCase(3, 7);
    expect(consistency(linked.proof, linked.oldHead, linked.newHead)).toBe(true);
    for (const value of malformed) {
      expect(consistency(value, linked.oldHead, linked.newHead)).toBe(false);
      expect(consistency(linked.proof, value, linked.newHead)).toBe(false);
      expect(consistency(linked.proof, linked.oldHead, value)).toBe(false);
      for (const field of ['oldSize', 'newSize', 'proof'] as const) {
        expect(consistency({ ...linked.proof, [field]: value }, linked.oldHead, linked.newHead)).toBe(false);
      }
      for (const field of ['treeSize', 'rootHash'] as const) {
        expect(consistency(linked.proof, { ...linked.oldHead, [field]: value }, linked.newHead)).toBe(false);
        expect(consistency(linked.proof, linked.oldHead, { ...linked.newHead, [field]: value })).toBe(false);
      }
      const altered = { ...linked.proof, proof: [value, ...linked.proof.proof.slice(1)] };
      expect(consistency(altered, linked.oldHead, linked.newHead)).toBe(false);
    }
    const holes = { ...linked.proof, proof: new Array(linked.proof.proof.length) };
    expect(consistency(holes, linked.oldHead, linked.newHead)).toBe(false);

    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (a, b, c) => {
        expect(inclusion(a, b)).toBe(false);
        expect(consistency(a, b, c)).toBe(false);
      }),
    );
  });

  it('accept only 64 lowercase hex digits for every hash: no trailing junk, odd digit, case or prefix', async () => {
    const { proof, head } = await inclusionCase(5, 1);
    const linked = await consistencyCase(3, 7);
    // Buffer.from(text, 'hex') stops at the first non-hex character and drops an odd last digit.
    const respellings = (hash: string) => [
      `${hash}zz`,
      `${hash} `,
      `${hash}0`,
      `${hash}\n`,
      hash.toUpperCase(),
      ` ${hash}`,
      `0x${hash}`,
    ];
    for (const spelled of respellings(proof.leafHash)) {
      expect(inclusion({ ...proof, leafHash: spelled }, head)).toBe(false);
    }
    for (const spelled of respellings(head.rootHash)) {
      expect(inclusion(proof, { ...head, rootHash: spelled })).toBe(false);
    }
    for (const spelled of respellings(proof.proof[0] as string)) {
      expect(inclusion({ ...proof, proof: [spelled, ...proof.proof.slice(1)] }, head)).toBe(false);
    }
    for (const spelled of respellings(linked.oldHead.rootHash)) {
      expect(consistency(linked.proof, { ...linked.oldHead, rootHash: spelled }, linked.newHead)).toBe(false);
    }
    for (const spelled of respellings(linked.newHead.rootHash)) {
      expect(consistency(linked.proof, linked.oldHead, { ...linked.newHead, rootHash: spelled })).toBe(false);
    }
    for (const spelled of respellings(linked.proof.proof[0] as string)) {
      const altered = { ...linked.proof, proof: [spelled, ...linked.proof.proof.slice(1)] };
      expect(consistency(altered, linked.oldHead, linked.newHead)).toBe(false);
    }
  });

  it('refuse a position or size that is not a non-negative safe integer, or is off by 2^32', async () => {
    const { proof, head } = await inclusionCase(5, 1);
    const offset = 2 ** 32;
    expect(
      inclusion(
        { ...proof, seq: proof.seq + offset, treeSize: proof.treeSize + offset },
        { ...head, treeSize: head.treeSize + offset },
      ),
    ).toBe(false);
    for (const seq of ['1', 1.5, -1, 2 ** 53 + 1, Number.POSITIVE_INFINITY]) {
      expect(inclusion({ ...proof, seq }, head)).toBe(false);
    }
    for (const treeSize of ['5', 5.5, 2 ** 53 + 5, Number.POSITIVE_INFINITY]) {
      expect(inclusion({ ...proof, treeSize }, { ...head, treeSize })).toBe(false);
    }

    const linked = await consistencyCase(3, 7);
    const shifted = (size: number) => size + offset;
    expect(
      consistency(
        { ...linked.proof, oldSize: shifted(3), newSize: shifted(7) },
        { ...linked.oldHead, treeSize: shifted(3) },
        { ...linked.newHead, treeSize: shifted(7) },
      ),
    ).toBe(false);
    for (const [oldSize, newSize] of [
      ['3', 7],
      [3, '7'],
      [3.5, 7],
      [-3, 7],
      [3, 2 ** 53 + 7],
    ]) {
      expect(
        consistency(
          { ...linked.proof, oldSize, newSize },
          { ...linked.oldHead, treeSize: oldSize },
          { ...linked.newHead, treeSize: newSize },
        ),
      ).toBe(false);
    }
  });

  it('verify every honest proof, and refuse it once one element is altered, dropped or added', async () => {
    const flip = (hash: string, at: number) =>
      `${hash.slice(0, at)}${((Number.parseInt(hash[at] as string, 16) + 1) % 16).toString(16)}${hash.slice(at + 1)}`;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }).chain((size) => fc.tuple(fc.constant(size), fc.nat(size - 1))),
        fc.nat(),
        fc.nat(63),
        async ([size, seq], which, at) => {
          const { proof, head } = await inclusionCase(size, seq);
          expect(inclusion(proof, head)).toBe(true);
          const hashes = [proof.leafHash, head.rootHash, ...proof.proof];
          const target = which % hashes.length;
          const altered = hashes.map((hash, i) => (i === target ? flip(hash, at) : hash));
          const [leaf, root, ...rest] = altered as [string, string, ...string[]];
          expect(inclusion({ ...proof, leafHash: leaf, proof: rest }, { ...head, rootHash: root })).toBe(
            false,
          );
          if (proof.proof.length > 0)
            expect(inclusion({ ...proof, proof: proof.proof.slice(1) }, head)).toBe(false);
          expect(inclusion({ ...proof, proof: [...proof.proof, head.rootHash] }, head)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 40 })
          .chain((newSize) => fc.tuple(fc.integer({ min: 0, max: newSize }), fc.constant(newSize))),
        fc.nat(),
        fc.nat(63),
        async ([oldSize, newSize], which, at) => {
          const { proof, oldHead, newHead } = await consistencyCase(oldSize, newSize);
          expect(consistency(proof, oldHead, newHead)).toBe(true);
          if (oldSize === 0) return;
          const hashes = [oldHead.rootHash, newHead.rootHash, ...proof.proof];
          const target = which % hashes.length;
          const altered = hashes.map((hash, i) => (i === target ? flip(hash, at) : hash));
          const [oldRoot, newRoot, ...rest] = altered as [string, string, ...string[]];
          expect(
            consistency(
              { ...proof, proof: rest },
              { ...oldHead, rootHash: oldRoot },
              { ...newHead, rootHash: newRoot },
            ),
          ).toBe(false);
          if (proof.proof.length > 0)
            expect(consistency({ ...proof, proof: proof.proof.slice(1) }, oldHead, newHead)).toBe(false);
          expect(consistency({ ...proof, proof: [...proof.proof, newHead.rootHash] }, oldHead, newHead)).toBe(
            false,
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('Merkle proofs of trees past 2^32 leaves', () => {
  it('verify at every position and size up to 2^53 − 1', async () => {
    const tree = uniformTree();
    const big = fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER });
    await fc.assert(
      fc.asyncProperty(
        big.chain((size) => fc.tuple(fc.integer({ min: 0, max: size - 1 }), fc.constant(size))),
        async ([index, size]) => {
          const proof = await buildInclusionProof(index, size, tree.nodes);
          const root = tree.root(size);
          expect(verifyInclusion({ index, size, leaf: tree.leaf, proof, root })).toBe(true);
          // The proof of a smaller tree, presented with 2^32 added back: refused.
          if (size > 2 ** 32) {
            const small = size - 2 ** 32;
            const smallIndex = index % small;
            const smallProof = await buildInclusionProof(smallIndex, small, tree.nodes);
            expect(
              verifyInclusion({
                index: smallIndex + 2 ** 32,
                size,
                leaf: tree.leaf,
                proof: smallProof,
                root,
              }),
            ).toBe(false);
          }
        },
      ),
      { numRuns: 200 },
    );
    await fc.assert(
      fc.asyncProperty(
        big.chain((newSize) => fc.tuple(fc.integer({ min: 1, max: newSize }), fc.constant(newSize))),
        async ([oldSize, newSize]) => {
          const proof = await buildConsistencyProof(oldSize, newSize, tree.nodes);
          const [oldRoot, newRoot] = [tree.root(oldSize), tree.root(newSize)];
          expect(verifyConsistency({ oldSize, newSize, oldRoot, newRoot, proof })).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('append a leaf to a frontier of 2^33 − 1 leaves, merging all 33 subtrees', () => {
    const hashes = Array.from({ length: 33 }, (_, i) => leafHash(`subtree ${i}`));
    const { frontier, completed } = appendLeaf({ size: 2 ** 33 - 1, hashes }, leafHash('last'));
    expect(frontier.size).toBe(2 ** 33);
    expect(completed).toHaveLength(33);
    expect(frontier.hashes).toEqual([completed[32]]);
  });
});

describe('verifyTreeHead and verifyReceipt', () => {
  const keys = loadSigningKeys({ privateKey: generateKeyPairSync('ed25519').privateKey });
  const head = signTreeHead(
    {
      tenant: 'default',
      treeSize: 5,
      rootHash: hex(merkleRoot(leaves(5))),
      timestamp: '2025-03-01T12:00:00.000Z',
    },
    keys,
  );
  const receipt = sampleReceipt(keys, { leafHash: hex(leafHash('entry 0')) });
  const withHeadSignature = (signature: unknown) => ({ ...head, signature }) as never;
  const withReceiptSignature = (value: unknown) => ({
    ...receipt,
    signature: { ...receipt.signature, value },
  });

  /** Encodings of the same signature bytes that are not the canonical base64 the ledger writes. */
  const respellings = (value: string) => {
    // 64 bytes: the last character before `==` carries four unused bits.
    const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const unusedBits = `${value.slice(0, 85)}${last[last.indexOf(value[85] as string) ^ 1]}${value.slice(86)}`;
    return [
      `${value.slice(0, 10)} ${value.slice(10)}`,
      `${value.slice(0, 44)}\n${value.slice(44)}`,
      `${value}\n`,
      ` ${value}`,
      value.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''),
      value.replace(/\+/g, '-').replace(/\//g, '_'),
      value.replace(/=+$/, ''),
      unusedBits,
      // A signature without `+` or `/` (about one in sixteen) reads the same in base64url: that
      // spelling is the signature itself, not another one.
    ].filter((spelled) => spelled !== value);
  };

  it('accept only the canonical base64 signature they produce', () => {
    expect(verifyTreeHead(head, keys.publicKeyPem)).toBe(true);
    expect(verifyReceipt(receipt, keys.publicKeyPem)).toBe(true);
    for (const spelled of respellings(head.signature)) {
      expect(Buffer.from(spelled, 'base64').equals(Buffer.from(head.signature, 'base64'))).toBe(true);
      expect(verifyTreeHead(withHeadSignature(spelled), keys.publicKey)).toBe(false);
    }
    for (const spelled of respellings(receipt.signature.value)) {
      expect(verifyReceipt(withReceiptSignature(spelled), keys.publicKey)).toBe(false);
    }
    fc.assert(
      fc.property(fc.nat(88), fc.constantFrom(' ', '\n', '\t', '\r\n', '.', '!'), (at, space) => {
        const spelled = `${head.signature.slice(0, at)}${space}${head.signature.slice(at)}`;
        expect(verifyTreeHead(withHeadSignature(spelled), keys.publicKey)).toBe(false);
        const value = `${receipt.signature.value.slice(0, at)}${space}${receipt.signature.value.slice(at)}`;
        expect(verifyReceipt(withReceiptSignature(value), keys.publicKey)).toBe(false);
      }),
    );
  });

  it('answer false, without throwing, for a malformed head, receipt or public key', () => {
    const values: unknown[] = [...malformed, { signature: {} }, [receipt], Buffer.from('x')];
    for (const value of values) {
      expect(verifyTreeHead(value as never, keys.publicKey)).toBe(false);
      expect(verifyReceipt(value, keys.publicKey)).toBe(false);
      expect(verifyTreeHead(withHeadSignature(value), keys.publicKey)).toBe(false);
      expect(verifyReceipt(withReceiptSignature(value), keys.publicKey)).toBe(false);
      expect(verifyReceipt({ ...receipt, signature: value }, keys.publicKey)).toBe(false);
      expect(verifyTreeHead(head, value as never)).toBe(false);
      expect(verifyReceipt(receipt, value as never)).toBe(false);
    }
    for (const field of ['tenant', 'treeSize', 'rootHash', 'timestamp', 'keyId'] as const) {
      const { [field]: _, ...missing } = head;
      expect(verifyTreeHead(missing as never, keys.publicKey)).toBe(false);
    }
    const junkPem = [
      'junk',
      '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n',
      keys.publicKeyPem.slice(0, 60),
    ];
    for (const pem of junkPem) {
      expect(verifyTreeHead(head, pem)).toBe(false);
      expect(verifyReceipt(receipt, pem)).toBe(false);
    }
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (value, key) => {
        expect(verifyTreeHead(value as never, key as never)).toBe(false);
        expect(verifyReceipt(value, key as never)).toBe(false);
        expect(verifyTreeHead(head, key as never)).toBe(false);
      }),
    );
  });

  it('refuse a receipt or head signed with a key that is not Ed25519', () => {
    for (const other of [
      generateKeyPairSync('rsa', { modulusLength: 2048 }),
      generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    ]) {
      const keyId = keyIdOf(other.publicKey);
      const { signature: _, ...unsigned } = receipt;
      const forged: ConsentReceipt = {
        ...unsigned,
        signature: {
          alg: 'Ed25519',
          keyId,
          value: sign(null, Buffer.from(canonicalJson(unsigned)), other.privateKey).toString('base64'),
        },
      };
      expect(verifyReceipt(forged, other.publicKey)).toBe(false);
      const payload = canonicalJson({
        type: 'privacykit-consent-tree-head/1',
        tenant: head.tenant,
        treeSize: head.treeSize,
        rootHash: head.rootHash,
        timestamp: head.timestamp,
        keyId,
      });
      const signature = sign(null, Buffer.from(payload), other.privateKey).toString('base64');
      expect(verifyTreeHead({ ...head, keyId, signature }, other.publicKey)).toBe(false);
    }
  });
});
