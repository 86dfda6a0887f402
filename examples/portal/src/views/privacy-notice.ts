import type { PrivacyNotice } from '@privacykit/core';
import { html } from './html.js';
import type { SafeHtml } from './html.js';

/** The Art 13 notice, rendered from the policy (nothing here is hand-written text of the policy). */
export function privacyNoticeView(notice: PrivacyNotice): SafeHtml {
  const { controller, dpo } = notice;
  return html`
<h1>Privacy notice</h1>
<p class="muted">Version ${notice.version}, in force since ${notice.effectiveDate}.</p>

<section aria-labelledby="controller">
  <h2 id="controller">Who is responsible for your data</h2>
  <p><strong>${controller.name}</strong>${controller.address ? `, ${controller.address}` : ''}${controller.registration ? ` (${controller.registration})` : ''}.</p>
  ${notice.processorRole ? html`<p>${notice.processorRole}</p>` : ''}
  <p>Data Protection Officer: <a href="mailto:${dpo.email}">${dpo.email}</a>${dpo.address ? html`, ${dpo.address}` : ''}.</p>
</section>

<section aria-labelledby="purposes">
  <h2 id="purposes">Why we process your data, and on what legal basis</h2>
  ${notice.purposes.map(
    (purpose) => html`
  <article>
    <h3>${purpose.name}</h3>
    <p>${purpose.description}</p>
    ${purpose.activities.length ? html`<ul>${purpose.activities.map((activity) => html`<li>${activity}</li>`)}</ul>` : ''}
    <p><strong>Legal basis:</strong></p>
    <ul>${purpose.legalBases.map(
      (basis) =>
        html`<li>${basis.label} (${basis.article})${basis.legitimateInterest ? html`: ${basis.legitimateInterest}` : ''}${basis.description ? html` — ${basis.description}` : ''}</li>`,
    )}</ul>
    <p><strong>Data:</strong> ${purpose.categories.map((category) => category.label).join('; ')}.</p>
    ${purpose.recipients.length ? html`<p><strong>Recipients:</strong> ${purpose.recipients.map((recipient) => recipient.name).join('; ')}.</p>` : ''}
    ${purpose.retention.length ? html`<p><strong>How long:</strong> ${purpose.retention.map((rule) => rule.title).join('; ')} (see below).</p>` : ''}
    ${purpose.provision ? html`<p><strong>Is it required?</strong> ${purpose.provision.required ? 'Yes.' : 'No.'} ${purpose.provision.consequences ?? ''}</p>` : ''}
  </article>`,
  )}
</section>

<section aria-labelledby="recipients">
  <h2 id="recipients">Who receives your data</h2>
  <table>
    <thead><tr><th scope="col">Recipient</th><th scope="col">Role</th><th scope="col">Location</th></tr></thead>
    <tbody>${notice.recipients.map(
      (recipient) =>
        html`<tr><td>${recipient.name}</td><td>${recipient.kind}</td><td>${recipient.locations.join(' & ')}</td></tr>`,
    )}</tbody>
  </table>
</section>

<section aria-labelledby="transfers">
  <h2 id="transfers">Transfers outside the European Economic Area</h2>
  ${notice.transfers.length === 0 ? html`<p>None.</p>` : ''}
  ${notice.transfers.map(
    (transfer) =>
      html`<p>To <strong>${transfer.destination}</strong> (${transfer.recipientNames.join('; ')}), protected by ${transfer.safeguardLabel}.${transfer.copyAvailableFrom ? html` You can obtain a copy of the safeguards from ${transfer.copyAvailableFrom}.` : ''}</p>`,
  )}
</section>

<section aria-labelledby="retention">
  <h2 id="retention">How long we keep your data</h2>
  <ul>${notice.retention.map((rule) => html`<li id="retention-${rule.id}">${rule.text}</li>`)}</ul>
</section>

<section aria-labelledby="rights">
  <h2 id="rights">Your rights</h2>
  <p>You have the right to:</p>
  <ul>${notice.rights.map((entry) => html`<li>${entry.label} (${entry.article})</li>`)}</ul>
  <p>${notice.withdrawal}</p>
  ${notice.afterDeath ? html`<p>${notice.afterDeath}</p>` : ''}
  <p>To exercise them: ${notice.channels.map((channel) =>
    channel.kind === 'email'
      ? html`email <a href="mailto:${channel.value}">${channel.value}</a>; `
      : channel.kind === 'web'
        ? html`use <a href="${channel.value}">our online form</a>; `
        : html`write to ${channel.value}; `,
  )}</p>
  <p>${notice.complaint.text}${notice.complaint.authority.website ? html` (<a href="${notice.complaint.authority.website}">${notice.complaint.authority.website}</a>)` : ''}</p>
</section>

<section aria-labelledby="cookies">
  <h2 id="cookies">Cookies</h2>
  <table>
    <thead><tr><th scope="col">Cookie</th><th scope="col">Provider</th><th scope="col">Purpose</th><th scope="col">Duration</th><th scope="col">Consent</th></tr></thead>
    <tbody>${notice.cookies.map(
      (cookie) =>
        html`<tr><td><code>${cookie.name}${cookie.prefix ? '*' : ''}</code></td><td>${cookie.provider}</td><td>${cookie.description}</td><td>${cookie.duration === 'session' ? 'session' : cookie.duration}</td><td>${cookie.exempt ? 'not needed (strictly necessary)' : 'asked first'}</td></tr>`,
    )}</tbody>
  </table>
</section>
`;
}
