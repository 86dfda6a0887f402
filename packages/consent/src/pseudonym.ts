import * as nodeCrypto from 'node:crypto';

type OneShotHash = (algorithm: string, data: Buffer, encoding: 'latin1' | 'hex') => string;
const oneShot = (nodeCrypto as unknown as { hash?: OneShotHash }).hash;

/**
 * HMAC-SHA-256 (RFC 2104) under a fixed key, as lowercase hex — the same value as core's
 * `hmacSha256Hex(key, data)`. The padded key blocks are prepared once and both passes use
 * `crypto.hash` (Node ≥ 20.12), about twice as fast as a `createHmac` per pseudonym, which every
 * `mayProcess()` pays. Falls back to `createHmac` where `crypto.hash` is missing.
 */
export function createHmacSha256Hex(key: string): (data: string) => string {
  if (!oneShot) return (data) => nodeCrypto.createHmac('sha256', key).update(data).digest('hex');
  let block = Buffer.from(key, 'utf8');
  if (block.length > 64) block = nodeCrypto.createHash('sha256').update(block).digest();
  // The inner pass hashes the padded key block followed by the data: both are laid out in one
  // reused buffer (the key block stays in its first 64 bytes), so no buffer is built per call.
  let inner = Buffer.alloc(64 + 1024, 0x36);
  const outer = Buffer.alloc(64 + 32, 0x5c);
  for (let i = 0; i < block.length; i++) {
    inner[i] = (inner[i] as number) ^ (block[i] as number);
    outer[i] = (outer[i] as number) ^ (block[i] as number);
  }
  return (data) => {
    // UTF-8 needs at most three bytes per UTF-16 code unit.
    if (64 + data.length * 3 > inner.length) {
      const grown = Buffer.alloc(64 + data.length * 3);
      inner.copy(grown, 0, 0, 64);
      inner = grown;
    }
    const length = inner.write(data, 64, 'utf8');
    // The inner digest as latin1 (one character per byte) written straight after the outer
    // key block: a Buffer result would cost three times as much as the hash itself.
    outer.write(oneShot('sha256', inner.subarray(0, 64 + length), 'latin1'), 64, 'latin1');
    return oneShot('sha256', outer, 'hex');
  };
}
