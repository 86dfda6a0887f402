import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';

// RFC 9162 §2.1 Merkle tree hashing. Leaves are SHA-256(0x00 || entry), interior nodes
// SHA-256(0x01 || left || right); the tree over n leaves splits at the largest power of two < n.

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

type OneShotHash = (algorithm: string, data: Uint8Array, encoding: 'latin1') => string;
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash;

// `crypto.hash` returns a digest as a string (here one character per byte) in a third of the
// time it takes to return a Buffer (V8 builds a string faster than Node builds a Buffer from
// native code): the digest goes out as latin1 and comes back with `Buffer.from`.
const digest = (data: Uint8Array): Buffer =>
  Buffer.from((oneShot as OneShotHash)('sha256', data, 'latin1'), 'latin1');

// Every append hashes a leaf and on average one interior node. With `crypto.hash` (Node ≥ 20.12)
// the prefix byte and the input are laid out in one reused buffer and hashed in one call,
// instead of building a Hash object and feeding it piece by piece (a third less time).
let scratch = Buffer.allocUnsafe(4096);
const pair = Buffer.allocUnsafe(65);

/**
 * RFC 9162 leaf hash of one ledger entry (its canonical JSON text). Like {@link nodeHash}, the
 * 32-byte Buffer may be a slice of Node's shared buffer pool (as `Buffer.from`'s are): read it
 * through the Buffer itself, or mind `byteOffset`, never its whole `.buffer`.
 */
export function leafHash(entry: string | Uint8Array): Buffer {
  if (!oneShot) return createHash('sha256').update(LEAF).update(entry).digest();
  // UTF-8 needs at most three bytes per UTF-16 code unit.
  const room = typeof entry === 'string' ? entry.length * 3 + 1 : entry.length + 1;
  if (room > scratch.length) scratch = Buffer.allocUnsafe(Math.max(room, scratch.length * 2));
  scratch[0] = 0;
  let length: number;
  if (typeof entry === 'string') length = scratch.write(entry, 1, 'utf8');
  else {
    scratch.set(entry, 1);
    length = entry.length;
  }
  return digest(scratch.subarray(0, length + 1));
}

/** RFC 9162 interior node hash (a 32-byte Buffer, possibly a slice of the shared pool: see {@link leafHash}). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (!oneShot || left.length !== 32 || right.length !== 32)
    return createHash('sha256').update(NODE).update(left).update(right).digest();
  pair[0] = 1;
  pair.set(left, 1);
  pair.set(right, 33);
  return digest(pair);
}

/** SHA-256 of the empty string: the root of the empty tree (RFC 9162 §2.1.1). */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// Sizes and positions go up to 2^53 − 1: halving is arithmetic, never `>>>` or `&`, which keep
// only 32 bits (an index off by 2^32 would otherwise walk the same path as the genuine one).
const half = (n: number) => Math.floor(n / 2);
const isOdd = (n: number) => n % 2 === 1;

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

/** Merkle tree hash of a list of leaf hashes, computed directly (for tests and small trees). */
export function merkleRoot(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return Buffer.from(leaves[0] as Uint8Array);
  const k = largestPowerOfTwoBelow(leaves.length);
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

/**
 * The compact state of an append-only tree: the roots of its perfect subtrees, largest first
 * (one per set bit of `size`). Appending is O(log n) and needs no earlier leaf.
 */
export interface Frontier {
  size: number;
  hashes: Buffer[];
}

export const emptyFrontier = (): Frontier => ({ size: 0, hashes: [] });

/**
 * Appends a leaf. Returns the new frontier and the perfect subtrees the leaf completed, by level
 * (index 0 = the 2-leaf subtree ending at this leaf, 1 = the 4-leaf one, …): stored beside the
 * leaf, they let proofs be built from O(log² n) rows instead of the whole ledger.
 */
export function appendLeaf(frontier: Frontier, leaf: Buffer): { frontier: Frontier; completed: Buffer[] } {
  const hashes = frontier.hashes.slice();
  const completed = pushLeaf(hashes, frontier.size, leaf);
  return { frontier: { size: frontier.size + 1, hashes }, completed };
}

/**
 * {@link appendLeaf} in place: appends a leaf to the subtree roots `hashes` of a tree of `size`
 * leaves (which it changes) and returns the perfect subtrees the leaf completed. For a run of
 * appends, which would otherwise copy the frontier once per leaf.
 */
export function pushLeaf(hashes: Buffer[], size: number, leaf: Buffer): Buffer[] {
  const completed: Buffer[] = [];
  let carry = leaf;
  let rest = size;
  while (isOdd(rest)) {
    carry = nodeHash(hashes.pop() as Buffer, carry);
    completed.push(carry);
    rest = half(rest);
  }
  hashes.push(carry);
  return completed;
}

/** Root hash of the tree a frontier describes. */
export function frontierRoot(frontier: Frontier): Buffer {
  const { hashes } = frontier;
  if (hashes.length === 0) return EMPTY_ROOT;
  let root = hashes[hashes.length - 1] as Buffer;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i] as Buffer, root);
  return root;
}

/**
 * Looks up the hash of the perfect subtree at `level` (0 = leaf) and `index` (leaves
 * [index·2^level, (index+1)·2^level)). Returns a map filled for every requested pair.
 */
export type PerfectNodes = (
  wanted: readonly { level: number; index: number }[],
) => Promise<Map<string, Buffer>>;

const nodeKey = (level: number, index: number) => `${level}:${index}`;

