import { Router } from 'express';
import type { Response } from 'express';
import { z } from 'zod';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import { canTransition, civilDateIn } from '@privacykit/requests';
import type { RequestRecord, RequestService } from '@privacykit/requests';
import { downloadHeaders, exportSubject } from '@privacykit/subject-access';
import type { ExportStore } from '@privacykit/subject-access';
import type { Kysely } from 'kysely';
import type { Approvals } from '../../approvals.js';
import type { StaffAudit } from '../../audit.js';
import { describeConsentOutcome } from '../../consent-requests.js';
import type { ConsentRequestOutcome } from '../../consent-requests.js';
import type { Mailer } from '../../mailer.js';
import { currentStaff, render } from '../../render.js';
import type { RequestExports } from '../../request-exports.js';
import { csrfToken } from '../../security.js';
import { parseForm } from '../../validation.js';
import { closesByItsFlow, requestDetailView, requestQueueView } from '../../views/admin/requests.js';
import { HttpError } from '../../http-error.js';

export interface AdminRequestRoutesOptions {
  db: Kysely<any>;
  policy: Policy;
  dataMap: DataMap;
  clock: Clock;
  requests: RequestService;
  exports: ExportStore;
  requestExports: RequestExports;
  audit: StaffAudit;
  approvals: Approvals;
  mailer: Mailer;
  /** Consent ledger records of a subject for the export (Art 15, R07), when the ledger is wired. */
  consentHistoryFor?: (identities: Record<string, string[]>) => Promise<unknown[]>;
  /** The subject's consent records (one per purpose, its status now) for the export, when the ledger is wired. */
  consentRecordsFor?: (identities: Record<string, string[]>) => Promise<unknown[]>;
  /**
   * Applies a withdrawal of consent or an objection to direct marketing to the consent ledger
   * (`consent-requests.ts`); completing such a request calls it. Undefined for other requests.
   */
  applyConsentRequest?: (record: RequestRecord) => Promise<ConsentRequestOutcome | undefined>;
  /** Extra actions on a request's page (erasure preview), by right. */
  extraActions?: (record: RequestRecord, csrf: string) => import('../../views/html.js').SafeHtml;
}

const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);

/** The verified identities of a request, as the data-map traversal wants them. */
export function verifiedIdentities(record: RequestRecord): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const identity of record.identities) {
    if (!identity.verified) continue;
    out[identity.kind] = [...(out[identity.kind] ?? []), identity.value];
  }
  return out;
}

function actor(res: Response): string {
  const staff = currentStaff(res);
  if (!staff) throw new HttpError(401, 'Please sign in.');
  return `staff:${staff.email}`;
}

/**
 * The request queue (Art 12(3) deadlines with overdue and due-soon flags) and one request's page:
 * approve, deny with a reason (remedies are added), extend with reasons, complete, and run the
 * access or portability export, released to the requester only by a second staff member (four
 * eyes). Every step is audited with who and when.
 */
