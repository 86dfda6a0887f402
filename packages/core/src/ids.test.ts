import { describe, expect, it } from 'vitest';
import { newId, randomDigits, randomToken } from './ids.js';

describe('ids', () => {
  it('newId is a UUIDv7 that sorts by creation time', () => {
    const a = newId(new Date('2024-01-01T00:00:00Z'));
    const b = newId(new Date('2024-01-01T00:00:00.001Z'));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a < b).toBe(true);
    expect(a.slice(0, 13)).toBe('018cc251-f400');
  });

  it('randomToken carries at least 128 bits and never repeats', () => {
    expect(() => randomToken(15)).toThrow(RangeError);
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken()));
    expect(tokens.size).toBe(1000);
    expect([...tokens][0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(randomToken(16)).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('randomDigits draws every digit', () => {
    const seen = new Set(Array.from({ length: 200 }, () => randomDigits(6)).join(''));
    expect(seen.size).toBe(10);
    expect(randomDigits(8)).toMatch(/^\d{8}$/);
  });
});
