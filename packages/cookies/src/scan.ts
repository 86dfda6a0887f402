// @privacykit/cookies/scan — load a site in headless Chromium (playwright-core, an optional peer,
// driving the system's Chromium) and record what it stores before consent, after refusal and
// after acceptance. Node-only; the root export stays browser-safe.
import type { Clock } from '@privacykit/core';
import type { Browser, Page } from 'playwright-core';
import { type CookieViolation, violationOf } from './audit.js';
import {
  type AuditBannerPageOptions,
  type BannerAudit,
  type BannerObservation,
  type BannerRules,
  type BannerSelectors,
  type BannerSnapshot,
  auditBannerPage,
  judgeBanner,
  observeBanner,
} from './banner.js';
import {
  type Classifier,
  type ClassifyOptions,
  type CookieClassification,
  type CookieInput,
  createClassifier,
} from './classifier.js';
import { type ConsentState, fullConsent, noConsent } from './consent-state.js';
import { cookiesError } from './errors.js';
import type { AudienceMeasurementConditions } from './exemption.js';
import { isFirstParty, normaliseHost } from './site.js';
import { systemClock } from './system-clock.js';
import {
  type DeclaredTrackingPath,
  type TrackerEndpoint,
  type TrackerMatch,
  createRequestClassifier,
  trackerAllowed,
} from './trackers.js';

export type ScanPhaseName = 'before-consent' | 'after-refusal' | 'after-acceptance';

export interface ScanOptions {
  /** CSS selectors of the banner's buttons. Defaults cover common CMPs and `[data-privacykit-consent="accept"|"refuse"]`. */
  banner?: { accept?: string; refuse?: string; close?: string; container?: string };
  classifier?: Classifier;
  /** Chromium binary; default `$CHROMIUM_PATH`, else `/usr/bin/chromium`. */
  executablePath?: string;
  /** Extra Chromium flags, after the defaults (e.g. `--host-resolver-rules=…`, `--proxy-server=…`). */
  launchArgs?: readonly string[];
  /** Tracker endpoints to look for in requests; default `builtinTrackers`. */
  trackers?: readonly TrackerEndpoint[];
  /** First-party request paths the site owner declares as tracking (a proxied or self-hosted tag). */
  trackingPaths?: readonly (string | DeclaredTrackingPath)[];
  /** Save a PNG of the banner here (named by its text hash) and cite it in the snapshot. */
  bannerScreenshotDir?: string;
  /** Per navigation and click. Default 30 s. */
  timeoutMs?: number;
  /** Quiet time after load and after a click, for scripts to set their cookies. Default 500 ms. */
  settleMs?: number;
  /** Send `Sec-GPC: 1` and expose `navigator.globalPrivacyControl = true`. */
  gpc?: boolean;
  audienceMeasurementExempt?: AudienceMeasurementConditions;
  clock?: Clock;
}

export interface ScannedCookie {
  name: string;
  domain: string;
  path: string;
  /** ISO instant, or `null` for a session cookie. */
  expires: string | null;
  lifetimeSeconds: number | null;
  firstParty: boolean;
  httpOnly: boolean;
  secure: boolean;
  sameSite: string;
  classification: CookieClassification;
}

export interface ScannedStorageItem {
  area: 'localStorage' | 'sessionStorage';
  key: string;
  origin: string;
  classification: CookieClassification;
}

export interface ScannedRequest {
  url: string;
  method: string;
  /** Playwright's resource type: `document`, `script`, `image`, `xhr`, `fetch`, `ping`, … */
  resourceType: string;
  host: string;
  firstParty: boolean;
  /** Set when the request goes to a known or declared tracker. */
  tracker?: TrackerMatch;
}

export interface ScanPhase {
  phase: ScanPhaseName;
  /** The consent the visitor has given in this phase. */
  consent: ConsentState;
  /** Whether the banner button was found and clicked; `null` before consent (no click). */
  bannerClicked: boolean | null;
  cookies: ScannedCookie[];
  storage: ScannedStorageItem[];
  /** Requests the page made in this phase; after a click, only those from the click on. */
  requests: ScannedRequest[];
  violations: ScanViolation[];
}

export interface ScanViolation {
  kind: 'cookie' | 'localStorage' | 'sessionStorage' | 'request';
  name: string;
  domain: string;
  category: CookieClassification['category'];
  vendor?: string;
  firstParty: boolean;
  reason: string;
  /** Every phase in which it was found without the consent it needs. */
  phases: ScanPhaseName[];
  /** For `request`: the first URL seen, and the tracker rule that matched. */
  url?: string;
  rule?: string;
}