export function adminRequestRoutes(options: AdminRequestRoutesOptions): Router {
  const { requests, policy, clock } = options;
  const router = Router();

  const load = async (raw: unknown): Promise<RequestRecord> => {
    const id = idSchema.safeParse(raw);
    if (!id.success) throw new HttpError(404, 'No such request.');
    return requests.get(id.data);
  };

  router.get('/admin/requests', async (req, res) => {
    const show = z.enum(['open', 'all']).catch('open').parse(req.query.show);
    const list = await requests.list(
      show === 'open'
        ? { status: ['received', 'identity-pending', 'verified', 'in-progress', 'waiting-on-subject'] }
        : {},
    );
    const today = civilDateIn(clock.now(), policy.zone);
    render(req, res, { title: 'Requests', body: requestQueueView({ list, today, show }) });
  });

  router.get('/admin/requests/:id', async (req, res) => {
    const record = await load(req.params.id);
    const [audit, pkg] = await Promise.all([
      requests.audit(record.id),
      options.requestExports.latestAny(record.id),
    ]);
    const releaseApproval =
      pkg && !pkg.releasedAt ? await options.approvals.latest('export.release', pkg.exportId) : undefined;
    const csrf = csrfToken(req);
    render(req, res, {
      title: `Request ${record.id}`,
      body: requestDetailView({
        record,
        audit,
        exportInfo: pkg,
        releaseApproval,
        viewer: actor(res),
        csrf,
        today: civilDateIn(clock.now(), policy.zone),
        extra: options.extraActions?.(record, csrf),
      }),
    });
  });

  router.post('/admin/requests/:id/approve', async (req, res) => {
    const record = await load(req.params.id);
    await requests.transition(record.id, { to: 'in-progress', by: actor(res) });
    res.redirect(303, `/admin/requests/${record.id}`);
  });

  router.post('/admin/requests/:id/deny', async (req, res) => {
    const record = await load(req.params.id);
    const form = parseForm(
      z.object({ reason: z.string().trim().min(5, 'give the reason the requester will read').max(2000) }),
      req.body,
    );
    await requests.transition(record.id, { to: 'denied', by: actor(res), reason: form.reason });
    res.redirect(303, `/admin/requests/${record.id}`);
  });

  router.post('/admin/requests/:id/extend', async (req, res) => {
    const record = await load(req.params.id);
    const form = parseForm(
      z.object({
        months: z.enum(['1', '2']).transform(Number),
        reasons: z.string().trim().min(5, 'give the reasons the requester will read').max(2000),
      }),
      req.body,
    );
    await requests.extend(record.id, {
      months: form.months as 1 | 2,
      reasons: form.reasons
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter(Boolean),
      by: actor(res),
    });
    res.redirect(303, `/admin/requests/${record.id}`);
  });

  router.post('/admin/requests/:id/complete', async (req, res) => {
    const record = await load(req.params.id);
    // These are answered by what they ask for, each under four eyes: an erasure once its plan is
    // executed and verified, an access or portability request once its export is released.
    // Marked done by hand, the requester read "Completed" with nothing erased or sent.
    if (closesByItsFlow(record.right)) {
      throw new HttpError(
        409,
        record.right === 'erasure'
          ? 'An erasure request is completed by executing its verified erasure plan (or refused): it cannot be marked completed by hand.'
          : 'An access or portability request is completed by releasing its export to the requester (or refused): it cannot be marked completed by hand.',
      );
    }
    const form = parseForm(z.object({ summary: z.string().trim().max(2000).optional() }), req.body);
    const by = actor(res);
    // A withdrawal of consent or a direct-marketing objection is carried out in the ledger before
    // the request is closed as done (it already was when the requester verified it; this applies
    // what was added since, and nothing twice): before, completing one changed nothing there.
    let note: string | undefined;
    if (canTransition(record.status, 'completed') && options.applyConsentRequest) {
      const outcome = await options.applyConsentRequest(record);
      if (outcome) {
        note = describeConsentOutcome(policy, outcome);
        await options.audit.record({
          actor: by,
          action: 'consent.request-applied',
          target: record.id,
          detail: `withdrawn now ${outcome.withdrawn.filter((w) => w.now).length} (standing ${outcome.withdrawn.length}), refused now ${outcome.refused.filter((r) => r.now).length} (standing ${outcome.refused.length})${outcome.otherBasis.length ? `, not on consent: ${outcome.otherBasis.join(' ')}` : ''}${outcome.notify.length ? `; tell ${outcome.notify.map((recipient) => recipient.name).join(', ')}` : ''}`,
        });
      }
    }
    await requests.transition(record.id, {
      to: 'completed',
      by,
      reason: [note, form.summary].filter(Boolean).join(' ') || undefined,
    });
    res.redirect(303, `/admin/requests/${record.id}`);
  });

  router.post('/admin/requests/:id/export', async (req, res) => {
    const record = await load(req.params.id);
    if (record.right !== 'access' && record.right !== 'portability') {
      throw new HttpError(409, 'Only access and portability requests have an export.');
    }
    if (record.status !== 'in-progress') {
      throw new HttpError(409, 'Approve the request (in progress) before running its export.');
    }
    // One package under review at a time: a new one would replace, under the reviewer's eyes, the
    // package they are checking (the release names the package it approves, see below).
    // A package that expired or was purged while it waited cannot be released: run it again.
    const waiting = await options.requestExports.latestAny(record.id);
    if (waiting && !waiting.releasedAt && (await options.requestExports.available(waiting.exportId))) {
      throw new HttpError(
        409,
        'An export of this request is waiting to be released: a second staff member checks and releases it first.',
      );
    }
    const identities = verifiedIdentities(record);
    const by = actor(res);
    // Before the package is made: one nobody can release would block running it again.
    await options.approvals.assertApprovable(by);
    const requestIdentities = Object.entries(identities).flatMap(([kind, values]) =>
      values.map((value) => ({ kind, value })),
    );
    const format = record.right === 'portability' ? 'portability' : 'zip';
    const [requestHistory, consentHistory, consentRecords] = await Promise.all([
      requests.historyFor(requestIdentities),
      options.consentHistoryFor ? options.consentHistoryFor(identities) : Promise.resolve([]),
      // A portability package (Art 20) holds data the subject provided, not records about them.
      options.consentRecordsFor && format !== 'portability'
        ? options.consentRecordsFor(identities)
        : Promise.resolve([]),
    ]);
    const stream = exportSubject({
      db: options.db,
      dataMap: options.dataMap,
      policy,
      identities,
      format,
      clock,
      requestHistory: [requestHistory],
      consentHistory,
      consentRecords,
    });
    const stored = await options.exports.save(stream, {
      filename: `${policy.controller.name.toLowerCase()}-${record.right}-${record.id}.zip`,
      contentType: 'application/zip',
      requestId: record.id,
    });
    await options.requestExports.attach({ requestId: record.id, exportId: stored.exportId, by, format });
    await options.audit.record({
      actor: by,
      action: 'request.export',
      target: record.id,
      detail: `${stored.bytes} bytes, sha256 ${stored.sha256}`,
    });
    // Four eyes (S08, ASVS 2.3.5): the package reaches the requester only once another staff member releases it.
    const approval = await options.approvals.request({
      action: 'export.release',
      target: stored.exportId,
      by,
    });
    await options.audit.record({
      actor: by,
      action: 'export.release-requested',
      target: record.id,
      detail: `export ${stored.exportId}, approval ${approval.id}`,
    });
    res.redirect(303, `/admin/requests/${record.id}`);
  });

  // The reviewer checks the package before releasing it: they download exactly what the requester
  // would get (through a single-use token bound to their own session, as the requester's are).
  router.get('/admin/requests/:id/exports/:exportId', async (req, res) => {
    const record = await load(req.params.id);
    const exportId = idSchema.safeParse(req.params.exportId);
    const pkg = exportId.success ? await options.requestExports.get(record.id, exportId.data) : undefined;
    if (!pkg) throw new HttpError(404, 'No such export for this request.');
    const binding = `staff:${req.sessionID}`;
    const issued = await options.exports.issueToken(pkg.exportId, { binding, ttl: 60_000 });
    const redeemed = await options.exports.redeem(issued.token, { binding });
    await options.audit.record({
      actor: actor(res),
      action: 'export.inspected',
      target: record.id,
      detail: `export ${pkg.exportId}${pkg.releasedAt ? '' : ' (awaiting release)'}`,
    });
    res.set(downloadHeaders(redeemed.filename, { contentType: redeemed.contentType, bytes: redeemed.bytes }));
    redeemed.stream.pipe(res);
  });

  router.post('/admin/requests/:id/release', async (req, res) => {
    const record = await load(req.params.id);
    // The form names the package its page showed: a release approves that package and no other
    // (one run again since, by anyone, is not approved by a click on the older page).
    const form = parseForm(z.object({ export: idSchema }), req.body);
    const pkg = await options.requestExports.latestAny(record.id);
    if (!pkg || pkg.releasedAt) throw new HttpError(409, 'There is no export waiting to be released.');
    if (pkg.exportId !== form.export) {
      throw new HttpError(
        409,
        'The export waiting for release is not the one on the page you approved from: reload the request, check the package, then release it.',
      );
    }
    if (record.status !== 'in-progress') {
      throw new HttpError(409, 'Only a request in progress can have its export released.');
    }
    // Before, a package purged after its 7 days while it awaited release was "released" all the
    // same: the request closed and the requester was mailed a download that could not work.
    if (!(await options.requestExports.available(pkg.exportId))) {
      throw new HttpError(
        409,
        'The export waiting for release is no longer stored (packages are kept 7 days): run the export again, then have it released.',
      );
    }
    const by = actor(res);
    const approval = await options.approvals.approve({
      action: 'export.release',
      target: pkg.exportId,
      by,
      approver: currentStaff(res)!,
    });
    await options.requestExports.release({ requestId: record.id, exportId: pkg.exportId, by });
    await options.audit.record({
      actor: by,
      action: 'export.released',
      target: record.id,
      detail: `export ${pkg.exportId}, asked by ${approval.requestedBy} at ${approval.requestedAt}, approved at ${approval.approvedAt}`,
    });
    await requests.transition(record.id, {
      to: 'completed',
      by,
      reason: 'Your data export is ready: download it from your request page.',
    });
    const to = await requests.deliveryChannel(record.id);
    await options.mailer.send({
      to,
      subject: `${policy.controller.name}: your data is ready`,
      text: [
        `The copy of your data you asked for (request ${record.id}) is ready.`,
        '',
        'Open your request page in the browser where you confirmed the request and press "Download my data".',
        'If you use another browser or device, go to the "Check my request" page and confirm with a new code.',
        'The download link works once, for a few minutes, in that browser only. The package is deleted after 7 days.',
      ].join('\n'),
    });
    res.redirect(303, `/admin/requests/${record.id}`);
  });

  return router;
}
