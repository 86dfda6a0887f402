import type { Policy } from '@privacykit/core';
import type { BannerPurpose } from '../consent-cookie.js';
import { html } from './html.js';
import { csrfField } from './layout.js';
import type { SafeHtml } from './html.js';

/** The second layer: one decision per purpose (C02), no box pre-ticked (C03), cookies listed (K04). */
export function preferenceCentreView(options: {
  policy: Policy;
  purposes: BannerPurpose[];
  current?: Record<string, boolean>;
  gpc: boolean;
  saved: boolean;
  csrf: string;
}): SafeHtml {
  const { policy, purposes, current, gpc, saved, csrf } = options;
  const necessary = policy.cookies.filter((cookie) => cookie.exempt);
  return html`<h1>Cookie settings</h1>
${saved ? html`<p class="notice" role="status">Your choices have been saved and recorded.</p>` : ''}
${gpc ? html`<p class="notice">Your browser sends a Global Privacy Control signal. We treat it as a refusal of cookies used for targeted advertising, whatever you choose below.</p>` : ''}
<p>Strictly necessary cookies are always set because the site cannot work without them:</p>
<ul>${necessary.map((cookie) => html`<li><code>${cookie.name}</code>: ${cookie.description}</li>`)}</ul>
<form method="post" action="/cookies" class="stack">
  ${csrfField(csrf)}
  ${purposes.map((purpose) => {
    const state = current?.[purpose.id];
    return html`<fieldset>
    <legend><strong>${purpose.name}</strong></legend>
    <p>${purpose.description} Cookies: ${purpose.cookies.map((name) => html`<code>${name}</code> `)}</p>
    <label><input type="radio" name="purpose_${purpose.id}" value="granted"${state === true ? html` checked` : ''}> Allow</label>
    <label><input type="radio" name="purpose_${purpose.id}" value="refused"${state === false ? html` checked` : ''}> Do not allow</label>
  </fieldset>`;
  })}
  <p class="muted">A purpose you leave unanswered counts as refused.</p>
  <div><button type="submit" name="choice" value="save">Save my choices</button>
  <button type="submit" name="choice" value="accept-all">Accept all</button>
  <button type="submit" name="choice" value="refuse-all">Refuse all</button></div>
</form>
<p><a href="/consent">See the history of your choices and download receipts</a>.</p>`;
}
