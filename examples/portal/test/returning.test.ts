import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpMailer } from '../src/mailer.js';
import {
  ADMIN,
  Client,
  STAFF,
  releaseExport,
  startPortal,
  submissionOf,
  verifiedRequestId,
} from './harness.js';
import type { Portal } from './harness.js';
import { startSmtp, waitForCode } from './smtp.js';

describe.each(testEngines())('returning visitors re-verify by a code over real SMTP on $engine', (engine) => {
  let portal: Portal;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let requestId: string;

  beforeAll(async () => {
    smtp = await startSmtp();
    portal = await startPortal(engine, {
      mailer: smtpMailer({ url: smtp.url, from: 'privacy@opendatasoft.example' }),
      rateLimits: { intake: 1000, verify: 1000 },
    });
    // Ada files an access request in one browser; staff export and release it.
    const first = new Client(portal.base);
    await first.page('/rights/access');
    const before = smtp.messages.length;
    const submitted = await first.post('/rights/access', { email: 'ada@example.com' });
    const location = submitted.headers.get('location')!;
    await first.page(location);
    const code = await waitForCode(smtp.messages, 'ada@example.com', before);
    requestId = verifiedRequestId(
      await first.post('/rights/verify', { submission: submissionOf(portal, location), code }),
    );
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    await officer.post(`/admin/requests/${requestId}/export`, {});
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page(`/admin/requests/${requestId}`);
    expect((await releaseExport(admin, requestId)).status).toBe(303);
  });
  afterAll(async () => {
    await portal?.close();
    await smtp?.close();
  });

  async function ask(client: Client, reference: string, email: string): Promise<Response> {
    await client.page('/rights/check');
    return client.post('/rights/check', { reference, email });
  }

  /**
   * The recipients of every mail since `before`, once a mail that must go out has arrived: a new
   * request filed for `sentinel` (its code mail is sent the same way, not awaited). A mail the
   * portal sent wrongly before it, in the steps under test, is then among them.
   */
  async function recipientsSince(before: number, sentinel: string): Promise<string[]> {
    const client = new Client(portal.base);
    await client.page('/rights/access');
    expect((await client.post('/rights/access', { email: sentinel })).status).toBe(303);
    await waitForCode(smtp.messages, sentinel, before);
    return smtp.messages.slice(before).flatMap((mail) => mail.to);
  }

  it('a new session reaches the status page and the download with a fresh mailed code, once', async () => {
    const later = new Client(portal.base);
    expect((await later.get(`/rights/requests/${requestId}`)).status).toBe(404);
    const before = smtp.messages.length;
    const asked = await ask(later, requestId, 'ADA@example.com');
    expect(asked.status).toBe(303);
    expect(asked.headers.get('location')).toBe('/rights/check/code');
    const code = await waitForCode(smtp.messages, 'ada@example.com', before);
    const mail = smtp.messages.slice(before).find((m) => m.to.includes('ada@example.com'))!;
    expect(mail.raw.replace(/=\r?\n/g, '')).toContain(requestId);
    await later.page('/rights/check/code');
    const wrong = String((Number(code) + 1) % 100_000_000).padStart(8, '0');
    expect((await later.post('/rights/check/code', { code: wrong })).status).toBe(400);
    const opened = await later.post('/rights/check/code', { code });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe(`/rights/requests/${requestId}`);
    const status = await later.page(`/rights/requests/${requestId}`);
    expect(status).toContain('data-status="completed"');
    const link = await later.post(`/rights/requests/${requestId}/download`, {});
    expect(link.status).toBe(303);
    const download = await later.get(link.headers.get('location')!);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toMatch(/^attachment;/);
    // Single use: the same code opens nothing again, in this session or another.
    await later.page('/rights/check/code');
    expect((await later.post('/rights/check/code', { code })).status).toBe(400);
    const other = new Client(portal.base);
    await other.page('/rights/check/code');
    expect((await other.post('/rights/check/code', { code })).status).toBe(400);
  });

  it('answers the same whether or not reference and address match, and mails nothing on a mismatch', async () => {
    const pageAfter = async (reference: string, email: string) => {
      const client = new Client(portal.base);
      const response = await ask(client, reference, email);
      expect(response.status).toBe(303);
      expect(response.headers.get('location')).toBe('/rights/check/code');
      return (await client.page('/rights/check/code')).replace(/value="[^"]*"/g, '');
    };
    const before = smtp.messages.length;
    const wrongEmail = await pageAfter(requestId, 'grace@example.com');
    const unknownRef = await pageAfter('01957f48-0000-7000-8000-000000000000', 'ada@example.com');
    const garbage = await pageAfter('<script>', 'nobody@example.org');
    expect(wrongEmail).toBe(unknownRef);
    expect(garbage).toBe(unknownRef);
    expect(await recipientsSince(before, 'sentinel-1@example.org')).toEqual(['sentinel-1@example.org']);
  });

  it('locks a code after 5 wrong tries and refuses it after 10 minutes', async () => {
    const guesser = new Client(portal.base);
    let before = smtp.messages.length;
    await ask(guesser, requestId, 'ada@example.com');
    const code = await waitForCode(smtp.messages, 'ada@example.com', before);
    await guesser.page('/rights/check/code');
    const wrong = String((Number(code) + 7) % 100_000_000).padStart(8, '0');
    for (let i = 0; i < 5; i++)
      expect((await guesser.post('/rights/check/code', { code: wrong })).status).toBe(400);
    expect((await guesser.post('/rights/check/code', { code })).status).toBe(400);

    const slow = new Client(portal.base);
    before = smtp.messages.length;
    await ask(slow, requestId, 'ada@example.com');
    const late = await waitForCode(smtp.messages, 'ada@example.com', before);
    portal.clock.advance(10 * 60_000 + 1000);
    await slow.page('/rights/check/code');
    expect((await slow.post('/rights/check/code', { code: late })).status).toBe(400);
    expect((await slow.get(`/rights/requests/${requestId}`)).status).toBe(404);

    // At most 3 codes an hour per request: the next ask gets the same page and no mail.
    before = smtp.messages.length;
    const capped = new Client(portal.base);
    expect((await ask(capped, requestId, 'ada@example.com')).status).toBe(303);
    expect(await recipientsSince(before, 'sentinel-2@example.org')).toEqual(['sentinel-2@example.org']);
    // Codes are stored only as HMACs.
    const rows = await portal.t.db.selectFrom('privacykit_portal_return_codes').select('code_hash').execute();
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) expect(String(row.code_hash)).toMatch(/^[0-9a-f]{64}$/);
  });
});
