import { randomFillSync } from 'node:crypto';

const SIZE = 8192;
const pool = Buffer.allocUnsafeSlow(SIZE);
let offset = SIZE;

/**
 * `length` bytes from the CSPRNG (`randomFillSync`), drawn from a pool refilled 8 KiB at a time
 * and handed out once each: a `randomBytes` call per IV, key or id cost more than the AES-GCM
 * seal it fed. The bytes are copied out and the pool never hands the same bytes twice.
 */
export function pooledRandomBytes(length: number): Buffer {
  if (length > SIZE / 4) {
    const out = Buffer.allocUnsafe(length);
    randomFillSync(out);
    return out;
  }
  if (offset + length > SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + length));
  pool.fill(0, offset, offset + length);
  offset += length;
  return out;
}
