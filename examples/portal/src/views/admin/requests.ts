import type { RequestAuditEntry, RequestRecord } from '@privacykit/requests';
import type { Approval } from '../../approvals.js';
import type { RequestExportInfo } from '../../request-exports.js';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';

/**
 * Rights whose request is completed by carrying it out under four eyes (an executed, verified
 * erasure; a released export), never by hand.
 */
export function closesByItsFlow(right: string): boolean {
  return right === 'erasure' || right === 'access' || right === 'portability';
}

const OPEN = new Set(['received', 'identity-pending', 'verified', 'in-progress', 'waiting-on-subject']);

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}

/** Overdue, due within 7 days, or on time — for open requests only. */
export function deadlineFlag(record: RequestRecord, today: string): SafeHtml {
  if (!OPEN.has(record.status)) return html``;
  const left = daysBetween(today, record.effectiveDeadline);
  if (left < 0)
    return html`<span class="flag overdue">overdue by ${-left} day${left === -1 ? '' : 's'}</span>`;
  if (left <= 7) return html`<span class="flag due-soon">due in ${left} day${left === 1 ? '' : 's'}</span>`;
  return html`<span class="flag ok">${left} days left</span>`;
}

export function requestQueueView(options: {
  list: RequestRecord[];
  today: string;
  show: 'open' | 'all';
}): SafeHtml {
  const sorted = [...options.list].sort((a, b) => a.effectiveDeadline.localeCompare(b.effectiveDeadline));
  return html`<h1>Rights requests</h1>
<p>${options.show === 'open' ? html`Open requests, earliest deadline first. <a href="/admin/requests?show=all">Show all</a>.` : html`All requests. <a href="/admin/requests">Show open only</a>.`}</p>
<table><thead><tr><th scope="col">Request</th><th scope="col">Right</th><th scope="col">Status</th><th scope="col">Received</th><th scope="col">Deadline</th><th scope="col"></th></tr></thead>
<tbody>${sorted.map(
    (record) =>
      html`<tr><td><a href="/admin/requests/${record.id}">${record.id}</a></td><td>${record.right}</td><td>${record.status}</td><td>${record.receivedDate}</td><td>${record.effectiveDeadline}</td><td>${deadlineFlag(record, options.today)}</td></tr>`,
  )}</tbody></table>
${sorted.length === 0 ? html`<p>No requests.</p>` : ''}`;
}

function releaseForm(options: {
  record: RequestRecord;
  exportInfo?: RequestExportInfo;
  releaseApproval?: Approval;
  viewer?: string;
  csrf: string;
}): SafeHtml {
  const { exportInfo, releaseApproval } = options;
  if (!exportInfo || exportInfo.releasedAt || options.record.status !== 'in-progress') return html``;
  const inspect = html`<a href="/admin/requests/${options.record.id}/exports/${exportInfo.exportId}" data-inspect-export="${exportInfo.exportId}" download>Download the package to check it</a>`;
  if (releaseApproval && releaseApproval.requestedBy === options.viewer) {
    return html`<p class="notice" data-awaiting-approval>You ran this export: a different staff member must check and release it. ${inspect}.</p>`;
  }
  return html`<form method="post" action="/admin/requests/${options.record.id}/release">${csrfField(options.csrf)}<input type="hidden" name="export" value="${exportInfo.exportId}"><p>Check the package (${inspect}), then release it: the requester is told by mail and can download it once. The release approves this package (<code>${exportInfo.exportId}</code>) only.</p><button type="submit">Approve and release the export</button></form>`;
}

/** What completing does beyond closing the request, for the rights the consent ledger carries out. */
function completionEffect(record: RequestRecord): SafeHtml {
  const details = (record.details ?? {}) as { kind?: string };
  if (
    record.right === 'withdraw-consent' ||
    (record.right === 'objection' && details.kind === 'direct-marketing')
  ) {
    return html`<p data-consent-effect>Completing withdraws the consents named (an objection: refuses the direct-marketing purposes) in the consent ledger for the verified email address, and tells the requester what was done. It was applied when the requester confirmed the request; completing applies anything added since.</p>`;
  }
  return html``;
}

