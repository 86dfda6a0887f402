// Banner checks for @privacykit/cookies/scan (Node-only): what the first layer of the consent
// banner offers, measured in the page, and the K03 rules — refuse as prominent as accept, both
// visible without scrolling, silence and closing count as refusal.
import { createHash } from 'node:crypto';
import type { Page } from 'playwright-core';
import type { Classifier } from './classifier.js';
import { createClassifier } from './classifier.js';
import { noConsent } from './consent-state.js';
import { cookiesError } from './errors.js';
import { isFirstParty, normaliseHost } from './site.js';
import {
  type DeclaredTrackingPath,
  type TrackerEndpoint,
  createRequestClassifier,
  trackerAllowed,
} from './trackers.js';

/** Size, position and look of one banner button as the visitor sees it on first load. */
export interface BannerButton {
  text: string;
  /** CSS pixels. */
  box: { x: number; y: number; width: number; height: number };
  /** Entirely inside the first viewport: reachable without scrolling. */
  inViewport: boolean;
  fontSizePx: number;
  color: string;
  /** The first opaque background behind the button (its own or an ancestor's). */
  backgroundColor: string;
  /** WCAG contrast ratio of its text against that background. */
  contrast: number;
}

/** What the banner looked like when shown: cite `version` in a consent record (K06). */
export interface BannerSnapshot {
  /** `sha256:<hex>` of the banner's normalised visible text. */
  version: string;
  text: string;
  /** CSS selector of the element captured. */
  selector: string;
  capturedAt: string;
  /** PNG of the banner, when `bannerScreenshotDir` was given. */
  screenshotPath?: string;
}

export interface BannerObservation {
  accept: BannerButton | null;
  refuse: BannerButton | null;
  close: BannerButton | null;
  viewport: { width: number; height: number };
  snapshot: BannerSnapshot | null;
}

export interface BannerSelectors {
  accept: string;
  refuse: string;
  /** A close (×) control of the banner, if any. */
  close?: string;
  /** The banner element; default: the nearest ancestor of the buttons that looks like a dialog or banner. */
  container?: string;
}

// What "shown" means, for measuring the banner and for choosing what the scan clicks: the two
// must agree, or a scan clicks a hidden duplicate of the button it measured.
const visibilityFunctions = `
  // Opacity multiplies down the tree: a button inside an opacity:0 wrapper is invisible though
  // its own opacity is 1. Stops at 'until' (exclusive) when given.
  const opacity = (el, until) => {
    let product = 1;
    for (let node = el; node && node !== until; node = node.parentElement) product *= Number(getComputedStyle(node).opacity);
    return product;
  };
  // What the visitor would hit at the button's centre: the button itself or something inside it.
  // A button covered by another element, or clipped away by an ancestor's overflow, is not there
  // for the visitor. A centre outside the viewport is left to the first-viewport check.
  const reachable = (el, box) => {
    const x = box.left + box.width / 2;
    const y = box.top + box.height / 2;
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) return true;
    const root = typeof el.getRootNode().elementFromPoint === 'function' ? el.getRootNode() : document;
    const hit = root.elementFromPoint(x, y);
    return hit !== null && (hit === el || el.contains(hit));
  };
  const visible = (el) => {
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    return style.display !== 'none' && style.visibility !== 'hidden' && opacity(el) > 0.05 && box.width > 0 && box.height > 0 && reachable(el, box);
  };
  const first = (selector) => {
    if (!selector) return null;
    let list;
    try { list = document.querySelectorAll(selector); } catch (error) { return null; }
    for (const el of list) if (visible(el)) return el;
    return null;
  };`;

