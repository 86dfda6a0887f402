import type { DeclaredCookie, Policy } from '@privacykit/core';
import type { CookieClassification } from '@privacykit/cookies';
import type { ScanResult } from '@privacykit/cookies/scan';
import type { ScanJob } from '../../scan-jobs.js';
import { csrfField } from '../layout.js';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';

/** A problem found by a scan: a cookie set without the consent it needs, or one the policy does not declare. */
export interface CookieFinding {
  kind: 'consent' | 'undeclared';
  name: string;
  domain: string;
  phases: string[];
  reason: string;
}

/** What a finished scan shows: the scanner's result and the findings against the policy. */
export interface CookieScanOutcome {
  result: ScanResult;
  findings: CookieFinding[];
}

function durationText(duration: string): string {
  if (duration === 'session') return 'until the browser closes';
  const match = /^P(\d+)([DWMY])$/.exec(duration);
  if (!match) return duration;
  const unit = { D: 'day', W: 'week', M: 'month', Y: 'year' }[match[2] as 'D' | 'W' | 'M' | 'Y'];
  return `${match[1]} ${unit}${match[1] === '1' ? '' : 's'}`;
}

function inventory(policy: Policy): SafeHtml {
  const purposeName = (cookie: DeclaredCookie) =>
    policy.purposes.find((p) => p.id === cookie.purpose)?.name ?? cookie.purpose ?? '—';
  return html`<table data-inventory><caption>Declared in the policy (${policy.cookies.length} cookies)</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Provider</th><th scope="col">Category</th><th scope="col">Purpose</th><th scope="col">Duration</th><th scope="col">Consent</th></tr></thead>
<tbody>${policy.cookies.map(
    (cookie) =>
      html`<tr data-cookie="${cookie.name}"><td><code>${cookie.name}${cookie.prefix ? '*' : ''}</code></td><td>${cookie.provider}</td><td>${cookie.category}</td><td>${purposeName(cookie)}<br><span class="hint">${cookie.description ?? ''}</span></td><td>${durationText(cookie.duration)}</td><td>${cookie.exempt ? 'exempt' : 'needs consent'}</td></tr>`,
  )}</tbody></table>`;
}

