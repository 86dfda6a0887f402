import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Policy } from '@privacykit/core';
import type { StaffAudit } from '../../audit.js';
import { listOutbox } from '../../mailer.js';
import { currentStaff, render } from '../../render.js';
import { csrfToken } from '../../security.js';
import { normaliseEmail, staffRoleSchema } from '../../staff.js';
import type { StaffDirectory } from '../../staff.js';
import { parseForm } from '../../validation.js';
import { HttpError } from '../../http-error.js';
import { auditView, dashboardView, outboxView, staffView } from '../../views/admin/office.js';
import { requireRole } from '../auth.js';

const newStaffSchema = z.object({
  email: z.string().trim().toLowerCase().email().max(254),
  name: z.string().trim().min(1).max(120),
  role: staffRoleSchema,
  password: z.string().min(12, 'use at least 12 characters').max(200),
});

/** The back office home, the development mail outbox, the staff audit trail and staff accounts. */
export function officeRoutes(options: {
  db: Kysely<any>;
  policy: Policy;
  staff: StaffDirectory;
  audit: StaffAudit;
  /** Dashboard links; `adminOnly` ones are shown to administrators only (their pages refuse others). */
  links: { href: string; label: string; text: string; adminOnly?: boolean }[];
}): Router {
  const { db, policy, staff, audit } = options;
  const router = Router();

  router.get('/admin', (req, res) => {
    const admin = currentStaff(res)?.role === 'admin';
    const links = options.links.filter((link) => admin || !link.adminOnly);
    render(req, res, { title: 'Back office', body: dashboardView({ links }) });
  });

  // Administrators only: the outbox holds every mail the portal sent (requesters' addresses and
  // their one-time codes) and the audit trail every staff action; a privacy officer needs neither.
  router.get('/admin/outbox', requireRole('admin'), async (req, res) => {
    render(req, res, { title: 'Mail outbox', body: outboxView(await listOutbox(db, policy.tenant)) });
  });

  router.get('/admin/audit', requireRole('admin'), async (req, res) => {
    render(req, res, { title: 'Staff audit trail', body: auditView(await audit.recent(200)) });
  });

  router.get('/admin/staff', requireRole('admin'), async (req, res) => {
    render(req, res, {
      title: 'Staff accounts',
      body: staffView({ members: await staff.list(), csrf: csrfToken(req) }),
    });
  });

  router.post('/admin/staff', requireRole('admin'), async (req, res) => {
    const form = parseForm(newStaffSchema, req.body);
    // As the directory stores it: `Bob@…` is the account `bob@…` already has.
    const email = normaliseEmail(form.email);
    const taken = async () => (await staff.list()).some((member) => member.email === email);
    const refuse = async () =>
      render(req, res, {
        title: 'Staff accounts',
        status: 409,
        body: staffView({
          members: await staff.list(),
          csrf: csrfToken(req),
          error: 'That email already has an account.',
        }),
      });
    if (await taken()) return refuse();
    let member: Awaited<ReturnType<typeof staff.create>>;
    try {
      member = await staff.create(form, { by: currentStaff(res)!.id });
    } catch (error) {
      // Another request created it meanwhile (a double submit): the unique index refused ours.
      if (await taken()) return refuse();
      throw error;
    }
    await audit.record({
      actor: currentStaff(res)!.email,
      action: 'staff.create',
      target: member.email,
      detail: member.role,
    });
    res.redirect(303, '/admin/staff');
  });

  // A member who left, or whose password leaked: disabled, not deleted (the audit trail and the
  // four-eyes record of who created whom keep naming the account). Before, only the database
  // could take an officer's access away.
  router.post('/admin/staff/:id/disable', requireRole('admin'), async (req, res) => {
    const id = z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .safeParse(req.params.id);
    if (!id.success) throw new HttpError(404, 'No such staff account.');
    const admin = currentStaff(res)!;
    const result = await staff.disable(id.data, { by: admin.id });
    if (result === 'unknown') throw new HttpError(404, 'No such staff account.');
    if (result === 'self')
      throw new HttpError(409, 'You cannot disable your own account: ask another administrator.');
    if (result === 'last-admin') {
      throw new HttpError(409, 'This is the last active administrator: create or keep another one first.');
    }
    await audit.record({
      actor: admin.email,
      action: 'staff.disable',
      target: result.email,
      detail: result.role,
    });
    res.redirect(303, '/admin/staff');
  });

  return router;
}
