import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromiumPath, skipWithout, testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, STAFF, settledScan, startPortal } from './harness.js';
import type { Portal } from './harness.js';

const executablePath = chromiumPath;
const chromiumMissing = skipWithout(
  existsSync(executablePath),
  `Chromium at ${executablePath} (apt-get install chromium)`,
);

// SQLite only: the back office scans the portal's own home page in the system Chromium.
describe.skipIf(chromiumMissing)('cookie scan of the portal itself in Chromium', () => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(testEngines()[0]!, (base) => ({ scanOrigins: [base] }), { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('finds no violation before consent or after refusal, only declared cookies, and _ga after acceptance', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    const response = await staff.post('/admin/cookies/scan', { url: `${portal.base}/` });
    expect(response.status).toBe(202);
    const page = await settledScan(staff, response.headers.get('location') ?? '');
    expect(page).toContain('data-scan-status="done"');
    expect(page).toContain('data-scan-violations="0"');
    const phase = (name: string) =>
      new RegExp(`data-phase="${name}">([\\s\\S]*?)</table>`).exec(page)?.[1] ?? '';
    expect(phase('before-consent')).toContain('<code>pk_session</code>');
    expect(phase('before-consent')).not.toContain('<code>_ga</code>');
    expect(phase('after-refusal')).toContain('<code>pk_consent</code>');
    expect(phase('after-refusal')).not.toContain('<code>_ga</code>');
    // The scanner found and pressed "Accept all": the analytics cookie appears only then.
    expect(phase('after-acceptance')).toContain('<code>_ga</code>');
  }, 120_000);

  it('refuses a site outside the scan origins without loading anything from it', async () => {
    // Another site on loopback, as an internal service would be: it must never see a request.
    let hits = 0;
    const other = createServer((_req, res) => {
      hits++;
      res.end('<p>internal</p>');
    });
    other.listen(0, '127.0.0.1');
    await new Promise((resolve) => other.once('listening', resolve));
    try {
      const otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      const staff = new Client(portal.base);
      await staff.login(STAFF);
      await staff.page('/admin/cookies');
      const response = await staff.post('/admin/cookies/scan', { url: `${otherBase}/admin` });
      expect(response.status).toBe(403);
      expect(response.headers.get('location')).toBeNull();
      expect(await response.text()).toContain(`${otherBase} is not one of the sites this portal may scan`);
      expect(hits).toBe(0);
    } finally {
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    }
  });
});

// An allowed site with an open redirect to another loopback service: the scanner must not follow it.
describe.skipIf(chromiumMissing)('cookie scan of an allowed page that redirects elsewhere', () => {
  let portal: Portal;
  const otherHits: string[] = [];
  const other = createServer((req, res) => {
    otherHits.push(req.url ?? '');
    res.end('<p>internal</p>');
  });
  const site = createServer((_req, res) => {
    res.writeHead(302, { Location: `${otherBase()}/admin` }).end();
  });
  const otherBase = () => `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  let siteBase = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteBase = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    portal = await startPortal(testEngines()[0]!, (base) => ({ scanOrigins: [base, siteBase] }), {
      seed: false,
    });
  });
  afterAll(async () => {
    await portal?.close();
    for (const server of [site, other]) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('does not follow the redirect to the other server, and says so', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    await staff.page('/admin/cookies');
    const response = await staff.post('/admin/cookies/scan', { url: `${siteBase}/go` });
    expect(response.status).toBe(202);
    const page = await settledScan(staff, response.headers.get('location') ?? '');
    expect(page).toContain('data-scan-status="done"');
    expect(otherHits).toEqual([]);
    expect(page).toContain(`data-blocked-navigation="${otherBase()}/admin"`);
  }, 120_000);
});