export function classificationView(c: CookieClassification): SafeHtml {
  return html`<section aria-labelledby="classified" data-classification="${c.category}" data-consent-required="${String(c.consentRequired)}">
<h2 id="classified">Classification of <code>${c.name}</code></h2>
<dl class="facts">
<dt>Category</dt><dd>${c.category}</dd>
<dt>Purposes</dt><dd>${c.purposes.join(', ') || '—'}</dd>
<dt>Consent</dt><dd>${c.consentRequired ? 'required (ePrivacy Art 5(3))' : html`exempt: ${c.exemption ?? ''}`}</dd>
<dt>Vendor</dt><dd>${c.vendor ?? 'unknown'}</dd>
<dt>Decided by</dt><dd>${c.source}, confidence ${c.confidence.toFixed(2)}</dd>
</dl>
<h3>Evidence</h3>
<ol>${c.evidence.map((e) => html`<li><strong>${e.source}</strong> <code>${e.rule}</code>: ${e.detail}${e.url && /^https?:\/\//.test(e.url) ? html` (<a href="${e.url}" rel="noreferrer noopener">source</a>)` : ''}</li>`)}</ol>
</section>`;
}

export function scanResultView(scan: ScanResult, findings: CookieFinding[]): SafeHtml {
  return html`<section aria-labelledby="scan-result" data-scan-violations="${String(findings.length)}">
<h2 id="scan-result">Scan of <code>${scan.url}</code></h2>
${
  findings.length === 0
    ? html`<p class="notice">No violation: nothing needing consent before a choice or after a refusal, and every cookie found is declared.</p>`
    : html`<table><caption>Violations</caption><thead><tr><th scope="col">Cookie</th><th scope="col">Domain</th><th scope="col">Kind</th><th scope="col">When</th><th scope="col">Why</th></tr></thead>
<tbody>${findings.map((f) => html`<tr data-violation="${f.kind}" data-name="${f.name}"><td><code>${f.name}</code></td><td>${f.domain}</td><td>${f.kind === 'consent' ? 'set without consent' : 'not declared'}</td><td>${f.phases.join(', ')}</td><td>${f.reason}</td></tr>`)}</tbody></table>`
}
${blockedNavigationsView(scan)}
${scan.phases.map(
  (phase) => html`<h3>${phase.phase}${phase.bannerClicked === false ? ' (banner button not found)' : ''}</h3>
${
  phase.cookies.length === 0
    ? html`<p>No cookies.</p>`
    : html`<table data-phase="${phase.phase}"><thead><tr><th scope="col">Cookie</th><th scope="col">Domain</th><th scope="col">Party</th><th scope="col">Lifetime</th><th scope="col">Category</th><th scope="col">Consent</th><th scope="col">Evidence</th></tr></thead>
<tbody>${phase.cookies.map((c) => html`<tr><td><code>${c.name}</code></td><td>${c.domain}</td><td>${c.firstParty ? 'first' : 'third'}</td><td>${c.lifetimeSeconds === null ? 'session' : `${Math.round(c.lifetimeSeconds / 86400)} days`}</td><td>${c.classification.category}</td><td>${c.classification.consentRequired ? 'required' : 'exempt'}</td><td>${c.classification.evidence.map((e, i) => html`${i ? '; ' : ''}${e.source} <code>${e.rule}</code>`)}</td></tr>`)}</tbody></table>`
}`,
)}
</section>`;
}

/** Where the page tried to take the scanner's browser off the scan origins; it was not followed. */
function blockedNavigationsView(scan: ScanResult): SafeHtml | string {
  // A scanner given through `cookieScanner` may predate the field.
  const blocked = scan.blockedNavigations ?? [];
  if (blocked.length === 0) return '';
  return html`<p class="error" role="alert">The page tried to leave the scan origins; the scanner did not follow it, so the results below are only what the page did before:</p>
<ul>${blocked.map((b) => html`<li data-blocked-navigation="${b.url}"><code>${b.url}</code> (${b.phases.join(', ')})</li>`)}</ul>`;
}

const statusText: Record<ScanJob<CookieScanOutcome>['status'], string> = {
  queued: 'waiting for the scan before it to finish',
  running: 'running in Chromium (before consent, after refusal, after acceptance)',
  done: 'done',
  failed: 'failed',
};

/** A scan's own page: its progress while it runs (the page refreshes itself), then its result. */
export function scanJobView(job: ScanJob<CookieScanOutcome>, location: string): SafeHtml {
  const pending = job.status === 'queued' || job.status === 'running';
  return html`<h1>Cookie scan</h1>
<section aria-labelledby="scan-status" data-scan-status="${job.status}" data-scan-id="${job.id}">
<h2 id="scan-status">Status: ${statusText[job.status]}</h2>
<dl class="facts">
<dt>Page</dt><dd><code>${job.url}</code></dd>
<dt>Asked by</dt><dd>${job.requestedBy.email}, ${job.createdAt.toISOString()}</dd>
${job.finishedAt ? html`<dt>Finished</dt><dd>${job.finishedAt.toISOString()}</dd>` : ''}
</dl>
${pending ? html`<p>A scan takes a few seconds. This page refreshes itself; or <a href="${location}">reload it</a>.</p>` : ''}
${job.status === 'failed' ? html`<p class="error" role="alert">${job.error ?? 'The scan failed.'}</p>` : ''}
</section>
${job.outcome ? scanResultView(job.outcome.result, job.outcome.findings) : ''}
<p><a href="/admin/cookies">Back to cookies</a></p>`;
}

export function cookiesOfficeView(options: {
  policy: Policy;
  /** Origins whose pages may be scanned. */
  origins: readonly string[];
  csrf: string;
  classification?: CookieClassification;
  name?: string;
  url?: string;
  error?: string;
}): SafeHtml {
  return html`<h1>Cookies</h1>
<p>The inventory the policy declares, a scan of a page in headless Chromium (before consent, after refusal, after acceptance), and the classification of any cookie name with its evidence.</p>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<h2>Inventory</h2>
${inventory(options.policy)}
<h2>Classify a cookie name</h2>
<form method="get" action="/admin/cookies/classify" class="stack">
  <div><label for="name">Cookie name</label><input id="name" name="name" type="text" maxlength="200" required value="${options.name ?? ''}"></div>
  <div><button type="submit">Classify</button></div>
</form>
${options.classification ? classificationView(options.classification) : ''}
<h2>Scan a page</h2>
${
  options.origins.length === 0
    ? html`<p class="notice" data-scan-origins="">No site is configured for scanning: set <code>scanOrigins</code> (<code>SCAN_ORIGINS</code> or <code>PUBLIC_ORIGIN</code> for <code>server.ts</code>).</p>`
    : html`<p data-scan-origins="${options.origins.join(' ')}">Pages on these sites only: ${options.origins.map((origin, i) => html`${i ? ', ' : ''}<code>${origin}</code>`)}.</p>`
}
<form method="post" action="/admin/cookies/scan" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="url">Page address <span class="hint">http:// or https:// on a site listed above; the scan runs on this server in Chromium, in the background, and takes a few seconds.</span></label><input id="url" name="url" type="url" maxlength="2000" required value="${options.url ?? ''}"></div>
  <div><button type="submit">Scan</button></div>
</form>`;
}