export function requestDetailView(options: {
  record: RequestRecord;
  audit: RequestAuditEntry[];
  exportInfo?: RequestExportInfo;
  /** The release approval of an unreleased package, and who is looking (four eyes). */
  releaseApproval?: Approval;
  viewer?: string;
  csrf: string;
  today: string;
  extra?: SafeHtml;
}): SafeHtml {
  const { record, csrf } = options;
  const open = OPEN.has(record.status);
  return html`<h1>Request <code>${record.id}</code></h1>
<dl class="facts">
  <dt>Right</dt><dd>${record.right}</dd>
  <dt>Status</dt><dd data-status="${record.status}">${record.status}</dd>
  <dt>Received</dt><dd>${record.receivedAt} (${record.channel})</dd>
  <dt>Deadline</dt><dd>${record.effectiveDeadline} ${deadlineFlag(record, options.today)}${record.extendedDeadline ? html` — extended by ${record.extension.months} month(s): ${record.extension.reasons.join('; ')}` : ''}</dd>
  <dt>Identities</dt><dd>${record.identities.map((identity) => html`${identity.kind}: ${identity.value} ${identity.verified ? '(verified)' : '(not verified)'}<br>`)}</dd>
  ${record.redactedAt ? html`<dt>Personal data</dt><dd data-redacted="${record.redactedAt}">removed ${record.redactedAt} by the retention sweep: what is left proves the request was answered, and when</dd>` : html`<dt>Details</dt><dd><pre>${JSON.stringify(record.details, null, 2)}</pre></dd>`}
  ${record.duplicateOf ? html`<dt>Duplicate of</dt><dd><a href="/admin/requests/${record.duplicateOf}">${record.duplicateOf}</a></dd>` : ''}
  ${record.excessive ? html`<dt>Art 12(5)</dt><dd><span class="flag overdue">many requests from this identity</span></dd>` : ''}
  ${record.outcome ? html`<dt>Outcome</dt><dd>${record.outcome.status}: ${'reason' in record.outcome ? record.outcome.reason : 'summary' in record.outcome ? record.outcome.summary : ''}</dd>` : ''}
  ${options.exportInfo ? html`<dt>Export</dt><dd data-export-released="${String(Boolean(options.exportInfo.releasedAt))}">${options.exportInfo.format} package generated ${options.exportInfo.createdAt} by ${options.exportInfo.createdBy}${options.exportInfo.releasedAt ? html`, released by ${options.exportInfo.releasedBy ?? ''} at ${options.exportInfo.releasedAt}: available to the verified requester` : html`, <strong>not released</strong>: a second staff member must approve it${options.releaseApproval ? html` (asked by ${options.releaseApproval.requestedBy} at ${options.releaseApproval.requestedAt})` : ''}`}</dd>` : ''}
</dl>
${releaseForm(options)}
${
  open
    ? html`<h2>Actions</h2>
${record.status === 'verified' || record.status === 'waiting-on-subject' ? html`<form method="post" action="/admin/requests/${record.id}/approve">${csrfField(csrf)}<button type="submit">Approve (start handling)</button></form>` : ''}
${record.status === 'in-progress' && (record.right === 'access' || record.right === 'portability') && !(options.exportInfo && !options.exportInfo.releasedAt) ? html`<form method="post" action="/admin/requests/${record.id}/export">${csrfField(csrf)}<p>Generates the package from the data map. A second staff member then checks and releases it to the verified requester (four eyes).</p><button type="submit">Run the export</button></form>` : ''}
${options.extra ?? ''}
${record.status === 'in-progress' && !closesByItsFlow(record.right) ? html`<form method="post" action="/admin/requests/${record.id}/complete" class="stack">${csrfField(csrf)}${completionEffect(record)}<div><label for="summary">Completion note for the requester (optional)</label><input id="summary" name="summary" type="text"></div><div><button type="submit" class="secondary">Mark completed</button></div></form>` : ''}
<form method="post" action="/admin/requests/${record.id}/extend" class="stack">${csrfField(csrf)}
  <h3>Extend the deadline (Art 12(3))</h3>
  <div><label for="months">By</label><select id="months" name="months"><option value="1">1 month</option><option value="2">2 months</option></select></div>
  <div><label for="reasons">Reasons, one per line <span class="hint">Sent to the requester. Only within the first month.</span></label><textarea id="reasons" name="reasons" required></textarea></div>
  <div><button type="submit" class="secondary">Extend</button></div>
</form>
<form method="post" action="/admin/requests/${record.id}/deny" class="stack">${csrfField(csrf)}
  <h3>Refuse (Art 12(4))</h3>
  <div><label for="reason">Reason <span class="hint">Sent to the requester with their remedies (complaint, court).</span></label><textarea id="reason" name="reason" required></textarea></div>
  <div><button type="submit" class="danger">Refuse the request</button></div>
</form>`
    : ''
}
<h2>Audit trail</h2>
<table><thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">From → to</th><th scope="col">Reason</th></tr></thead>
<tbody>${options.audit.map((entry) => html`<tr><td>${entry.at}</td><td>${entry.by}</td><td>${entry.action}</td><td>${entry.from ?? ''}${entry.to ? html` → ${entry.to}` : ''}</td><td>${entry.reason ?? ''}</td></tr>`)}</tbody></table>`;
}
