import type {
  ErasurePlan,
  ErasureReport,
  ErasureVerification,
  LeasePurpose,
  OutboxEntry,
} from '@privacykit/erasure';
import type { Approval } from '../../approvals.js';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';

/**
 * Whether a plan may be executed (again): never run, or stopped part-way — a worker that crashed
 * (its lease expired) or a run that failed on a table — which then resumes where it stopped.
 */
export function runnable(status: string): boolean {
  return status === 'planned' || status === 'executing' || status === 'failed';
}

function executeControls(
  planId: string,
  options: { status: string; approval?: Approval; viewer?: string; csrf: string },
): SafeHtml {
  const { approval } = options;
  const resume =
    options.status === 'planned'
      ? ''
      : ' The last run stopped part-way: running it again resumes where it stopped, and changes nothing already done.';
  const what = `Execution deletes or masks the rows above, children before parents, and keeps the rows listed as kept.${resume} A second staff member must approve it (four eyes).`;
  if (!approval || approval.approvedAt) {
    return html`<form method="post" action="/admin/erasure/${planId}/request-approval">${csrfField(options.csrf)}<p>${what}</p><button type="submit">Ask for approval to execute</button></form>`;
  }
  if (approval.requestedBy === options.viewer) {
    return html`<p class="notice" data-awaiting-approval>You asked for this execution at ${approval.requestedAt}: a different staff member must approve it.</p>`;
  }
  return html`<form method="post" action="/admin/erasure/${planId}/execute">${csrfField(options.csrf)}<p>${approval.requestedBy} asked for this execution at ${approval.requestedAt}. ${what}</p><button type="submit" class="danger">Approve and execute the erasure</button></form>`;
}

/**
 * "Plan again", for a plan that never ran: after a hold placed since planning refused it, the
 * new plan keeps the held rows (Art 17(3)(e)) and erases the rest now (Art 12(3)).
 */
function replanControls(planId: string, csrf: string): SafeHtml {
  return html`<form method="post" action="/admin/erasure/${planId}/replan">${csrfField(csrf)}<p>Plans this erasure again from the data as it is now, honouring the current legal holds: held rows are kept, the rest is erased. This plan is then replaced and never executed; the new plan needs its own four-eyes approval.</p><button type="submit" class="secondary">Plan again</button></form>`;
}

/** The Art 19 notices of the plan, with a form to record a delivery made by hand. */
function noticesSection(planId: string, notices: readonly OutboxEntry[], csrf: string): SafeHtml {
  if (notices.length === 0) return html``;
  return html`<h2>Recipients notified (Art 19)</h2>
<table><thead><tr><th scope="col">Recipient</th><th scope="col">Status</th><th scope="col">Receipt</th></tr></thead>
<tbody>${notices.map((notice) => {
    const note =
      notice.receipt && typeof notice.receipt === 'object' && !Array.isArray(notice.receipt)
        ? notice.receipt.note
        : undefined;
    return html`<tr data-notice="${notice.recipientId}" data-notice-status="${notice.status}"><td>${notice.notification.recipient.name}</td><td>${notice.status}${notice.lastError ? html`: ${notice.lastError}` : ''}</td><td>${
      notice.status === 'delivered'
        ? html`${notice.deliveredAt ?? ''}${typeof note === 'string' ? html` — ${note}` : ''}`
        : html`<form method="post" action="/admin/erasure/${planId}/notices/${notice.id}/confirm" class="inline">${csrfField(csrf)}<label for="note-${notice.id}">How they were told</label> <input id="note-${notice.id}" name="note" type="text" required maxlength="500"> <button type="submit" class="secondary">Record the delivery</button></form>`
    }</td></tr>`;
  })}</tbody></table>`;
}

/** Re-verification, and the purge of the identities once the erasure is proven and notified. */
function afterExecution(options: {
  planId: string;
  status: string;
  verification?: ErasureVerification;
  notices: readonly OutboxEntry[];
  identitiesPurgedAt?: string;
  csrf: string;
}): SafeHtml {
  if (options.identitiesPurgedAt) {
    return html`<p class="notice" data-identities-purged="${options.identitiesPurgedAt}">The subject's identities and the plan's secrets were purged at ${options.identitiesPurgedAt}. The report and the verification above remain as the proof of the erasure; it can no longer be executed or verified again.</p>`;
  }
  const verify = html`<form method="post" action="/admin/erasure/${options.planId}/verify">${csrfField(options.csrf)}<p>Re-runs the search for the subject's data and records what is left.</p><button type="submit" class="secondary">Verify the erasure</button></form>`;
  const executed = options.status === 'complete' || options.status === 'partial';
  const undelivered = options.notices.filter((notice) => notice.status !== 'delivered').length;
  const missing = [
    ...(executed ? [] : ['the erasure must be executed without failures']),
    ...(options.verification?.ok ? [] : ['its last verification must be clean']),
    ...(undelivered > 0 ? [`${undelivered} recipient(s) must still be notified`] : []),
  ];
  const purge =
    missing.length === 0
      ? html`<form method="post" action="/admin/erasure/${options.planId}/purge-identities">${csrfField(options.csrf)}<p>The erasure is proven and every recipient notified. Purging removes the subject's identities from this record and its notices, and destroys the plan's secrets (the key of its pseudonyms), keeping the report and the verification as proof (Art 5(1)(c), (e)). It cannot be executed or verified again afterwards.</p><button type="submit" class="danger">Purge the identities</button></form>`
      : html`<p class="hint" data-purge-blocked>The subject's identities stay in this record until ${missing.join(', and ')}.</p>`;
  return html`<h2>Proof and minimisation</h2>${verify}${purge}`;
}

