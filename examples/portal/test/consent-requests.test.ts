import { createConsentLedger } from '@privacykit/consent';
import type { ConsentLedger } from '@privacykit/consent';
import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedPolicy } from '../src/policy.js';
import { ADMIN, Client, STAFF, fileAndVerify, startPortal, waitFor } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('withdrawing consent by request and by mail on $engine', (engine) => {
  let portal: Portal;
  let ledger: ConsentLedger;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000 } });
    // The portal's own ledger, read through a second instance on its database.
    ledger = createConsentLedger({ db: portal.t.db, policy: seedPolicy, clock: portal.clock });
  });
  afterAll(async () => {
    await portal?.close();
  });

  /** Signs `email` up to the newsletter in a browser of its own, code and all. */
  async function subscribe(email: string): Promise<Client> {
    const visitor = new Client(portal.base);
    await visitor.page('/newsletter');
    const before = portal.mail.length;
    expect((await visitor.post('/newsletter', { email, agree: 'yes' })).status).toBe(303);
    await waitFor(() => portal.mail.slice(before).some((m) => m.to === email));
    const code = /signed up on: (\d{8})/.exec(
      portal.mail.slice(before).find((m) => m.to === email)!.text,
    )![1]!;
    expect((await visitor.post('/newsletter/confirm', { code })).status).toBe(303);
    return visitor;
  }
  const newsletterOf = async (email: string) => (await ledger.current(`email:${email}`)).purposes.newsletter;

  /** Approves and completes a request as staff; returns the request's page afterwards. */
  async function complete(requestId: string): Promise<string> {
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    expect((await officer.post(`/admin/requests/${requestId}/approve`, {})).status).toBe(303);
    const page = await officer.page(`/admin/requests/${requestId}`);
    expect(page).toContain('data-consent-effect');
    expect((await officer.post(`/admin/requests/${requestId}/complete`, { summary: '' })).status).toBe(303);
    return officer.page(`/admin/requests/${requestId}`);
  }

  it('a verified withdrawal of consent withdraws it in the ledger at once, from another browser, and completing it says so', async () => {
    await subscribe('katherine@example.com');
    expect((await newsletterOf('katherine@example.com'))?.valid).toBe(true);
    // Later, another browser (the sign-up session long gone) asks through the rights form.
    const later = new Client(portal.base);
    const requestId = await fileAndVerify(portal, later, 'withdraw-consent', {
      email: 'katherine@example.com',
      purposes: 'newsletter',
    });
    const status = await newsletterOf('katherine@example.com');
    expect(status?.state).toBe('withdrawn');
    expect(status?.valid).toBe(false);
    expect(await ledger.mayProcess('email:katherine@example.com', 'newsletter')).toBe(false);

    const done = await complete(requestId);
    expect(done).toContain('data-status="completed"');
    expect(done).toContain('Consent withdrawn in our consent ledger for: Send marketing newsletters');
    // Withdrawn once: completing applied nothing twice.
    const withdrawals = (await ledger.history('email:katherine@example.com')).filter(
      (entry) => entry.state === 'withdrawn',
    );
    expect(withdrawals).toHaveLength(1);
    // The requester's own status page tells them.
    expect(await later.page(`/rights/requests/${requestId}`)).toContain('Consent withdrawn');
  });

  it('completing a withdrawal keeps a grant the requester gave again after verifying it, and says so', async () => {
    await subscribe('ken@example.com');
    const requestId = await fileAndVerify(portal, new Client(portal.base), 'withdraw-consent', {
      email: 'ken@example.com',
      purposes: 'newsletter',
    });
    expect((await newsletterOf('ken@example.com'))?.state).toBe('withdrawn');
    // Three days later they change their mind and sign up again; staff complete the request later.
    portal.clock.advance(3 * 86_400_000);
    await subscribe('ken@example.com');
    portal.clock.advance(10 * 86_400_000);
    const done = await complete(requestId);
    expect(done).toContain('data-status="completed"');
    // Before, completing withdrew the new grant too.
    expect((await newsletterOf('ken@example.com'))?.valid).toBe(true);
    expect(done).toContain(
      'Kept, as consent you gave again after confirming this request: Send marketing newsletters',
    );
  });

  it('an objection to direct marketing ends the newsletter grant, and records a refusal where nothing was decided', async () => {
    await subscribe('grace@example.com');
    const objector = new Client(portal.base);
    const requestId = await fileAndVerify(portal, objector, 'objection', {
      email: 'grace@example.com',
      kind: 'direct-marketing',
    });
    expect((await newsletterOf('grace@example.com'))?.state).toBe('withdrawn');
    // Someone who never signed up: their objection is on record as a refusal, so nothing reads
    // the silence as room to ask.
    const other = new Client(portal.base);
    const second = await fileAndVerify(portal, other, 'objection', {
      email: 'alan@example.com',
      kind: 'direct-marketing',
    });
    expect((await newsletterOf('alan@example.com'))?.state).toBe('refused');
    // B2B prospecting rests on legitimate interests: not the ledger's, named for staff.
    const done = await complete(requestId);
    expect(done).toContain('B2B');
    await complete(second);
    expect((await newsletterOf('alan@example.com'))?.state).toBe('refused');
  });

  it('a particular-situation objection is left to staff: nothing changes in the ledger', async () => {
    await subscribe('edsger@example.com');
    await fileAndVerify(portal, new Client(portal.base), 'objection', {
      email: 'edsger@example.com',
      kind: 'particular-situation',
      grounds: 'I moved abroad',
    });
    expect((await newsletterOf('edsger@example.com'))?.valid).toBe(true);
  });

  it('every newsletter confirmation carries a one-click unsubscribe link that works without the session, only for its subject', async () => {
    const before = portal.mail.length;
    await subscribe('ada@example.com');
    await waitFor(() => portal.mail.slice(before).some((m) => /subscribed/.test(m.subject)));
    const mail = portal.mail.slice(before).find((m) => /subscribed/.test(m.subject))!;
    expect(mail.to).toBe('ada@example.com');
    const link = /^(http:\/\/\S+\/newsletter\/unsubscribe\?t=\S+)$/m.exec(mail.text)![1]!;
    expect(mail.headers?.['List-Unsubscribe']).toBe(`<${link}>`);
    expect(mail.headers?.['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    const path = link.slice(portal.base.length);

    // A mail scanner following the link withdraws nothing: GET only shows the button.
    const stranger = new Client(portal.base);
    const shown = await stranger.get(path);
    expect(shown.headers.get('cache-control')).toBe('no-store');
    const page = await shown.text();
    expect(page).toContain('ada@example.com');
    expect((await newsletterOf('ada@example.com'))?.valid).toBe(true);
    // A token altered to name someone else is refused and withdraws nothing.
    const token = new URL(link).searchParams.get('t')!;
    // Opaque: the address is nowhere in the link (it lands in logs and browser history).
    expect(link).not.toContain(Buffer.from('ada@example.com').toString('base64url').slice(0, 12));
    expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain('ada@example.com');
    const raw = Buffer.from(token, 'base64url');
    raw[14] = raw[14]! ^ 1;
    const forged = raw.toString('base64url');
    expect((await stranger.get(`/newsletter/unsubscribe?t=${encodeURIComponent(forged)}`)).status).toBe(404);
    expect((await stranger.post('/newsletter/unsubscribe', { t: forged })).status).toBe(404);
    // The button, in a browser that never signed up.
    const unsubscribed = await stranger.post('/newsletter/unsubscribe', { t: token });
    expect(unsubscribed.status).toBe(303);
    expect(await stranger.page(unsubscribed.headers.get('location')!)).toContain('data-unsubscribed');
    expect((await newsletterOf('ada@example.com'))?.state).toBe('withdrawn');
  });

  it('a mail client’s one-click POST (RFC 8058) unsubscribes with no cookie and no form token', async () => {
    const before = portal.mail.length;
    await subscribe('linus@example.com');
    await waitFor(() => portal.mail.slice(before).some((m) => /subscribed/.test(m.subject)));
    const mail = portal.mail.slice(before).find((m) => /subscribed/.test(m.subject))!;
    const link = /<([^>]+)>/.exec(mail.headers!['List-Unsubscribe']!)![1]!;
    const response = await fetch(link, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(response.status).toBeLessThan(400);
    expect((await newsletterOf('linus@example.com'))?.state).toBe('withdrawn');
    expect(portal.errors).toEqual([]);
    // The admin sees the withdrawal in the subject's proof.
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    expect(await admin.page('/admin/consent/subject?id=email:linus@example.com')).toContain(
      'newsletter: withdrawn',
    );
  });
});