const measureScript = (selectors: BannerSelectors) => `(() => {
  const sel = ${JSON.stringify(selectors)};
  ${visibilityFunctions}
  const rgba = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const luminance = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c[3] > 0.5) return { color: c, node };
    }
    return { color: [255, 255, 255, 1], node: null };
  };
  const measure = (el) => {
    if (!el) return null;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    const { color: bg, node: bgNode } = background(el);
    // The text as seen: its colour's alpha, times the opacity of every element between it and
    // the background it is drawn on, blended over that background. rgba(0,0,0,0) text has the
    // background's own colour: contrast 1.
    const text = rgba(style.color);
    const alpha = text[3] * opacity(el, bgNode);
    const fg = [0, 1, 2].map((i) => text[i] * alpha + bg[i] * (1 - alpha));
    const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
    return {
      text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim(),
      box: { x: box.x, y: box.y, width: box.width, height: box.height },
      inViewport: box.top >= 0 && box.left >= 0 && box.bottom <= innerHeight && box.right <= innerWidth,
      fontSizePx: parseFloat(style.fontSize),
      color: style.color,
      backgroundColor: 'rgb(' + bg.slice(0, 3).join(', ') + ')',
      contrast: Math.round(((l1 + 0.05) / (l2 + 0.05)) * 100) / 100,
    };
  };
  const accept = first(sel.accept);
  const refuse = first(sel.refuse);
  const close = first(sel.close);
  let container = first(sel.container);
  const anchor = accept || refuse;
  if (!container && anchor) {
    const looksLikeBanner = (el) => el.matches('dialog, [role=dialog], [role=alertdialog], [aria-modal=true], aside') ||
      /cookie|consent|banner|gdpr|cmp/i.test((el.id || '') + ' ' + (typeof el.className === 'string' ? el.className : ''));
    for (let node = anchor.parentElement; node && node !== document.body; node = node.parentElement) {
      if (looksLikeBanner(node)) { container = node; break; }
    }
    if (!container) {
      container = anchor.parentElement;
      const other = accept && refuse ? refuse : null;
      while (other && container && container !== document.body && !container.contains(other)) container = container.parentElement;
    }
  }
  let path = null;
  if (container) {
    container.setAttribute('data-privacykit-banner', '');
    path = container.id ? '#' + CSS.escape(container.id) : container.tagName.toLowerCase();
  }
  return {
    accept: measure(accept), refuse: measure(refuse), close: measure(close),
    viewport: { width: innerWidth, height: innerHeight },
    banner: container ? { text: (container.innerText || '').replace(/\\s+/g, ' ').trim(), selector: path } : null,
  };
})()`;

/** What came of clicking one of the banner's controls. */
export interface BannerClick {
  button: 'accept' | 'refuse' | 'close';
  selector: string;
  /**
   * `clicked`; `not-found`: no match the visitor could see; `failed`: the browser could not click
   * the visible match (covered when clicked, detached, timed out — `error` says which).
   */
  outcome: 'clicked' | 'not-found' | 'failed';
  error?: string;
}

const markClickTarget = (selector: string) => `(() => {
  ${visibilityFunctions}
  for (const old of document.querySelectorAll('[data-privacykit-click]')) old.removeAttribute('data-privacykit-click');
  const el = first(${JSON.stringify(selector)});
  if (el) el.setAttribute('data-privacykit-click', '');
  return el !== null;
})()`;

/**
 * Clicks the first match of `selector` the visitor can see — by the same test as the banner's
 * measurement, so a hidden second-layer duplicate that comes first in the document is passed
 * over — and says what came of it. A failed click is reported, never taken for "no button".
 */
export async function clickVisible(
  page: Page,
  button: BannerClick['button'],
  selector: string,
  timeout: number,
): Promise<BannerClick> {
  const click: BannerClick = { button, selector, outcome: 'not-found' };
  try {
    if (!(await evaluateSettled<boolean>(page, markClickTarget(selector)))) return click;
    await page.locator('[data-privacykit-click]').first().click({ timeout });
    click.outcome = 'clicked';
  } catch (error) {
    click.outcome = 'failed';
    click.error = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
  }
  return click;
}

interface Measured extends Omit<BannerObservation, 'snapshot'> {
  banner: { text: string; selector: string } | null;
}

/**
 * `page.evaluate`, waiting out a navigation that replaces the document meanwhile (the error page
 * of a redirect the scan blocked, a page that leaves as it loads) rather than failing the scan:
 * the script runs again in the document that is then loaded.
 */
async function evaluateSettled<T>(page: Page, script: string): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await page.evaluate(script)) as T;
    } catch (error) {
      const replaced = /Execution context was destroyed|Cannot find context/i.test(
        error instanceof Error ? error.message : String(error),
      );
      if (!replaced || attempt >= 3) throw error;
      await page.waitForLoadState('domcontentloaded').catch(() => undefined);
    }
  }
}

/**
 * Measures the banner's first layer in `page` as loaded, and snapshots it: text hash for the
 * consent record (K06), and a PNG when `screenshotDir` is set.
 */
