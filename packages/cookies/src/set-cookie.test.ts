import { isPrivacyKitError } from '@privacykit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type SetCookie,
  parseCookieDate,
  parseSetCookie,
  parseSetCookieHeaders,
  safeParseSetCookie,
  serializeSetCookie,
  splitSetCookieString,
} from './set-cookie.js';

describe('parseSetCookie', () => {
  it('reads every RFC 6265bis attribute', () => {
    const cookie = parseSetCookie(
      'id=a3fWa; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Max-Age=2592000; Domain=.Example.COM; Path=/docs; Secure; HttpOnly; SameSite=Lax; Partitioned',
    );
    expect(cookie).toEqual({
      name: 'id',
      value: 'a3fWa',
      expires: new Date('2015-10-21T07:28:00Z'),
      maxAge: 2592000,
      domain: 'example.com',
      path: '/docs',
      secure: true,
      httpOnly: true,
      sameSite: 'lax',
      partitioned: true,
    });
  });

  it('treats a pair without "=" as a nameless cookie, as browsers do', () => {
    expect(parseSetCookie('justavalue')).toMatchObject({ name: '', value: 'justavalue' });
  });

  it('ignores a bad Max-Age, an empty Domain and a relative Path, keeping the cookie', () => {
    const result = safeParseSetCookie('a=1; Max-Age=12abc; Domain=; Path=relative');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.cookie.maxAge).toBeUndefined();
    expect(result.cookie.domain).toBeUndefined();
    expect(result.cookie.path).toBeUndefined();
    expect(result.warnings).toHaveLength(3);
  });

  it('keeps a negative Max-Age (a deletion)', () => {
    expect(parseSetCookie('a=1; Max-Age=-1').maxAge).toBe(-1);
  });

  it('rejects cookies browsers drop, with the reason', () => {
    const cases: [string, RegExp][] = [
      ['__Secure-id=1', /__Secure-.*Secure/],
      ['__Host-id=1; Secure; Path=/; Domain=example.com', /Domain/],
      ['__Host-id=1; Secure', /Path=\//],
      ['__host-id=1; Path=/', /__Host-.*Secure/],
      ['a=1; SameSite=None', /SameSite=None/],
      ['a=1; Partitioned', /Partitioned/],
      ['', /empty/],
      ['=', /empty/],
      ['a=b\u0001c', /control/],
      [`a=${'x'.repeat(5000)}`, /4096/],
    ];
    for (const [header, reason] of cases) {
      const result = safeParseSetCookie(header);
      expect(result.ok, header).toBe(false);
      if (!result.ok) expect(result.reason).toMatch(reason);
    }
  });

  it('accepts a valid __Host- cookie', () => {
    expect(parseSetCookie('__Host-sid=1; Secure; Path=/').name).toBe('__Host-sid');
  });

  it('throws a typed error, not a deep one, for an ignored header', () => {
    try {
      parseSetCookie('__Secure-x=1');
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'cookies/invalid-set-cookie')).toBe(true);
    }
  });

  it('never throws from safeParseSetCookie on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (header) => {
        const result = safeParseSetCookie(header);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 2000 },
    );
  });
});

describe('parseCookieDate', () => {
  it('reads the date formats seen in the wild', () => {
    const expected = new Date('2015-10-21T07:28:00Z').getTime();
    for (const text of [
      'Wed, 21 Oct 2015 07:28:00 GMT',
      'Wednesday, 21-Oct-15 07:28:00 GMT',
      'Wed Oct 21 07:28:00 2015',
      '21 Oct 2015 07:28:00',
    ]) {
      expect(parseCookieDate(text)?.getTime(), text).toBe(expected);
    }
  });

  it('refuses impossible dates', () => {
    for (const text of [
      'Wed, 30 Feb 2015 07:28:00 GMT',
      'Wed, 21 Oct 1500 07:28:00 GMT',
      '21 Oct 2015 25:00:00',
      'nonsense',
    ]) {
      expect(parseCookieDate(text), text).toBeUndefined();
    }
  });

  it('maps two-digit years as RFC 6265 says (70–99 → 19xx, 00–69 → 20xx)', () => {
    expect(parseCookieDate('01 Jan 70 00:00:00')?.getUTCFullYear()).toBe(1970);
    expect(parseCookieDate('01 Jan 69 00:00:00')?.getUTCFullYear()).toBe(2069);
  });
});

