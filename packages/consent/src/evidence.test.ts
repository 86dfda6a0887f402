import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seal, truncateIp, unseal } from './evidence.js';
import { addPeriod } from './validity.js';

describe('truncateIp', () => {
  it.each([
    ['203.0.113.77', '203.0.113.0'],
    ['::ffff:198.51.100.9', '198.51.100.0'],
    ['2001:db8:85a3:8d3:1319:8a2e:370:7348', '2001:db8:85a3::'],
    ['2001:db8::1', '2001:db8:0::'],
    ['[2001:db8:abcd:12::1]', '2001:db8:abcd::'],
    ['fe80::1%eth0', 'fe80:0:0::'],
    ['not an ip', undefined],
  ])('%s → %s', (ip, expected) => {
    expect(truncateIp(ip)).toBe(expected);
  });
});

describe('seal / unseal (AES-256-GCM)', () => {
  it('round-trips and refuses a wrong key or an altered ciphertext', () => {
    const key = randomBytes(32);
    const sealed = seal(key, '{"ip":"203.0.113.0"}');
    expect(unseal(key, sealed)).toBe('{"ip":"203.0.113.0"}');
    expect(unseal(randomBytes(32), sealed)).toBeUndefined();
    // Flip one bit of the ciphertext body (editing a base64 character can leave the bytes alone).
    const [version, iv, tag, body] = sealed.split('.') as [string, string, string, string];
    const bytes = Buffer.from(body, 'base64url');
    bytes[0] = (bytes[0] as number) ^ 1;
    expect(unseal(key, [version, iv, tag, bytes.toString('base64url')].join('.'))).toBeUndefined();
    const tagBytes = Buffer.from(tag, 'base64url');
    tagBytes[15] = (tagBytes[15] as number) ^ 0x80;
    expect(unseal(key, [version, iv, tagBytes.toString('base64url'), body].join('.'))).toBeUndefined();
  });
});

describe('addPeriod', () => {
  it('adds months first with a month-end clamp, then days', () => {
    expect(addPeriod(new Date('2024-08-31T10:00:00Z'), 'P6M').toISOString()).toBe('2025-02-28T10:00:00.000Z');
    expect(addPeriod(new Date('2023-08-31T00:00:00Z'), 'P6M').toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(addPeriod(new Date('2024-01-31T00:00:00Z'), 'P1M1D').toISOString()).toBe(
      '2024-03-01T00:00:00.000Z',
    );
    expect(addPeriod(new Date('2024-11-15T00:00:00Z'), 'P1Y2M').toISOString()).toBe(
      '2026-01-15T00:00:00.000Z',
    );
  });
});