export async function observeBanner(
  page: Page,
  options: { selectors: BannerSelectors; now: Date; screenshotDir?: string },
): Promise<BannerObservation> {
  const measured = await evaluateSettled<Measured>(page, measureScript(options.selectors));
  let snapshot: BannerSnapshot | null = null;
  if (measured.banner) {
    const hash = createHash('sha256').update(measured.banner.text).digest('hex');
    snapshot = {
      version: `sha256:${hash}`,
      text: measured.banner.text,
      selector: measured.banner.selector,
      capturedAt: options.now.toISOString(),
    };
    if (options.screenshotDir) {
      const { mkdir } = await import('node:fs/promises');
      const { join } = await import('node:path');
      await mkdir(options.screenshotDir, { recursive: true });
      const path = join(options.screenshotDir, `banner-${hash.slice(0, 16)}.png`);
      await page.locator('[data-privacykit-banner]').first().screenshot({ path, animations: 'disabled' });
      snapshot.screenshotPath = path;
    }
  }
  return {
    accept: measured.accept,
    refuse: measured.refuse,
    close: measured.close,
    viewport: measured.viewport,
    snapshot,
  };
}

export type BannerFindingCode =
  | 'no-banner'
  | 'no-reject-option'
  | 'not-in-first-viewport'
  | 'reject-smaller'
  | 'reject-low-contrast'
  | 'silence-not-refusal'
  | 'close-not-refusal'
  | 'click-failed';

export interface BannerFinding {
  code: BannerFindingCode;
  /** `fail` breaks K03; `warn` needs a person to look. */
  severity: 'fail' | 'warn';
  message: string;
}

export interface BannerAudit {
  /** No `fail` finding. */
  passed: boolean;
  findings: BannerFinding[];
  observation: BannerObservation;
  /** Non-exempt cookies (and tracker requests, from a scan) seen while the banner was ignored. */
  storedWhileIgnored: string[];
  /**
   * What closing the banner (its × control) left that ignoring it did not; `null` when closing
   * was not tested: no visible close control, or it could not be clicked (see `findings`).
   */
  storedAfterClose: string[] | null;
}

/** What was seen while the banner was ignored, after it was closed, and how the clicks went. */
export interface BannerEvidence {
  storedWhileIgnored: string[];
  /** Absent or `null` when closing was not tested. */
  storedAfterClose?: string[] | null;
  clicks?: readonly BannerClick[];
}

export interface BannerRules {
  /** Smallest refuse/accept area ratio. Default 0.5. */
  minAreaRatio?: number;
  /** Smallest refuse/accept font-size ratio. Default 0.8. */
  minFontRatio?: number;
  /** Refuse must reach this contrast, or the accept button's if lower. Default 4.5 (WCAG AA). */
  minContrast?: number;
}

