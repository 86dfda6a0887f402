import { Router } from 'express';
import type { Response } from 'express';
import { z } from 'zod';
import type { Policy } from '@privacykit/core';
import { renderSchedule } from '@privacykit/retention';
import type { RetentionEngine } from '@privacykit/retention';
import type { RedactOptions, RedactResult, RequestService } from '@privacykit/requests';
import type { StaffAudit } from '../../audit.js';
import { HttpError } from '../../http-error.js';
import { currentStaff, render } from '../../render.js';
import { csrfToken } from '../../security.js';
import { parseForm } from '../../validation.js';
import { retentionView, runView } from '../../views/admin/retention.js';

const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

function actor(res: Response): string {
  const staff = currentStaff(res);
  if (!staff) throw new HttpError(401, 'Please sign in.');
  return `staff:${staff.email}`;
}

const holdSchema = z.object({
  kind: z.enum(['subject', 'table']),
  value: z.string().trim().min(1, 'say whose data or which table').max(254),
  reason: z.string().trim().min(3, 'give the claim or case').max(500),
});

/** The staff audit entry of a request-log redaction, one per sweep, targeting the sweep's run. */
const REDACT_ACTION = 'requests.redact';

function describeRedaction(result: RedactResult): string {
  return `${result.redacted} request${result.redacted === 1 ? '' : 's'} redacted (${result.closed} closed, ${result.unverified} never verified)`;
}

/**
 * Retention in the back office (Art 5(1)(e), 5(2), 17(3)(e)): the schedule in words, a dry run
 * with the sweep's own candidate queries, a sweep with its certificate, legal holds, the backlog.
 * The sweep also redacts the request log by the policy's `id-documents` rule
 * (`requestLog.dueAt`): one staff action applies the whole schedule.
 */
export function adminRetentionRoutes(options: {
  policy: Policy;
  retention: RetentionEngine;
  audit: StaffAudit;
  requests: RequestService;
  /** When a request's personal data is due (`requestLog.dueAt`), and the days kept when never verified. */
  requestLog: { dueAt: RedactOptions['dueAt']; unverifiedDays: number };
}): Router {
  const { retention, audit, requests } = options;
  const { dueAt, unverifiedDays } = options.requestLog;
  const router = Router();
  const schedule = renderSchedule(options.policy);

  router.get('/admin/retention', async (req, res) => {
    const dryRun = await retention.dryRun({ sample: 3 });
    const backlog = await retention.backlog();
    const holds = await retention.holds();
    const requestLog = await requests.redact({ dueAt, dryRun: true });
    const runs = (await audit.recent(500)).filter((entry) => entry.action === 'retention.sweep');
    render(req, res, {
      title: 'Retention',
      body: retentionView({
        schedule: schedule.rules,
        dryRun,
        backlog,
        holds,
        runs,
        requestLog,
        unverifiedDays,
        csrf: csrfToken(req),
      }),
    });
  });

  router.post('/admin/retention/sweep', async (_req, res) => {
    const by = actor(res);
    const result = await retention.sweep({ batchSize: 500, budget: { milliseconds: 30_000 } });
    await audit.record({
      actor: by,
      action: 'retention.sweep',
      target: result.runId,
      detail: `${result.records} rows, ${result.complete ? 'complete' : 'budget reached: run again'}`,
    });
    const redacted = await requests.redact({ dueAt, batchSize: 500 });
    await audit.record({
      actor: by,
      action: REDACT_ACTION,
      target: result.runId,
      detail: describeRedaction(redacted),
    });
    res.redirect(303, `/admin/retention/runs/${result.runId}`);
  });

  router.get('/admin/retention/runs/:runId', async (req, res) => {
    const runId = idSchema.safeParse(req.params.runId);
    if (!runId.success) throw new HttpError(404, 'No such run.');
    const certificate = await retention.certificate(runId.data);
    const check = await retention.verifyCertificate(runId.data);
    const requestLog = (await audit.recent(500)).find(
      (entry) => entry.action === REDACT_ACTION && entry.target === runId.data,
    );
    render(req, res, {
      title: 'Retention run',
      body: runView({ certificate, check, requestLog: requestLog?.detail ?? null }),
    });
  });

  router.post('/admin/retention/holds', async (req, res) => {
    const form = parseForm(holdSchema, req.body);
    const by = actor(res);
    const hold = await retention.placeHold({
      scope: form.kind === 'subject' ? { subject: { email: [form.value] } } : { table: form.value },
      reason: form.reason,
      placedBy: by,
    });
    await audit.record({ actor: by, action: 'retention.hold.place', target: hold.id, detail: form.reason });
    res.redirect(303, '/admin/retention#holds');
  });

  router.post('/admin/retention/holds/:id/release', async (req, res) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) throw new HttpError(404, 'No such hold.');
    const form = parseForm(z.object({ reason: z.string().trim().min(3).max(500) }), req.body);
    const by = actor(res);
    await retention.releaseHold(id.data, { by, reason: form.reason });
    await audit.record({ actor: by, action: 'retention.hold.release', target: id.data, detail: form.reason });
    res.redirect(303, '/admin/retention#holds');
  });

  return router;
}
