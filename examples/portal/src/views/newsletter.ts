import type { Policy } from '@privacykit/core';
import type { ConsentStatus } from '@privacykit/consent';
import { html } from './html.js';
import type { SafeHtml } from './html.js';
import { csrfField } from './layout.js';

export function newsletterView(options: {
  policy: Policy;
  csrf: string;
  done?: boolean;
  /** The address a sign-up in this browser mailed a confirmation code to. */
  pending?: string;
}): SafeHtml {
  const purpose = options.policy.purposes.find((p) => p.id === 'newsletter');
  return html`<h1>Our newsletter</h1>
${options.done ? html`<p class="notice" role="status" data-subscribed>Thank you: your consent is recorded. You can withdraw it at any time on <a href="/consent">your consent page</a> (in this browser) or with the one-click unsubscribe link in any newsletter, starting with the confirmation we have just mailed you.</p>` : ''}
${
  options.pending
    ? html`<form method="post" action="/newsletter/confirm" class="stack" data-confirm>
  ${csrfField(options.csrf)}
  <p class="notice" role="status">We sent a code to <strong>${options.pending}</strong>. Enter it here to confirm your subscription: nothing is recorded until you do.</p>
  <div><label for="code">Code from the email</label><input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{8}" required></div>
  <div><button type="submit">Confirm my subscription</button></div>
</form>`
    : ''
}
<p>${purpose?.description ?? ''}</p>
<form method="post" action="/newsletter" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="email">Your email address</label><input id="email" name="email" type="email" autocomplete="email" required></div>
  <div><label class="check"><input type="checkbox" name="agree" value="yes"> I agree to receive ${purpose?.name.toLowerCase() ?? 'newsletters'} by email. I can withdraw this consent at any time.</label></div>
  <div><button type="submit">Subscribe</button></div>
</form>
<p class="muted">We record your consent (when, how, under which version of our notice) so we can prove it; see the <a href="/privacy">privacy notice</a>.</p>`;
}

/** The newsletter consents given in this browser session, each with its own withdraw button. */
export function newsletterConsentsView(options: {
  entries: { subjectId: string; status: ConsentStatus | undefined }[];
  csrf: string;
}): SafeHtml {
  if (options.entries.length === 0) return html``;
  return html`<h2>Newsletter</h2>
<ul>${options.entries.map(
    ({ subjectId, status }) =>
      html`<li data-newsletter="${status?.state ?? 'none'}"><code>${subjectId.replace(/^email:/, '')}</code>: ${status?.valid ? 'subscribed (consent given)' : (status?.state ?? 'no consent')}${
        status?.valid
          ? html` <form method="post" action="/newsletter/withdraw" class="inline">${csrfField(options.csrf)}<input type="hidden" name="subject" value="${subjectId}"><button type="submit" class="secondary">Withdraw my newsletter consent</button></form>`
          : ''
      }</li>`,
  )}</ul>`;
}

/** The page of a newsletter's unsubscribe link: one button, no sign-in (Art 7(3)). */
export function unsubscribeView(options: {
  csrf: string;
  token?: string;
  email?: string;
  done: boolean;
}): SafeHtml {
  if (options.done) {
    return html`<h1>Unsubscribed</h1><p class="notice" role="status" data-unsubscribed>Your newsletter consent is withdrawn: you will receive no more newsletters. The record of your consent and its withdrawal is kept as proof.</p><p><a href="/newsletter">Subscribe again</a> at any time.</p>`;
  }
  return html`<h1>Unsubscribe from our newsletter</h1>
<form method="post" action="/newsletter/unsubscribe" class="stack">
  ${csrfField(options.csrf)}
  <input type="hidden" name="t" value="${options.token ?? ''}">
  <p>Stop sending the newsletter to <strong>${options.email ?? ''}</strong> and withdraw the consent given for it.</p>
  <div><button type="submit">Unsubscribe</button></div>
</form>`;
}
