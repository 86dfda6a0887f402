import { openDatabase } from '@privacykit/core/db';
import { testEngines } from '@privacykit/core/testing';
import { executeErasure, getErasureRecord, verifyErasure } from '@privacykit/erasure';
import type { ErasurePlan } from '@privacykit/erasure';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedPolicy } from '../src/policy.js';
import { ADMIN, Client, STAFF, fileAndVerify, startPortal } from './harness.js';
import type { Portal } from './harness.js';

/** A promise to park a worker on, and the function that lets it go on. */
function latch(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

describe.each(testEngines())(
  'back-office erasure with other workers, and the purge, on $engine',
  (engine) => {
    let portal: Portal;
    // Another worker on the same database (the CLI, a second instance): its own connections.
    let worker: Kysely<any>;
    beforeAll(async () => {
      portal = await startPortal(engine, { rateLimits: { intake: 1000, verify: 1000, login: 1000 } });
      worker = await openDatabase(portal.t.url);
    });
    afterAll(async () => {
      await worker?.destroy();
      await portal?.close();
    });

    /** An erasure request filed and verified by the subject, approved and planned by an officer, its execution asked for. */
    async function plannedErasure(email: string) {
      const requestId = await fileAndVerify(portal, new Client(portal.base), 'erasure', {
        email,
        grounds: 'no-longer-necessary',
      });

      const officer = new Client(portal.base);
      await officer.login(STAFF);
      await officer.page(`/admin/requests/${requestId}`);
      await officer.post(`/admin/requests/${requestId}/approve`, {});
      const planUrl = (await officer.post(`/admin/requests/${requestId}/erasure`, {})).headers.get(
        'location',
      )!;
      await officer.page(planUrl);
      expect((await officer.post(`${planUrl}/request-approval`, {})).status).toBe(303);
      const admin = new Client(portal.base);
      await admin.login(ADMIN);
      await admin.page(planUrl);
      const planId = planUrl.split('/').at(-1)!;
      const { plan } = await getErasureRecord({ db: portal.t.db, planId, tenant: seedPolicy.tenant });
      return { requestId, planUrl, plan: plan as ErasurePlan, officer, admin };
    }

    const customerRows = (email: string) =>
      portal.t.db.selectFrom('customers').selectAll().where('email', '=', email).execute();
    const approvalOf = (planId: string) =>
      portal.t.db
        .selectFrom('privacykit_portal_approvals')
        .select(['approved_by', 'approved_at'])
        .where('action', '=', 'erasure.execute')
        .where('target', '=', planId)
        .executeTakeFirstOrThrow();

    it('executing a plan another worker is running answers 409 with a clear message, spends no approval and changes nothing; verifying then completes the request', async () => {
      const { requestId, planUrl, plan, officer, admin } = await plannedErasure('grace@example.com');

      // The other worker executes the plan and parks after its first batch, holding the lease.
      const parked = latch();
      const go = latch();
      let batches = 0;
      const running = executeErasure(plan, {
        db: worker,
        clock: portal.clock,
        batchSize: 1,
        setBasedBatchSize: 1,
        onBatch: async () => {
          if (++batches > 1) return;
          parked.open();
          await go.wait;
        },
      });
      try {
        await parked.wait;
        const before = await customerRows('grace@example.com');

        const refused = await admin.post(`${planUrl}/execute`, {});
        expect(refused.status).toBe(409);
        const text = await refused.text();
        expect(text).toContain('Another worker is executing this erasure right now');
        expect(text).toContain('nothing was changed');
        expect(text).not.toMatch(/Something went wrong|\n\s+at /);
        // Still waiting for approval: the approver can act once the plan is free (if it needs to).
        expect(await approvalOf(plan.id)).toMatchObject({ approved_by: null, approved_at: null });
        expect(await customerRows('grace@example.com')).toEqual(before);

        const page = await admin.page(planUrl);
        expect(page).toContain('data-erasure-busy="execution"');
        expect(page).not.toContain('Approve and execute the erasure');
      } finally {
        go.open();
      }
      expect((await running).status).toMatch(/complete|partial/);

      // Executed elsewhere, not verified: the page offers the verification. While a verification
      // runs elsewhere, that is refused the same way.
      const page = await officer.page(planUrl);
      expect(page).toMatch(/data-report-status="(complete|partial)"/);
      expect(page).not.toContain('data-verified=');
      expect(page).toContain('Verify the erasure');
      const verifying = latch();
      const resume = latch();
      let tables = 0;
      const elsewhere = verifyErasure({
        db: worker,
        plan,
        clock: portal.clock,
        onTable: async () => {
          if (++tables > 1) return;
          verifying.open();
          await resume.wait;
        },
      });
      try {
        await verifying.wait;
        const busy = await officer.post(`${planUrl}/verify`, {});
        expect(busy.status).toBe(409);
        expect(await busy.text()).toContain('Another worker is verifying this erasure right now');
        expect(await officer.page(planUrl)).toContain('data-erasure-busy="verification"');
      } finally {
        resume.open();
      }
      expect((await elsewhere).ok).toBe(true);

      expect((await officer.post(`${planUrl}/verify`, {})).status).toBe(303);
      expect(await officer.page(planUrl)).toContain('data-verified="true"');
      expect(await officer.page(`/admin/requests/${requestId}`)).toContain('data-status="completed"');
      expect(await admin.page('/admin/audit')).toMatch(/erasure\.verify/);
      expect(portal.errors).toEqual([]);
    });

    it('an execution that crashed part-way is resumed from the page after the four-eyes approval, then refuses to run again', async () => {
      const { requestId, planUrl, plan, officer, admin } = await plannedErasure('alan@example.com');
      // Another worker starts the plan and dies after its first batch (its lease released on the way out).
      let batches = 0;
      await expect(
        executeErasure(plan, {
          db: worker,
          clock: portal.clock,
          batchSize: 1,
          setBasedBatchSize: 1,
          onBatch: () => {
            if (++batches === 1) throw new Error('power cut');
          },
        }),
      ).rejects.toThrow('power cut');
      expect((await getErasureRecord({ db: portal.t.db, planId: plan.id })).status).toBe('executing');

      const page = await admin.page(planUrl);
      expect(page).toContain('resumes where it stopped');
      expect(page).toContain('Approve and execute the erasure');
      expect((await admin.post(`${planUrl}/execute`, {})).status).toBe(303);
      expect(await customerRows('alan@example.com')).toEqual([]);
      const done = await admin.page(planUrl);
      expect(done).toMatch(/data-report-status="(complete|partial)"/);
      expect(done).toContain('data-verified="true"');
      expect(done).not.toContain('Approve and execute the erasure');
      // Finished: neither asking again nor executing again is possible.
      expect((await officer.post(`${planUrl}/request-approval`, {})).status).toBe(409);
      expect((await admin.post(`${planUrl}/execute`, {})).status).toBe(409);
      expect(await officer.page(`/admin/requests/${requestId}`)).toContain('data-status="completed"');
      expect(portal.errors).toEqual([]);
    });

    it('a legal hold from the retention page keeps its rows out of the erasure: placed after planning, the execution is refused and nothing changes until staff plan again, get a second approval and erase what is not held; placed before, the rows are kept under Art 17(3)(e)', async () => {
      const placeHold = async (client: Client, kind: 'subject' | 'table', value: string, reason: string) =>
        expect((await client.post('/admin/retention/holds', { kind, value, reason })).status).toBe(303);
      const rowsOf = (table: string, id: string) =>
        portal.t.db.selectFrom(table).selectAll().where('id', '=', id).execute();

      const late = await plannedErasure('edsger@example.com');
      // The support tickets become evidence in a case while the erasure awaits its approval.
      await placeHold(late.admin, 'table', 'support_tickets', 'litigation 2026-41');
      const before = await customerRows('edsger@example.com');
      expect(before).toHaveLength(1);
      const ticket = await rowsOf('support_tickets', 'tic_edsger');
      expect(ticket).toHaveLength(1);
      const refused = await late.admin.post(`${late.planUrl}/execute`, {});
      expect(refused.status).toBe(409);
      const text = await refused.text();
      expect(text).toContain('litigation 2026-41');
      expect(text).toContain('nothing was erased');
      expect(text).toContain('Plan again');
      expect(await customerRows('edsger@example.com')).toEqual(before);

      // Staff plan again: the new plan keeps the held ticket and erases the rest.
      expect(await late.officer.page(late.planUrl)).toContain('Plan again');
      const replanned = await late.officer.post(`${late.planUrl}/replan`, {});
      expect(replanned.status).toBe(303);
      const newUrl = replanned.headers.get('location')!;
      const newId = newUrl.split('/').at(-1)!;
      expect(newUrl).not.toBe(late.planUrl);
      expect(newUrl).toBe(`/admin/erasure/${newId}`);
      // A second click on the old page leads to the same new plan, storing no third one.
      expect((await late.officer.post(`${late.planUrl}/replan`, {})).headers.get('location')).toBe(newUrl);

      // The old plan says it was replaced, links to the new one and offers nothing to run;
      // the approval asked for it is spent on nothing.
      const old = await late.admin.page(late.planUrl);
      expect(old).toContain(`data-superseded-by="${newId}"`);
      expect(old).toContain(`href="/admin/erasure/${newId}"`);
      expect(old).not.toContain('Approve and execute the erasure');
      expect(old).not.toContain('Plan again');
      const stale = await late.admin.post(`${late.planUrl}/execute`, {});
      expect(stale.status).toBe(409);
      expect(await stale.text()).toContain('replaced by a newer plan');
      expect(await customerRows('edsger@example.com')).toEqual(before);

      // Four eyes again: the old plan's pending approval does not carry over to the new plan.
      const fresh = await late.admin.page(newUrl);
      expect(fresh).toContain('litigation 2026-41');
      expect(fresh).not.toContain('Approve and execute the erasure');
      expect((await late.admin.post(`${newUrl}/execute`, {})).status).toBe(409);
      await late.officer.page(newUrl);
      expect((await late.officer.post(`${newUrl}/request-approval`, {})).status).toBe(303);
      expect(await late.officer.page(newUrl)).toContain('data-awaiting-approval');
      expect(await late.admin.page(newUrl)).toContain('Approve and execute the erasure');
      expect((await late.admin.post(`${newUrl}/execute`, {})).status).toBe(303);

      // The held ticket stays as it was; what is not held is gone.
      expect(await rowsOf('support_tickets', 'tic_edsger')).toEqual(ticket);
      expect(await rowsOf('payment_cards', 'card_edsger')).toEqual([]);
      expect(await rowsOf('contracts', 'con_edsger')).toEqual([]);
      expect(
        await portal.t.db.selectFrom('logins').select('id').where('customer_id', '=', 'cus_edsger').execute(),
      ).toEqual([]);
      // The customer row stays as the held ticket's anchor, its other details masked.
      const [customer] = await customerRows('edsger@example.com');
      expect(customer?.phone).not.toBe(before[0]!.phone);
      const done = await late.admin.page(newUrl);
      expect(done).toMatch(/data-report-status="partial"/);
      expect(done).toContain('data-verified="true"');
      const audit = await late.admin.page('/admin/audit');
      expect(audit).toContain('erasure.replan');
      expect(audit).toContain(`replaced by ${newId}`);

      // The hold is released so it keeps no other subject's tickets in later tests.
      const hold = await portal.t.db
        .selectFrom('privacykit_retention_holds')
        .select('id')
        .where('table_name', '=', 'support_tickets')
        .where('released_at', 'is', null)
        .executeTakeFirstOrThrow();
      await late.admin.page('/admin/retention');
      expect(
        (await late.admin.post(`/admin/retention/holds/${hold.id}/release`, { reason: 'case closed' }))
          .status,
      ).toBe(303);

      await placeHold(late.admin, 'subject', 'ada@example.com', 'tax audit 2026');
      const early = await plannedErasure('ada@example.com');
      const page = await early.admin.page(early.planUrl);
      expect(page).toContain('tax audit 2026');
      expect((await early.admin.post(`${early.planUrl}/execute`, {})).status).toBe(303);
      expect(await customerRows('ada@example.com')).toHaveLength(1);
      expect(await early.admin.page(early.planUrl)).toMatch(/data-report-status="partial"/);
      expect(portal.errors).toEqual([]);
    });

    it('the purge of the identities is offered once the erasure is verified and every recipient notified; refused before, with 409s that say why', async () => {
      const { planUrl, plan, officer, admin } = await plannedErasure('katherine@example.com');
      expect((await admin.post(`${planUrl}/execute`, {})).status).toBe(303);
      const executed = await officer.page(planUrl);
      expect(executed).toContain('data-verified="true"');
      const pending = [
        ...executed.matchAll(/action="\/admin\/erasure\/[^/]+\/notices\/([^/]+)\/confirm"/g),
      ].map((match) => match[1]!);
      expect(pending.length).toBeGreaterThan(0);
      expect(executed).toContain('data-notice-status="pending"');
      expect(executed).toContain('data-purge-blocked');
      expect(executed).not.toContain('Purge the identities');

      const stored = () =>
        portal.t.db
          .selectFrom('privacykit_erasure_plans')
          .select(['plan', 'hmac_key', 'identities_purged_at'])
          .where('id', '=', plan.id)
          .executeTakeFirstOrThrow();
      const early = await officer.post(`${planUrl}/purge-identities`, {});
      expect(early.status).toBe(409);
      expect(await early.text()).toContain('Every recipient must be notified of the erasure first (Art 19)');
      expect((await stored()).identities_purged_at).toBeNull();

      // The portal's conventions: a signed-in staff member, a form from this site.
      expect((await officer.post(`${planUrl}/purge-identities`, {}, { csrf: null })).status).toBe(403);
      const stranger = new Client(portal.base);
      await stranger.page('/privacy');
      expect((await stranger.post(`${planUrl}/purge-identities`, {})).status).toBe(401);
      const noNote = await officer.post(`${planUrl}/notices/${pending[0]}/confirm`, { note: '' });
      expect(noNote.status).toBe(400);
      expect(
        (await officer.post(`${planUrl}/notices/not-a-notice/confirm`, { note: 'by phone' })).status,
      ).toBe(404);

      for (const id of pending) {
        const confirmed = await officer.post(`${planUrl}/notices/${id}/confirm`, {
          note: 'told their DPO by mail, ticket 4711',
        });
        expect(confirmed.status).toBe(303);
      }
      const notified = await officer.page(planUrl);
      expect(notified).not.toContain('data-notice-status="pending"');
      expect(notified).toContain('ticket 4711');
      expect(notified).toContain('Purge the identities');

      // A verification running elsewhere holds the plan: the purge waits for it.
      const verifying = latch();
      const resume = latch();
      let tables = 0;
      const elsewhere = verifyErasure({
        db: worker,
        plan,
        clock: portal.clock,
        onTable: async () => {
          if (++tables > 1) return;
          verifying.open();
          await resume.wait;
        },
      });
      try {
        await verifying.wait;
        const busy = await officer.post(`${planUrl}/purge-identities`, {});
        expect(busy.status).toBe(409);
        expect(await busy.text()).toContain('Another worker is verifying this erasure right now');
        expect((await stored()).identities_purged_at).toBeNull();
      } finally {
        resume.open();
      }
      expect((await elsewhere).ok).toBe(true);

      await officer.page(planUrl);
      expect((await officer.post(`${planUrl}/purge-identities`, {})).status).toBe(303);
      const purged = await officer.page(planUrl);
      expect(purged).toContain('data-identities-purged=');
      expect(purged).toContain('data-verified="true"');
      expect(purged).not.toContain('Verify the erasure');
      const row = await stored();
      expect(JSON.parse(String(row.plan)).identities).toEqual({});
      expect(row.hmac_key).toBe('');
      expect(JSON.stringify(row)).not.toContain('katherine@example.com');

      const again = await officer.post(`${planUrl}/verify`, {});
      expect(again.status).toBe(409);
      expect(await again.text()).toContain('The identities of this erasure were purged');
      const audit = await admin.page('/admin/audit');
      expect(audit).toMatch(/erasure\.notice-confirmed/);
      expect(audit).toMatch(new RegExp(`staff:${STAFF.email}[\\s\\S]*?erasure\\.identities-purged`));
      expect(portal.errors).toEqual([]);
    });
  },
);