export function erasureView(options: {
  plan: ErasurePlan;
  status: string;
  report?: ErasureReport;
  verification?: ErasureVerification;
  /** A worker (the CLI, another instance) executing or verifying the plan right now. */
  busy?: { heldFor: LeasePurpose; expiresAt: string };
  /** The plan that replaced this one ("Plan again"), when it was replaced. */
  supersededBy?: string;
  identitiesPurgedAt?: string;
  notices?: readonly OutboxEntry[];
  /** The four-eyes approval of the execution, and who is looking. */
  approval?: Approval;
  viewer?: string;
  /** The status of the plan's request: only one in progress is carried out. */
  requestStatus?: string;
  csrf: string;
}): SafeHtml {
  const { plan, report, verification } = options;
  const requestClosed =
    options.requestStatus !== undefined &&
    options.requestStatus !== 'in-progress' &&
    runnable(options.status);
  return html`<h1>Erasure ${plan.requestId ? html`for request <a href="/admin/requests/${plan.requestId}">${plan.requestId}</a>` : ''}</h1>
<p>Status: <strong data-erasure-status="${options.status}">${options.status}</strong>. Plan <code>${plan.id}</code>, made ${plan.createdAt}. ${plan.summary.rows} rows found: ${plan.summary.erase} to erase, ${plan.summary.retained} to keep.</p>
${options.status === 'superseded' ? html`<p class="notice" data-superseded-by="${options.supersededBy ?? ''}">This plan was replaced by ${options.supersededBy ? html`<a href="/admin/erasure/${options.supersededBy}">a newer plan</a>` : 'a newer plan'} of the request and will never be executed. Nothing was erased under it.</p>` : ''}
${requestClosed ? html`<p class="notice" data-request-closed="${options.requestStatus ?? ''}">The request is ${options.requestStatus ?? ''}, not in progress: this erasure is not carried out.</p>` : ''}
${options.busy ? html`<p class="notice" data-erasure-busy="${options.busy.heldFor}">Another worker is ${options.busy.heldFor === 'verification' ? 'verifying' : 'executing'} this erasure right now (until ${options.busy.expiresAt} at the latest). Reload this page in a moment.</p>` : ''}
${plan.summary.blocked.length ? html`<p class="error">Blocked tables (execution will fail loudly): ${plan.summary.blocked.join(', ')}</p>` : ''}
<h2>Plan</h2>
<table><thead><tr><th scope="col">Table</th><th scope="col">Rows</th><th scope="col">Action</th><th scope="col">Erase</th><th scope="col">Kept, and why</th></tr></thead>
<tbody>${plan.tables.map(
    (table) =>
      html`<tr><td>${table.table}</td><td>${table.rows}</td><td>${table.action}${
        Object.keys(table.maskColumns).length
          ? html` (${Object.entries(table.maskColumns)
              .map(
                ([column, strategy]) =>
                  `${column}: ${typeof strategy === 'string' ? strategy : JSON.stringify(strategy)}`,
              )
              .join(', ')})`
          : ''
      }</td><td>${table.erase}</td><td>${table.retained.map((group) => html`${group.rows} row(s): ${group.reason} (${group.article}), until ${group.retainUntil.latest ?? group.retainUntil.earliest ?? 'open'}<br>`)}</td></tr>`,
  )}</tbody></table>
${plan.recipients.length ? html`<p>Recipients to notify (Art 19): ${plan.recipients.map((recipient) => recipient.name).join('; ')}.</p>` : ''}
${
  report
    ? html`<h2>Report</h2>
<p data-report-status="${report.status}">${report.status}: ${report.changes} rows changed in ${report.ms} ms.${report.shredding ? ` Consent ledger key: ${report.shredding.status}.` : ''} ${report.notifications} Art 19 notice(s) queued.</p>
${report.failures.length ? html`<ul class="error">${report.failures.map((failure) => html`<li>${failure.table}: ${failure.reason}</li>`)}</ul>` : ''}`
    : ''
}${options.busy || requestClosed || !runnable(options.status) ? '' : executeControls(plan.id, options)}${
  !options.busy && !requestClosed && options.status === 'planned' && plan.requestId
    ? replanControls(plan.id, options.csrf)
    : ''
}
${
  verification
    ? html`<h2>Verification</h2>
<p class="${verification.ok ? 'notice' : 'error'}" data-verified="${String(verification.ok)}">${verification.ok ? 'Only the planned remainder is left.' : html`${verification.leftoverCount} row(s) should not be there.`} Checked ${verification.checkedAt}.</p>
<table><thead><tr><th scope="col">Table</th><th scope="col">Found</th><th scope="col">Kept</th><th scope="col">Masked</th></tr></thead>
<tbody>${Object.entries(verification.tables).map(([table, counts]) => html`<tr><td>${table}</td><td>${counts.found}</td><td>${counts.retained}</td><td>${counts.masked}</td></tr>`)}</tbody></table>`
    : ''
}
${noticesSection(plan.id, options.notices ?? [], options.csrf)}
${
  report
    ? afterExecution({
        planId: plan.id,
        status: options.status,
        verification,
        notices: options.notices ?? [],
        identitiesPurgedAt: options.identitiesPurgedAt,
        csrf: options.csrf,
      })
    : ''
}`;
}
