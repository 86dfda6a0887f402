import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, STAFF, startPortal } from './harness.js';
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

  it('refuses a sign-up without the tick, records one with it, and withdraws it from /consent', async () => {
    const visitor = new Client(portal.base);
    const form = await visitor.page('/newsletter');
    expect(form).toMatch(/<input type="checkbox" name="agree" value="yes">/);
    expect(form).not.toMatch(/name="agree"[^>]*checked/);
    const unticked = await visitor.post('/newsletter', { email: 'linus@example.com' });
    expect(unticked.status).toBe(400);
    expect(await unticked.text()).toContain('tick the box');
    expect(await portal.t.db.selectFrom('privacykit_consent_state').selectAll().execute()).toHaveLength(0);

    expect((await visitor.post('/newsletter', { email: 'Linus@Example.com', agree: 'yes' })).status).toBe(
      303,
    );
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
    await visitor.page('/newsletter');
    expect((await visitor.post('/newsletter', { email: 'Katherine@example.com', agree: 'yes' })).status).toBe(
      303,
    );

    await visitor.page('/rights/access');
    const before = portal.mail.length;
    const submitted = await visitor.post('/rights/access', { email: 'katherine@example.com' });
    const requestId = new URL(submitted.headers.get('location')!, portal.base).searchParams.get('request')!;
    await visitor.page(submitted.headers.get('location')!);
    const mine = () => portal.mail.slice(before).find((m) => m.to === 'katherine@example.com');
    for (let i = 0; i < 250 && !mine(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    const code = /code: (\d{6,8})/.exec(mine()!.text)![1]!;
    expect((await visitor.post('/rights/verify', { requestId, code })).status).toBe(303);
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    await officer.post(`/admin/requests/${requestId}/export`, {});
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page(`/admin/requests/${requestId}`);
    await admin.post(`/admin/requests/${requestId}/release`, {});

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
  });
});
