import { existsSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isPrivacyKitError } from '@privacykit/core';
import { chromiumPath, skipWithout } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanSite } from './scan.js';

const chromium = chromiumPath;
const chromiumMissing = skipWithout(
  existsSync(chromium),
  `Chromium at ${chromium} (apt-get install chromium)`,
);

// The page sets Google Analytics' _ga from script before any choice: the violation to find.
const page = (analyticsBeforeConsent: boolean) => `<!doctype html>
<html><head><title>Test shop</title></head><body>
<div id="banner" hidden>
  <p>We use cookies.</p>
  <button data-privacykit-consent="refuse">Refuse all</button>
  <button data-privacykit-consent="accept">Accept all</button>
</div>
<script>
  const choice = (document.cookie.match(/(?:^|; )site_consent=([^;]*)/) || [])[1];
  ${analyticsBeforeConsent ? "document.cookie = '_ga=GA1.1.12345.67890; path=/; max-age=63072000';" : ''}
  if (choice === 'all') {
    document.cookie = '_ga=GA1.1.12345.67890; path=/; max-age=63072000';
    document.cookie = '_fbp=fb.1.1.1; path=/; max-age=7776000';
    localStorage.setItem('_hjSessionUser_1', 'x');
  }
  if (!choice) document.getElementById('banner').hidden = false;
  const remember = (value) => { document.cookie = 'site_consent=' + value + '; path=/; max-age=15552000'; document.getElementById('banner').hidden = true; };
  document.querySelector('[data-privacykit-consent=refuse]').onclick = () => remember('none');
  document.querySelector('[data-privacykit-consent=accept]').onclick = () => remember('all');
</script>
</body></html>`;

describe.skipIf(chromiumMissing)('scanSite (headless Chromium, loopback)', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const clean = request.url?.startsWith('/clean') === true;
      if (request.url === '/favicon.ico') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Set-Cookie': 'connect.sid=s%3Aabc.def; Path=/; HttpOnly; SameSite=Lax',
      });
      response.end(page(!clean));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('reports exactly the analytics cookie set before consent', async () => {
    const result = await scanSite(`${base}/`, { settleMs: 150 });
    expect(
      result.violations.map((violation) => [violation.kind, violation.name, violation.category]),
    ).toEqual([['cookie', '_ga', 'analytics']]);
    expect(result.violations[0]!.phases).toEqual(['before-consent', 'after-refusal']);

    const [before, refused, accepted] = result.phases;
    expect(before!.cookies.map((cookie) => cookie.name).sort()).toEqual(['_ga', 'connect.sid']);
    const session = before!.cookies.find((cookie) => cookie.name === 'connect.sid')!;
    expect(session).toMatchObject({ firstParty: true, httpOnly: true, expires: null });
    expect(session.classification).toMatchObject({ category: 'necessary', consentRequired: false });
    const ga = before!.cookies.find((cookie) => cookie.name === '_ga')!;
    // Asked for two years; Chromium caps lifetimes at 400 days (RFC 6265bis §5.6.1) — still over 13 months.
    expect(ga.lifetimeSeconds).toBeGreaterThan(399 * 86_400);
    expect(ga.lifetimeSeconds).toBeLessThanOrEqual(400 * 86_400);

    expect(refused!.bannerClicked).toBe(true);
    expect(refused!.cookies.map((cookie) => cookie.name)).toContain('site_consent');
    expect(accepted!.bannerClicked).toBe(true);
    expect(accepted!.cookies.map((cookie) => cookie.name).sort()).toEqual([
      '_fbp',
      '_ga',
      'connect.sid',
      'site_consent',
    ]);
    expect(accepted!.storage.map((item) => item.key)).toEqual(['_hjSessionUser_1']);
    expect(accepted!.violations).toEqual([]);
  });

  it('finds nothing on a page that waits for consent', async () => {
    const result = await scanSite(`${base}/clean`, { settleMs: 150 });
    expect(result.violations).toEqual([]);
    expect(result.phases[2]!.cookies.map((cookie) => cookie.name)).toContain('_fbp');
  });

  it('with GPC on, marketing after "accept all" is a violation', async () => {
    const result = await scanSite(`${base}/clean`, { settleMs: 150, gpc: true });
    expect(result.violations.map((violation) => [violation.name, violation.phases])).toEqual([
      ['_fbp', ['after-acceptance']],
    ]);
  });

  it('gives a typed error when Chromium cannot be launched', async () => {
    try {
      await scanSite(`${base}/`, { executablePath: '/nonexistent/chromium' });
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'cookies/scanner-unavailable')).toBe(true);
    }
  });
});

describe('scanSite input', () => {
  it('rejects a URL it cannot parse with a typed error', async () => {
    await expect(scanSite('not a url')).rejects.toMatchObject({ code: 'cookies/invalid-input' });
  });

  it('scans only http: and https: addresses: a local file or a script is refused before any browser starts', async () => {
    for (const url of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'ftp://example.com/',
      'data:text/html,x',
    ]) {
      await expect(scanSite(url, { executablePath: '/nonexistent/chromium' }), url).rejects.toMatchObject({
        code: 'cookies/invalid-input',
      });
    }
  });

  it('checks its options before starting a browser, the verdict settings as createClassifier does', async () => {
    const bad: unknown[] = [
      null,
      { audienceMeasurementExempt: { anonymous: false, siteOnly: false } },
      { clock: 'now' },
      { settleMs: -1 },
      { timeoutMs: '30s' },
      { banner: { refuse: 3 } },
      { classifier: {} },
      { launchArgs: '--x' },
      { unknownOption: true },
    ];
    for (const options of bad) {
      await expect(
        scanSite('http://127.0.0.1:9/', options as Parameters<typeof scanSite>[1]),
        JSON.stringify(options),
      ).rejects.toMatchObject({ code: 'cookies/invalid-options' });
    }
  });
});
