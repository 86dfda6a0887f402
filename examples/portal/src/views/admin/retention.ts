import type { RetentionDescription } from '@privacykit/core';
import type {
  BacklogEntry,
  CertificateCheck,
  DryRunPhase,
  LegalHold,
  RunCertificate,
} from '@privacykit/retention';
import type { RedactResult } from '@privacykit/requests';
import type { AuditEntry } from '../../audit.js';
import { REQUEST_LOG_RULE } from '../../request-log-retention.js';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';

export function retentionView(options: {
  schedule: RetentionDescription[];
  dryRun: DryRunPhase[];
  backlog: BacklogEntry[];
  holds: LegalHold[];
  runs: AuditEntry[];
  /** What the sweep would redact in the request log now (a dry run). */
  requestLog: RedactResult;
  /** Days a request never verified is kept. */
  unverifiedDays: number;
  csrf: string;
}): SafeHtml {
  const { csrf } = options;
  return html`<h1>Retention</h1>
<h2>The schedule, in words</h2>
<ul>${options.schedule.map((rule) => html`<li>${rule.text}</li>`)}</ul>
<h2>Dry run: what a sweep would do today</h2>
<table><thead><tr><th scope="col">Rule</th><th scope="col">Table</th><th scope="col">Phase</th><th scope="col">Due now</th><th scope="col">Held</th><th scope="col">Examples</th></tr></thead>
<tbody>${options.dryRun.map((phase) => html`<tr><td>${phase.rule}</td><td>${phase.table}</td><td>${phase.phase + 1}: ${phase.action}</td><td data-due="${phase.rule}">${phase.due}</td><td>${phase.held}</td><td>${phase.sampleKeys.join(', ')}</td></tr>`)}</tbody></table>
<h2>Request log</h2>
<p>Rights requests lose their personal data by the rule “${REQUEST_LOG_RULE}” (one year after closure for access or rectification, three years for objection); requests for other rights are kept, as the policy states no period for them; requests never verified go ${options.unverifiedDays} days after receipt (the portal's setting: the policy gives no period for them). What proves each request was answered, and when, stays.</p>
<p>Due now: <strong data-request-log-due="${String(options.requestLog.redacted)}">${options.requestLog.redacted}</strong> (${options.requestLog.closed} closed, ${options.requestLog.unverified} never verified).</p>
<form method="post" action="/admin/retention/sweep">${csrfField(csrf)}<button type="submit" class="danger">Run the sweep now</button> <span class="muted">Acts on the rows above and on the request log, in batches; a certificate records every row.</span></form>
<h2>Backlog</h2>
${options.backlog.length === 0 ? html`<p>Nothing overdue.</p>` : html`<table><thead><tr><th scope="col">Rule</th><th scope="col">Table</th><th scope="col">Action</th><th scope="col">Rows</th><th scope="col">Oldest due</th><th scope="col">Dates that cannot be read (never handled until repaired)</th></tr></thead><tbody>${options.backlog.map((entry) => html`<tr><td>${entry.rule}</td><td>${entry.table}</td><td>${entry.action}</td><td>${entry.count}</td><td>${entry.oldestDue ?? ''}</td><td data-unreadable="${entry.rule}">${entry.invalid > 0 ? html`${entry.invalid}: ${entry.invalidKeys.join(', ')}` : ''}</td></tr>`)}</tbody></table>`}
<h2 id="holds">Legal holds</h2>
<table><thead><tr><th scope="col">Scope</th><th scope="col">Reason</th><th scope="col">Placed</th><th scope="col">Released</th><th scope="col"></th></tr></thead>
<tbody>${options.holds.map(
    (hold) =>
      html`<tr><td>${hold.kind}: ${hold.table ?? ''}${hold.identities ? Object.values(hold.identities).flat().join(', ') : ''}${hold.category ?? ''}</td><td>${hold.reason}</td><td>${hold.placedAt} by ${hold.placedBy}</td><td>${hold.releasedAt ?? ''}</td><td>${hold.releasedAt ? '' : html`<form method="post" action="/admin/retention/holds/${hold.id}/release" class="inline">${csrfField(csrf)}<label for="release-${hold.id}">Reason</label><input id="release-${hold.id}" name="reason" type="text" required> <button type="submit" class="secondary">Release</button></form>`}</td></tr>`,
  )}</tbody></table>
<form method="post" action="/admin/retention/holds" class="stack">${csrfField(csrf)}
  <h3>Place a hold (Art 17(3)(e))</h3>
  <div><label for="kind">On</label><select id="kind" name="kind"><option value="subject">a person (email)</option><option value="table">a whole table</option></select></div>
  <div><label for="value">Email or table</label><input id="value" name="value" type="text" required></div>
  <div><label for="reason">Claim or case</label><input id="reason" name="reason" type="text" required></div>
  <div><button type="submit">Place the hold</button></div>
</form>
<h2>Runs and certificates</h2>
<ul>${options.runs.map((run) => html`<li><a href="/admin/retention/runs/${run.target ?? ''}">${run.at}</a> by ${run.actor}: ${run.detail ?? ''}</li>`)}</ul>`;
}

export function runView(options: {
  certificate: RunCertificate;
  check: CertificateCheck;
  /** What the same staff action redacted in the request log. */
  requestLog: string | null;
}): SafeHtml {
  const { certificate, check } = options;
  return html`<h1>Retention run <code>${certificate.runId}</code></h1>
<p data-run-status="${certificate.status}">${certificate.status}, ${certificate.records} rows, started ${certificate.startedAt}${certificate.finishedAt ? html`, finished ${certificate.finishedAt}` : ''}. Policy ${certificate.policyVersion}.</p>
<p class="${check.valid ? 'notice' : 'error'}" data-certificate-valid="${String(check.valid)}">Certificate ${check.valid ? 'verifies' : 'does NOT verify'}: SHA-256 ${certificate.hash ?? '(none)'}.</p>
<table><thead><tr><th scope="col">Rule</th><th scope="col">Table</th><th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">Rows</th></tr></thead>
<tbody>${certificate.counts.map((count) => html`<tr><td>${count.rule}</td><td>${count.table}</td><td>${count.action}</td><td>${count.outcome}</td><td>${count.count}</td></tr>`)}</tbody></table>
${options.requestLog ? html`<p data-request-log>Request log: ${options.requestLog}.</p>` : ''}
<p><a href="/admin/retention">Back to retention</a></p>`;
}
