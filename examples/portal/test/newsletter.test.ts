import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, STAFF, fileAndVerify, releaseExport, startPortal } from './harness.js';
import type { Portal } from './harness.js';
import { unzip } from './zip.js';

describe.each(testEngines())('newsletter consent tied to a person on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000 } });
  });
  afterAll(async () => {
    await portal?.close();
  });

  /** Signs `email` up in `visitor`'s session and returns the code mailed to it. */
  async function signUp(visitor: Client, email: string): Promise<string> {
    await visitor.page('/newsletter');
    const before = portal.mail.length;
    const asked = await visitor.post('/newsletter', { email, agree: 'yes' });
    expect(asked.status).toBe(303);
    const to = email.toLowerCase();
    const mine = () => portal.mail.slice(before).find((m) => m.to.toLowerCase() === to);
    for (let i = 0; i < 250 && !mine(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    return /code on the page you signed up on: (\d{8})/.exec(mine()!.text)![1]!;
  }
  const confirm = (visitor: Client, code: string) => visitor.post('/newsletter/confirm', { code });
  const newsletterRows = async () =>
    (
      await portal.t.db
        .selectFrom('privacykit_consent_state')
        .selectAll()
        .where('purpose', '=', 'newsletter')
        .execute()
    ).length;

  it('double opt-in: nothing is recorded until the code mailed to the address is entered, in the browser that signed up', async () => {
    const before = await newsletterRows();
    // A stranger signs up someone else's address: the code goes to that address, not to them.
    const stranger = new Client(portal.base);
    await signUp(stranger, 'grace.h@example.com');
    expect(await stranger.page('/newsletter')).toContain('data-confirm');
    expect(await newsletterRows()).toBe(before);
    // Guessing fails, and after the allowed tries the sign-up is gone.
    for (let i = 0; i < 5; i++) expect((await confirm(stranger, String(10_000_000 + i))).status).toBe(400);
    expect((await confirm(stranger, '12345678')).status).toBe(400);
    expect((await confirm(stranger, '12345678')).status).toBe(409);
    expect(await newsletterRows()).toBe(before);
    // The code is only good in the session that signed up.
    const owner = new Client(portal.base);
    const code = await signUp(owner, 'grace.h@example.com');
    const elsewhere = new Client(portal.base);
    await elsewhere.page('/newsletter');
    expect((await confirm(elsewhere, code)).status).toBe(409);
    const sessionBefore = owner.cookies.get('pk_session');
    expect((await confirm(owner, code)).status).toBe(303);
    // A new session id once it may withdraw for the subject (no fixation).
    expect(owner.cookies.get('pk_session')).not.toBe(sessionBefore);
    expect(await newsletterRows()).toBe(before + 1);
    expect(await owner.page('/newsletter?done=1')).toContain('data-subscribed');
    // Spent: the same code records nothing more.
    expect((await confirm(owner, code)).status).toBe(409);
    // A code entered after 30 minutes is refused, and the sign-up is gone.
    const late = new Client(portal.base);
    const lateCode = await signUp(late, 'alan.t@example.com');
    portal.clock.advance(30 * 60_000 + 1000);
    const expired = await confirm(late, lateCode);
    expect(expired.status).toBe(400);
    expect(await expired.text()).toContain('expired');
    expect((await confirm(late, lateCode)).status).toBe(409);
    expect(await newsletterRows()).toBe(before + 1);
  });

  it('refuses a sign-up without the tick, records one with it, and withdraws it from /consent', async () => {
    const visitor = new Client(portal.base);
    const form = await visitor.page('/newsletter');
    expect(form).toMatch(/<input type="checkbox" name="agree" value="yes">/);
    expect(form).not.toMatch(/name="agree"[^>]*checked/);
    const before = await newsletterRows();
    const mails = portal.mail.length;
    const unticked = await visitor.post('/newsletter', { email: 'linus@example.com' });
    expect(unticked.status).toBe(400);
    expect(await unticked.text()).toContain('tick the box');
    expect(await newsletterRows()).toBe(before);
    expect(portal.mail.length).toBe(mails);

    expect((await confirm(visitor, await signUp(visitor, 'Linus@Example.com'))).status).toBe(303);
    const consent = await visitor.page('/consent');
    expect(consent).toContain('data-newsletter="granted"');
    expect(consent).toContain('linus@example.com');
    // Another session cannot withdraw it by naming the subject.
    const stranger = new Client(portal.base);
    await stranger.page('/consent');
    expect((await stranger.post('/newsletter/withdraw', { subject: 'email:linus@example.com' })).status).toBe(
      404,
    );
    expect((await visitor.post('/newsletter/withdraw', { subject: 'email:linus@example.com' })).status).toBe(
      303,
    );
    expect(await visitor.page('/consent')).toContain('data-newsletter="withdrawn"');
  });

  it('puts the newsletter consent in the access export of the person who signed up', async () => {
    const visitor = new Client(portal.base);
    expect((await confirm(visitor, await signUp(visitor, 'Katherine@example.com'))).status).toBe(303);

    const requestId = await fileAndVerify(portal, visitor, 'access', { email: 'katherine@example.com' });
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    await officer.post(`/admin/requests/${requestId}/export`, {});
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page(`/admin/requests/${requestId}`);
    await releaseExport(admin, requestId);

    await visitor.page(`/rights/requests/${requestId}`);
    const link = await visitor.post(`/rights/requests/${requestId}/download`, {});
    const files = await unzip(
      Buffer.from(await (await visitor.get(link.headers.get('location')!)).arrayBuffer()),
    );
    const history = JSON.parse(files.get('consent-history.json')!.toString('utf8')) as unknown;
    const text = JSON.stringify(history);
    expect(text).toContain('newsletter');
    expect(text).toContain('granted');
    expect(text).toContain('form-submit');
    // Only Katherine's: Linus's sign-up from the other test is not in it.
    expect(text).not.toContain('linus');
    // Her consent record: one per purpose, with its status now and the notice she was shown.
    const records = JSON.parse(files.get('consent-records.json')!.toString('utf8')) as {
      subject: { id: string };
      purpose: { id: string; name?: string };
      status: string;
      events: { method?: string }[];
    }[];
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      subject: { id: 'email:katherine@example.com' },
      purpose: { id: 'newsletter' },
      status: 'dpv:ConsentGiven',
    });
    expect(records[0]?.purpose.name).toBeTruthy();
    expect(records[0]?.events.map((event) => event.method)).toEqual(['form-submit']);
    expect(files.get('report.html')!.toString('utf8')).toContain('Consent records');
  });
});
