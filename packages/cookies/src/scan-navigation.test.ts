// allowedOrigins against pages served on loopback: an allowed site and another site on a second
// port, standing in for an internal service the server's browser must never be steered to.
import { existsSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromiumPath, skipWithout } from '@privacykit/core/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { scanSite } from './scan.js';

const chromium = chromiumPath;
const chromiumMissing = skipWithout(
  existsSync(chromium),
  `Chromium at ${chromium} (apt-get install chromium)`,
);

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

describe.skipIf(chromiumMissing)('scanSite allowedOrigins (headless Chromium, loopback)', () => {
  let site: Server;
  let other: Server;
  let siteBase: string;
  let otherBase: string;
  /** Paths the other site was asked for. */
  const otherHits: string[] = [];

  beforeAll(async () => {
    other = createServer((request, response) => {
      otherHits.push(request.url ?? '');
      if (request.url === '/tracker.js') {
        response.writeHead(200, { 'Content-Type': 'text/javascript' }).end('window.tracked = true;');
      } else if (request.url === '/pixel.gif') {
        response.writeHead(200, { 'Content-Type': 'image/gif' });
        response.end(Buffer.from('R0lGODlhAQABAAAAACwAAAAAAQABAAA=', 'base64'));
      } else {
        response.writeHead(200, { 'Content-Type': 'text/html', 'Set-Cookie': 'internal=1; Path=/' });
        response.end('<!doctype html><title>internal</title><p>internal admin</p>');
      }
    });
    otherBase = await listen(other);
    const pages: Record<string, () => string> = {
      '/meta': () => `<meta http-equiv="refresh" content="0; url=${otherBase}/admin">`,
      '/script': () => `<script>location = '${otherBase}/admin';</script>`,
      '/popup': () => `<script>window.open('${otherBase}/admin');</script>`,
      '/includes': () =>
        `<script src="${otherBase}/tracker.js"></script><img src="${otherBase}/pixel.gif" alt=""><iframe src="${otherBase}/frame"></iframe>`,
    };
    site = createServer((request, response) => {
      if (request.url === '/redirect' || request.url === '/hop') {
        const to = request.url === '/hop' ? '/includes' : `${otherBase}/admin`;
        response.writeHead(302, { Location: to }).end();
        return;
      }
      const page = pages[request.url ?? ''];
      if (!page) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end(`<!doctype html><html><head><title>site</title></head><body>${page()}</body></html>`);
    });
    siteBase = await listen(site);
  });

  afterAll(async () => {
    await close(site);
    await close(other);
  });

  beforeEach(() => {
    otherHits.length = 0;
  });

  for (const [how, path] of [
    ['an HTTP redirect', '/redirect'],
    ['a meta refresh', '/meta'],
    ['a script setting location', '/script'],
  ] as const) {
    it(`does not follow ${how} to another origin, and reports it`, async () => {
      const result = await scanSite(`${siteBase}${path}`, { settleMs: 150, allowedOrigins: [siteBase] });
      expect(otherHits).toEqual([]);
      expect(result.blockedNavigations).toEqual([
        { url: `${otherBase}/admin`, phases: ['before-consent', 'after-refusal', 'after-acceptance'] },
      ]);
      expect(result.phases[0]!.blockedNavigations).toEqual([`${otherBase}/admin`]);
      // The aborted navigation is not reported as a request the site made.
      expect(result.phases[0]!.requests.map((request) => request.url)).not.toContain(`${otherBase}/admin`);
      for (const phase of result.phases) {
        expect(phase.cookies.map((cookie) => cookie.name)).not.toContain('internal');
      }
    }, 60_000);
  }

  it('does not let a popup load another origin', async () => {
    const result = await scanSite(`${siteBase}/popup`, { settleMs: 150, allowedOrigins: [siteBase] });
    expect(otherHits).toEqual([]);
    expect(result.blockedNavigations.map((blocked) => blocked.url)).toEqual([`${otherBase}/admin`]);
  }, 60_000);

  it('follows a redirect within the allowed origins, and still loads third-party scripts and images', async () => {
    const result = await scanSite(`${siteBase}/hop`, { settleMs: 150, allowedOrigins: [siteBase] });
    expect(otherHits).toContain('/tracker.js');
    expect(otherHits).toContain('/pixel.gif');
    expect(otherHits).toContain('/frame');
    expect(result.blockedNavigations).toEqual([]);
    expect(result.phases.every((phase) => phase.blockedNavigations.length === 0)).toBe(true);
    const seen = result.phases[0]!.requests.map((request) => [request.url, request.resourceType]);
    expect(seen).toContainEqual([`${otherBase}/tracker.js`, 'script']);
    expect(seen).toContainEqual([`${otherBase}/pixel.gif`, 'image']);
  }, 60_000);

  it('without allowedOrigins follows the redirect, as a visitor would', async () => {
    const result = await scanSite(`${siteBase}/redirect`, { settleMs: 150 });
    expect(otherHits).toContain('/admin');
    expect(result.blockedNavigations).toEqual([]);
    expect(result.phases[0]!.cookies.map((cookie) => cookie.name)).toContain('internal');
  }, 60_000);
});

describe('scanSite allowedOrigins input', () => {
  it('refuses a URL whose origin is not on the list, before starting a browser', async () => {
    await expect(
      scanSite('http://127.0.0.1:1/', {
        allowedOrigins: ['http://127.0.0.1:2'],
        executablePath: '/nonexistent/chromium',
      }),
    ).rejects.toMatchObject({ code: 'cookies/invalid-input' });
  });

  it('refuses an entry that is not an http(s) origin', async () => {
    for (const entry of ['file:///etc', 'http://127.0.0.1/admin', 'not a url', 'http://user:pw@127.0.0.1']) {
      await expect(
        scanSite('http://127.0.0.1/', { allowedOrigins: [entry], executablePath: '/nonexistent/chromium' }),
      ).rejects.toMatchObject({ code: 'cookies/invalid-options' });
    }
  });
});