/** The perfect subtrees that make up MTH(D[start:end]) for the ranges RFC 9162 proofs use. */
function decompose(start: number, end: number): { level: number; index: number }[] {
  const parts: { level: number; index: number }[] = [];
  let at = start;
  let remaining = end - start;
  while (remaining > 0) {
    let level = 0;
    while (2 ** (level + 1) <= remaining) level++;
    while (at % 2 ** level !== 0) level--;
    parts.push({ level, index: at / 2 ** level });
    at += 2 ** level;
    remaining -= 2 ** level;
  }
  return parts;
}

function foldRight(hashes: Buffer[]): Buffer {
  let root = hashes[hashes.length - 1] as Buffer;
  for (let i = hashes.length - 2; i >= 0; i--) root = nodeHash(hashes[i] as Buffer, root);
  return root;
}

type Range = { start: number; end: number };

function inclusionRanges(m: number, start: number, end: number, out: Range[]): void {
  const n = end - start;
  if (n <= 1) return;
  const k = largestPowerOfTwoBelow(n);
  if (m < k) {
    inclusionRanges(m, start, start + k, out);
    out.push({ start: start + k, end });
  } else {
    inclusionRanges(m - k, start + k, end, out);
    out.push({ start, end: start + k });
  }
}

function consistencyRanges(m: number, start: number, end: number, complete: boolean, out: Range[]): void {
  const n = end - start;
  if (m === n) {
    if (!complete) out.push({ start, end });
    return;
  }
  const k = largestPowerOfTwoBelow(n);
  if (m <= k) {
    consistencyRanges(m, start, start + k, complete, out);
    out.push({ start: start + k, end });
  } else {
    consistencyRanges(m - k, start + k, end, false, out);
    out.push({ start, end: start + k });
  }
}

async function resolve(ranges: Range[], nodes: PerfectNodes): Promise<Buffer[]> {
  const parts = ranges.map((range) => decompose(range.start, range.end));
  const found = await nodes(parts.flat());
  return parts.map((list) =>
    foldRight(
      list.map(({ level, index }) => {
        const hash = found.get(nodeKey(level, index));
        if (!hash) throw new Error(`missing Merkle node ${level}:${index}`);
        return hash;
      }),
    ),
  );
}

/** RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves. */
export async function buildInclusionProof(
  index: number,
  size: number,
  nodes: PerfectNodes,
): Promise<Buffer[]> {
  const ranges: Range[] = [];
  inclusionRanges(index, 0, size, ranges);
  return resolve(ranges, nodes);
}

/** RFC 9162 §2.1.4.1 consistency proof between the trees of `oldSize` and `newSize` leaves. */
export async function buildConsistencyProof(
  oldSize: number,
  newSize: number,
  nodes: PerfectNodes,
): Promise<Buffer[]> {
  if (oldSize === 0 || oldSize === newSize) return [];
  const ranges: Range[] = [];
  consistencyRanges(oldSize, 0, newSize, true, ranges);
  return resolve(ranges, nodes);
}

/** An in-memory node source over all leaf hashes, for tests and offline verifiers. */
export function perfectNodesFromLeaves(leaves: readonly Buffer[]): PerfectNodes {
  return async (wanted) => {
    const out = new Map<string, Buffer>();
    for (const { level, index } of wanted) {
      const width = 2 ** level;
      out.set(nodeKey(level, index), merkleRoot(leaves.slice(index * width, (index + 1) * width)));
    }
    return out;
  };
}

export { nodeKey };

// The verifiers below check proofs handed over by someone else (often parsed from JSON): they
// answer `false` for anything that is not a proof rather than throw or half-check it.
const isTreeSize = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
const isHash = (hash: unknown): hash is Uint8Array => hash instanceof Uint8Array && hash.length === 32;

/** The proof's hashes, or `undefined` when it is not an array of 32-byte hashes (a hole included). */
function proofHashes(proof: unknown): Uint8Array[] | undefined {
  if (!Array.isArray(proof)) return undefined;
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < proof.length; i++) {
    const hash: unknown = proof[i];
    if (!isHash(hash)) return undefined;
    hashes.push(hash);
  }
  return hashes;
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `root`?
 * `false`, never an exception, unless `index` and `size` are non-negative safe integers and every
 * hash is 32 bytes.
 */
export function verifyInclusion(options: {
  index: number;
  size: number;
  leaf: Uint8Array;
  proof: readonly Uint8Array[];
  root: Uint8Array;
}): boolean {
  if (typeof options !== 'object' || options === null) return false;
  const { index, size, leaf, root } = options;
  const proof = proofHashes(options.proof);
  if (!proof || !isTreeSize(index) || !isTreeSize(size) || !isHash(leaf) || !isHash(root)) return false;
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && r.equals(root);
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show the tree of `oldSize`/`oldRoot` is a prefix of
 * `newSize`/`newRoot`? `false`, never an exception, unless both sizes are non-negative safe
 * integers and every hash is 32 bytes.
 */
export function verifyConsistency(options: {
  oldSize: number;
  newSize: number;
  oldRoot: Uint8Array;
  newRoot: Uint8Array;
  proof: readonly Uint8Array[];
}): boolean {
  if (typeof options !== 'object' || options === null) return false;
  const { oldSize, newSize } = options;
  const proof = proofHashes(options.proof);
  if (!proof || !isTreeSize(oldSize) || !isTreeSize(newSize)) return false;
  if (!isHash(options.oldRoot) || !isHash(options.newRoot)) return false;
  const oldRoot = Buffer.from(options.oldRoot);
  const newRoot = Buffer.from(options.newRoot);
  if (oldSize > newSize) return false;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  if (oldSize === 0) return proof.length === 0;
  let path = proof.map((p) => Buffer.from(p));
  if (path.length === 0) return false;
  if (isPowerOfTwo(oldSize)) path = [oldRoot, ...path];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}
