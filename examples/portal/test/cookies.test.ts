import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScanResult } from '@privacykit/cookies/scan';
import { findingsOf } from '../src/routes/admin/cookies.js';
import { seedPolicy } from '../src/policy.js';
import { Client, STAFF, startPortal } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('back-office cookies on $engine', (engine) => {
  let portal: Portal;
  const scanned: string[] = [];
  beforeAll(async () => {
    portal = await startPortal(
      engine,
      {
        // The Chromium scan has its own test (cookie-scan.browser.test.ts); here only the route.
        cookieScanner: async (url) => {
          scanned.push(url);
          return { url, site: '127.0.0.1', phases: [], violations: [] } as unknown as ScanResult;
        },
      },
      { seed: false },
    );
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('lists the declared inventory from the policy, staff only', async () => {
    const anonymous = new Client(portal.base);
    expect((await anonymous.get('/admin/cookies')).status).toBe(303);
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    const page = await staff.page('/admin/cookies');
    for (const cookie of seedPolicy.cookies) expect(page).toContain(`data-cookie="${cookie.name}"`);
    expect(page).toMatch(
      /data-cookie="_ga"><td><code>_ga<\/code><\/td><td>Google Analytics<\/td><td>analytics<\/td>[\s\S]*?13 months<\/td><td>needs consent/,
    );
    expect(page).toMatch(/data-cookie="pk_session">[\s\S]*?until the browser closes<\/td><td>exempt/);
    expect(page).toContain('<code>_ga_*</code>');
  });

  it('classifies a cookie name with its evidence, the policy first', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    const ga = await staff.page('/admin/cookies/classify?name=_ga');
    expect(ga).toContain('data-classification="analytics"');
    expect(ga).toContain('data-consent-required="true"');
    expect(ga).toMatch(/<strong>override<\/strong> <code>exact:_ga<\/code>/);
    const session = await staff.page('/admin/cookies/classify?name=pk_session');
    expect(session).toContain('data-classification="necessary"');
    expect(session).toContain('data-consent-required="false"');
    const prefixed = await staff.page('/admin/cookies/classify?name=_ga_ABC123');
    expect(prefixed).toContain('data-classification="analytics"');
    const unknown = await staff.page('/admin/cookies/classify?name=zz_mystery');
    expect(unknown).toContain('data-consent-required="true"');
    const bad = await staff.get(`/admin/cookies/classify?name=${encodeURIComponent('<script>')}`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).not.toContain('<script>');
  });

  it('scans only http(s) addresses, with a CSRF token, and audits the scan', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    for (const url of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'chrome://settings',
      'ftp://x.example/',
      'not a url',
    ]) {
      expect((await staff.post('/admin/cookies/scan', { url })).status).toBe(400);
    }
    expect(scanned).toEqual([]);
    expect((await staff.post('/admin/cookies/scan', { url: `${portal.base}/` }, { csrf: null })).status).toBe(
      403,
    );
    const ok = await staff.post('/admin/cookies/scan', { url: `${portal.base}/` });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('data-scan-violations="0"');
    expect(scanned).toEqual([`${portal.base}/`]);
    expect(await staff.page('/admin/audit')).toContain('cookies.scan');
  });
});

describe('scan findings against the policy', () => {
  const cookie = (name: string, category = 'analytics') => ({
    name,
    domain: 'shop.example',
    classification: { category, vendor: undefined },
  });
  it('flags cookies the policy does not declare, and keeps the scanner’s consent violations', () => {
    const scan = {
      url: 'https://shop.example/',
      site: 'shop.example',
      violations: [
        {
          kind: 'cookie',
          name: '_ga',
          domain: 'shop.example',
          category: 'analytics',
          firstParty: true,
          reason: 'needs consent',
          phases: ['before-consent'],
        },
      ],
      phases: [
        {
          phase: 'before-consent',
          cookies: [cookie('_ga'), cookie('pk_session', 'necessary'), cookie('_hjid')],
        },
        { phase: 'after-acceptance', cookies: [cookie('_ga_XYZ'), cookie('_hjid')] },
      ],
    } as unknown as ScanResult;
    const findings = findingsOf(seedPolicy, scan);
    expect(findings.map((f) => `${f.kind}:${f.name}:${f.phases.join('+')}`)).toEqual([
      'consent:_ga:before-consent',
      'undeclared:_hjid:before-consent+after-acceptance',
    ]);
  });
});
