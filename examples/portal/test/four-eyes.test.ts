import { testEngines } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, Client, STAFF, fileAndVerify, startPortal } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('four eyes on erasure and export release on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000 } });
  });
  afterAll(async () => {
    await portal?.close();
  });

  async function verifiedRequest(right: 'access' | 'erasure', email: string) {
    const visitor = new Client(portal.base);
    const form: Record<string, string> =
      right === 'erasure' ? { email, grounds: 'no-longer-necessary' } : { email };
    const requestId = await fileAndVerify(portal, visitor, right, form);
    return { visitor, requestId };
  }

  it('an erasure runs only when a different staff member approves it; the requester cannot approve their own', async () => {
    const { requestId } = await verifiedRequest('erasure', 'katherine@example.com');
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    const planUrl = (await officer.post(`/admin/requests/${requestId}/erasure`, {})).headers.get('location')!;
    await officer.page(planUrl);
    // Executing without asking first: refused, nothing erased.
    expect((await officer.post(`${planUrl}/execute`, {})).status).toBe(409);
    expect((await officer.post(`${planUrl}/request-approval`, {})).status).toBe(303);
    const waiting = await officer.page(planUrl);
    expect(waiting).toContain('data-awaiting-approval');
    expect(waiting).not.toContain('Approve and execute');
    const own = await officer.post(`${planUrl}/execute`, {});
    expect(own.status).toBe(403);
    expect(await own.text()).toContain('a different staff member must approve it');
    const rows = await portal.t.db
      .selectFrom('customers')
      .select('id')
      .where('email', '=', 'katherine@example.com')
      .execute();
    expect(rows).toHaveLength(1);

    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    expect(await admin.page(planUrl)).toContain('Approve and execute the erasure');
    expect((await admin.post(`${planUrl}/execute`, {})).status).toBe(303);
    expect(await admin.page(planUrl)).toContain('data-verified="true"');
    // Approving twice is not possible.
    expect((await admin.post(`${planUrl}/execute`, {})).status).toBe(409);

    const audit = await admin.page('/admin/audit');
    expect(audit).toMatch(new RegExp(`staff:${STAFF.email}[\\s\\S]*?erasure\\.approval-requested`));
    expect(audit).toMatch(new RegExp(`staff:${ADMIN.email}[\\s\\S]*?erasure\\.approved`));
    const entries = await portal.t.db
      .selectFrom('privacykit_portal_approvals')
      .selectAll()
      .where('action', '=', 'erasure.execute')
      .execute();
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      requested_by: `staff:${STAFF.email}`,
      approved_by: `staff:${ADMIN.email}`,
      requested_at: '2025-03-10T09:00:00.000Z',
      approved_at: '2025-03-10T09:00:00.000Z',
    });
  });

  it('an account created after the approval was asked for cannot give it: no second account of the requester’s making', async () => {
    const { visitor, requestId } = await verifiedRequest('access', 'grace@example.com');
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page(`/admin/requests/${requestId}`);
    await admin.post(`/admin/requests/${requestId}/approve`, {});
    expect((await admin.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    // The admin asked; a minute later they make themselves a second account to approve with.
    portal.clock.advance(60_000);
    await admin.page('/admin/staff');
    const puppet = { email: 'second-me@example.com', password: 'a fresh long passphrase', name: 'Second Me' };
    expect((await admin.post('/admin/staff', { ...puppet, role: 'privacy-officer' })).status).toBe(303);
    const other = new Client(portal.base);
    await other.login(puppet);
    await other.page(`/admin/requests/${requestId}`);
    const refused = await other.post(`/admin/requests/${requestId}/release`, {});
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('your account was created after this approval was asked for');
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    // A staff member whose account existed when it was asked for may approve.
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    expect((await officer.post(`/admin/requests/${requestId}/release`, {})).status).toBe(303);
  });

  it('an account the requester created, even long before, or one made by such an account, cannot approve for them', async () => {
    // The admin makes a second account well ahead, and that account makes a third.
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page('/admin/staff');
    const puppet = { email: 'early-me@example.com', password: 'an early long passphrase', name: 'Early Me' };
    expect((await admin.post('/admin/staff', { ...puppet, role: 'admin' })).status).toBe(303);
    const viaPuppet = new Client(portal.base);
    await viaPuppet.login(puppet);
    await viaPuppet.page('/admin/staff');
    const grandchild = {
      email: 'third-me@example.com',
      password: 'a third long passphrase',
      name: 'Third Me',
    };
    expect((await viaPuppet.post('/admin/staff', { ...grandchild, role: 'privacy-officer' })).status).toBe(
      303,
    );
    portal.clock.advance(30 * 86_400_000);

    const { visitor, requestId } = await verifiedRequest('access', 'edsger@example.com');
    const requester = new Client(portal.base);
    await requester.login(ADMIN);
    await requester.page(`/admin/requests/${requestId}`);
    expect((await requester.post(`/admin/requests/${requestId}/approve`, {})).status).toBe(303);
    expect((await requester.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    for (const who of [puppet, grandchild]) {
      const client = new Client(portal.base);
      await client.login(who);
      await client.page(`/admin/requests/${requestId}`);
      const refused = await client.post(`/admin/requests/${requestId}/release`, {});
      expect(refused.status).toBe(403);
      expect(await refused.text()).toContain(
        'your account was created by the staff member who asked for this approval',
      );
    }
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    // An account the requester did not make may approve.
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    expect((await officer.post(`/admin/requests/${requestId}/release`, {})).status).toBe(303);
  });

  it('an access export is released to the requester only by a second staff member', async () => {
    const { visitor, requestId } = await verifiedRequest('access', 'alan@example.com');
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    expect((await officer.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    const detail = await officer.page(`/admin/requests/${requestId}`);
    expect(detail).toContain('data-export-released="false"');
    expect(detail).toContain('data-status="in-progress"');
    expect(detail).not.toContain('Approve and release');
    const own = await officer.post(`/admin/requests/${requestId}/release`, {});
    expect(own.status).toBe(403);
    expect(await own.text()).toContain('Four-eyes rule');
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    const mailsBefore = portal.mail.filter((m) => m.to === 'alan@example.com').length;

    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    expect(await admin.page(`/admin/requests/${requestId}`)).toContain('Approve and release the export');
    expect((await admin.post(`/admin/requests/${requestId}/release`, {})).status).toBe(303);
    const released = await admin.page(`/admin/requests/${requestId}`);
    expect(released).toContain('data-export-released="true"');
    expect(released).toContain('data-status="completed"');
    expect(portal.mail.filter((m) => m.to === 'alan@example.com').length).toBe(mailsBefore + 1);
    expect((await admin.post(`/admin/requests/${requestId}/release`, {})).status).toBe(409);
    expect(await admin.page('/admin/audit')).toMatch(
      new RegExp(`staff:${ADMIN.email}[\\s\\S]*?export\\.released[\\s\\S]*?asked by staff:${STAFF.email}`),
    );

    await visitor.page(`/rights/requests/${requestId}`);
    const link = await visitor.post(`/rights/requests/${requestId}/download`, {});
    expect(link.status).toBe(303);
    expect((await visitor.get(link.headers.get('location')!)).status).toBe(200);
  });
});
