import { randomFillSync } from 'node:crypto';

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const POOL = 10 * 512;

/**
 * Mints UUIDv7 ids (RFC 9562) exactly as core's `newId(now)` does — 48-bit millisecond time, then
 * 74 random bits — but draws the random bits from a pool filled 512 ids at a time: one
 * `getRandomValues` per id cost more than the rest of minting. (Integrator: a candidate for core.)
 */
export function createIdMinter(): (now: Date) => string {
  const pool = Buffer.allocUnsafe(POOL);
  let offset = POOL;
  return (now) => {
    if (offset + 10 > POOL) {
      randomFillSync(pool);
      offset = 0;
    }
    const r = offset;
    offset += 10;
    let ms = now.getTime();
    let time = '';
    for (let i = 0; i < 6; i++) {
      time = (hex[ms % 256] as string) + time;
      ms = Math.floor(ms / 256);
    }
    const b = (i: number) => hex[pool[r + i] as number] as string;
    return (
      `${time.slice(0, 8)}-${time.slice(8)}-${hex[((pool[r] as number) & 0x0f) | 0x70]}${b(1)}-` +
      `${hex[((pool[r + 2] as number) & 0x3f) | 0x80]}${b(3)}-${b(4)}${b(5)}${b(6)}${b(7)}${b(8)}${b(9)}`
    );
  };
}
