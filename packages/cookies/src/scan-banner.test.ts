// Hostile case 26, K03 and K06 against pages served on loopback. Tracker hosts are mapped to the
// local server with Chromium's --host-resolver-rules, and every other name fails to resolve: the
// tests never reach a real host.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromiumPath, skipWithout } from '@privacykit/core/testing';
import { chromium as playwright } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditBanner, chromiumArgs, scanSite } from './scan.js';

const chromium = chromiumPath;
const chromiumMissing = skipWithout(
  existsSync(chromium),
  `Chromium at ${chromium} (apt-get install chromium)`,
);

const banner = (
  buttons: string,
  text = 'We and our partners use cookies for audience measurement and ads.',
) => `
<div id="cookie-banner" style="position:fixed;bottom:0;left:0;right:0;padding:16px;background:#fff;border-top:1px solid #000">
  <p>${text}</p>${buttons}
</div>`;
const equalButtons = `
  <button data-privacykit-consent="refuse" style="font-size:16px;padding:10px 20px;background:#1a4;color:#fff;border:0">Refuse all</button>
  <button data-privacykit-consent="accept" style="font-size:16px;padding:10px 20px;background:#1a4;color:#fff;border:0">Accept all</button>`;
// The equal buttons, with the refuse one wrapped in `open`…`close`.
const hiddenRefuse = (open: string, close: string) => `
  ${open}<button data-privacykit-consent="refuse" style="font-size:16px;padding:10px 20px;background:#1a4;color:#fff;border:0">Refuse all</button>${close}
  <button data-privacykit-consent="accept" style="font-size:16px;padding:10px 20px;background:#1a4;color:#fff;border:0">Accept all</button>`;
const consentScript = (opts: { beforeConsent?: string; afterAccept?: string; closeAccepts?: boolean }) => `
<script>
  const choice = (document.cookie.match(/(?:^|; )site_consent=([^;]*)/) || [])[1];
  ${opts.beforeConsent ?? ''}
  if (choice === 'all') { ${opts.afterAccept ?? ''} }
  const box = document.getElementById('cookie-banner');
  if (choice) box.remove();
  const remember = (value) => { document.cookie = 'site_consent=' + value + '; path=/; max-age=15552000'; box.remove(); };
  for (const [sel, value] of [['[data-privacykit-consent=refuse]', 'none'], ['[data-privacykit-consent=accept]', 'all'], ['#close', ${opts.closeAccepts ? "'all'" : "'none'"}]])
    document.querySelector(sel)?.addEventListener('click', () => remember(value));
</script>`;
const html = (body: string) =>
  `<!doctype html><html><head><title>t</title></head><body style="margin:0;font-family:sans-serif">${body}</body></html>`;

// Port of a second loopback server: an origin of the same site (127.0.0.1) that is not the page's.
let framePort = 0;
const plainButton = 'style="font-size:16px;padding:10px 20px;background:#1a4;color:#fff;border:0"';

