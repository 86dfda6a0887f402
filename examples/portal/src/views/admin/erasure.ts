import type { ErasurePlan, ErasureReport, ErasureVerification } from '@privacykit/erasure';
import type { Approval } from '../../approvals.js';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';

function executeControls(
  planId: string,
  options: { approval?: Approval; viewer?: string; csrf: string },
): SafeHtml {
  const { approval } = options;
  const what =
    'Execution deletes or masks the rows above, children before parents, and keeps the rows listed as kept. A second staff member must approve it (four eyes).';
  if (!approval || approval.approvedAt) {
    return html`<form method="post" action="/admin/erasure/${planId}/request-approval">${csrfField(options.csrf)}<p>${what}</p><button type="submit">Ask for approval to execute</button></form>`;
  }
  if (approval.requestedBy === options.viewer) {
    return html`<p class="notice" data-awaiting-approval>You asked for this execution at ${approval.requestedAt}: a different staff member must approve it.</p>`;
  }
  return html`<form method="post" action="/admin/erasure/${planId}/execute">${csrfField(options.csrf)}<p>${approval.requestedBy} asked for this execution at ${approval.requestedAt}. ${what}</p><button type="submit" class="danger">Approve and execute the erasure</button></form>`;
}

export function erasureView(options: {
  plan: ErasurePlan;
  status: string;
  report?: ErasureReport;
  verification?: ErasureVerification;
  /** The four-eyes approval of the execution, and who is looking. */
  approval?: Approval;
  viewer?: string;
  csrf: string;
}): SafeHtml {
  const { plan, report, verification } = options;
  return html`<h1>Erasure ${plan.requestId ? html`for request <a href="/admin/requests/${plan.requestId}">${plan.requestId}</a>` : ''}</h1>
<p>Status: <strong data-erasure-status="${options.status}">${options.status}</strong>. Plan <code>${plan.id}</code>, made ${plan.createdAt}. ${plan.summary.rows} rows found: ${plan.summary.erase} to erase, ${plan.summary.retained} to keep.</p>
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
    : executeControls(plan.id, options)
}
${
  verification
    ? html`<h2>Verification</h2>
<p class="${verification.ok ? 'notice' : 'error'}" data-verified="${String(verification.ok)}">${verification.ok ? 'Only the planned remainder is left.' : html`${verification.leftoverCount} row(s) should not be there.`} Checked ${verification.checkedAt}.</p>
<table><thead><tr><th scope="col">Table</th><th scope="col">Found</th><th scope="col">Kept</th><th scope="col">Masked</th></tr></thead>
<tbody>${Object.entries(verification.tables).map(([table, counts]) => html`<tr><td>${table}</td><td>${counts.found}</td><td>${counts.retained}</td><td>${counts.masked}</td></tr>`)}</tbody></table>`
    : ''
}`;
}