export interface ScanResult {
  url: string;
  site: string;
  phases: ScanPhase[];
  /** One entry per stored item or tracker endpoint, across phases. */
  violations: ScanViolation[];
  /** The banner's first layer as first shown (buttons measured), for `auditBanner`. */
  banner: BannerObservation;
  /** The banner version shown (text hash, optional PNG), for the consent record to cite (K06). */
  bannerSnapshot: BannerSnapshot | null;
}

const defaultAccept = [
  '[data-privacykit-consent="accept"]',
  '#onetrust-accept-btn-handler',
  '#CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll',
  '#didomi-notice-agree-button',
  '[data-testid="uc-accept-all-button"]',
  '.cky-btn-accept',
  '#axeptio_btn_acceptAll',
].join(', ');
const defaultRefuse = [
  '[data-privacykit-consent="refuse"]',
  '#onetrust-reject-all-handler',
  '#CybotCookiebotDialogBodyButtonDecline',
  '#didomi-notice-disagree-button',
  '[data-testid="uc-deny-all-button"]',
  '.cky-btn-reject',
  '#axeptio_btn_dismiss',
].join(', ');

export const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;

/**
 * Scans `url` in three fresh browser profiles — before any interaction, after clicking the
 * banner's refuse button, after clicking accept — and reports every cookie and storage item set
 * without the consent it needs (ePrivacy Art 5(3); EDPB cookie-banner taskforce: refusing must
 * leave nothing non-exempt behind).
 */