const pages: Record<string, () => string> = {
  // Beacons to Google Analytics and a declared first-party /collect on every view: a leak.
  '/leak': () =>
    html(
      banner(equalButtons) +
        consentScript({
          beforeConsent:
            "new Image().src = 'http://www.google-analytics.com/g/collect?v=2&tid=G-TEST'; fetch('/collect?e=pv');",
          afterAccept:
            "const s = document.createElement('script'); s.src = 'http://connect.facebook.net/en_US/fbevents.js'; document.head.append(s);",
        }),
    ),
  // The same tags, only after "accept".
  '/waits': () =>
    html(
      banner(equalButtons) +
        consentScript({
          afterAccept:
            "new Image().src = 'http://www.google-analytics.com/g/collect?v=2&tid=G-TEST'; fetch('/collect?e=pv');",
        }),
    ),
  '/compliant': () =>
    html(banner(`${equalButtons}<button id="close" aria-label="Close">×</button>`) + consentScript({})),
  '/compliant-v2': () =>
    html(banner(equalButtons, 'New wording: we use cookies for measurement only.') + consentScript({})),
  '/accept-only': () =>
    html(
      banner(
        '<button data-privacykit-consent="accept" style="font-size:16px;padding:10px 20px">Accept all</button>',
      ) + consentScript({}),
    ),
  '/grey-link': () =>
    html(
      banner(`<button data-privacykit-consent="accept" style="font-size:18px;padding:14px 40px;background:#06c;color:#fff;border:0">Accept all</button>
        <a href="#" data-privacykit-consent="refuse" style="font-size:10px;color:#ccc">reject</a>`) +
        consentScript({}),
    ),
  // Refuse buttons that are in the DOM, sized like accept, and yet not there for the visitor.
  '/refuse-in-invisible-wrapper': () =>
    html(banner(hiddenRefuse('<span style="opacity:0">', '</span>')) + consentScript({})),
  '/refuse-transparent-text': () =>
    html(
      banner(`
  <button data-privacykit-consent="refuse" style="font-size:16px;padding:10px 20px;background:#1a4;color:rgba(0,0,0,0);border:0">Refuse all</button>
  <button data-privacykit-consent="accept" style="font-size:16px;padding:10px 20px;background:#1a4;color:#fff;border:0">Accept all</button>`) +
        consentScript({}),
    ),
  '/refuse-covered': () =>
    html(
      banner(
        hiddenRefuse(
          '<span style="position:relative;display:inline-block">',
          '<span style="position:absolute;inset:0;background:#fff"></span></span>',
        ),
      ) + consentScript({}),
    ),
  '/refuse-clipped': () =>
    html(
      banner(
        hiddenRefuse(
          '<div style="height:0;overflow:hidden">',
          '</div><p style="position:relative;background:#fff;margin:0;padding:12px">Partners: 812 vendors</p>',
        ),
      ) + consentScript({}),
    ),
  // Closing the banner is taken as "accept": a dark pattern.
  '/close-accepts': () =>
    html(
      banner(`${equalButtons}<button id="close" aria-label="Close">×</button>`) +
        consentScript({
          closeAccepts: true,
          afterAccept: "document.cookie = '_ga=GA1.1.1.1; path=/; max-age=3600000';",
        }),
    ),
  // No banner at all: fine while nothing needs consent, not once something does.
  '/no-banner-necessary': () =>
    html("<p>Shop</p><script>document.cookie = 'PHPSESSID=abc; path=/';</script>"),
  '/no-banner-cookie': () =>
    html("<p>Shop</p><script>document.cookie = '_ga=GA1.1.1.1; path=/; max-age=3600000';</script>"),
  '/no-banner-beacon': () =>
    html(
      "<p>Shop</p><script>new Image().src = 'http://www.google-analytics.com/g/collect?v=2&tid=G-TEST';</script>",
    ),
  '/no-banner-storage': () => html("<p>Shop</p><script>localStorage.setItem('_hjid', 'x');</script>"),
  // Embedded players and widgets set their own cookies on load: they need consent.
  '/no-banner-embed-cookies': () =>
    html(
      "<p>Video</p><script>document.cookie = 'YSC=abc; path=/'; document.cookie = 'datr=x; path=/; max-age=63072000';</script>",
    ),
  // A second-layer copy of the refuse button, hidden, comes first in the document.
  '/hidden-refuse-first': () =>
    html(`<div id="prefs" hidden><button data-privacykit-consent="refuse">Reject (2nd layer)</button></div>
      ${banner(equalButtons)}
      <script>
        const choice = (document.cookie.match(/(?:^|; )site_consent=([^;]*)/) || [])[1];
        const box = document.getElementById('cookie-banner');
        if (choice) box.remove();
        const remember = (value) => { document.cookie = 'site_consent=' + value + '; path=/; max-age=15552000'; box.remove(); };
        for (const b of document.querySelectorAll('[data-privacykit-consent=refuse]')) b.addEventListener('click', () => remember('none'));
        document.querySelector('[data-privacykit-consent=accept]').addEventListener('click', () => remember('all'));
      </script>`),
  // A refuse button shown as prominently as accept that cannot be pressed.
  '/refuse-disabled': () =>
    html(
      banner(`<button data-privacykit-consent="refuse" disabled ${plainButton}>Refuse all</button>
        <button data-privacykit-consent="accept" ${plainButton}>Accept all</button>`) + consentScript({}),
    ),
  // An iframe of another origin of the same site writes its own localStorage.
  '/framed-storage': () => html(`<p>Shop</p><iframe src="http://127.0.0.1:${framePort}/frame"></iframe>`),
  // Sets _ga on the second view even with no answer: silence treated as consent.
  '/silence-consents': () =>
    html(
      banner(equalButtons) +
        consentScript({
          beforeConsent:
            "if (sessionStorage.getItem('seen')) document.cookie = '_ga=GA1.1.1.1; path=/; max-age=3600000'; sessionStorage.setItem('seen', '1');",
        }),
    ),
};

