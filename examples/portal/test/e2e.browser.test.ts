import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumPath, skipWithout, testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bannerPurposes } from '../src/consent-cookie.js';
import { smtpMailer } from '../src/mailer.js';
import { seedPolicy } from '../src/policy.js';
import { ADMIN, STAFF, startPortal } from './harness.js';
import type { Portal } from './harness.js';
import { startSmtp, waitForCode } from './smtp.js';
import { unzip } from './zip.js';

const executablePath = chromiumPath;
const chromiumMissing = skipWithout(
  existsSync(executablePath),
  `Chromium at ${executablePath} (apt-get install chromium)`,
);
const screenshots = fileURLToPath(new URL('../screenshots/', import.meta.url));

// SQLite only: the HTTP suites cover every engine; this one proves the pages work in a browser.
describe.skipIf(chromiumMissing)('the portal in Chromium', () => {
  let portal: Portal;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(screenshots, { recursive: true });
    smtp = await startSmtp();
    portal = await startPortal(testEngines()[0]!, {
      mailer: smtpMailer({ url: smtp.url, from: 'privacy@opendatasoft.example' }),
    });
    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await portal?.close();
    await smtp?.close();
  });

  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${screenshots}${name}.png`, fullPage: true });
  const cookieNames = async (context: BrowserContext) =>
    (await context.cookies()).map((cookie) => cookie.name).sort();

  async function fileRequest(
    context: BrowserContext,
    right: 'access' | 'erasure',
    email: string,
    name: string,
  ) {
    const page = await context.newPage();
    await page.goto(`${portal.base}/rights/${right}`);
    if (name) await shot(page, name);
    await page.getByLabel('Your email address').fill(email);
    const before = smtp.messages.length;
    await page.getByRole('button', { name: 'Send my request' }).click();
    await page.waitForURL(/\/rights\/verify\?submission=/);
    const code = await waitForCode(smtp.messages, email, before);
    if (name) await shot(page, `${name}-check-inbox`);
    await page.getByLabel('Confirmation code').fill(code);
    await page.getByRole('button', { name: 'Confirm' }).click();
    // The request's id is shown only now, verified: the address of its status page.
    await page.waitForURL(/\/rights\/requests\/[A-Za-z0-9_-]+$/);
    const requestId = new URL(page.url()).pathname.split('/').at(-1)!;
    return { page, requestId };
  }

  async function staffPage(who: { email: string; password: string } = STAFF): Promise<Page> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${portal.base}/admin/login`);
    if (who === STAFF) await shot(page, 'admin-login');
    await page.getByLabel('Email').fill(who.email);
    await page.getByLabel('Password').fill(who.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${portal.base}/admin`);
    return page;
  }

  it('sets no analytics cookie when the visitor refuses, and nothing non-exempt before a choice', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: string[] = [];
    page.on('request', (request) => requests.push(request.url()));
    await page.goto(`${portal.base}/privacy`);
    await expect.poll(() => page.getByRole('button', { name: 'Refuse all' }).isVisible()).toBe(true);
    await shot(page, 'privacy-notice-with-banner');
    expect(await cookieNames(context)).toEqual(['pk_session']);
    await page.getByRole('button', { name: 'Refuse all' }).click();
    await page.waitForLoadState('load');
    await page.goto(`${portal.base}/privacy`);
    expect(await cookieNames(context)).toEqual(['pk_consent', 'pk_session']);
    expect(requests.every((url) => url.startsWith(portal.base))).toBe(true);
    expect(requests.some((url) => url.includes('analytics.js'))).toBe(false);
    await page.goto(`${portal.base}/consent`);
    await shot(page, 'consent-history');
    await context.close();
  });

  it('sets the _ga cookie once the visitor accepts, and the preference centre shows every purpose', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${portal.base}/cookies`);
    await shot(page, 'cookie-preferences');
    // One Allow / Do not allow choice per purpose the policy's non-exempt cookies serve.
    const purposes = bannerPurposes(seedPolicy).map((purpose) => purpose.id);
    expect(purposes).toEqual(expect.arrayContaining(['audience-measurement', 'targeted-advertising']));
    const choices = (value: string) =>
      page.locator(`form[action="/cookies"] input[type=radio][value=${value}]`).evaluateAll((inputs) =>
        inputs.map((input) => {
          const radio = input as unknown as { name: string; checked: boolean };
          return [radio.name, radio.checked];
        }),
      );
    expect((await choices('granted')).map(([name]) => name)).toEqual(purposes.map((id) => `purpose_${id}`));
    expect((await choices('refused')).map(([name]) => name)).toEqual(purposes.map((id) => `purpose_${id}`));
    await page.getByRole('button', { name: 'Accept all' }).first().click();
    await page.waitForLoadState('load');
    await expect.poll(async () => (await cookieNames(context)).includes('_ga'), { timeout: 5000 }).toBe(true);
    // Back in the preference centre, every purpose shows as allowed.
    await page.goto(`${portal.base}/cookies`);
    expect(await choices('granted')).toEqual(purposes.map((id) => [`purpose_${id}`, true]));
    await context.close();
  });

  it('answers an access request: code from SMTP, staff approves and exports, the visitor downloads their zip', async () => {
    const visitor = await browser.newContext({ acceptDownloads: true });
    const { page, requestId } = await fileRequest(visitor, 'access', 'ada@example.com', 'rights-access-form');
    await shot(page, 'request-status');

    const staff = await staffPage();
    await staff.goto(`${portal.base}/admin/requests`);
    await shot(staff, 'admin-request-queue');
    await staff.getByRole('link', { name: requestId }).click();
    await staff.getByRole('button', { name: 'Approve (start handling)' }).click();
    await staff.getByRole('button', { name: 'Run the export' }).click();
    await staff.locator('[data-awaiting-approval]').waitFor();
    await shot(staff, 'admin-request-detail');
    // Four eyes: a second staff member releases the export.
    const second = await staffPage(ADMIN);
    await second.goto(`${portal.base}/admin/requests/${requestId}`);
    await second.getByRole('button', { name: 'Approve and release the export' }).click();
    await expect
      .poll(() => second.locator('[data-status]').first().getAttribute('data-status'))
      .toBe('completed');
    await shot(second, 'admin-request-released');
    await second.context().close();

    await page.reload();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download my data (zip)' }).click(),
    ]);
    const files = await unzip(readFileSync((await download.path())!));
    expect(files.get('data/customers.json')?.toString('utf8')).toContain('Ada Lovelace');
    expect(files.get('data/invoices.json')?.toString('utf8')).toContain('ada@example.com');
    expect(files.has('report.html')).toBe(true);
    await staff.context().close();
    await visitor.close();
  });

  it('erases on request, and the next access export shows only the retained invoices', async () => {
    const visitor = await browser.newContext({ acceptDownloads: true });
    const erasure = await fileRequest(visitor, 'erasure', 'grace@example.com', 'rights-erasure-form');
    const staff = await staffPage();
    await staff.goto(`${portal.base}/admin/requests/${erasure.requestId}`);
    await staff.getByRole('button', { name: 'Approve (start handling)' }).click();
    await staff.getByRole('button', { name: 'Preview the erasure' }).click();
    await staff.waitForURL(/\/admin\/erasure\//);
    await shot(staff, 'admin-erasure-preview');
    await staff.getByRole('button', { name: 'Ask for approval to execute' }).click();
    await staff.locator('[data-awaiting-approval]').waitFor();
    const second = await staffPage(ADMIN);
    await second.goto(staff.url());
    await second.getByRole('button', { name: 'Approve and execute the erasure' }).click();
    await expect.poll(() => second.locator('[data-verified]').getAttribute('data-verified')).toBe('true');
    await shot(second, 'admin-erasure-report');

    const access = await fileRequest(visitor, 'access', 'grace@example.com', '');
    await staff.goto(`${portal.base}/admin/requests/${access.requestId}`);
    await staff.getByRole('button', { name: 'Approve (start handling)' }).click();
    await staff.getByRole('button', { name: 'Run the export' }).click();
    await staff.locator('[data-awaiting-approval]').waitFor();
    await second.goto(`${portal.base}/admin/requests/${access.requestId}`);
    await second.getByRole('button', { name: 'Approve and release the export' }).click();
    await expect
      .poll(() => second.locator('[data-status]').first().getAttribute('data-status'))
      .toBe('completed');
    await second.context().close();

    await access.page.reload();
    const [download] = await Promise.all([
      access.page.waitForEvent('download'),
      access.page.getByRole('button', { name: 'Download my data (zip)' }).click(),
    ]);
    const files = await unzip(readFileSync((await download.path())!));
    const manifest = JSON.parse(files.get('manifest.json')!.toString('utf8')) as {
      tables: { name: string; rows: number }[];
    };
    expect(manifest.tables.filter((table) => table.rows > 0).map((table) => table.name)).toEqual([
      'invoices',
    ]);
    await staff.goto(`${portal.base}/admin/consent`);
    await shot(staff, 'admin-consent');
    await staff.goto(`${portal.base}/admin/record`);
    await shot(staff, 'admin-record');
    await staff.goto(`${portal.base}/admin/cookies/classify?name=_ga`);
    await shot(staff, 'admin-cookies');
    await staff.context().close();
    await visitor.close();
  });
});
