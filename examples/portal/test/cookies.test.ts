import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ScanResult } from '@privacykit/cookies/scan';
import { findingsOf } from '../src/routes/admin/cookies.js';
import { seedPolicy } from '../src/policy.js';
import { createStaffDirectory } from '../src/staff.js';
import { ADMIN, Client, STAFF, TEST_PASSWORD_COST, settledScan, startPortal } from './harness.js';
import type { Portal } from './harness.js';

const OTHER = { email: 'second.officer@example.com', password: 'yet another passphrase', name: 'Sam Second' };

describe.each(testEngines())('back-office cookies on $engine', (engine) => {
  let portal: Portal;
  const scanned: string[] = [];
  // Holds the fake scanner until released, to see the scan running after the request was answered.
  let release = () => {};
  let gate: Promise<void> = Promise.resolve();
  const holdScans = () => {
    gate = new Promise((resolve) => {
      release = resolve;
    });
  };
  beforeAll(async () => {
    portal = await startPortal(
      engine,
      (base) => ({
        scanOrigins: [base],
        rateLimits: { login: 1000 },
        // The Chromium scan has its own test (cookie-scan.browser.test.ts); here only the route.
        cookieScanner: async (url) => {
          scanned.push(url);
          await gate;
          if (new URL(url).pathname === '/unreachable') throw new Error('net::ERR_CONNECTION_REFUSED');
          return { url, site: '127.0.0.1', phases: [], violations: [] } as unknown as ScanResult;
        },
      }),
      { seed: false },
    );
  });
  afterAll(async () => {
    await portal?.close();
  });
  beforeEach(() => {
    scanned.length = 0;
    gate = Promise.resolve();
  });
  // The audit trail is for administrators.
  const auditTrail = async () => {
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    return admin.page('/admin/audit');
  };

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

  it('refuses a page outside the scan origins with a 403 before any browser starts, and audits it', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    const port = new URL(portal.base).port;
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://127.0.0.1:1/',
      `http://localhost:${port}/`,
      `https://127.0.0.1:${port}/`,
      `http://127.0.0.1.nip.io:${port}/`,
      `http://[::1]:${port}/`,
    ]) {
      const response = await staff.post('/admin/cookies/scan', { url });
      expect(response.status, url).toBe(403);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.text()).toContain('is not one of the sites this portal may scan');
    }
    expect(scanned).toEqual([]);
    const audit = await auditTrail();
    expect(audit).toContain('cookies.scan.refused');
    expect(audit).toContain('169.254.169.254');
  });

  it('refuses credentials, other schemes and malformed addresses with a 400, never echoing a password', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    const host = new URL(portal.base).host;
    for (const url of [
      `http://admin:s3cret-pass@${host}/`,
      `http://admin@${host}/`,
      `${portal.base}@169.254.169.254/`,
      'file:///etc/passwd',
      'javascript:alert(1)',
      'chrome://settings',
      'ftp://x.example/',
      'not a url',
      '',
      `${portal.base}/${'a'.repeat(2000)}`,
    ]) {
      const response = await staff.post('/admin/cookies/scan', { url });
      expect(response.status, url).toBe(400);
      expect(await response.text()).not.toContain('s3cret-pass');
    }
    expect((await staff.post('/admin/cookies/scan', {})).status).toBe(400);
    expect(scanned).toEqual([]);
  });

  it('scans an allowed page in the background: 202 with its location, then the result, audited', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    expect((await staff.post('/admin/cookies/scan', { url: `${portal.base}/` }, { csrf: null })).status).toBe(
      403,
    );
    holdScans();
    // The scheme and host as typed do not matter: the checked, serialised address is scanned.
    const started = await staff.post('/admin/cookies/scan', { url: ` ${portal.base.toUpperCase()}/ ` });
    expect(started.status).toBe(202);
    const location = started.headers.get('location') ?? '';
    expect(location).toMatch(/^\/admin\/cookies\/scans\/[0-9a-f-]{36}$/);
    expect(await started.text()).toMatch(/data-scan-status="(queued|running)"/);
    // The request was answered while the scanner is still at work.
    expect(await staff.page(location)).toContain('data-scan-status="running"');
    release();
    const page = await settledScan(staff, location);
    expect(page).toContain('data-scan-status="done"');
    expect(page).toContain('data-scan-violations="0"');
    expect(scanned).toEqual([`${portal.base}/`]);
    const audit = await auditTrail();
    expect(audit).toContain('cookies.scan');
    expect(audit).toContain('cookies.scan.done');
  });

  it('shows why a scan failed', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    const started = await staff.post('/admin/cookies/scan', { url: `${portal.base}/unreachable` });
    expect(started.status).toBe(202);
    const page = await settledScan(staff, started.headers.get('location') ?? '');
    expect(page).toContain('data-scan-status="failed"');
    expect(page).toContain('The page could not be scanned');
    expect(page).not.toContain('ERR_CONNECTION_REFUSED');
    expect(await auditTrail()).toContain('cookies.scan.failed');
  });

  it('shows a scan to whoever asked for it and to administrators only', async () => {
    await createStaffDirectory({
      db: portal.t.db,
      tenant: seedPolicy.tenant,
      clock: portal.clock,
      passwordCost: TEST_PASSWORD_COST,
    }).create({
      ...OTHER,
      role: 'privacy-officer',
    });
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page('/admin/cookies');
    const started = await officer.post('/admin/cookies/scan', { url: `${portal.base}/privacy` });
    expect(started.status).toBe(202);
    const location = started.headers.get('location') ?? '';
    await settledScan(officer, location);
    const other = new Client(portal.base);
    await other.login(OTHER);
    expect((await other.get(location)).status).toBe(404);
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    expect(await admin.page(location)).toContain('data-scan-status="done"');
    expect((await admin.get('/admin/cookies/scans/no-such-scan')).status).toBe(404);
    expect((await new Client(portal.base).get(location)).status).toBe(303);
  });

  it('runs one scan at a time and accepts at most five waiting, then a 429', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    holdScans();
    const locations: string[] = [];
    for (let i = 0; i < 5; i++) {
      const started = await staff.post('/admin/cookies/scan', { url: `${portal.base}/?page=${i}` });
      expect(started.status).toBe(202);
      locations.push(started.headers.get('location') ?? '');
    }
    expect((await staff.post('/admin/cookies/scan', { url: `${portal.base}/?page=5` })).status).toBe(429);
    expect(scanned).toEqual([`${portal.base}/?page=0`]);
    expect(await staff.page(locations[4]!)).toContain('data-scan-status="queued"');
    release();
    for (const location of locations)
      expect(await settledScan(staff, location)).toContain('data-scan-status="done"');
    expect(scanned).toEqual([0, 1, 2, 3, 4].map((i) => `${portal.base}/?page=${i}`));
    expect((await staff.post('/admin/cookies/scan', { url: `${portal.base}/?page=5` })).status).toBe(202);
  });

  it('scans nothing when no origin is configured, and refuses a malformed scanOrigins at start', async () => {
    const unconfigured = await startPortal(
      engine,
      { cookieScanner: async () => Promise.reject(new Error('no')) },
      {
        seed: false,
      },
    );
    try {
      const staff = new Client(unconfigured.base);
      await staff.login(STAFF);
      expect(await staff.page('/admin/cookies')).toContain('No site is configured for scanning');
      const response = await staff.post('/admin/cookies/scan', { url: `${unconfigured.base}/` });
      expect(response.status).toBe(403);
      expect(await response.text()).toContain('no site is configured for scanning');
    } finally {
      await unconfigured.close();
    }
    await expect(
      startPortal(engine, { scanOrigins: ['https://shop.example/basket'] }, { seed: false }),
    ).rejects.toThrow(/Invalid scanOrigins/);
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