const token = fc
  .stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}$/)
  .filter((name) => !/^__(secure|host)-/i.test(name));
const cookieValue = fc.stringMatching(/^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{0,40}$/);
const setCookieArbitrary: fc.Arbitrary<SetCookie> = fc
  .record(
    {
      name: token,
      value: cookieValue,
      expires: fc
        .integer({ min: Date.UTC(1601, 0, 1) / 1000, max: Date.UTC(9999, 11, 31) / 1000 })
        .map((s) => new Date(s * 1000)),
      maxAge: fc.integer({ min: -1000, max: 10 ** 9 }),
      domain: fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}\.){1,3}[a-z]{2,6}$/),
      path: fc.stringMatching(/^\/[A-Za-z0-9/_-]{0,20}$/),
      secure: fc.boolean(),
      httpOnly: fc.boolean(),
      sameSite: fc.constantFrom('strict' as const, 'lax' as const, 'none' as const),
      partitioned: fc.boolean(),
    },
    { requiredKeys: ['name', 'value', 'secure', 'httpOnly', 'partitioned'] },
  )
  .filter((cookie) => !((cookie.sameSite === 'none' || cookie.partitioned) && !cookie.secure));

describe('serializeSetCookie', () => {
  it('round-trips through parseSetCookie (property)', () => {
    fc.assert(
      fc.property(setCookieArbitrary, (cookie) => {
        expect(parseSetCookie(serializeSetCookie(cookie))).toEqual(cookie);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a name that is not a token and a value outside cookie-octet', () => {
    for (const cookie of [
      { name: 'a b', value: '1' },
      { name: 'a', value: 'x;y' },
      { name: 'a', value: 'x y' },
      { name: 'a', value: '1', path: 'nope' },
    ]) {
      expect(() =>
        serializeSetCookie({ secure: false, httpOnly: false, partitioned: false, ...cookie }),
      ).toThrow(
        expect.objectContaining({
          code: 'cookies/invalid-cookie',
          message: expect.stringMatching(/Cannot serialise/),
        }),
      );
    }
  });
});

describe('parseSetCookieHeaders', () => {
  it('splits a comma-joined header without breaking Expires dates', () => {
    const joined = 'a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/, b=2; HttpOnly, c=3';
    expect(splitSetCookieString(joined)).toEqual([
      'a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/',
      'b=2; HttpOnly',
      'c=3',
    ]);
    // A space before `=` (trimmed from the name by browsers): a cookie of its own, not part of
    // the Path before it (the analytics cookie went unaudited).
    expect(splitSetCookieString('sid=1; Path=/, _ga =GA1.2.3; Max-Age=63072000')).toEqual([
      'sid=1; Path=/',
      '_ga =GA1.2.3; Max-Age=63072000',
    ]);
    expect(parseSetCookieHeaders('sid=1; Path=/, _ga =GA1.2.3').cookies.map((cookie) => cookie.name)).toEqual(
      ['sid', '_ga'],
    );
  });

  it('skips bad entries with a reason and keeps the good ones', () => {
    const batch = parseSetCookieHeaders(['good=1', '__Secure-bad=1', '']);
    expect(batch.cookies.map((cookie) => cookie.name)).toEqual(['good']);
    expect(batch.skipped).toHaveLength(2);
    expect(batch.skipped[0]!.reason).toMatch(/Secure/);
  });

  it('accepts no header at all', () => {
    expect(parseSetCookieHeaders(undefined)).toEqual({ cookies: [], skipped: [] });
  });
});
