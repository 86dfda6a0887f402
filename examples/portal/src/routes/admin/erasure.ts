import { Router } from 'express';
import type { Response } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import type { ConsentLedger } from '@privacykit/consent';
import { executeErasure, getErasureRecord, planErasure, verifyErasure } from '@privacykit/erasure';
import type { ErasurePlan, ErasureReport, ErasureVerification } from '@privacykit/erasure';
import type { RequestService } from '@privacykit/requests';
import type { Approvals } from '../../approvals.js';
import type { StaffAudit } from '../../audit.js';
import { emailSubjectId } from '../../consent-subject.js';
import { HttpError } from '../../http-error.js';
import { currentStaff, render } from '../../render.js';
import { csrfToken } from '../../security.js';
import { erasureView } from '../../views/admin/erasure.js';
import { verifiedIdentities } from './requests.js';

/** Which column holds each retention fact, per table, for the Art 17(3) remainder. */
export const erasureFacts = { invoices: { invoiceDate: 'invoice_date' } };

const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

function actor(res: Response): string {
  const staff = currentStaff(res);
  if (!staff) throw new HttpError(401, 'Please sign in.');
  return `staff:${staff.email}`;
}

/**
 * Erasure in the back office (Art 17, 19): plan first (a preview changing nothing: rows deleted,
 * columns masked, rows kept under which Art 17(3) ground until when), then execute, then the
 * report and the verification that only the planned remainder is left.
 */
export function adminErasureRoutes(options: {
  db: Kysely<any>;
  policy: Policy;
  dataMap: DataMap;
  clock: Clock;
  requests: RequestService;
  ledger: ConsentLedger;
  audit: StaffAudit;
  approvals: Approvals;
}): Router {
  const { db, policy, dataMap, clock, requests, ledger } = options;
  const router = Router();

  router.post('/admin/requests/:id/erasure', async (req, res) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) throw new HttpError(404, 'No such request.');
    const record = await requests.get(id.data);
    if (record.right !== 'erasure') throw new HttpError(409, 'Only erasure requests are erased.');
    if (record.status !== 'in-progress')
      throw new HttpError(409, 'Approve the request before planning its erasure.');
    const identities = verifiedIdentities(record);
    const plan = await planErasure({
      db,
      dataMap,
      policy,
      clock,
      identities,
      facts: erasureFacts,
      requestId: record.id,
      subjectId: identities.email?.[0] ? emailSubjectId(dataMap, identities.email[0]) : undefined,
    });
    await options.audit.record({
      actor: actor(res),
      action: 'erasure.plan',
      target: record.id,
      detail: plan.id,
    });
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  router.get('/admin/erasure/:planId', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const record = await getErasureRecord({ db, planId: planId.data, tenant: policy.tenant });
    const approval = await options.approvals.latest('erasure.execute', planId.data);
    render(req, res, {
      title: 'Erasure',
      body: erasureView({
        plan: record.plan as ErasurePlan,
        status: record.status,
        report: record.report as ErasureReport | undefined,
        verification: record.verification as ErasureVerification | undefined,
        approval,
        viewer: actor(res),
        csrf: csrfToken(req),
      }),
    });
  });

  // Four eyes (S08, ASVS 2.3.5): one staff member asks for the execution, a different one approves it.
  router.post('/admin/erasure/:planId/request-approval', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const { plan, status } = await getErasureRecord({ db, planId: planId.data, tenant: policy.tenant });
    if (status !== 'planned') throw new HttpError(409, 'This erasure has already been executed.');
    const by = actor(res);
    const approval = await options.approvals.request({ action: 'erasure.execute', target: plan.id, by });
    await options.audit.record({
      actor: by,
      action: 'erasure.approval-requested',
      target: plan.requestId ?? plan.id,
      detail: `plan ${plan.id}, approval ${approval.id}`,
    });
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  router.post('/admin/erasure/:planId/execute', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const { plan, status } = await getErasureRecord({ db, planId: planId.data, tenant: policy.tenant });
    if (status !== 'planned') throw new HttpError(409, 'This erasure has already been executed.');
    const by = actor(res);
    const approval = await options.approvals.approve({ action: 'erasure.execute', target: plan.id, by });
    await options.audit.record({
      actor: by,
      action: 'erasure.approved',
      target: plan.requestId ?? plan.id,
      detail: `plan ${plan.id}, asked by ${approval.requestedBy} at ${approval.requestedAt}, approved at ${approval.approvedAt}`,
    });
    const report = await executeErasure(plan, {
      db,
      clock,
      // Crypto-shred the subject's evidence in the consent ledger, when it has any (S11).
      keyShredder: {
        async shredSubject(subjectId) {
          if ((await ledger.history(subjectId)).length > 0) await ledger.shredSubject(subjectId);
        },
      },
    });
    const verification = await verifyErasure({ db, plan });
    await options.audit.record({
      actor: by,
      action: 'erasure.execute',
      target: plan.requestId ?? plan.id,
      detail: `${report.status}, ${report.changes} changes, verification ${verification.ok ? 'ok' : 'FAILED'}`,
    });
    if (plan.requestId && report.status !== 'failed' && verification.ok) {
      const kept = report.retained.length
        ? ' Some records are kept because the law requires it; they are listed on your request page.'
        : '';
      const request = await requests.get(plan.requestId);
      if (request.status === 'in-progress') {
        await requests.transition(plan.requestId, {
          to: 'completed',
          by,
          reason: `Your data has been erased.${kept}`,
        });
      }
    }
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  return router;
}
