import { Router } from 'express';
import type { Response } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { isPrivacyKitError } from '@privacykit/core';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import type { ConsentLedger } from '@privacykit/consent';
import {
  confirmNotification,
  executeErasure,
  getErasureRecord,
  listNotifications,
  planErasure,
  purgeErasureIdentities,
  verifyErasure,
} from '@privacykit/erasure';
import type {
  ErasurePlan,
  ErasureRecord,
  ErasureReport,
  ErasureVerification,
  HoldSource,
  LeasePurpose,
} from '@privacykit/erasure';
import type { RequestService } from '@privacykit/requests';
import type { Approvals } from '../../approvals.js';
import type { StaffAudit } from '../../audit.js';
import { emailSubjectId } from '../../consent-subject.js';
import { HttpError } from '../../http-error.js';
import { currentStaff, render } from '../../render.js';
import { csrfToken } from '../../security.js';
import { parseForm } from '../../validation.js';
import { erasureView, runnable } from '../../views/admin/erasure.js';
import { verifiedIdentities } from './requests.js';

/** Which column holds each retention fact, per table, for the Art 17(3) remainder. */
export const erasureFacts = { invoices: { invoiceDate: 'invoice_date' } };

const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

function actor(res: Response): string {
  const staff = currentStaff(res);
  if (!staff) throw new HttpError(401, 'Please sign in.');
  return `staff:${staff.email}`;
}

/** One group of kept rows as the requester reads it: what, how many, the ground and until when. */
function describeKept(group: ErasureReport['retained'][number]): string {
  const { earliest, latest, open } = group.retainUntil;
  const until =
    open > 0
      ? ' for as long as the ground lasts'
      : latest
        ? ` until ${earliest && earliest !== latest ? `${earliest} to ${latest}` : latest}`
        : '';
  return `${group.rows} ${group.rows === 1 ? 'record' : 'records'} of ${group.table.replace(/_/g, ' ')} (${group.reason}, ${group.article})${until}`;
}

/** What staff read when another worker (the CLI, another instance) holds the plan. */
function busyMessage(heldFor: unknown, until: unknown): string {
  const doing = heldFor === 'verification' ? 'verifying' : 'executing';
  return `Another worker is ${doing} this erasure right now (until ${String(until)} at the latest): nothing was changed. Reload this page in a moment and try again.`;
}

/** What staff read about a plan replaced by a newer plan of its request. */
function supersededMessage(by: unknown): string {
  return `This plan was replaced by a newer plan of the request${typeof by === 'string' ? ` (${by})` : ''}: it is never executed, and nothing was changed. Open the new plan from the request's page.`;
}

/** The lease a worker holds on the plan now, if any (a crashed worker's expired one is not). */
function liveLease(
  record: ErasureRecord,
  clock: Clock,
): { heldFor: LeasePurpose; expiresAt: string } | undefined {
  return record.lease && record.lease.expiresAt > clock.now().toISOString() ? record.lease : undefined;
}

/**
 * The erasure library's refusals as 409s staff can act on; anything else is left to the app's
 * error handler (a 500 that is logged, for an unexpected failure).
 */
function refusal(error: unknown): unknown {
  if (!isPrivacyKitError(error)) return error;
  switch (error.code) {
    case 'erasure/plan-locked':
      return new HttpError(409, busyMessage(error.details.heldFor, error.details.leaseExpiresAt));
    case 'erasure/lease-lost':
      return new HttpError(
        409,
        'Another worker took this erasure over while it ran here, and finishes it: this run stopped without writing more. Reload this page in a moment.',
      );
    case 'erasure/held-since-planning':
      return new HttpError(
        409,
        `A legal hold placed since this plan was made covers data it would erase (${String((error.details.reasons as string[] | undefined)?.join('; ') ?? 'legal hold')}): nothing was erased. Use “Plan again” on this page: the new plan keeps the held data (Art 17(3)(e)) and erases the rest now (Art 12(3)); a second staff member approves it as before.`,
      );
    case 'erasure/plan-superseded':
      return new HttpError(409, supersededMessage(error.details.supersededBy));
    case 'erasure/plan-already-run':
      return new HttpError(
        409,
        'This erasure has already started or finished, so it cannot be planned again: nothing was changed. Resume or verify it on this page.',
      );
    case 'erasure/identities-purged':
      return new HttpError(
        409,
        'The identities of this erasure were purged: it cannot be executed or verified again. Its stored report and verification stand.',
      );
    case 'erasure/not-verified':
      return new HttpError(
        409,
        'Purge the identities only once the erasure is executed and its last verification is clean: verify it first.',
      );
    case 'erasure/notifications-pending':
      return new HttpError(
        409,
        'Every recipient must be notified of the erasure first (Art 19): they need the identities to find the data. Record each delivery on this page, then purge.',
      );
    default:
      return error;
  }
}

