import { pooledRandomBytes } from './random-pool.js';

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * Mints UUIDv7 ids (RFC 9562) exactly as core's `newId(now)` does — 48-bit millisecond time, then
 * 74 random bits — but draws the random bits from `pooledRandomBytes`: one
 * `getRandomValues` per id cost more than the rest of minting. (Integrator: a candidate for core.)
 */
export function createIdMinter(): (now: Date) => string {
  return (now) => {
    const bytes = pooledRandomBytes(10);
    let ms = now.getTime();
    let time = '';
    for (let i = 0; i < 6; i++) {
      time = (hex[ms % 256] as string) + time;
      ms = Math.floor(ms / 256);
    }
    const b = (i: number) => hex[bytes[i] as number] as string;
    return (
      `${time.slice(0, 8)}-${time.slice(8)}-${hex[((bytes[0] as number) & 0x0f) | 0x70]}${b(1)}-` +
      `${hex[((bytes[2] as number) & 0x3f) | 0x80]}${b(3)}-${b(4)}${b(5)}${b(6)}${b(7)}${b(8)}${b(9)}`
    );
  };
}
