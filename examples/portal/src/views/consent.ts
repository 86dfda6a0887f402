import type { Policy } from '@privacykit/core';
import type { ConsentHistoryEntry, CurrentConsent } from '@privacykit/consent';
import { html } from './html.js';
import type { SafeHtml } from './html.js';
import { csrfField } from './layout.js';

function purposeName(policy: Policy, id: string | undefined): string {
  return policy.purposes.find((purpose) => purpose.id === id)?.name ?? id ?? '';
}

export function historyTable(
  policy: Policy,
  history: ConsentHistoryEntry[],
  receiptHref?: (eventId: string) => string,
): SafeHtml {
  return html`<table><thead><tr><th scope="col">When (UTC)</th><th scope="col">Purpose</th><th scope="col">Decision</th><th scope="col">How</th><th scope="col">Notice</th>${receiptHref ? html`<th scope="col">Receipt</th>` : ''}</tr></thead>
<tbody>${history.map(
    (entry) =>
      html`<tr><td>${entry.at}</td><td>${purposeName(policy, entry.purpose)}</td><td>${entry.state ?? entry.kind}${entry.renewal ? ' (renewed)' : ''}</td><td>${entry.source ?? ''} ${entry.method ?? ''}</td><td>${entry.notice?.version ?? ''}</td>${receiptHref ? html`<td>${entry.kind === 'decision' ? html`<a href="${receiptHref(entry.eventId)}">Download signed receipt</a>` : ''}</td>` : ''}</tr>`,
  )}</tbody></table>`;
}

export function consentHistoryView(options: {
  policy: Policy;
  current?: CurrentConsent;
  history: ConsentHistoryEntry[];
  csrf: string;
  withdrawn: boolean;
}): SafeHtml {
  const { policy, current, history } = options;
  if (!current) {
    return html`<h1>Your consent</h1><p>You have not made any cookie choice on this browser yet. <a href="/cookies">Choose now</a>.</p>`;
  }
  const statuses = Object.values(current.purposes);
  return html`<h1>Your consent</h1>
${options.withdrawn ? html`<p class="notice" role="status">Your consent has been withdrawn. Nothing that needs it will be used from now on.</p>` : ''}
<p>You are known to our consent ledger only by a pseudonym: <code>${current.subjectKey.slice(0, 16)}…</code>.</p>
<h2>Your choices now</h2>
<table><thead><tr><th scope="col">Purpose</th><th scope="col">State</th><th scope="col">Since</th><th scope="col">Valid until</th></tr></thead>
<tbody>${statuses.map(
    (status) =>
      html`<tr><td>${purposeName(policy, status.purpose)}</td><td data-purpose="${status.purpose}">${status.state}${status.reconsentRequired ? ' (notice changed: please choose again)' : ''}${status.gpcConflict ? ' (you agreed after your browser’s Global Privacy Control signal: your choice is kept)' : ''}</td><td>${status.decidedAt ?? ''}</td><td>${status.expiresAt ?? ''}</td></tr>`,
  )}</tbody></table>
<form method="post" action="/withdraw">${csrfField(options.csrf)}<button type="submit">Withdraw all my consent</button></form>
<p><a href="/cookies">Change my choices purpose by purpose</a>.</p>
<h2>History</h2>
<p>Every decision is in a tamper-evident ledger. Each receipt is signed; check it with <a href="/consent/public-key">our public key</a>.</p>
${historyTable(policy, history, (eventId) => `/consent/receipts/${encodeURIComponent(eventId)}`)}`;
}
