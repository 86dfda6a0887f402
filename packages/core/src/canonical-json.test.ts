import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import { isPrivacyKitError } from './errors.js';

describe('canonicalJson (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and drops whitespace', () => {
    // RFC 8785 §3.2.3 sorting example: keys in UTF-16 order, including a surrogate pair.
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Read keys from the text: JSON.parse would reorder the integer-like key "1".
    const keys = [...canonicalJson(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((match) =>
      JSON.parse(`"${match[1]}"`),
    );
    expect(keys).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  it('serialises numbers in ECMAScript shortest form (RFC 8785 §3.2.2.3)', () => {
    // biome-ignore lint/correctness/noPrecisionLoss: the RFC 8785 test vector is deliberately imprecise
    expect(canonicalJson([1e21, 1e-7, 0.000001, -0, 333333333.33333329, 4.5, 2e-3])).toBe(
      '[1e+21,1e-7,0.000001,0,333333333.3333333,4.5,0.002]',
    );
  });

  it('produces the RFC 8785 §3.2.4 example output', () => {
    const input = {
      // biome-ignore lint/correctness/noPrecisionLoss: the RFC 8785 test vector is deliberately imprecise
      numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
      string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/',
      literals: [null, true, false],
    };
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('rejects values JSON cannot carry', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const arrayCycle: unknown[] = [];
    arrayCycle.push(arrayCycle);
    let deep: unknown = [];
    for (let i = 0; i < 20_000; i++) deep = [deep];
    // An invalid Date and a cycle threw a plain RangeError before; so did an array cycle and
    // deeply nested arrays. A sparse array's hole came out as "[,1]", which is not JSON.
    for (const bad of [
      // biome-ignore lint/suspicious/noSparseArray: the hole is the case
      [, 1],
      new Array(2),
      arrayCycle,
      deep,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      [undefined],
      () => 1,
      10n,
      new Map(),
      new Date(Number.NaN),
      cycle,
    ]) {
      expect(() => canonicalJson({ bad })).toThrow();
      try {
        canonicalJson({ bad });
      } catch (error) {
        expect(isPrivacyKitError(error, 'json/not-canonical')).toBe(true);
      }
    }
  });

  it('is stable under key order and round-trips through JSON.parse', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        const shuffled = JSON.parse(JSON.stringify(value), function (this: unknown, _key, v) {
          if (v && typeof v === 'object' && !Array.isArray(v)) {
            return Object.fromEntries(Object.entries(v).reverse());
          }
          return v;
        });
        expect(canonicalJson(shuffled)).toBe(text);
      }),
    );
  });
});