export async function scanSite(url: string, options: ScanOptions = {}): Promise<ScanResult> {
  let site: string;
  try {
    site = normaliseHost(new URL(url).hostname);
  } catch (cause) {
    throw cookiesError('cookies/invalid-input', `Invalid URL "${url}"`, { cause });
  }
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch (cause) {
    throw cookiesError(
      'cookies/scanner-unavailable',
      'scanSite needs playwright-core: npm install playwright-core (and a Chromium, e.g. apt-get install chromium)',
      { cause },
    );
  }
  const executablePath = options.executablePath ?? process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  let browser: Browser;
  try {
    browser = await playwright.chromium.launch({
      executablePath,
      headless: true,
      args: [...chromiumArgs, ...(options.launchArgs ?? [])],
    });
  } catch (cause) {
    throw cookiesError(
      'cookies/scanner-unavailable',
      `Cannot launch Chromium at ${executablePath} (set CHROMIUM_PATH or options.executablePath)`,
      { cause },
    );
  }
  const classifier = options.classifier ?? createClassifier();
  const clock = options.clock ?? systemClock;
  const timeout = options.timeoutMs ?? 30_000;
  const settle = options.settleMs ?? 500;
  const gpc = options.gpc === true;
  const selectors: BannerSelectors = {
    accept: options.banner?.accept ?? defaultAccept,
    refuse: options.banner?.refuse ?? defaultRefuse,
  };
  if (options.banner?.close) selectors.close = options.banner.close;
  if (options.banner?.container) selectors.container = options.banner.container;
  const trackerOf = createRequestClassifier({
    site: url,
    ...(options.trackers ? { trackers: options.trackers } : {}),
    ...(options.trackingPaths ? { trackingPaths: options.trackingPaths } : {}),
  });
  try {
    const phases: ScanPhase[] = [];
    let banner: BannerObservation | undefined;
    for (const phase of ['before-consent', 'after-refusal', 'after-acceptance'] as const) {
      const context = await browser.newContext(gpc ? { extraHTTPHeaders: { 'Sec-GPC': '1' } } : {});
      try {
        if (gpc) {
          await context.addInitScript(
            'Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true });',
          );
        }
        let requests: ScannedRequest[] = [];
        context.on('request', (request) => {
          const recorded = recordRequest(request.url(), site, trackerOf);
          if (recorded)
            requests.push({ ...recorded, method: request.method(), resourceType: request.resourceType() });
        });
        const page = await context.newPage();
        page.setDefaultTimeout(timeout);
        await load(page, url, timeout, settle);
        let bannerClicked: boolean | null = null;
        let consent: ConsentState = gpc ? { gpc: true } : noConsent;
        if (phase === 'before-consent') {
          const observeOptions: Parameters<typeof observeBanner>[1] = { selectors, now: clock.now() };
          if (options.bannerScreenshotDir) observeOptions.screenshotDir = options.bannerScreenshotDir;
          banner = await observeBanner(page, observeOptions);
          // Silence is refusal: the next page view without touching the banner must stay clean too.
          await load(page, url, timeout, settle, true);
        } else {
          const selector = phase === 'after-refusal' ? selectors.refuse : selectors.accept;
          const beforeClick = requests;
          requests = [];
          bannerClicked = await clickFirst(page, selector, timeout);
          if (!bannerClicked) requests = [...beforeClick, ...requests];
          if (bannerClicked) {
            await page.waitForTimeout(settle);
            // The next page view shows what the site does once it knows the choice.
            await load(page, url, timeout, settle, true);
            if (phase === 'after-acceptance') consent = gpc ? { ...fullConsent, gpc: true } : fullConsent;
          }
        }
        const now = clock.now();
        const callOptions: ClassifyOptions = { clock: { now: () => now } };
        if (options.audienceMeasurementExempt)
          callOptions.audienceMeasurementExempt = options.audienceMeasurementExempt;
        const cookies = (await context.cookies()).map((cookie): ScannedCookie => {
          const domain = normaliseHost(cookie.domain);
          const firstParty = isFirstParty(domain, site);
          const expires = cookie.expires > 0 ? new Date(cookie.expires * 1000) : null;
          const input: CookieInput = {
            name: cookie.name,
            domain,
            path: cookie.path,
            firstParty,
            sameSite: cookie.sameSite,
          };
          if (expires) input.expires = expires;
          return {
            name: cookie.name,
            domain,
            path: cookie.path,
            expires: expires ? expires.toISOString() : null,
            lifetimeSeconds: expires
              ? Math.max(0, Math.round((expires.getTime() - now.getTime()) / 1000))
              : null,
            firstParty,
            httpOnly: cookie.httpOnly,
            secure: cookie.secure,
            sameSite: cookie.sameSite,
            classification: classifier.classify(input, callOptions),
          };
        });
        const storage = (await readStorage(page)).map(
          (item): ScannedStorageItem => ({
            ...item,
            classification: classifier.classify({ name: item.key, firstParty: true }, callOptions),
          }),
        );
        const violations: ScanViolation[] = [];
        for (const cookie of cookies) {
          const found = violationOf(cookie.classification, consent, {
            domain: cookie.domain,
            firstParty: cookie.firstParty,
            setBy: url,
          });
          if (found) violations.push(toScanViolation('cookie', found, phase));
        }
        for (const item of storage) {
          const found = violationOf(item.classification, consent, {
            domain: normaliseHost(new URL(item.origin).hostname),
            firstParty: true,
            setBy: url,
          });
          if (found) violations.push(toScanViolation(item.area, found, phase));
        }
        const seen = new Set<string>();
        for (const request of requests) {
          if (!request.tracker || trackerAllowed(request.tracker, consent)) continue;
          const endpoint = endpointOf(request.url);
          if (seen.has(endpoint)) continue;
          seen.add(endpoint);
          violations.push(requestViolation(request, request.tracker, endpoint, phase));
        }
        phases.push({ phase, consent, bannerClicked, cookies, storage, requests, violations });
      } finally {
        await context.close();
      }
    }
    const observed = banner ?? {
      accept: null,
      refuse: null,
      close: null,
      viewport: { width: 0, height: 0 },
      snapshot: null,
    };
    return {
      url,
      site,
      phases,
      violations: mergeViolations(phases),
      banner: observed,
      bannerSnapshot: observed.snapshot,
    };
  } catch (cause) {
    if (cause instanceof Error && cause.name === 'PrivacyKitError') throw cause;
    throw cookiesError(
      'cookies/scan-failed',
      `Scan of ${url} failed: ${(cause as Error)?.message ?? cause}`,
      { cause },
    );
  } finally {
    await browser.close();
  }
}

async function load(page: Page, url: string, timeout: number, settle: number, reload = false): Promise<void> {
  if (reload) await page.reload({ waitUntil: 'load', timeout });
  else await page.goto(url, { waitUntil: 'load', timeout });
  await page.waitForLoadState('networkidle', { timeout: Math.min(timeout, 5_000) }).catch(() => undefined);
  await page.waitForTimeout(settle);
}

async function clickFirst(page: Page, selector: string, timeout: number): Promise<boolean> {
  const button = page.locator(selector).first();
  if ((await button.count()) === 0) return false;
  try {
    await button.click({ timeout });
    return true;
  } catch {
    return false;
  }
}

async function readStorage(page: Page): Promise<Omit<ScannedStorageItem, 'classification'>[]> {
  // A string keeps DOM types out of this node-side module.
  const items = (await page.evaluate(`(() => {
    const out = [];
    for (const area of ['localStorage', 'sessionStorage']) {
      try {
        const store = window[area];
        for (let i = 0; i < store.length; i++) out.push({ area, key: store.key(i), origin: location.origin });
      } catch (error) { /* storage blocked */ }
    }
    return out;
  })()`)) as Omit<ScannedStorageItem, 'classification'>[];
  return items;
}

