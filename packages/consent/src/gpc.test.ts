import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gpcFromHeaders, parseGpcHeader } from './gpc.js';

describe('parseGpcHeader (hostile case 24)', () => {
  it('triggers on exactly "1"', () => {
    expect(parseGpcHeader('1')).toBe(true);
  });
  it('triggers on duplicate headers joined by Node as "0, 1" or given distinct', () => {
    expect(parseGpcHeader('0, 1')).toBe(true);
    expect(parseGpcHeader('1,0')).toBe(true);
    expect(parseGpcHeader(['0', '1'])).toBe(true);
  });
  it.each(['true', 'yes', '2', '0', '', '1.0', '01', 'on', '0, 0'])('does not trigger on %j', (value) => {
    expect(parseGpcHeader(value)).toBe(false);
  });
  it('trims whitespace first', () => {
    expect(parseGpcHeader('  1\t')).toBe(true);
    // Only HTTP whitespace: a no-break space or a BOM (a raw 0xA0 byte reaches Node as U+00A0) is not.
    expect(parseGpcHeader('\u00a01')).toBe(false);
    expect(parseGpcHeader('1\ufeff')).toBe(false);
    expect(parseGpcHeader(' 0 ,  1 ')).toBe(true);
  });
  it('never counts an absent header (absence is not consent either)', () => {
    expect(parseGpcHeader(undefined)).toBe(false);
    expect(parseGpcHeader(null)).toBe(false);
    expect(parseGpcHeader([])).toBe(false);
  });
  it('takes anything but a string or a list of strings as no signal, never throwing', () => {
    for (const value of [1, {}, true, [1], [null, '0'], { length: 1 }]) {
      expect(parseGpcHeader(value as unknown as string)).toBe(false);
    }
    expect(parseGpcHeader([2, '1'] as unknown as string[])).toBe(true);
    expect(gpcFromHeaders({ 'sec-gpc': 1 as unknown as string })).toBe(false);
  });
  it('takes no headers at all (undefined, null) as no signal instead of throwing', () => {
    for (const headers of [undefined, null, 'Sec-GPC: 1', 1]) {
      expect(gpcFromHeaders(headers as unknown as Record<string, string>)).toBe(false);
    }
  });
  it('reads a fetch Headers object, repeated headers joined included', () => {
    expect(gpcFromHeaders(new Headers({ 'Sec-GPC': '1' }))).toBe(true);
    const repeated = new Headers();
    repeated.append('sec-gpc', '0');
    repeated.append('Sec-GPC', '1');
    expect(gpcFromHeaders(repeated)).toBe(true);
    expect(gpcFromHeaders(new Headers({ 'Sec-GPC': '0' }))).toBe(false);
    expect(gpcFromHeaders(new Headers())).toBe(false);
    // A plain record with a header named "get" is still a record.
    expect(gpcFromHeaders({ get: 'x', 'sec-gpc': '1' })).toBe(true);
  });
  it('reads the header name case-insensitively', () => {
    expect(gpcFromHeaders({ 'Sec-GPC': '1' })).toBe(true);
    expect(gpcFromHeaders({ 'SEC-GPC': ['0', '1'] })).toBe(true);
    expect(gpcFromHeaders({ 'x-sec-gpc': '1' })).toBe(false);
  });
  it('triggers exactly when some comma-separated member is "1" once spaces and tabs are trimmed (property)', () => {
    // Characters that matter: HTTP whitespace, whitespace HTTP does not trim, digits, separators.
    const member = fc
      .array(fc.constantFrom(' ', '\t', '\u00a0', '\ufeff', '\n', '1', '0', 'x', ','), { maxLength: 5 })
      .map((chars) => chars.join(''));
    fc.assert(
      fc.property(fc.array(member, { minLength: 1, maxLength: 4 }), (members) => {
        const header = members.join(',');
        const expected = header.split(',').some((part) => part.replace(/^[ \t]+|[ \t]+$/g, '') === '1');
        expect(parseGpcHeader(header)).toBe(expected);
      }),
      { numRuns: 1000 },
    );
    // Only SP and HTAB are HTTP whitespace: a no-break space or BOM around the 1 is no signal.
    expect(parseGpcHeader(' \t1\t ')).toBe(true);
    expect(parseGpcHeader('\u00a01')).toBe(false);
    expect(parseGpcHeader('1\ufeff')).toBe(false);
  });
});