/** Applies the K03 rules to one observation and what was stored while the banner was ignored. */
export function judgeBanner(
  observation: BannerObservation,
  evidence: BannerEvidence,
  rules: BannerRules = {},
): BannerAudit {
  const findings: BannerFinding[] = [];
  const { accept, refuse } = observation;
  if (!accept && !refuse) {
    // No banner is fine for a site that stores nothing needing consent; one that does asked nobody.
    const stored = [...evidence.storedWhileIgnored, ...(evidence.storedAfterClose ?? [])];
    findings.push(
      stored.length > 0
        ? {
            code: 'no-banner',
            severity: 'fail',
            message: `no consent banner found, yet the page stored or sent without consent: ${stored.join(', ')} (ePrivacy Art 5(3))`,
          }
        : {
            code: 'no-banner',
            severity: 'warn',
            message: 'no accept or refuse control found on the first layer: nothing to validate',
          },
    );
  } else if (!refuse) {
    findings.push({
      code: 'no-reject-option',
      severity: 'fail',
      message:
        'the first layer offers accept but no visible refuse option (CNIL 2020-092 art. 2; EDPB taskforce)',
    });
  }
  if (accept && refuse) {
    for (const [name, button] of [
      ['accept', accept],
      ['refuse', refuse],
    ] as const) {
      if (!button.inViewport)
        findings.push({
          code: 'not-in-first-viewport',
          severity: 'fail',
          message: `the ${name} control "${button.text}" needs scrolling to be seen`,
        });
    }
    const areaRatio = area(refuse) / Math.max(1, area(accept));
    if (
      areaRatio < (rules.minAreaRatio ?? 0.5) ||
      refuse.fontSizePx < accept.fontSizePx * (rules.minFontRatio ?? 0.8)
    ) {
      findings.push({
        code: 'reject-smaller',
        severity: 'fail',
        message: `refuse is less prominent than accept: ${Math.round(areaRatio * 100)}% of its area, font ${refuse.fontSizePx}px vs ${accept.fontSizePx}px`,
      });
    }
    const needed = Math.min(rules.minContrast ?? 4.5, accept.contrast);
    if (refuse.contrast < needed) {
      findings.push({
        code: 'reject-low-contrast',
        severity: 'fail',
        message: `refuse text contrast ${refuse.contrast}:1 is below ${needed}:1 (accept has ${accept.contrast}:1)`,
      });
    }
  }
  const shown = accept !== null || refuse !== null;
  if (shown && evidence.storedWhileIgnored.length > 0) {
    findings.push({
      code: 'silence-not-refusal',
      severity: 'fail',
      message: `ignoring the banner still stored or sent: ${evidence.storedWhileIgnored.join(', ')}`,
    });
  }
  if (shown && evidence.storedAfterClose && evidence.storedAfterClose.length > 0) {
    findings.push({
      code: 'close-not-refusal',
      severity: 'fail',
      message: `closing the banner did not count as refusal: ${evidence.storedAfterClose.join(', ')}`,
    });
  }
  for (const click of evidence.clicks ?? []) {
    const shownButton = observation[click.button];
    // A control the first layer did not show is judged above (no-reject-option, no-banner).
    if (click.outcome === 'clicked' || !shownButton) continue;
    findings.push({
      code: 'click-failed',
      // A refuse button the visitor sees but cannot use is no refuse option (K03); a failed
      // accept or close only leaves what follows it unobserved.
      severity: click.button === 'refuse' ? 'fail' : 'warn',
      message: `the ${click.button} control "${shownButton.text}" shown on the first layer could not be clicked${
        click.error ? ` (${click.error})` : ': no visible match when it came to clicking'
      }; what follows it was not observed`,
    });
  }
  return {
    passed: findings.every((finding) => finding.severity !== 'fail'),
    findings,
    observation,
    storedWhileIgnored: evidence.storedWhileIgnored,
    storedAfterClose: evidence.storedAfterClose ?? null,
  };
}

function area(button: BannerButton): number {
  return button.box.width * button.box.height;
}

/** Names of the non-exempt cookies in the page's browser context, for the silence checks. */
export async function nonExemptCookies(page: Page, site: string, classifier: Classifier): Promise<string[]> {
  const names: string[] = [];
  for (const cookie of await page.context().cookies()) {
    const domain = normaliseHost(cookie.domain);
    const input = {
      name: cookie.name,
      domain,
      firstParty: isFirstParty(domain, site),
      ...(cookie.expires > 0 ? { expires: new Date(cookie.expires * 1000) } : {}),
    };
    if (classifier.classify(input).consentRequired) names.push(`cookie ${cookie.name} (${domain})`);
  }
  return names;
}

/** One key of a frame's web storage. */
export interface StorageKey {
  area: 'localStorage' | 'sessionStorage';
  key: string;
  origin: string;
}

const storageScript = `(() => {
  const out = [];
  for (const area of ['localStorage', 'sessionStorage']) {
    try {
      const store = window[area];
      for (let i = 0; i < store.length; i++) out.push({ area, key: store.key(i), origin: location.origin });
    } catch (error) { /* storage blocked */ }
  }
  return out;
})()`;

/**
 * The localStorage and sessionStorage keys of every frame of the page, once per origin: an
 * embedded widget's iframe writes its own origin's storage, which the top document cannot list.
 * Frames with an opaque origin (sandboxed) have no storage to read.
 */