function toScanViolation(
  kind: ScanViolation['kind'],
  violation: CookieViolation,
  phase: ScanPhaseName,
): ScanViolation {
  const result: ScanViolation = {
    kind,
    name: violation.name,
    domain: violation.domain,
    category: violation.category,
    firstParty: violation.firstParty,
    reason: violation.reason,
    phases: [phase],
  };
  if (violation.vendor) result.vendor = violation.vendor;
  return result;
}

function mergeViolations(phases: readonly ScanPhase[]): ScanViolation[] {
  const merged = new Map<string, ScanViolation>();
  for (const phase of phases) {
    for (const violation of phase.violations) {
      const key = `${violation.kind}\u0000${violation.domain}\u0000${violation.name}`;
      const existing = merged.get(key);
      if (existing) {
        if (!existing.phases.includes(phase.phase)) existing.phases.push(phase.phase);
      } else {
        merged.set(key, { ...violation, phases: [...violation.phases] });
      }
    }
  }
  return [...merged.values()];
}

const requestReasons: Record<ScanPhaseName, string> = {
  'before-consent': 'tracker request before consent',
  'after-refusal': 'tracker request after refusal',
  'after-acceptance': 'tracker request without the consent it needs',
};

function recordRequest(
  url: string,
  site: string,
  trackerOf: (url: string) => TrackerMatch | undefined,
): Omit<ScannedRequest, 'method' | 'resourceType'> | undefined {
  let host: string;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
    host = normaliseHost(parsed.hostname);
  } catch {
    return undefined;
  }
  const recorded: Omit<ScannedRequest, 'method' | 'resourceType'> = {
    url,
    host,
    firstParty: isFirstParty(host, site),
  };
  const tracker = trackerOf(url);
  if (tracker) recorded.tracker = tracker;
  return recorded;
}

/** Host and path without the query: one violation per endpoint, not per hit. */
function endpointOf(url: string): string {
  const parsed = new URL(url);
  return `${normaliseHost(parsed.hostname)}${parsed.pathname}`;
}

function requestViolation(
  request: ScannedRequest,
  tracker: TrackerMatch,
  endpoint: string,
  phase: ScanPhaseName,
): ScanViolation {
  return {
    kind: 'request',
    name: endpoint,
    domain: request.host,
    category: tracker.category,
    vendor: tracker.vendor,
    firstParty: request.firstParty,
    reason: requestReasons[phase],
    phases: [phase],
    url: request.url,
    rule: tracker.rule,
  };
}

export type AuditBannerOptions = AuditBannerPageOptions & { clock?: Clock };

/**
 * Validates the consent banner against K03 and hostile case 26: the first layer must offer a
 * refuse option as prominent as accept (both present, both in the first viewport, comparable size
 * and contrast), and ignoring (or closing) the banner must count as refusal — no non-exempt cookie
 * or tracker request. Give it a `scanSite` result, or a live page freshly loaded in a clean context.
 * ePrivacy Art 5(3); GDPR Art 4(11), 7; CNIL 2020-092; EDPB cookie-banner taskforce report.
 */
export async function auditBanner(
  target: Page | ScanResult,
  options: AuditBannerOptions = {},
): Promise<BannerAudit> {
  if (isScanResult(target)) {
    const before = target.phases.find((phase) => phase.phase === 'before-consent');
    const storedWhileIgnored = (before?.violations ?? []).map((violation) => describeViolation(violation));
    return judgeBanner(target.banner, { storedWhileIgnored }, options as BannerRules);
  }
  const selectors: BannerSelectors = {
    accept: options.banner?.accept ?? defaultAccept,
    refuse: options.banner?.refuse ?? defaultRefuse,
  };
  if (options.banner?.close) selectors.close = options.banner.close;
  if (options.banner?.container) selectors.container = options.banner.container;
  return auditBannerPage(target, selectors, { ...options, now: (options.clock ?? systemClock).now() });
}

function isScanResult(target: Page | ScanResult): target is ScanResult {
  return typeof target === 'object' && target !== null && 'phases' in target && 'banner' in target;
}

function describeViolation(violation: ScanViolation): string {
  return violation.kind === 'request'
    ? `request to ${violation.name}`
    : `${violation.kind} ${violation.name} (${violation.domain})`;
}

export type {
  BannerAudit,
  BannerButton,
  BannerFinding,
  BannerFindingCode,
  BannerObservation,
  BannerRules,
  BannerSnapshot,
} from './banner.js';
