import type { RecordOfProcessing } from '@privacykit/core';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';

export function recordView(record: RecordOfProcessing): SafeHtml {
  return html`<h1>Record of processing activities (Art 30)</h1>
<p>Controller: <strong>${record.controller.name}</strong>${record.controller.address ? html`, ${record.controller.address}` : ''}. DPO: ${record.dpo.email}. Policy version ${record.version}. <a href="/admin/record.json">Download as JSON</a>.</p>
${record.activities.map(
  (activity) => html`<section aria-labelledby="act-${activity.purpose}">
  <h2 id="act-${activity.purpose}">${activity.name}</h2>
  <dl class="facts">
    <dt>Legal basis</dt><dd>${activity.legalBases.map((basis) => html`${basis.label} (${basis.article})<br>`)}</dd>
    <dt>Data subjects</dt><dd>${activity.dataSubjects.join('; ')}</dd>
    <dt>Data</dt><dd>${activity.categories.map((category) => category.label).join('; ')}</dd>
    <dt>Recipients</dt><dd>${activity.recipients.map((recipient) => html`${recipient.name} (${recipient.kind}, ${recipient.locations.join(' & ')})<br>`)}</dd>
    <dt>Transfers</dt><dd>${activity.transfers.length ? activity.transfers.map((transfer) => html`${transfer.destination}: ${transfer.safeguard}<br>`) : 'none'}</dd>
    <dt>Retention</dt><dd>${activity.retention.map((text) => html`${text}<br>`)}</dd>
    <dt>Security</dt><dd>${activity.securityMeasures}</dd>
  </dl>
</section>`,
)}`;
}
