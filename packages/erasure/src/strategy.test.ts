import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { looksMasked, maskValue } from './strategy.js';
import type { ColumnStrategy } from './strategy.js';

const secrets = { hmacKey: 'key-one', seed: 'seed-one' };
const at = { secrets, table: 'logs', column: 'email', key: '1' };
const s = (strategy: ColumnStrategy['strategy'], extra: Partial<ColumnStrategy> = {}): ColumnStrategy => ({
  strategy,
  ...extra,
});

describe('maskValue', () => {
  it('keeps the type of every value it masks', () => {
    expect(maskValue('ada@example.com', s('hmac'), at)).toMatch(/^[0-9a-f]{16}$/);
    expect(Number.isInteger(maskValue(1234, s('hmac'), at))).toBe(true);
    expect(maskValue('1234', s('hmac'), at)).toMatch(/^\d+$/);
    expect(maskValue('2024-05-17', s('hmac'), at)).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(maskValue(new Date(2024, 4, 17), s('random'), at)).toBeInstanceOf(Date);
    expect(typeof maskValue(true, s('random'), at)).toBe('boolean');
    expect(maskValue(Buffer.from('secret'), s('redact'), at)).toEqual(Buffer.alloc(0));
    expect(maskValue(42, s('redact'), at)).toBe(0);
    expect(maskValue('Ada', s('redact'), at)).toBe('[erased]');
    expect(maskValue('Ada', s('redact', { replacement: 'X' }), at)).toBe('X');
    expect(maskValue('Ada', s('set-null'), at)).toBeNull();
    expect(maskValue(null, s('hmac'), at)).toBeNull();
  });

  it('generalises dates to the year, numbers to their range, emails to the domain', () => {
    expect(maskValue('1985-03-04', s('generalise'), at)).toBe('1985-01-01');
    expect(maskValue('2024-05-17T08:30:12.345Z', s('generalise'), at)).toBe('2024-01-01T00:00:00.000Z');
    expect(maskValue(new Date(1985, 2, 4), s('generalise'), at)).toEqual(new Date(1985, 0, 1));
    expect(maskValue(37, s('generalise'), at)).toBe(30);
    expect(maskValue(1234, s('generalise', { bucket: 1000 }), at)).toBe(1000);
    expect(maskValue('12.34', s('generalise'), at)).toBe('10.00');
    expect(maskValue('ada@example.com', s('generalise'), at)).toBe('@example.com');
  });

  it('pseudonyms are stable for a key and differ between keys', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (value) => {
        const one = maskValue(value, s('hmac', { length: 32 }), at);
        expect(maskValue(value, s('hmac', { length: 32 }), { ...at, table: 'other', key: '9' })).toBe(one);
        const other = maskValue(value, s('hmac', { length: 32 }), {
          ...at,
          secrets: { ...secrets, hmacKey: 'key-two' },
        });
        return /^\d/.test(value) || other !== one;
      }),
    );
  });

  it('random values are repeatable from the seed and differ by row', () => {
    const a = maskValue('login', s('random'), at);
    expect(maskValue('anything else', s('random'), at)).toBe(a);
    expect(maskValue('login', s('random'), { ...at, key: '2' })).not.toBe(a);
  });

  it('masking a masked value changes nothing (what verification relies on)', () => {
    const value = fc.oneof(
      fc.integer({ min: -1e9, max: 1e9 }),
      fc.emailAddress(),
      fc.string(),
      fc.date({ noInvalidDate: true, min: new Date(1900, 0, 1), max: new Date(2100, 0, 1) }),
    );
    const strategy = fc.constantFrom<ColumnStrategy>(
      s('redact'),
      s('generalise'),
      s('set-null'),
      s('random'),
    );
    fc.assert(
      fc.property(value, strategy, (v, st) => {
        const once = maskValue(v, st, at);
        return looksMasked(once, st, { ...at, identities: new Set() });
      }),
    );
  });

  it('an original value does not pass for a masked one', () => {
    const identities = new Set(['ada@example.com']);
    expect(looksMasked('ada@example.com', s('hmac'), { ...at, identities })).toBe(false);
    expect(looksMasked('Ada Lovelace', s('redact'), { ...at, identities })).toBe(false);
    expect(looksMasked('1985-03-04', s('generalise'), { ...at, identities })).toBe(false);
    expect(looksMasked(maskValue('ada@example.com', s('hmac'), at), s('hmac'), { ...at, identities })).toBe(
      true,
    );
  });
});
