import { verifyConsistency, verifyInclusion } from './merkle.js';
import type { SignedTreeHead } from './signing.js';

// A hash is accepted only as the ledger writes it: 64 lowercase hex digits. `Buffer.from(text,
// 'hex')` stops at the first non-hex character and drops an odd last digit, so a hash followed
// by junk would otherwise verify; uppercase is refused too, so one proof has exactly one text.
const HASH_HEX = /^[0-9a-f]{64}$/;

const hashBytes = (text: unknown): Buffer | undefined =>
  typeof text === 'string' && HASH_HEX.test(text) ? Buffer.from(text, 'hex') : undefined;

/** The proof's hashes as bytes, or `undefined` unless it is an array of hashes (no hole). */
function proofBytes(proof: unknown): Buffer[] | undefined {
  if (!Array.isArray(proof)) return undefined;
  const bytes: Buffer[] = [];
  for (let i = 0; i < proof.length; i++) {
    const hash = hashBytes(proof[i]);
    if (!hash) return undefined;
    bytes.push(hash);
  }
  return bytes;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

/**
 * Checks, without the database, that an entry is in the log a signed tree head describes
 * (RFC 9162 §2.1.3.2). Check the head's signature with `verifyTreeHead` first.
 *
 * The proof usually comes from someone else, so anything malformed gives `false`, never an
 * exception: `seq` and the sizes must be non-negative safe integers, and `leafHash`, `rootHash`
 * and every proof element exactly 64 lowercase hex digits.
 */
export function verifyInclusionProof(
  proof: { seq: number; treeSize: number; leafHash: string; proof: readonly string[] },
  head: Pick<SignedTreeHead, 'treeSize' | 'rootHash'>,
): boolean {
  // try: a getter or proxy in the input can still throw.
  try {
    if (!isObject(proof) || !isObject(head)) return false;
    const { seq, treeSize } = proof;
    const leaf = hashBytes(proof.leafHash);
    const path = proofBytes(proof.proof);
    const root = hashBytes(head.rootHash);
    if (!leaf || !path || !root || treeSize !== head.treeSize) return false;
    return verifyInclusion({ index: seq, size: treeSize, leaf, proof: path, root });
  } catch {
    return false;
  }
}

/**
 * Checks that a later signed head extends an earlier one — nothing before `oldHead.treeSize`
 * was changed, dropped or forked (RFC 9162 §2.1.4.2).
 *
 * Anything malformed gives `false`, never an exception: sizes must be non-negative safe integers,
 * and both root hashes and every proof element exactly 64 lowercase hex digits.
 */
export function verifyConsistencyProof(
  proof: { oldSize: number; newSize: number; proof: readonly string[] },
  oldHead: Pick<SignedTreeHead, 'treeSize' | 'rootHash'>,
  newHead: Pick<SignedTreeHead, 'treeSize' | 'rootHash'>,
): boolean {
  try {
    if (!isObject(proof) || !isObject(oldHead) || !isObject(newHead)) return false;
    const { treeSize: oldSize } = oldHead;
    const { treeSize: newSize } = newHead;
    if (proof.oldSize !== oldSize || proof.newSize !== newSize) return false;
    const oldRoot = hashBytes(oldHead.rootHash);
    const newRoot = hashBytes(newHead.rootHash);
    const path = proofBytes(proof.proof);
    if (!oldRoot || !newRoot || !path) return false;
    return verifyConsistency({ oldSize, newSize, oldRoot, newRoot, proof: path });
  } catch {
    return false;
  }
}
