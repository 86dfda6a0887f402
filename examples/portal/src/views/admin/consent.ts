import type { Policy } from '@privacykit/core';
import type { ConsentHistoryEntry, CurrentConsent, StatsRow, VerifyResult } from '@privacykit/consent';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { historyTable } from '../consent.js';

export function consentOverviewView(options: {
  policy: Policy;
  verification: VerifyResult;
  stats: StatsRow[];
  head: unknown;
}): SafeHtml {
  const { verification } = options;
  return html`<h1>Consent ledger</h1>
<h2>Verification</h2>
<p class="${verification.ok ? 'notice' : 'error'}" data-ledger-ok="${String(verification.ok)}">${verification.ok ? html`The ledger verifies: ${verification.size} entries, ${verification.signedHeads} signed tree heads checked.` : html`The ledger does NOT verify: ${verification.reason ?? ''} (first bad entry ${verification.firstBadSeq ?? '?'}).`}</p>
<h2>Statistics per purpose and notice version</h2>
<table><thead><tr><th scope="col">Purpose</th><th scope="col">Notice version</th><th scope="col">State</th><th scope="col">Subjects</th><th scope="col"></th></tr></thead>
<tbody>${options.stats.map((row) => html`<tr><td>${options.policy.purposes.find((p) => p.id === row.purpose)?.name ?? row.purpose}</td><td>${row.noticeVersion}</td><td>${row.state}</td><td>${row.count}</td><td>${row.reconsentRequired ? 'notice changed: re-consent needed' : ''}</td></tr>`)}</tbody></table>
<h2>Signed tree head</h2>
<p>Hand this to an outside party (a timestamping service, a transparency log) to anchor the ledger.</p>
<pre>${JSON.stringify(options.head, null, 2)}</pre>
<h2>A subject's proof</h2>
<form method="get" action="/admin/consent/subject" class="stack">
  <div><label for="id">Subject id <span class="hint">The pseudonymous id shown on the visitor's consent page, or <code>email:address</code> for identified subjects.</span></label><input id="id" name="id" type="text" required></div>
  <div><button type="submit">Show proof</button></div>
</form>`;
}

export function subjectProofView(options: {
  policy: Policy;
  subjectId: string;
  current: CurrentConsent;
  history: ConsentHistoryEntry[];
}): SafeHtml {
  return html`<h1>Consent proof</h1>
<p>Subject <code>${options.subjectId}</code> (ledger pseudonym <code>${options.current.subjectKey}</code>).</p>
<ul>${Object.values(options.current.purposes).map((status) => html`<li>${status.purpose}: ${status.state}${status.valid ? ' (valid)' : ''}</li>`)}</ul>
${options.history.length === 0 ? html`<p>No events for this subject.</p>` : historyTable(options.policy, options.history, (eventId) => `/admin/consent/receipts/${encodeURIComponent(eventId)}`)}`;
}
