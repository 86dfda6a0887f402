import { Router } from 'express';
import type { Response } from 'express';
import { z } from 'zod';
import type { Clock, DataMap, Policy } from '@privacykit/core';
import { civilDateIn } from '@privacykit/requests';
import type { RequestRecord, RequestService } from '@privacykit/requests';
import { exportSubject } from '@privacykit/subject-access';
import type { ExportStore } from '@privacykit/subject-access';
import type { Kysely } from 'kysely';
import type { Approvals } from '../../approvals.js';
import type { StaffAudit } from '../../audit.js';
import type { Mailer } from '../../mailer.js';
import { currentStaff, render } from '../../render.js';
import type { RequestExports } from '../../request-exports.js';
import { csrfToken } from '../../security.js';
import { parseForm } from '../../validation.js';
import { requestDetailView, requestQueueView } from '../../views/admin/requests.js';
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
    const form = parseForm(z.object({ summary: z.string().trim().max(2000).optional() }), req.body);
    await requests.transition(record.id, {
      to: 'completed',
      by: actor(res),
      reason: form.summary || undefined,
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
    const identities = verifiedIdentities(record);
    const by = actor(res);
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

  router.post('/admin/requests/:id/release', async (req, res) => {
    const record = await load(req.params.id);
    const pkg = await options.requestExports.latestAny(record.id);
    if (!pkg || pkg.releasedAt) throw new HttpError(409, 'There is no export waiting to be released.');
    if (record.status !== 'in-progress') {
      throw new HttpError(409, 'Only a request in progress can have its export released.');
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