describe.skipIf(chromiumMissing)('trackers and banner (headless Chromium, loopback)', () => {
  let server: Server;
  let frameServer: Server;
  let base: string;
  let launchArgs: string[];
  let shots: string;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0]!;
      const page = pages[path];
      if (!page) {
        response.writeHead(204).end();
        return;
      }
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    launchArgs = [
      `--host-resolver-rules=MAP www.google-analytics.com 127.0.0.1:${port}, MAP connect.facebook.net 127.0.0.1:${port}, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`,
    ];
    shots = mkdtempSync(join(tmpdir(), 'privacykit-banner-'));
    frameServer = createServer((_request, response) => {
      response
        .writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
        .end("<!doctype html><script>localStorage.setItem('_hjid', 'x');</script>");
    });
    await new Promise<void>((resolve) => frameServer.listen(0, '127.0.0.1', resolve));
    framePort = (frameServer.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await new Promise((resolve) => frameServer.close(resolve));
    rmSync(shots, { recursive: true, force: true });
  });

  it('reports tracker requests before consent and after refusal, not after acceptance', async () => {
    const result = await scanSite(`${base}/leak`, { settleMs: 150, launchArgs, trackingPaths: ['/collect'] });
    const violations = [...result.violations].sort((a, b) => a.name.localeCompare(b.name));
    expect(
      violations.map((violation) => [violation.kind, violation.name, violation.reason, violation.phases]),
    ).toEqual([
      ['request', '127.0.0.1/collect', 'tracker request before consent', ['before-consent', 'after-refusal']],
      [
        'request',
        'www.google-analytics.com/g/collect',
        'tracker request before consent',
        ['before-consent', 'after-refusal'],
      ],
    ]);
    const refused = result.phases[1]!;
    expect(refused.violations.map((violation) => violation.reason)).toEqual([
      'tracker request after refusal',
      'tracker request after refusal',
    ]);
    expect(violations[1]).toMatchObject({
      vendor: 'Google Analytics',
      category: 'analytics',
      firstParty: false,
    });
    expect(violations[0]).toMatchObject({ rule: 'declared-path:/collect', firstParty: true });
    // After acceptance the Meta Pixel loads, with consent: recorded, not a violation.
    const accepted = result.phases[2]!;
    expect(accepted.requests.some((request) => request.tracker?.vendor === 'Meta Pixel')).toBe(true);
    expect(accepted.violations).toEqual([]);
    // Auditing the banner from this scan fails: ignoring it still sent tracker requests.
    const audit = await auditBanner(result);
    expect(audit.passed).toBe(false);
    expect(audit.findings.map((finding) => finding.code)).toEqual(['silence-not-refusal']);
  });

  it('a page that waits for consent: no violations, trackers seen after acceptance only', async () => {
    const result = await scanSite(`${base}/waits`, {
      settleMs: 150,
      launchArgs,
      trackingPaths: ['/collect'],
    });
    expect(result.violations).toEqual([]);
    expect(result.phases[0]!.requests.filter((request) => request.tracker)).toEqual([]);
    const vendors = result.phases[2]!.requests.flatMap((request) =>
      request.tracker ? [request.tracker.vendor] : [],
    );
    expect([...new Set(vendors)].sort()).toEqual(['Google Analytics', 'first-party (declared)']);
  });

  it('a compliant banner passes, and the scan records its versioned snapshot with a PNG', async () => {
    const result = await scanSite(`${base}/compliant`, {
      settleMs: 100,
      launchArgs,
      bannerScreenshotDir: shots,
    });
    const audit = await auditBanner(result);
    expect(audit.findings).toEqual([]);
    expect(audit.passed).toBe(true);
    const { accept, refuse } = result.banner;
    expect(accept && refuse && refuse.box.width * refuse.box.height).toBeGreaterThan(0);
    expect(refuse!.inViewport).toBe(true);

    const snapshot = result.bannerSnapshot!;
    expect(snapshot.version).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(snapshot.text).toContain('We and our partners use cookies');
    expect(snapshot.selector).toBe('#cookie-banner');
    const png = readFileSync(snapshot.screenshotPath!);
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    const again = await scanSite(`${base}/compliant`, { settleMs: 100, launchArgs });
    expect(again.bannerSnapshot!.version).toBe(snapshot.version);
    expect(again.bannerSnapshot!.screenshotPath).toBeUndefined();
    const reworded = await scanSite(`${base}/compliant-v2`, { settleMs: 100, launchArgs });
    expect(reworded.bannerSnapshot!.version).not.toBe(snapshot.version);
  });

  it('a scanned page with no banner fails on a tracker beacon it sends, and passes with none', async () => {
    const beacon = await auditBanner(
      await scanSite(`${base}/no-banner-beacon`, { settleMs: 100, launchArgs }),
    );
    expect(beacon.passed).toBe(false);
    expect(beacon.findings.map((finding) => [finding.code, finding.severity])).toEqual([
      ['no-banner', 'fail'],
    ]);
    const plain = await auditBanner(
      await scanSite(`${base}/no-banner-necessary`, { settleMs: 100, launchArgs }),
    );
    expect(plain.passed).toBe(true);
  });

  it('a first layer without a reject option fails validation', async () => {
    const result = await scanSite(`${base}/accept-only`, { settleMs: 100, launchArgs });
    const audit = await auditBanner(result);
    expect(audit.passed).toBe(false);
    expect(audit.findings.map((finding) => finding.code)).toEqual(['no-reject-option']);
  });

  it('a tiny grey "reject" link next to a big accept button fails on size and contrast', async () => {
    const result = await scanSite(`${base}/grey-link`, { settleMs: 100, launchArgs });
    const audit = await auditBanner(result);
    expect(audit.passed).toBe(false);
    expect(audit.findings.map((finding) => finding.code)).toEqual(['reject-smaller', 'reject-low-contrast']);
    expect(result.banner.refuse!.contrast).toBeLessThan(2);
    expect(result.banner.accept!.contrast).toBeGreaterThan(4.5);
  });

  it('clicks the refuse button the visitor sees, not a hidden copy earlier in the page', async () => {
    const result = await scanSite(`${base}/hidden-refuse-first`, {
      settleMs: 100,
      launchArgs,
      timeoutMs: 3000,
    });
    const refused = result.phases.find((phase) => phase.phase === 'after-refusal')!;
    expect(refused.cookies.map((cookie) => cookie.name)).toContain('site_consent');
    expect(refused.bannerClicked).toBe(true);
    expect(refused.click).toMatchObject({ button: 'refuse', outcome: 'clicked' });
  });

  it('a refuse button shown but impossible to click is a failing finding, not a quiet "not clicked"', async () => {
    const result = await scanSite(`${base}/refuse-disabled`, { settleMs: 100, launchArgs, timeoutMs: 1500 });
    const audit = await auditBanner(result);
    expect(audit.passed).toBe(false);
    expect(audit.findings.map((finding) => [finding.code, finding.severity])).toEqual([
      ['click-failed', 'fail'],
    ]);
    const refused = result.phases.find((phase) => phase.phase === 'after-refusal')!;
    expect(refused.click).toMatchObject({ outcome: 'failed' });
  });

  it('closes the banner in a fresh browser and fails it when closing counts as acceptance', async () => {
    const result = await scanSite(`${base}/close-accepts`, {
      settleMs: 100,
      launchArgs,
      banner: { close: '#close' },
    });
    const audit = await auditBanner(result);
    expect(audit.findings.map((finding) => finding.code)).toEqual(['close-not-refusal']);
    expect(audit.storedAfterClose).toEqual(['cookie _ga (127.0.0.1)']);
    expect(result.close).toMatchObject({ button: 'close', outcome: 'clicked' });
    const closed = result.phases.find((phase) => phase.phase === 'after-close')!;
    expect(closed.violations.map((violation) => violation.name)).toEqual(['_ga']);

    const compliant = await auditBanner(
      await scanSite(`${base}/compliant`, { settleMs: 100, launchArgs, banner: { close: '#close' } }),
    );
    expect(compliant.findings).toEqual([]);
    expect(compliant.storedAfterClose).toEqual([]);
  });

  it('says so when the banner has no close control to test', async () => {
    const result = await scanSite(`${base}/waits`, { settleMs: 100, launchArgs });
    expect((await auditBanner(result)).storedAfterClose).toBeNull();
    expect(result.close).toMatchObject({ outcome: 'not-found' });
    expect(result.phases.map((phase) => phase.phase)).not.toContain('after-close');
  });

  it('reads the web storage of every frame, not only the top document', async () => {
    const result = await scanSite(`${base}/framed-storage`, { settleMs: 200, launchArgs });
    const before = result.phases[0]!;
    expect(before.storage.map((item) => [item.area, item.key, item.origin])).toEqual([
      ['localStorage', '_hjid', `http://127.0.0.1:${framePort}`],
    ]);
    expect(result.violations.map((violation) => [violation.kind, violation.name])).toEqual([
      ['localStorage', '_hjid'],
    ]);
  });

  describe('auditBanner on a live page', () => {
    const audit = async (path: string, close?: string) => {
      const browser = await playwright.launch({
        executablePath: chromium,
        args: [...chromiumArgs, ...launchArgs],
      });
      try {
        const page = await (await browser.newContext()).newPage();
        await page.goto(`${base}${path}`);
        return await auditBanner(page, { settleMs: 100, ...(close ? { banner: { close } } : {}) });
      } finally {
        await browser.close();
      }
    };

    it('passes a compliant banner whose close button refuses', async () => {
      const result = await audit('/compliant', '#close');
      expect(result.findings).toEqual([]);
    });

    it('fails when closing the banner counts as acceptance', async () => {
      const result = await audit('/close-accepts', '#close');
      expect(result.findings.map((finding) => finding.code)).toEqual(['close-not-refusal']);
      expect(result.findings[0]!.message).toContain('_ga');
    });

    it('fails when a reload without interaction sets an analytics cookie', async () => {
      const result = await audit('/silence-consents');
      expect(result.findings.map((finding) => finding.code)).toEqual(['silence-not-refusal']);
    });

    it.each([
      ['/refuse-in-invisible-wrapper', 'no-reject-option'],
      ['/refuse-covered', 'no-reject-option'],
      ['/refuse-clipped', 'no-reject-option'],
      ['/refuse-transparent-text', 'reject-low-contrast'],
    ])('fails a refuse button the visitor cannot see (%s)', async (path, code) => {
      const result = await audit(path);
      expect(result.passed).toBe(false);
      expect(result.findings.map((finding) => finding.code)).toEqual([code]);
    });

    it('passes a page with no banner that stores only what is strictly necessary', async () => {
      const result = await audit('/no-banner-necessary');
      expect(result.passed).toBe(true);
      expect(result.findings.map((finding) => [finding.code, finding.severity])).toEqual([
        ['no-banner', 'warn'],
      ]);
    });

    it.each([
      ['/no-banner-cookie', 'cookie _ga (127.0.0.1)'],
      ['/no-banner-beacon', 'request to www.google-analytics.com/g/collect'],
      ['/no-banner-storage', 'localStorage _hjid (127.0.0.1)'],
    ])('fails a page with no banner that stores or sends what needs consent (%s)', async (path, item) => {
      const result = await audit(path);
      expect(result.passed).toBe(false);
      expect(result.findings.map((finding) => [finding.code, finding.severity])).toEqual([
        ['no-banner', 'fail'],
      ]);
      expect(result.storedWhileIgnored).toEqual([item]);
    });

    it.each(['/no-banner-embed-cookies', '/framed-storage'])(
      'judges a page (%s) as it judges the scan of it',
      async (path) => {
        const live = await audit(path);
        const scanned = await auditBanner(await scanSite(`${base}${path}`, { settleMs: 200, launchArgs }));
        expect(live.passed).toBe(false);
        expect(scanned.passed).toBe(false);
        expect([...scanned.storedWhileIgnored].sort()).toEqual([...live.storedWhileIgnored].sort());
      },
    );

    it('fails a grey-link banner measured live', async () => {
      const result = await audit('/grey-link');
      expect(result.passed).toBe(false);
      expect(result.findings.map((finding) => finding.code)).toContain('reject-low-contrast');
    });
  });
});