/** Runs an erasure library call, turning its refusals into 409s. */
async function refusing<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (error) {
    throw refusal(error);
  }
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
  /** Legal holds (the retention engine's): held rows are kept when planning, and checked again before executing. */
  holds?: HoldSource;
}): Router {
  const { db, policy, dataMap, clock, requests, ledger, holds } = options;
  const router = Router();
  const recordOf = (planId: string) => getErasureRecord({ db, planId, tenant: policy.tenant });

  /** The request is answered once its erasure is done and proven: the requester reads why rows are kept. */
  async function completeRequest(plan: ErasurePlan, report: ErasureReport, by: string): Promise<void> {
    if (!plan.requestId) return;
    // What is kept, why and until when, in the answer itself: the request page shows it (it
    // said the records were listed there, and nothing was).
    const kept = report.retained.length
      ? ` Some records are kept because the law requires it: ${report.retained.map(describeKept).join('; ')}.`
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

  /**
   * An erasure is carried out only while its request is in progress: one refused, cancelled,
   * answered or waiting on the subject since it was planned must not be erased under it (the
   * requester would read a refusal while their data is gone).
   */
  async function assertRequestOpen(plan: ErasurePlan): Promise<void> {
    if (!plan.requestId) return;
    const request = await requests.get(plan.requestId);
    if (request.status !== 'in-progress') {
      throw new HttpError(
        409,
        `Request ${plan.requestId} is ${request.status}, not in progress: its erasure is not carried out.`,
      );
    }
  }

  /** Plans the erasure of an approved erasure request; with `replace`, instead of its plan that never ran. */
  async function planFor(requestId: string, replace: boolean): Promise<ErasurePlan> {
    const record = await requests.get(requestId);
    if (record.right !== 'erasure') throw new HttpError(409, 'Only erasure requests are erased.');
    if (record.status !== 'in-progress')
      throw new HttpError(409, 'Approve the request before planning its erasure.');
    const identities = verifiedIdentities(record);
    return refusing(
      planErasure({
        db,
        dataMap,
        policy,
        clock,
        identities,
        facts: erasureFacts,
        requestId: record.id,
        subjectId: identities.email?.[0] ? emailSubjectId(dataMap, identities.email[0]) : undefined,
        ...(holds ? { holds } : {}),
        ...(replace ? { replace: true } : {}),
      }),
    );
  }

  router.post('/admin/requests/:id/erasure', async (req, res) => {
    const id = idSchema.safeParse(req.params.id);
    if (!id.success) throw new HttpError(404, 'No such request.');
    const plan = await planFor(id.data, false);
    await options.audit.record({
      actor: actor(res),
      action: 'erasure.plan',
      target: id.data,
      detail: plan.id,
    });
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  router.get('/admin/erasure/:planId', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const record = await recordOf(planId.data);
    const approval = await options.approvals.latest('erasure.execute', planId.data);
    const notices = await listNotifications({ db, tenant: policy.tenant, planId: planId.data });
    const plan = record.plan as ErasurePlan;
    const requestStatus = plan.requestId ? (await requests.get(plan.requestId)).status : undefined;
    render(req, res, {
      title: 'Erasure',
      body: erasureView({
        plan,
        status: record.status,
        ...(requestStatus ? { requestStatus } : {}),
        report: record.report as ErasureReport | undefined,
        verification: record.verification as ErasureVerification | undefined,
        busy: liveLease(record, clock),
        supersededBy: record.supersededBy,
        identitiesPurgedAt: record.identitiesPurgedAt,
        notices,
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
    const { plan, status, supersededBy } = await getErasureRecord({
      db,
      planId: planId.data,
      tenant: policy.tenant,
    });
    if (status === 'superseded') throw new HttpError(409, supersededMessage(supersededBy));
    if (!runnable(status)) throw new HttpError(409, 'This erasure has already been executed.');
    await assertRequestOpen(plan);
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
    const record = await recordOf(planId.data);
    const { plan, status } = record;
    // Checked before the approval is spent: a plan the CLI or another instance is running stays
    // approvable once it is free (if it still needs running).
    const busy = liveLease(record, clock);
    if (busy) throw new HttpError(409, busyMessage(busy.heldFor, busy.expiresAt));
    // A replaced plan's approval, pending or given, is spent on nothing: the new plan has its own.
    if (status === 'superseded') throw new HttpError(409, supersededMessage(record.supersededBy));
    if (!runnable(status)) throw new HttpError(409, 'This erasure has already been executed.');
    // Before the approval is spent, as above: the request may have been refused since it was asked for.
    await assertRequestOpen(plan);
    const by = actor(res);
    const approval = await options.approvals.approve({
      action: 'erasure.execute',
      target: plan.id,
      by,
      approver: currentStaff(res)!,
    });
    await options.audit.record({
      actor: by,
      action: 'erasure.approved',
      target: plan.requestId ?? plan.id,
      detail: `plan ${plan.id}, asked by ${approval.requestedBy} at ${approval.requestedAt}, approved at ${approval.approvedAt}`,
    });
    let report: ErasureReport;
    try {
      report = await executeErasure(plan, {
        db,
        clock,
        ...(holds ? { holds } : {}),
        // Crypto-shred the subject's evidence in the consent ledger, when it has any (S11).
        keyShredder: {
          async shredSubject(subjectId) {
            if ((await ledger.history(subjectId)).length > 0) await ledger.shredSubject(subjectId);
          },
        },
      });
    } catch (error) {
      const refused = refusal(error);
      if (refused instanceof HttpError) {
        // Another worker got the plan between the check above and the run: approved, not run here.
        await options.audit.record({
          actor: by,
          action: 'erasure.execute',
          target: plan.requestId ?? plan.id,
          detail: `refused: ${refused.message}`,
        });
      }
      throw refused;
    }
    let verification: ErasureVerification;
    try {
      verification = await verifyErasure({ db, plan, clock });
    } catch (error) {
      const refused = refusal(error);
      if (!(refused instanceof HttpError)) throw refused;
      await options.audit.record({
        actor: by,
        action: 'erasure.execute',
        target: plan.requestId ?? plan.id,
        detail: `${report.status}, ${report.changes} changes, not verified: ${refused.message}`,
      });
      throw new HttpError(
        409,
        `The erasure was executed (${report.status}, ${report.changes} rows changed) but not verified yet: ${refused.message} Then use “Verify the erasure” on this page.`,
      );
    }
    await options.audit.record({
      actor: by,
      action: 'erasure.execute',
      target: plan.requestId ?? plan.id,
      detail: `${report.status}, ${report.changes} changes, verification ${verification.ok ? 'ok' : 'FAILED'}`,
    });
    if (report.status !== 'failed' && verification.ok) await completeRequest(plan, report, by);
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  // Art 17(3)(e), 12(3): a hold placed since planning refuses the plan; a new plan keeps the
  // held rows and erases the rest now. Only a plan that never ran is replaced; the new plan has a
  // new id, so no approval of the old one carries over: a second staff member approves it again.
  router.post('/admin/erasure/:planId/replan', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const by = actor(res);
    const record = await recordOf(planId.data);
    // Planned again already (a second click, another tab): the new plan is the answer.
    if (record.status === 'superseded' && record.supersededBy) {
      return res.redirect(303, `/admin/erasure/${record.supersededBy}`);
    }
    const requestId = record.plan.requestId;
    if (!requestId) throw new HttpError(409, 'Only the erasure of a request can be planned again.');
    if (record.status !== 'planned') {
      throw new HttpError(
        409,
        'This erasure has already started or finished, so it cannot be planned again: nothing was changed. Resume or verify it on this page.',
      );
    }
    const plan = await planFor(requestId, true);
    await options.audit.record({
      actor: by,
      action: 'erasure.replan',
      target: requestId,
      detail: `plan ${record.plan.id} replaced by ${plan.id}`,
    });
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  // Verifies again: after a verification that another worker's lease refused, after fixing
  // leftovers, or after the CLI (or another instance) executed the plan.
  router.post('/admin/erasure/:planId/verify', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const { plan, report } = await recordOf(planId.data);
    if (!report) throw new HttpError(409, 'Execute the erasure before verifying it.');
    const by = actor(res);
    const verification = await refusing(verifyErasure({ db, plan, clock }));
    // The report stored with the plan is the last run's, written with its final status.
    const last = (await recordOf(plan.id)).report as ErasureReport;
    await options.audit.record({
      actor: by,
      action: 'erasure.verify',
      target: plan.requestId ?? plan.id,
      detail: `plan ${plan.id}: ${verification.ok ? 'ok' : `FAILED, ${verification.leftoverCount} leftover(s)`}`,
    });
    if (last.status !== 'failed' && verification.ok) await completeRequest(plan, last, by);
    res.redirect(303, `/admin/erasure/${plan.id}`);
  });

  // A delivery made by hand (a processor without an endpoint told by mail or phone), recorded
  // with who confirmed it and how, as the Art 19 receipt.
  router.post('/admin/erasure/:planId/notices/:noticeId/confirm', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    const noticeId = idSchema.safeParse(req.params.noticeId);
    if (!planId.success || !noticeId.success) throw new HttpError(404, 'No such notice.');
    const form = parseForm(
      z.object({ note: z.string().trim().min(3, 'say how the recipient was told').max(500) }),
      req.body,
    );
    const notices = await listNotifications({ db, tenant: policy.tenant, planId: planId.data });
    const notice = notices.find((entry) => entry.id === noticeId.data);
    if (!notice) throw new HttpError(404, 'No such notice.');
    if (notice.status === 'delivered') throw new HttpError(409, 'This notice is already delivered.');
    const by = actor(res);
    await confirmNotification({
      db,
      tenant: policy.tenant,
      clock,
      id: notice.id,
      receipt: { confirmedBy: by, note: form.note },
    });
    await options.audit.record({
      actor: by,
      action: 'erasure.notice-confirmed',
      target: notice.notification.requestId ?? planId.data,
      detail: `plan ${planId.data}, ${notice.recipientId}: ${form.note}`,
    });
    res.redirect(303, `/admin/erasure/${planId.data}`);
  });

  // Art 5(1)(c), (e): once the erasure is proven and every recipient told, the record forgets
  // who it was about (and the secrets that could link the pseudonyms back), keeping the proof.
  router.post('/admin/erasure/:planId/purge-identities', async (req, res) => {
    const planId = idSchema.safeParse(req.params.planId);
    if (!planId.success) throw new HttpError(404, 'No such erasure plan.');
    const by = actor(res);
    const record = await refusing(
      purgeErasureIdentities({ db, planId: planId.data, tenant: policy.tenant, clock }),
    );
    await options.audit.record({
      actor: by,
      action: 'erasure.identities-purged',
      target: record.plan.requestId ?? record.plan.id,
      detail: `plan ${record.plan.id}, purged at ${record.identitiesPurgedAt}`,
    });
    res.redirect(303, `/admin/erasure/${record.plan.id}`);
  });

  return router;
}
