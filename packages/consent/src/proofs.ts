import { verifyConsistency, verifyInclusion } from './merkle.js';
import type { SignedTreeHead } from './signing.js';

const bytes = (hex: string) => Buffer.from(hex, 'hex');

/**
 * Checks, without the database, that an entry is in the log a signed tree head describes
 * (RFC 9162 §2.1.3.2). Check the head's signature with `verifyTreeHead` first.
 */
export function verifyInclusionProof(
  proof: { seq: number; treeSize: number; leafHash: string; proof: readonly string[] },
  head: Pick<SignedTreeHead, 'treeSize' | 'rootHash'>,
): boolean {
  if (proof.treeSize !== head.treeSize) return false;
  return verifyInclusion({
    index: proof.seq,
    size: proof.treeSize,
    leaf: bytes(proof.leafHash),
    proof: proof.proof.map(bytes),
    root: bytes(head.rootHash),
  });
}

/**
 * Checks that a later signed head extends an earlier one — nothing before `oldHead.treeSize`
 * was changed, dropped or forked (RFC 9162 §2.1.4.2).
 */
export function verifyConsistencyProof(
  proof: { oldSize: number; newSize: number; proof: readonly string[] },
  oldHead: Pick<SignedTreeHead, 'treeSize' | 'rootHash'>,
  newHead: Pick<SignedTreeHead, 'treeSize' | 'rootHash'>,
): boolean {
  if (proof.oldSize !== oldHead.treeSize || proof.newSize !== newHead.treeSize) return false;
  return verifyConsistency({
    oldSize: oldHead.treeSize,
    newSize: newHead.treeSize,
    oldRoot: bytes(oldHead.rootHash),
    newRoot: bytes(newHead.rootHash),
    proof: proof.proof.map(bytes),
  });
}
