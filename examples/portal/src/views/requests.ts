import type { Policy } from '@privacykit/core';
import type { RequestRecord } from '@privacykit/requests';
import type { RightForm } from '../rights-forms.js';
import { html } from './html.js';
import type { SafeHtml } from './html.js';
import { csrfField } from './layout.js';

export function rightsIndexView(options: { forms: RightForm[]; policy: Policy }): SafeHtml {
  return html`<h1>Exercise your rights</h1>
<p>Choose what you want to do. We answer within one month; we confirm it is you by sending a code to the email address we hold for you. We never ask for an identity document by default.</p>
<ul>${options.forms.map((form) => html`<li><a href="/rights/${form.right}">${form.title}</a> <span class="muted">(${form.article})</span>: ${form.intro}</li>`)}</ul>
<p>Already made a request? <a href="/rights/check">Check my request</a> — its status and, when ready, your data.</p>
<p>You can also write to our Data Protection Officer at <a href="mailto:${options.policy.dpo.email}">${options.policy.dpo.email}</a>, or complain to ${options.policy.supervisoryAuthority.name}.</p>`;
}

const identityInputs = html`<div><label for="email">Your email address <span class="hint">The one you use with us. We send a confirmation code there.</span></label><input id="email" name="email" type="email" autocomplete="email" required></div>
  <div><label for="customerNumber">Customer number (optional) <span class="hint">Helps us find everything, e.g. C-1815.</span></label><input id="customerNumber" name="customerNumber" type="text"></div>`;

function specificFields(form: RightForm, policy: Policy): SafeHtml {
  switch (form.right) {
    case 'access':
      return html``;
    case 'portability':
      return html`<fieldset><legend>Format</legend>
  <label><input type="radio" name="format" value="json" checked> JSON</label>
  <label><input type="radio" name="format" value="csv"> CSV</label></fieldset>`;
    case 'rectification':
      return html`<div><label for="field">What is wrong</label><select id="field" name="field">${['name', 'title', 'email', 'phone', 'address', 'date of birth'].map((f) => html`<option value="${f}">${f}</option>`)}</select></div>
  <div><label for="corrected">What it should say</label><input id="corrected" name="corrected" type="text" required></div>
  <div><label for="explanation">Anything else (optional)</label><textarea id="explanation" name="explanation"></textarea></div>`;
    case 'erasure':
      return html`<fieldset><legend>Why (optional)</legend>
  ${[
    ['no-longer-necessary', 'The data are no longer needed'],
    ['consent-withdrawn', 'I withdrew my consent'],
    ['objection', 'I objected to the processing'],
    ['unlawfully-processed', 'The data were processed unlawfully'],
  ].map(
    ([value, label]) => html`<label><input type="checkbox" name="grounds" value="${value}"> ${label}</label>`,
  )}
  </fieldset>
  <div><label for="explanation">Anything else (optional)</label><textarea id="explanation" name="explanation"></textarea></div>`;
    case 'restriction':
      return html`<fieldset><legend>Why</legend>
  ${[
    ['accuracy-contested', 'I contest the accuracy of my data'],
    ['unlawful-processing', 'The processing is unlawful but I do not want erasure'],
    ['needed-for-legal-claims', 'I need the data for a legal claim'],
    ['objection-pending', 'I objected and await your answer'],
  ].map(
    ([value, label]) =>
      html`<label><input type="radio" name="ground" value="${value}" required> ${label}</label>`,
  )}
  </fieldset>
  <div><label for="explanation">Anything else (optional)</label><textarea id="explanation" name="explanation"></textarea></div>`;
    case 'objection':
      return html`<fieldset><legend>What do you object to</legend>
  <label><input type="radio" name="kind" value="direct-marketing" required> Direct marketing (always honoured, no reason needed)</label>
  <label><input type="radio" name="kind" value="particular-situation"> Processing based on your legitimate interests, for reasons of my particular situation</label>
  </fieldset>
  <div><label for="grounds">Your reasons (for the second case)</label><textarea id="grounds" name="grounds"></textarea></div>`;
    case 'withdraw-consent':
      return html`<fieldset><legend>Withdraw consent for</legend>
  ${policy.purposes
    .filter((purpose) => purpose.legalBases.some((basis) => basis.basis === 'consent'))
    .map(
      (purpose) =>
        html`<label><input type="checkbox" name="purposes" value="${purpose.id}"> ${purpose.name}</label>`,
    )}
  </fieldset>`;
    case 'post-mortem-directives':
      return html`<fieldset><legend>Kind of directive</legend>
  <label><input type="radio" name="kind" value="general" required> General (all my data)</label>
  <label><input type="radio" name="kind" value="particular"> Particular (this service only)</label></fieldset>
  <div><label for="instructions">Your instructions</label><textarea id="instructions" name="instructions" required></textarea></div>
  <div><label for="executorName">Person to carry them out (optional)</label><input id="executorName" name="executorName" type="text"></div>
  <div><label for="executorEmail">Their email (optional)</label><input id="executorEmail" name="executorEmail" type="email"></div>`;
  }
}

export function rightFormView(options: { form: RightForm; policy: Policy; csrf: string }): SafeHtml {
  const { form } = options;
  return html`<h1>${form.title}</h1>
<p class="muted">${form.article}</p>
<p>${form.intro}</p>
<form method="post" action="${form.action}" class="stack">
  ${csrfField(options.csrf)}
  ${identityInputs}
  ${specificFields(form, options.policy)}
  <div><button type="submit">Send my request</button></div>
</form>`;
}