export async function readWebStorage(page: Page): Promise<StorageKey[]> {
  const seen = new Set<string>();
  const keys: StorageKey[] = [];
  for (const frame of page.frames()) {
    let items: StorageKey[];
    try {
      items =
        frame === page.mainFrame()
          ? await evaluateSettled<StorageKey[]>(page, storageScript)
          : ((await frame.evaluate(storageScript)) as StorageKey[]);
    } catch {
      // A frame detached or navigating away meanwhile has nothing left to read.
      continue;
    }
    for (const item of items) {
      if (!/^https?:\/\//.test(item.origin)) continue;
      const id = `${item.area}\u0000${item.origin}\u0000${item.key}`;
      if (seen.has(id)) continue;
      seen.add(id);
      keys.push(item);
    }
  }
  return keys;
}

/** The non-exempt web-storage keys of every frame, described as a scan does. */
async function nonExemptStorage(page: Page, site: string, classifier: Classifier): Promise<string[]> {
  const names: string[] = [];
  for (const item of await readWebStorage(page)) {
    const host = normaliseHost(new URL(item.origin).hostname);
    if (classifier.classify({ name: item.key, firstParty: isFirstParty(host, site) }).consentRequired)
      names.push(`${item.area} ${item.key} (${host})`);
  }
  return names;
}

/**
 * Everything non-exempt the page stores or sends while `action` runs (a reload, a click): its
 * cookies and web storage afterwards, and the tracker endpoints it requested meanwhile.
 */
async function storedDuring(
  page: Page,
  site: string,
  classifier: Classifier,
  trackerOf: ReturnType<typeof createRequestClassifier>,
  action: () => Promise<void>,
): Promise<string[]> {
  const endpoints = new Set<string>();
  const onRequest = (request: { url(): string }) => {
    const tracker = trackerOf(request.url());
    if (!tracker || trackerAllowed(tracker, noConsent)) return;
    const url = new URL(request.url());
    endpoints.add(`request to ${normaliseHost(url.hostname)}${url.pathname}`);
  };
  page.on('request', onRequest);
  try {
    await action();
  } finally {
    page.off('request', onRequest);
  }
  return [
    ...(await nonExemptCookies(page, site, classifier)),
    ...(await nonExemptStorage(page, site, classifier)),
    ...endpoints,
  ];
}

export interface AuditBannerPageOptions extends BannerRules {
  banner?: Partial<BannerSelectors>;
  classifier?: Classifier;
  /** Tracker endpoints to look for in requests; default `builtinTrackers`. */
  trackers?: readonly TrackerEndpoint[];
  /** First-party request paths the site owner declares as tracking (a proxied or self-hosted tag). */
  trackingPaths?: readonly (string | DeclaredTrackingPath)[];
  /** Quiet time after a reload or click. Default 500 ms. */
  settleMs?: number;
  /** Per click. Default 30 s. */
  timeoutMs?: number;
}

/**
 * Validates a live page's banner (K03; hostile case 26): measures the first layer, then reloads
 * without touching the banner and, if a close control exists, closes it and reloads — neither may
 * leave a non-exempt cookie or storage item or send a tracker request, as in a `scanSite` result. Give it a page in a fresh browser context that has not answered the
 * banner.
 */
export async function auditBannerPage(
  page: Page,
  selectors: BannerSelectors,
  options: AuditBannerPageOptions & { now: Date },
): Promise<BannerAudit> {
  const url = page.url();
  let site: string;
  try {
    site = normaliseHost(new URL(url).hostname);
  } catch (cause) {
    throw cookiesError('cookies/invalid-input', `The page has no URL to audit (${url})`, { cause });
  }
  const classifier = options.classifier ?? createClassifier();
  const trackerOf = createRequestClassifier({
    site: url,
    ...(options.trackers ? { trackers: options.trackers } : {}),
    ...(options.trackingPaths ? { trackingPaths: options.trackingPaths } : {}),
  });
  const settle = options.settleMs ?? 500;
  const observation = await observeBanner(page, { selectors, now: options.now });
  const storedWhileIgnored = await storedDuring(page, site, classifier, trackerOf, async () => {
    await page.reload({ waitUntil: 'load' });
    await page.waitForTimeout(settle);
  });
  const evidence: BannerEvidence = { storedWhileIgnored, clicks: [] };
  // The page is reused: what ignoring left would be blamed on closing, so closing is tested only
  // on a page that stayed clean (a scan closes in a fresh browser context instead).
  if (selectors.close && observation.close && storedWhileIgnored.length === 0) {
    let click: BannerClick | undefined;
    const stored = await storedDuring(page, site, classifier, trackerOf, async () => {
      click = await clickVisible(page, 'close', selectors.close!, options.timeoutMs ?? 30_000);
      if (click.outcome !== 'clicked') return;
      await page.waitForTimeout(settle);
      await page.reload({ waitUntil: 'load' });
      await page.waitForTimeout(settle);
    });
    evidence.clicks = [click!];
    if (click!.outcome === 'clicked') evidence.storedAfterClose = stored;
  }
  return judgeBanner(observation, evidence, options);
}
