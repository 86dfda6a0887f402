import { html } from './html.js';
import type { SafeHtml } from './html.js';
import type { BannerPurpose } from '../consent-cookie.js';

export interface StaffBadge {
  name: string;
  role: string;
}

/** What every page needs besides its body; built per request by `render.ts`. */
export interface PageContext {
  site: string;
  csrfToken: string;
  /** Show the first layer of the cookie banner (no choice stored yet). */
  showBanner: boolean;
  bannerPurposes: BannerPurpose[];
  /** Include the analytics script: only after audience-measurement consent. */
  analytics: boolean;
  /** The visitor sends `Sec-GPC: 1`. */
  gpc: boolean;
  /** What their GPC signal did to earlier grants, by purpose name (G03): ended, or met a later grant kept. */
  gpcNotice?: { applied: string[]; kept: string[] };
  staff?: StaffBadge;
  /** Current path, for the banner's return address. */
  path: string;
}

export interface LayoutOptions {
  title: string;
  body: SafeHtml;
  context: PageContext;
}

export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${token}">`;
}

/**
 * The cookie banner's first layer: "Accept all" and "Refuse all" side by side, same size and
 * style (K03), plus "Choose" for the preference centre. A plain form: works without JavaScript.
 */
function banner(context: PageContext): SafeHtml {
  return html`<section class="banner" aria-labelledby="banner-title" role="region">
  <h2 id="banner-title">Cookies on this site</h2>
  <p>With your agreement we would like to use cookies to: ${context.bannerPurposes.map((p, i) => html`${i ? '; ' : ''}<strong>${p.name.toLowerCase()}</strong>`)}. Strictly necessary cookies (your session and this choice) are always set. You can change your mind at any time on the <a href="/cookies">cookie settings</a> page.${context.gpc ? ' Your browser sends a Global Privacy Control signal: we will not use cookies for targeted advertising.' : ''}</p>
  <form method="post" action="/cookies" class="actions">
    ${csrfField(context.csrfToken)}
    <input type="hidden" name="return" value="${context.path}">
    <button type="submit" data-privacykit-consent="accept" name="choice" value="accept-all">Accept all</button>
    <button type="submit" data-privacykit-consent="refuse" name="choice" value="refuse-all">Refuse all</button>
    <a class="button secondary" href="/cookies">Choose</a>
  </form>
</section>`;
}

/** Tells the visitor what their Global Privacy Control signal met (G03, hostile case 25). */
function gpcNoticeView(notice: { applied: string[]; kept: string[] }): SafeHtml {
  const list = (names: string[]) =>
    names.map((name, i) => html`${i ? ', ' : ''}<strong>${name.toLowerCase()}</strong>`);
  return html`${notice.applied.length ? html`<p class="notice" role="status" data-gpc-applied>Your browser sends a Global Privacy Control signal, so we have stopped using your data for ${list(notice.applied)}, which you had agreed to before. While your browser sends this signal it counts as your refusal: to agree again, turn the signal off in your browser, then use the <a href="/cookies">cookie settings</a> page.</p>` : ''}${notice.kept.length ? html`<p class="notice" role="status" data-gpc-kept>Your browser sends a Global Privacy Control signal, but you agreed to ${list(notice.kept)} after we first received it: we keep that choice of yours. Change it on the <a href="/cookies">cookie settings</a> page.</p>` : ''}`;
}

/** The page shell: landmarks, skip link, one first-party stylesheet, no inline script (strict CSP). */
export function layout({ title, body, context }: LayoutOptions): string {
  const nav = context.staff
    ? html`<a href="/admin">Back office</a><a href="/admin/requests">Requests</a><a href="/admin/retention">Retention</a><a href="/admin/consent">Consent</a><a href="/admin/cookies">Cookies</a><a href="/admin/record">Art 30 record</a>`
    : html`<a href="/privacy">Privacy notice</a><a href="/rights">Your rights</a><a href="/consent">Your consent</a><a href="/cookies">Cookie settings</a>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${context.site}</title>
<link rel="stylesheet" href="/css/portal.css">
${context.analytics ? html`<script src="/js/analytics.js" defer></script>` : ''}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><p><strong>${context.site}</strong> privacy centre</p><nav aria-label="Main">${nav}</nav>
${context.staff ? html`<form method="post" action="/admin/logout" class="inline">${csrfField(context.csrfToken)}<span class="muted">${context.staff.name} (${context.staff.role})</span> <button class="secondary" type="submit">Sign out</button></form>` : ''}
</header>
<main id="main">${context.gpcNotice ? gpcNoticeView(context.gpcNotice) : ''}${body}</main>
${context.showBanner ? banner(context) : ''}
<footer><p><a href="/privacy">Privacy notice</a> · <a href="/cookies">Cookie settings</a> · <a href="/rights">Exercise your rights</a> · <a href="/newsletter">Newsletter</a> · <a href="/admin">Staff</a> · Powered by PrivacyKit.</p></footer>
</body>
</html>`.value;
}