export function checkInboxView(options: { submission: string; csrf: string }): SafeHtml {
  return html`<h1>Check your inbox</h1>
<p class="notice" role="status">If we hold data under the details you gave, we have sent a confirmation code to the email address we have on file. It expires in 10 minutes and works once.</p>
<p>No new email? We send only a few codes to one address each day, whoever asks. Use the code or the link in the latest email, or try again tomorrow.</p>
<form method="post" action="/rights/verify" class="stack">
  ${csrfField(options.csrf)}
  <input type="hidden" name="submission" value="${options.submission}">
  <div><label for="code">Confirmation code</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required></div>
  <div><button type="submit">Confirm</button></div>
</form>`;
}

export function verifyView(options: { token?: string; csrf: string }): SafeHtml {
  if (!options.token) {
    return html`<h1>Confirm your request</h1><p>Open the link from your confirmation email, or type the code on the page you saw after sending the request. If the email gave you a confirmation token instead of a link, paste it here:</p>
<form method="post" action="/rights/verify" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="token">Confirmation token</label><input id="token" name="token" type="text" autocomplete="off" spellcheck="false" required></div>
  <div><button type="submit">Confirm my request</button></div>
</form>`;
  }
  return html`<h1>Confirm your request</h1>
<form method="post" action="/rights/verify" class="stack">
  ${csrfField(options.csrf)}
  <input type="hidden" name="token" value="${options.token}">
  <p>Press the button to confirm that you made this request.</p>
  <div><button type="submit">Confirm my request</button></div>
</form>`;
}

const statusText: Record<string, string> = {
  received: 'Received',
  'identity-pending': 'Waiting for you to confirm it is you',
  verified: 'Confirmed: waiting for our team',
  'in-progress': 'Being handled',
  'waiting-on-subject': 'Waiting for information from you',
  completed: 'Completed',
  denied: 'Refused',
  cancelled: 'Cancelled',
};

export function requestStatusView(options: {
  record: RequestRecord;
  exportReady: boolean;
  csrf: string;
  /** The directive this request gave is in force: offer to revoke it. */
  revocableDirective?: boolean;
}): SafeHtml {
  const { record } = options;
  const outcome = record.outcome;
  return html`<h1>Your ${record.right.replace(/-/g, ' ')} request</h1>
<dl class="facts">
  <dt>Reference</dt><dd><code>${record.id}</code></dd>
  <dt>Status</dt><dd data-status="${record.status}">${statusText[record.status] ?? record.status}</dd>
  <dt>Received</dt><dd>${record.receivedDate}</dd>
  <dt>We answer by</dt><dd>${record.effectiveDeadline}${record.extendedDeadline ? html` (extended: ${record.extension.reasons.join('; ')})` : ''}</dd>
</dl>
${outcome?.status === 'denied' ? html`<h2>Our answer</h2><p>${outcome.reason}</p><h3>Your remedies</h3><ul>${outcome.remedies.map((remedy) => html`<li>${remedy.description} (${remedy.article})</li>`)}</ul>` : ''}
${outcome?.status === 'completed' && outcome.summary ? html`<p class="notice">${outcome.summary}</p>` : ''}
${
  options.exportReady
    ? html`<h2>Your data</h2>
<form method="post" action="/rights/requests/${record.id}/download">
  ${csrfField(options.csrf)}
  <p>The download link works once, for a few minutes, in this browser only.</p>
  <button type="submit">Download my data (zip)</button>
</form>`
    : ''
}${
  options.revocableDirective
    ? html`<h2>Your directive</h2>
<form method="post" action="/rights/requests/${record.id}/revoke-directive" data-revoke-directive>
  ${csrfField(options.csrf)}
  <p>It is in force. You can revoke it at any time: we send a code to your registered address to confirm, then carry it out.</p>
  <button type="submit" class="secondary">Revoke this directive</button>
</form>`
    : ''
}`;
}

/** A returning visitor (new browser, new session) asks for a fresh code for a request they made. */
export function checkRequestView(options: { csrf: string }): SafeHtml {
  return html`<h1>Check my request</h1>
<p>Coming back from another browser or device? Give the reference of your request (in the emails we sent you) and your email address. We send a new confirmation code to the address we hold for that request.</p>
<form method="post" action="/rights/check" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="reference">Request reference <span class="hint">e.g. 01957f48-4e80-7e3c-bb4c-09174b99d39c</span></label><input id="reference" name="reference" type="text" autocomplete="off" required></div>
  <div><label for="email">Your email address</label><input id="email" name="email" type="email" autocomplete="email" required></div>
  <div><button type="submit">Send me a code</button></div>
</form>`;
}

export function checkRequestCodeView(options: { csrf: string; pending: boolean; error?: string }): SafeHtml {
  if (!options.pending) {
    return html`<h1>Check my request</h1><p>${options.error ?? 'Ask for a code first.'} <a href="/rights/check">Ask for a new code</a>.</p>`;
  }
  return html`<h1>Check your inbox</h1>
<p class="notice" role="status">If the reference and address match one of our requests, we have sent a confirmation code to the address we hold for it. It expires in 10 minutes and works once.</p>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="/rights/check/code" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="code">Confirmation code</label><input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required></div>
  <div><button type="submit">Open my request</button></div>
</form>`;
}
