import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkScanTarget, scanOriginsOf } from './scan-origins.js';

const origins = ['https://shop.example', 'http://127.0.0.1:3000'];

describe('which pages the back office may scan', () => {
  it('allows pages on a configured origin, as the browser will load them', () => {
    expect(checkScanTarget('https://shop.example/basket?x=1', origins)).toEqual({
      allowed: true,
      url: 'https://shop.example/basket?x=1',
    });
    // Same origin spelled differently: scheme and host case, default port, surrounding spaces.
    expect(checkScanTarget('  HTTPS://Shop.EXAMPLE:443  ', origins)).toEqual({
      allowed: true,
      url: 'https://shop.example/',
    });
    expect(checkScanTarget('http://2130706433:3000/privacy', origins)).toEqual({
      allowed: true,
      url: 'http://127.0.0.1:3000/privacy',
    });
  });

  it('refuses another host, port or scheme with a 403, even one that looks alike', () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://127.0.0.1:22/',
      'http://localhost:3000/',
      'http://shop.example/',
      'https://shop.example.evil.test/',
      'https://evil.test/https://shop.example/',
      'https://shop.example:8443/',
      'http://[::1]:3000/',
    ]) {
      expect(checkScanTarget(url, origins), url).toMatchObject({
        allowed: false,
        problem: 'origin',
        status: 403,
      });
    }
  });

  it('refuses credentials, other schemes and unparsable addresses with a 400', () => {
    const cases: [string, string][] = [
      ['https://user:secret@shop.example/', 'credentials'],
      ['https://user@shop.example/', 'credentials'],
      ['https://shop.example@169.254.169.254/', 'credentials'],
      ['http://127.0.0.1:3000@evil.test/', 'credentials'],
      ['file:///etc/passwd', 'scheme'],
      ['javascript:alert(1)', 'scheme'],
      ['chrome://settings', 'scheme'],
      ['ftp://shop.example/', 'scheme'],
      ['data:text/html,<p>hi</p>', 'scheme'],
      ['not a url', 'unparsable'],
      ['/relative/path', 'unparsable'],
      ['http://', 'unparsable'],
      ['', 'unparsable'],
      [`https://shop.example/${'a'.repeat(2000)}`, 'too-long'],
    ];
    for (const [url, problem] of cases) {
      expect(checkScanTarget(url, origins), url).toMatchObject({ allowed: false, problem, status: 400 });
    }
  });

  it('refuses everything when no origin is configured', () => {
    expect(checkScanTarget('https://shop.example/', [])).toMatchObject({
      allowed: false,
      status: 403,
      reason: expect.stringContaining('no site is configured'),
    });
  });

  it('never allows an address that loads anything but a configured origin, without credentials', () => {
    const piece = fc.constantFrom(
      'https://',
      'http://',
      'shop.example',
      '127.0.0.1',
      ':3000',
      ':443',
      'evil.test',
      '@',
      ':',
      '/',
      '\\',
      '.',
      '#',
      '?',
      '%2F',
      '%40',
      '\t',
      ' ',
      'user',
    );
    fc.assert(
      // Often starting with an allowed origin, so that what follows it is what is tried.
      fc.property(fc.constantFrom('', ...origins), fc.array(piece, { maxLength: 10 }), (start, pieces) => {
        const target = checkScanTarget(start + pieces.join(''), origins);
        if (!target.allowed) return;
        const loaded = new URL(target.url);
        expect(origins).toContain(loaded.origin);
        expect(loaded.username + loaded.password).toBe('');
        // What the browser parses again is what was checked.
        expect(loaded.href).toBe(target.url);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('the configured scan origins', () => {
  it('default to the public origin, or to none', () => {
    expect(scanOriginsOf({ publicOrigin: 'https://privacy.example.com' })).toEqual([
      'https://privacy.example.com',
    ]);
    expect(scanOriginsOf({})).toEqual([]);
    expect(scanOriginsOf({ publicOrigin: 'https://privacy.example.com', scanOrigins: [] })).toEqual([]);
  });

  it('are read as canonical origins', () => {
    expect(
      scanOriginsOf({
        scanOrigins: ['https://Shop.Example:443/', 'http://127.0.0.1:3000', 'https://shop.example'],
      }),
    ).toEqual(['https://shop.example', 'http://127.0.0.1:3000']);
  });

  it('refuse an entry that is not a bare http(s) origin', () => {
    for (const entry of [
      'https://shop.example/basket',
      'https://shop.example/?x=1',
      'https://user:pass@shop.example',
      'ftp://shop.example',
      'shop.example',
    ]) {
      expect(() => scanOriginsOf({ scanOrigins: [entry] }), entry).toThrow(/Invalid scanOrigins/);
    }
  });
});
