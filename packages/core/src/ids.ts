// Web Crypto's getRandomValues exists in browsers and in Node >= 19 as a global, so ids work in
// the browser-safe root export without importing node:crypto.

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  globalThis.crypto.getRandomValues(bytes);
  return bytes;
}

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond timestamp then 74 random bits, so ids sort by creation
 * time and index well. Not a secret: use {@link randomToken} for anything guessable would harm.
 */
export function newId(now: Date = new Date()): string {
  const bytes = randomBytes(16);
  let ms = now.getTime();
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  let out = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += '-';
    out += hex[bytes[i] ?? 0];
  }
  return out;
}

/**
 * A URL-safe random secret of `bytes` bytes (default 32 = 256 bits; never below 16 = 128 bits),
 * for download tokens, verification links and session ids.
 */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 16)
    throw new RangeError('randomToken: at least 16 bytes (128 bits)');
  const data = randomBytes(bytes);
  let binary = '';
  for (const byte of data) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A numeric one-time code of `digits` digits, uniformly drawn (rejection sampling, no modulo bias). */
export function randomDigits(digits = 6): string {
  let out = '';
  while (out.length < digits) {
    for (const byte of randomBytes(digits)) {
      if (byte < 250 && out.length < digits) out += String(byte % 10);
    }
  }
  return out;
}
