import { testEngines } from '@privacykit/core/testing';
import { createExportStore } from '@privacykit/subject-access';
import { seedPolicy } from '../src/policy.js';
import { unzip } from './zip.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN,
  Client,
  STAFF,
  codeFrom,
  fileAndVerify,
  releaseExport,
  startPortal,
  submissionOf,
  verifiedRequestId,
  waitFor,
} from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('four eyes on erasure and export release on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000, login: 1000 } });
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

  /** An erasure request of `email`, approved and planned by the privacy officer, its plan page seen. */
  async function plannedErasure(email: string) {
    const { requestId } = await verifiedRequest('erasure', email);
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    const planUrl = (await officer.post(`/admin/requests/${requestId}/erasure`, {})).headers.get('location')!;
    await officer.page(planUrl);
    return { requestId, officer, planUrl };
  }

  it('an erasure runs only when a different staff member approves it; the requester cannot approve their own', async () => {
    const { officer, planUrl } = await plannedErasure('katherine@example.com');
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

  it('an erasure whose request was refused after it was planned is not carried out, approval asked or not', async () => {
    const customers = () =>
      portal.t.db.selectFrom('customers').select('id').where('email', '=', 'ada@example.com').execute();
    const { requestId, officer, planUrl } = await plannedErasure('ada@example.com');
    expect((await officer.post(`${planUrl}/request-approval`, {})).status).toBe(303);
    await officer.page(`/admin/requests/${requestId}`);
    expect(
      (await officer.post(`/admin/requests/${requestId}/deny`, { reason: 'Manifestly unfounded request' }))
        .status,
    ).toBe(303);
    // The second officer's approval would have erased the data of a subject told "refused".
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    const page = await admin.page(planUrl);
    expect(page).toContain('data-request-closed="denied"');
    expect(page).not.toContain('Approve and execute');
    const execute = await admin.post(`${planUrl}/execute`, {});
    expect(execute.status).toBe(409);
    expect(await execute.text()).toContain('is denied, not in progress');
    expect(await customers()).toHaveLength(1);
    const request = await portal.t.db
      .selectFrom('privacykit_requests_requests')
      .select('status')
      .where('id', '=', requestId)
      .executeTakeFirstOrThrow();
    expect(request.status).toBe('denied');
    // Nor can a new approval be asked for.
    expect((await officer.post(`${planUrl}/request-approval`, {})).status).toBe(409);
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
    await other.firstLogin(puppet);
    await other.page(`/admin/requests/${requestId}`);
    const refused = await releaseExport(other, requestId);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('your account was created after this approval was asked for');
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    // A staff member whose account existed when it was asked for may approve.
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    expect((await releaseExport(officer, requestId)).status).toBe(303);
  });

  it('an account the requester created, even long before, or one made by such an account, cannot approve for them', async () => {
    // The admin makes a second account well ahead, and that account makes a third.
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page('/admin/staff');
    const puppet = { email: 'early-me@example.com', password: 'an early long passphrase', name: 'Early Me' };
    expect((await admin.post('/admin/staff', { ...puppet, role: 'admin' })).status).toBe(303);
    const viaPuppet = new Client(portal.base);
    await viaPuppet.firstLogin(puppet);
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
      await client.firstLogin(who);
      await client.page(`/admin/requests/${requestId}`);
      const refused = await releaseExport(client, requestId);
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
    expect((await releaseExport(officer, requestId)).status).toBe(303);
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
    const own = await releaseExport(officer, requestId);
    expect(own.status).toBe(403);
    expect(await own.text()).toContain('Four-eyes rule');
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    const mailsBefore = portal.mail.filter((m) => m.to === 'alan@example.com').length;

    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    const review = await admin.page(`/admin/requests/${requestId}`);
    expect(review).toContain('Approve and release the export');
    const exportId = /name="export" value="([^"]+)"/.exec(review)![1]!;
    expect((await releaseExport(admin, requestId)).status).toBe(303);
    const released = await admin.page(`/admin/requests/${requestId}`);
    expect(released).toContain('data-export-released="true"');
    expect(released).toContain('data-status="completed"');
    expect(portal.mail.filter((m) => m.to === 'alan@example.com').length).toBe(mailsBefore + 1);
    expect((await admin.post(`/admin/requests/${requestId}/release`, { export: exportId })).status).toBe(409);
    expect(await admin.page('/admin/audit')).toMatch(
      new RegExp(`staff:${ADMIN.email}[\\s\\S]*?export\\.released[\\s\\S]*?asked by staff:${STAFF.email}`),
    );

    await visitor.page(`/rights/requests/${requestId}`);
    const link = await visitor.post(`/rights/requests/${requestId}/download`, {});
    expect(link.status).toBe(303);
    expect((await visitor.get(link.headers.get('location')!)).status).toBe(200);
  });

  it('an account someone created must set its own password before anything else, and cannot ask for approvals its creator then gives', async () => {
    // One person, the admin, makes an account whose password they choose.
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page('/admin/staff');
    const sock = { email: 'sock@example.com', password: 'admin chose this one', name: 'Sock' };
    expect((await admin.post('/admin/staff', { ...sock, role: 'privacy-officer' })).status).toBe(303);
    // Its first sign-in leads to setting its own password; nothing else is open until then.
    const puppet = new Client(portal.base);
    const signedIn = await puppet.login(sock);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('/admin/password');
    const redirected = await puppet.get('/admin/requests');
    expect(redirected.status).toBe(303);
    expect(redirected.headers.get('location')).toBe('/admin/password');
    expect(await puppet.page('/admin/password')).toContain('data-password-forced');
    expect((await puppet.post('/admin/retention/sweep', {})).status).toBe(403);
    // Not the password it was given, and the current one must be right.
    expect(
      (
        await puppet.post('/admin/password', {
          current: sock.password,
          password: sock.password,
          confirm: sock.password,
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await puppet.post('/admin/password', {
          current: 'not it at all',
          password: 'mine and only mine',
          confirm: 'mine and only mine',
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await puppet.post('/admin/password', {
          current: sock.password,
          password: 'mine and only mine',
          confirm: 'mine and only mine',
        })
      ).status,
    ).toBe(303);
    expect((await puppet.get('/admin/requests')).status).toBe(200);
    expect((await new Client(portal.base).login(sock)).status).toBe(401);

    // Still, the admin could have signed in first and set it: the account asks, its creator approves.
    const { requestId } = await verifiedRequest('erasure', 'alan@example.com');
    await puppet.page(`/admin/requests/${requestId}`);
    await puppet.post(`/admin/requests/${requestId}/approve`, {});
    const planUrl = (await puppet.post(`/admin/requests/${requestId}/erasure`, {})).headers.get('location')!;
    await puppet.page(planUrl);
    expect((await puppet.post(`${planUrl}/request-approval`, {})).status).toBe(303);
    await admin.page(planUrl);
    const refused = await admin.post(`${planUrl}/execute`, {});
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain('has an account you created');
    expect(
      await portal.t.db
        .selectFrom('customers')
        .select('id')
        .where('email', '=', 'alan@example.com')
        .execute(),
    ).toHaveLength(1);
    // Someone with no hand in the puppet's account may approve.
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(planUrl);
    expect((await officer.post(`${planUrl}/execute`, {})).status).toBe(303);
  });

  it('the release approves the package the reviewer inspected: no second export while one waits, no stale release', async () => {
    const { visitor, requestId } = await verifiedRequest('access', 'katherine@example.com');
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    expect((await officer.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    // Running the export again while the first awaits release is refused (the button is hidden too).
    const again = await officer.post(`/admin/requests/${requestId}/export`, {});
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('waiting to be released');
    expect(
      await portal.t.db
        .selectFrom('privacykit_portal_request_exports')
        .select('export_id')
        .where('request_id', '=', requestId)
        .execute(),
    ).toHaveLength(1);

    // The reviewer downloads exactly the package awaiting release and checks it.
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    const review = await admin.page(`/admin/requests/${requestId}`);
    const exportId = /name="export" value="([^"]+)"/.exec(review)![1]!;
    const inspected = await admin.get(`/admin/requests/${requestId}/exports/${exportId}`);
    expect(inspected.status).toBe(200);
    expect(inspected.headers.get('content-disposition')).toMatch(/^attachment;/);
    const files = await unzip(Buffer.from(await inspected.arrayBuffer()));
    expect([...files.keys()].some((name) => name.endsWith('.json'))).toBe(true);
    expect(await admin.page('/admin/audit')).toMatch(
      new RegExp(`export\\.inspected[\\s\\S]*?export ${exportId} \\(awaiting release\\)`),
    );
    // Not a package of another request, nor one that does not exist.
    expect((await admin.get(`/admin/requests/${requestId}/exports/no-such-export`)).status).toBe(404);
    // A release naming another package (a form from a page loaded before a re-run) is refused.
    const stale = await admin.post(`/admin/requests/${requestId}/release`, { export: 'another-package-id' });
    expect(stale.status).toBe(409);
    expect(await stale.text()).toContain('not the one on the page');
    expect((await admin.post(`/admin/requests/${requestId}/release`, {})).status).toBe(400);
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(404);
    expect((await admin.post(`/admin/requests/${requestId}/release`, { export: exportId })).status).toBe(303);
    await visitor.page(`/rights/requests/${requestId}`);
    expect((await visitor.post(`/rights/requests/${requestId}/download`, {})).status).toBe(303);
  });

  it('setting one’s own password ends every other session of the account: its creator’s too', async () => {
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page('/admin/staff');
    const glove = { email: 'glove@example.com', password: 'admin chose a glove', name: 'Glove' };
    expect((await admin.post('/admin/staff', { ...glove, role: 'admin' })).status).toBe(303);
    // The creator signs in as the account with the password they chose, and waits.
    const creatorAsGlove = new Client(portal.base);
    expect((await creatorAsGlove.login({ ...glove })).headers.get('location')).toBe('/admin/password');
    const owner = new Client(portal.base);
    expect((await owner.firstLogin(glove)).status).toBe(303);
    // Before, the creator's session went on as the account, now fully enabled.
    const after = await creatorAsGlove.get('/admin/requests');
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toMatch(/^\/admin\/login/);
    expect((await creatorAsGlove.get('/admin/staff')).status).toBe(303);
    // The owner's own session goes on.
    expect((await owner.get('/admin/requests')).status).toBe(200);
  });

  // Last: it moves the shared clock 8 days on.
  it('a package that expired or was purged while awaiting release is not released: it is exported again', async () => {
    const { requestId } = await verifiedRequest('access', 'edsger@example.com');
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    expect((await officer.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    const review = await admin.page(`/admin/requests/${requestId}`);
    const exportId = /name="export" value="([^"]+)"/.exec(review)![1]!;
    // Eight days pass with the package awaiting the second reviewer; housekeeping purges it.
    portal.clock.advance(8 * 86_400_000);
    const store = createExportStore({ db: portal.t.db, clock: portal.clock, tenant: seedPolicy.tenant });
    expect((await store.purgeExpired()).packages).toBeGreaterThanOrEqual(1);
    const mailed = portal.mail.filter((m) => m.to === 'edsger@example.com').length;
    const reviewer = new Client(portal.base);
    await reviewer.login(ADMIN);
    await reviewer.page(`/admin/requests/${requestId}`);
    // Before, this closed the request and mailed the requester a download that could not work.
    const release = await reviewer.post(`/admin/requests/${requestId}/release`, { export: exportId });
    expect(release.status).toBe(409);
    expect(await release.text()).toContain('no longer stored');
    expect(portal.mail.filter((m) => m.to === 'edsger@example.com').length).toBe(mailed);
    expect(await reviewer.page(`/admin/requests/${requestId}`)).toContain('data-status="in-progress"');
    // The officer can run the export again (before: 409, the request stuck), and it is released.
    const again = new Client(portal.base);
    await again.login(STAFF);
    await again.page(`/admin/requests/${requestId}`);
    expect((await again.post(`/admin/requests/${requestId}/export`, {})).status).toBe(303);
    expect((await releaseExport(reviewer, requestId)).status).toBe(303);
    expect(await reviewer.page(`/admin/requests/${requestId}`)).toContain('data-status="completed"');
    expect(portal.errors).toEqual([]);
  });
  it('an erasure or access request is completed by carrying it out, never marked so by hand; the requester reads what was kept, why and until when', async () => {
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    const access = await verifiedRequest('access', 'alan@example.com');
    await officer.page(`/admin/requests/${access.requestId}`);
    await officer.post(`/admin/requests/${access.requestId}/approve`, {});
    expect(await officer.page(`/admin/requests/${access.requestId}`)).not.toContain('Mark completed');
    const accessByHand = await officer.post(`/admin/requests/${access.requestId}/complete`, { summary: '' });
    expect(accessByHand.status).toBe(409);
    expect(await accessByHand.text()).toContain('releasing its export');

    const { visitor, requestId } = await verifiedRequest('erasure', 'alan@example.com');
    await officer.page(`/admin/requests/${requestId}`);
    await officer.post(`/admin/requests/${requestId}/approve`, {});
    expect(await officer.page(`/admin/requests/${requestId}`)).not.toContain('Mark completed');
    // One officer closing it as done: the requester read "Completed" with nothing erased (helper-93).
    const byHand = await officer.post(`/admin/requests/${requestId}/complete`, { summary: '' });
    expect(byHand.status).toBe(409);
    expect(await byHand.text()).toContain('executing its verified erasure plan');
    expect(await visitor.page(`/rights/requests/${requestId}`)).not.toContain('data-status="completed"');

    const planUrl = (await officer.post(`/admin/requests/${requestId}/erasure`, {})).headers.get('location')!;
    await officer.page(planUrl);
    expect((await officer.post(`${planUrl}/request-approval`, {})).status).toBe(303);
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page(planUrl);
    expect((await admin.post(`${planUrl}/execute`, {})).status).toBe(303);
    // The answer itself says what is kept (it said they were listed on the page, and they were not).
    const answer = await visitor.page(`/rights/requests/${requestId}`);
    expect(answer).toContain('Your data has been erased.');
    expect(answer).toMatch(/\d+ records? of invoices \([^)]*, Art 17\(3\)\(b\)\) until \d{4}-\d{2}-\d{2}/);
    expect(answer).not.toContain('listed on your request page');
    expect(portal.errors).toEqual([]);
  });
  it('an administrator disables an account: its session ends at once and it signs in no more; nobody disables their own (helper-93: only the database could)', async () => {
    const admin = new Client(portal.base);
    await admin.login(ADMIN);
    await admin.page('/admin/staff');
    const leaver = { email: 'leaver@example.com', password: 'a long initial passphrase', name: 'Leaver' };
    expect((await admin.post('/admin/staff', { ...leaver, role: 'privacy-officer' })).status).toBe(303);
    const officer = new Client(portal.base);
    await officer.firstLogin(leaver);
    expect((await officer.get('/admin/requests')).status).toBe(200);

    const page = await admin.page('/admin/staff');
    const id = new RegExp(
      `data-staff="leaver@example.com">[\\s\\S]*?action="/admin/staff/([^/]+)/disable"`,
    ).exec(page)?.[1];
    expect(id).toBeDefined();
    expect((await admin.post(`/admin/staff/${id}/disable`, {})).status).toBe(303);
    expect(await admin.page('/admin/staff')).toMatch(/data-staff="leaver@example.com">[\s\S]*?data-disabled/);
    expect(await admin.page('/admin/audit')).toContain('staff.disable');

    // The session it had is over, and signing in again does not work.
    const after = await officer.get('/admin/requests');
    expect(after.status).not.toBe(200);
    expect(after.headers.get('location') ?? '').toContain('/admin/login');
    const again = new Client(portal.base);
    await again.login(leaver);
    expect((await again.get('/admin/requests')).headers.get('location') ?? '').toContain('/admin/login');

    // Nobody disables their own account.
    const adminId = new RegExp(
      `data-staff="${ADMIN.email}">[\\s\\S]*?action="/admin/staff/([^/]+)/disable"`,
    ).exec(await admin.page('/admin/staff'))?.[1];
    expect((await admin.post(`/admin/staff/${adminId}/disable`, {})).status).toBe(409);
    expect((await admin.get('/admin/requests')).status).toBe(200);
  });
  it('a person revokes the directive they gave from its request page: a code to their channel, then the back office carries it out (helper-93: no way to revoke)', async () => {
    const visitor = new Client(portal.base);
    const give = await fileAndVerify(portal, visitor, 'post-mortem-directives', {
      email: 'katherine@example.com',
      kind: 'general',
      instructions: 'Delete everything',
    });
    const officer = new Client(portal.base);
    await officer.login(STAFF);
    const close = async (requestId: string) => {
      await officer.page(`/admin/requests/${requestId}`);
      expect((await officer.post(`/admin/requests/${requestId}/approve`, {})).status).toBe(303);
      await officer.page(`/admin/requests/${requestId}`);
      expect((await officer.post(`/admin/requests/${requestId}/complete`, { summary: '' })).status).toBe(303);
    };
    await close(give);
    const directives = () =>
      portal.t.db
        .selectFrom('privacykit_requests_directives')
        .select(['id', 'status'])
        .where('id', '=', give)
        .execute();
    expect(await directives()).toEqual([{ id: give, status: 'active' }]);
    expect(await visitor.page(`/rights/requests/${give}`)).toContain('data-revoke-directive');
    // Another browser cannot.
    const stranger = new Client(portal.base);
    await stranger.page('/rights');
    expect((await stranger.post(`/rights/requests/${give}/revoke-directive`, {})).status).toBe(404);

    const before = portal.mail.length;
    const asked = await visitor.post(`/rights/requests/${give}/revoke-directive`, {});
    expect(asked.status).toBe(303);
    const location = asked.headers.get('location')!;
    await visitor.page(location);
    await waitFor(() => portal.mail.slice(before).some((mail) => mail.to === 'katherine@example.com'));
    const code = codeFrom(
      portal.mail
        .slice(before)
        .filter((mail) => mail.to === 'katherine@example.com')
        .at(-1)!.text,
    );
    const revoke = verifiedRequestId(
      await visitor.post('/rights/verify', { submission: submissionOf(portal, location), code }),
    );
    expect(revoke).not.toBe(give);
    await close(revoke);
    expect(await directives()).toEqual([{ id: give, status: 'revoked' }]);
    expect(await visitor.page(`/rights/requests/${give}`)).not.toContain('data-revoke-directive');
    expect(portal.errors).toEqual([]);
  });
});
