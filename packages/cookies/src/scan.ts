// @privacykit/cookies/scan — load a site in headless Chromium (playwright-core, an optional peer,
// driving the system's Chromium) and record what it stores before consent, after refusal and
// after acceptance. Node-only; the root export stays browser-safe.
import type { Clock } from '@privacykit/core';
import type { Browser, Page, Request } from 'playwright-core';
import { type CookieViolation, declarationMismatchOf, violationOf } from './audit.js';
import {
  type AuditBannerPageOptions,
  type BannerAudit,
  type BannerClick,
  type BannerEvidence,
  type BannerObservation,
  type BannerRules,
  type BannerSelectors,
  type BannerSnapshot,
  auditBannerPage,
  clickVisible,
  judgeBanner,
  observeBanner,
  readWebStorage,
} from './banner.js';
import {
  type Classifier,
  type ClassifyOptions,
  type CookieClassification,
  type CookieInput,
  classifyOptionsIssues,
  createClassifier,
} from './classifier.js';
import { type ConsentState, fullConsent, noConsent } from './consent-state.js';
import { cookiesError } from './errors.js';
import type { AudienceMeasurementConditions } from './exemption.js';
import { isFirstParty, normaliseHost } from './site.js';
import { systemClock } from './system-clock.js';
import {
  type Issues,
  checkKnownKeys,
  checkOptional,
  describeIssues,
  isBoolean,
  isNonEmptyString,
  isRecord,
  isString,
} from './validate.js';
import {
  type DeclaredTrackingPath,
  type TrackerEndpoint,
  type TrackerMatch,
  createRequestClassifier,
  trackerAllowed,
} from './trackers.js';

export type ScanPhaseName = 'before-consent' | 'after-refusal' | 'after-acceptance' | 'after-close';

export interface ScanOptions {
  /**
   * CSS selectors of the banner's buttons. Defaults cover common CMPs and
   * `[data-privacykit-consent="accept"|"refuse"|"close"]`. The first match the visitor can see
   * is clicked (a hidden duplicate earlier in the page is passed over).
   */
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
  /**
   * Origins (`scheme://host[:port]`) the browser's top-level pages may load. When set, `url` must be
   * on it, and any page-level navigation elsewhere — an HTTP redirect, a meta refresh, a script
   * setting `location`, a popup — is aborted before a request is sent and listed in
   * `blockedNavigations`. Subresources and iframes still load from anywhere (they are what a scan
   * observes). Without it, the page may navigate anywhere, as a visitor's browser would.
   */
  allowedOrigins?: readonly string[];
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
  /** The origin of the frame that holds it: the page's, or an embedded iframe's. */
  origin: string;
  firstParty: boolean;
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
  /** The click this phase is about and what came of it (`failed` with the browser's reason); `null` before consent. */
  click: BannerClick | null;
  cookies: ScannedCookie[];
  storage: ScannedStorageItem[];
  /** Requests the page made in this phase; after a click, only those from the click on. */
  requests: ScannedRequest[];
  violations: ScanViolation[];
  /** Page-level navigations aborted in this phase because their origin is not in `allowedOrigins`. */
  blockedNavigations: string[];
}

/** A page-level navigation the scanner refused to follow (see `ScanOptions.allowedOrigins`). */
export interface BlockedNavigation {
  /** The address the page tried to load, as the browser would have requested it. */
  url: string;
  /** Every phase in which the page tried it. */
  phases: ScanPhaseName[];
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
  /**
   * Closing the banner (its × control) in a fresh browser: the `after-close` phase's click, or,
   * when the first layer showed no close control, `{ outcome: 'not-found' }` and no such phase.
   * `null` when no banner was shown at all.
   */
  close: BannerClick | null;
  /**
   * Cookies seen unlike the site owner's declaration of them (overrides with `firstParty` or
   * `duration`, as `overridesFromPolicy` makes), with every phase they were seen so in.
   */
  declarationMismatches: { name: string; domain: string; phases: ScanPhaseName[]; detail: string }[];
  /**
   * Page-level navigations aborted because their origin is not in `allowedOrigins` (always empty
   * without it). When the page itself redirected away, the phases show what the allowed page did
   * before it tried to leave — not the other site.
   */
  blockedNavigations: BlockedNavigation[];
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
const defaultClose = [
  '[data-privacykit-consent="close"]',
  '#onetrust-close-btn-container button',
  '#CybotCookiebotBannerCloseButton',
  '#didomi-notice-x-button',
  '.cky-banner-btn-close',
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

const scanOptionKeys = [
  'banner',
  'classifier',
  'executablePath',
  'launchArgs',
  'trackers',
  'trackingPaths',
  'bannerScreenshotDir',
  'timeoutMs',
  'settleMs',
  'allowedOrigins',
  'gpc',
  'audienceMeasurementExempt',
  'clock',
];
const bannerSelectorKeys = ['accept', 'refuse', 'close', 'container'];

/** Issues with `scanSite` options; the verdict settings are checked as `createClassifier` checks them. */
function scanOptionsIssues(value: unknown): Issues {
  if (!isRecord(value)) return [{ path: '', message: 'expected an object' }];
  const issues: Issues = [];
  const context = { path: '', issues };
  checkKnownKeys(value, scanOptionKeys, '', issues);
  if (value.banner !== undefined) {
    if (!isRecord(value.banner)) issues.push({ path: 'banner', message: 'expected an object' });
    else {
      checkKnownKeys(value.banner, bannerSelectorKeys, 'banner', issues);
      for (const key of bannerSelectorKeys)
        checkOptional(value.banner, key, isNonEmptyString, 'a CSS selector', { path: 'banner', issues });
    }
  }
  checkOptional(
    value,
    'classifier',
    (field) => isRecord(field) && typeof field.classify === 'function',
    'a Classifier',
    context,
  );
  checkOptional(value, 'executablePath', isNonEmptyString, 'a non-empty string', context);
  checkOptional(
    value,
    'launchArgs',
    (field) => Array.isArray(field) && field.every(isString),
    'an array of strings',
    context,
  );
  checkOptional(value, 'trackers', (field) => Array.isArray(field), 'an array of tracker endpoints', context);
  checkOptional(
    value,
    'trackingPaths',
    (field) =>
      Array.isArray(field) &&
      field.every((entry) => isNonEmptyString(entry) || (isRecord(entry) && isNonEmptyString(entry.path))),
    'an array of paths or { path }',
    context,
  );
  checkOptional(value, 'bannerScreenshotDir', isNonEmptyString, 'a non-empty string', context);
  checkOptional(value, 'timeoutMs', isPositiveInteger, 'a positive integer', context);
  checkOptional(
    value,
    'settleMs',
    (field) => isPositiveInteger(field) || field === 0,
    'a non-negative integer',
    context,
  );
  checkOptional(
    value,
    'allowedOrigins',
    (field) => Array.isArray(field) && field.every(isString),
    'an array of origins',
    context,
  );
  checkOptional(value, 'gpc', isBoolean, 'a boolean', context);
  issues.push(...classifyOptionsIssues(value));
  return issues;
}

const isPositiveInteger = (value: unknown): boolean =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

const clickedButton = {
  'after-refusal': 'refuse',
  'after-acceptance': 'accept',
  'after-close': 'close',
} as const;

/**
 * Scans `url` in fresh browser profiles — before any interaction, after clicking the banner's
 * refuse button, after clicking accept, and after closing it when it has a close (×) control —
 * and reports every cookie, storage item (of every frame) and tracker request made without the
 * consent it needs (ePrivacy Art 5(3); EDPB cookie-banner taskforce: refusing, and closing, must
 * leave nothing non-exempt behind). Options are checked first (`cookies/invalid-options`).
 */
export async function scanSite(url: string, options: ScanOptions = {}): Promise<ScanResult> {
  const optionIssues = scanOptionsIssues(options);
  if (optionIssues.length > 0) {
    throw cookiesError('cookies/invalid-options', `Invalid scan options: ${describeIssues(optionIssues)}`, {
      issues: optionIssues,
    });
  }
  let site: string;
  try {
    site = normaliseHost(new URL(url).hostname);
  } catch (cause) {
    throw cookiesError('cookies/invalid-input', `Invalid URL "${url}"`, { cause });
  }
  // Only web pages: a file:, javascript: or ftp: address from a queue would have the server's
  // browser open it.
  const { protocol } = new URL(url);
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw cookiesError(
      'cookies/invalid-input',
      `Only http: and https: addresses are scanned, got ${protocol}`,
    );
  }
  const allowedOrigins = options.allowedOrigins ? originsOf(options.allowedOrigins) : undefined;
  if (allowedOrigins && !allowedOrigins.has(new URL(url).origin)) {
    throw cookiesError(
      'cookies/invalid-input',
      `${new URL(url).origin} is not in allowedOrigins (${[...allowedOrigins].join(', ')})`,
    );
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
  const selectors = selectorsOf(options.banner);
  const trackerOf = createRequestClassifier({
    site: url,
    ...(options.trackers ? { trackers: options.trackers } : {}),
    ...(options.trackingPaths ? { trackingPaths: options.trackingPaths } : {}),
  });
  let banner: BannerObservation | undefined;

  async function scanPhase(phase: ScanPhaseName): Promise<ScanPhase> {
    const context = await browser.newContext(gpc ? { extraHTTPHeaders: { 'Sec-GPC': '1' } } : {});
    try {
      if (gpc) {
        await context.addInitScript(
          'Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true });',
        );
      }
      const blockedNavigations: string[] = [];
      let blockedCount = 0;
      let requests: ScannedRequest[] = [];
      context.on('request', (request) => {
        // Aborted before it was sent: not a request the site made anywhere.
        if (allowedOrigins && leavesAllowedOrigins(request, allowedOrigins)) return;
        const recorded = recordRequest(request.url(), site, trackerOf);
        if (recorded)
          requests.push({ ...recorded, method: request.method(), resourceType: request.resourceType() });
      });
      const page = await context.newPage();
      if (allowedOrigins) {
        const onBlocked = (blocked: string) => {
          blockedCount++;
          if (!blockedNavigations.includes(blocked)) blockedNavigations.push(blocked);
        };
        await guardNavigations(page, allowedOrigins, onBlocked);
        // A popup is not scanned, and its redirects could not be guarded from its first request:
        // it loads nothing at all. Playwright routes a popup's first request before it is sent.
        context.on('page', (popup) => void popup.close().catch(() => undefined));
        await context.route('**/*', async (route) => {
          const request = route.request();
          if (!request.isNavigationRequest() || !isPopupMainFrame(request, page)) return route.fallback();
          if (!allowedOrigins.has(originOf(request.url()))) onBlocked(request.url());
          return route.abort('blockedbyclient');
        });
      }
      page.setDefaultTimeout(timeout);
      const navigate = async (reload = false) => {
        const blockedBefore = blockedCount;
        // After a blocked navigation the tab shows Chromium's error page for the blocked address:
        // reloading it would only try that address again, so load the scanned page anew.
        const onAllowedPage = !allowedOrigins || allowedOrigins.has(originOf(page.url()));
        try {
          await load(page, url, timeout, settle, reload && onAllowedPage);
        } catch (error) {
          // The page tried to leave the allowed origins (a redirect of this very load): reported
          // in `blockedNavigations`; what the allowed page stored before leaving is still scanned.
          if (blockedCount === blockedBefore) throw error;
          await page.waitForTimeout(settle);
        }
      };
      await navigate();
      let click: BannerClick | null = null;
      let consent: ConsentState = gpc ? { gpc: true } : noConsent;
      if (phase === 'before-consent') {
        const observeOptions: Parameters<typeof observeBanner>[1] = { selectors, now: clock.now() };
        if (options.bannerScreenshotDir) observeOptions.screenshotDir = options.bannerScreenshotDir;
        banner = await observeBanner(page, observeOptions);
        // Silence is refusal: the next page view without touching the banner must stay clean too.
        await navigate(true);
      } else {
        const button = clickedButton[phase];
        const beforeClick = requests;
        requests = [];
        click = await clickVisible(page, button, selectors[button]!, timeout);
        if (click.outcome !== 'clicked') requests = [...beforeClick, ...requests];
        else {
          await page.waitForTimeout(settle);
          // The next page view shows what the site does once it knows the choice.
          await navigate(true);
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
      const storage = (await readWebStorage(page)).map((item): ScannedStorageItem => {
        const firstParty = isFirstParty(normaliseHost(new URL(item.origin).hostname), site);
        return {
          ...item,
          firstParty,
          classification: classifier.classify({ name: item.key, firstParty }, callOptions),
        };
      });
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
          firstParty: item.firstParty,
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
      return {
        phase,
        consent,
        bannerClicked: click ? click.outcome === 'clicked' : null,
        click,
        cookies,
        storage,
        requests,
        violations,
        blockedNavigations,
      };
    } finally {
      await context.close();
    }
  }

  try {
    const phases: ScanPhase[] = [];
    for (const phase of ['before-consent', 'after-refusal', 'after-acceptance'] as const) {
      phases.push(await scanPhase(phase));
    }
    const observed = banner ?? {
      accept: null,
      refuse: null,
      close: null,
      viewport: { width: 0, height: 0 },
      snapshot: null,
    };
    let close: BannerClick | null = null;
    if (observed.close) {
      // Closing must count as refusal (CNIL 2020-092): a fresh visitor closes, then comes back.
      const closed = await scanPhase('after-close');
      phases.push(closed);
      close = closed.click;
    } else if (observed.accept || observed.refuse) {
      close = { button: 'close', selector: selectors.close!, outcome: 'not-found' };
    }
    return {
      url,
      site,
      phases,
      violations: mergeViolations(phases),
      declarationMismatches: mergeMismatches(phases),
      banner: observed,
      bannerSnapshot: observed.snapshot,
      close,
      blockedNavigations: mergeBlockedNavigations(phases),
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

/** The banner selectors given, the defaults for the others. */
function selectorsOf(banner: ScanOptions['banner']): BannerSelectors {
  const selectors: BannerSelectors = {
    accept: banner?.accept ?? defaultAccept,
    refuse: banner?.refuse ?? defaultRefuse,
    close: banner?.close ?? defaultClose,
  };
  if (banner?.container) selectors.container = banner.container;
  return selectors;
}

/** Canonical origins of `allowedOrigins`; an entry that is not an http(s) origin is a caller's mistake. */
function originsOf(entries: readonly string[]): Set<string> {
  const origins = new Set<string>();
  for (const entry of entries) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(entry);
    } catch {
      parsed = undefined;
    }
    if (
      !parsed ||
      (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
      parsed.username ||
      parsed.password ||
      parsed.pathname !== '/' ||
      parsed.search ||
      parsed.hash
    ) {
      throw cookiesError(
        'cookies/invalid-options',
        `allowedOrigins: "${entry}" is not an http(s) origin (scheme://host[:port])`,
      );
    }
    origins.add(parsed.origin);
  }
  return origins;
}

/**
 * Aborts every navigation of the page's main frame to an origin not on the list, before it is sent.
 * Through the DevTools Fetch domain rather than `page.route`: Playwright's routes never see the
 * hops of an HTTP redirect, and a redirect is the commonest way off an allowed site.
 */
async function guardNavigations(
  page: Page,
  origins: ReadonlySet<string>,
  onBlocked: (url: string) => void,
): Promise<void> {
  const session = await page.context().newCDPSession(page);
  const { frameTree } = await session.send('Page.getFrameTree');
  const mainFrameId = frameTree.frame.id;
  session.on('Fetch.requestPaused', (event) => {
    const leaves = event.frameId === mainFrameId && !origins.has(originOf(event.request.url));
    if (leaves) onBlocked(event.request.url);
    const answer = leaves
      ? session.send('Fetch.failRequest', { requestId: event.requestId, errorReason: 'BlockedByClient' })
      : session.send('Fetch.continueRequest', { requestId: event.requestId });
    // The page may close while a request is paused; nothing is left to answer then.
    answer.catch(() => undefined);
  });
  // Documents only: subresources and their redirects load untouched.
  await session.send('Fetch.enable', {
    patterns: [{ urlPattern: '*', resourceType: 'Document', requestStage: 'Request' }],
  });
}

/** Call with navigation requests only. */
function isPopupMainFrame(request: Request, scanned: Page): boolean {
  try {
    const frame = request.frame();
    return frame.parentFrame() === null && frame.page() !== scanned;
  } catch {
    // A navigation without its frame yet is a new window's first load (Playwright: "the request
    // was issued before the frame is created").
    return true;
  }
}

/** A top-level page (not an iframe) about to load a document from an origin not on the list. */
function leavesAllowedOrigins(request: Request, origins: ReadonlySet<string>): boolean {
  if (!request.isNavigationRequest()) return false;
  let topLevel: boolean;
  try {
    topLevel = request.frame().parentFrame() === null;
  } catch {
    // No frame yet: a new window's first load (see `isPopupMainFrame`).
    topLevel = true;
  }
  if (!topLevel) return false;
  return !origins.has(originOf(request.url()));
}

/** `null` (never on the list) for an address without an http(s) origin. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'null';
  }
}

function mergeMismatches(phases: readonly ScanPhase[]): ScanResult['declarationMismatches'] {
  const merged = new Map<string, ScanResult['declarationMismatches'][number]>();
  for (const phase of phases) {
    for (const cookie of phase.cookies) {
      const detail = declarationMismatchOf(cookie.classification);
      if (!detail) continue;
      const key = `${cookie.domain}\u0000${cookie.name}`;
      const existing = merged.get(key);
      if (existing) existing.phases.push(phase.phase);
      else merged.set(key, { name: cookie.name, domain: cookie.domain, phases: [phase.phase], detail });
    }
  }
  return [...merged.values()];
}

function mergeBlockedNavigations(phases: readonly ScanPhase[]): BlockedNavigation[] {
  const merged = new Map<string, BlockedNavigation>();
  for (const phase of phases) {
    for (const url of phase.blockedNavigations) {
      const existing = merged.get(url);
      if (existing) existing.phases.push(phase.phase);
      else merged.set(url, { url, phases: [phase.phase] });
    }
  }
  return [...merged.values()];
}

async function load(page: Page, url: string, timeout: number, settle: number, reload = false): Promise<void> {
  if (reload) await page.reload({ waitUntil: 'load', timeout });
  else await page.goto(url, { waitUntil: 'load', timeout });
  await page.waitForLoadState('networkidle', { timeout: Math.min(timeout, 5_000) }).catch(() => undefined);
  await page.waitForTimeout(settle);
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
  'after-close': 'tracker request after the banner was closed',
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
 * and contrast), and ignoring and closing the banner must count as refusal — no non-exempt cookie,
 * storage item or tracker request. A banner control shown but not clickable is a finding
 * (`click-failed`). Give it a `scanSite` result, or a live page freshly loaded in a clean context;
 * both judge the same way. ePrivacy Art 5(3); GDPR Art 4(11), 7; CNIL 2020-092; EDPB
 * cookie-banner taskforce report.
 */
export async function auditBanner(
  target: Page | ScanResult,
  options: AuditBannerOptions = {},
): Promise<BannerAudit> {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw cookiesError('cookies/invalid-options', 'auditBanner options must be an object');
  }
  if (isScanResult(target)) {
    const phase = (name: ScanPhaseName) => target.phases.find((candidate) => candidate.phase === name);
    const storedWhileIgnored = (phase('before-consent')?.violations ?? []).map(describeViolation);
    const evidence: BannerEvidence = {
      storedWhileIgnored,
      // Results of older versions have no `click`.
      clicks: target.phases.flatMap((candidate) => (candidate.click ? [candidate.click] : [])),
    };
    const closed = phase('after-close');
    if (closed?.click?.outcome === 'clicked') {
      // What ignoring the banner leaves anyway is judged as silence, not blamed on closing.
      evidence.storedAfterClose = closed.violations
        .map(describeViolation)
        .filter((item) => !storedWhileIgnored.includes(item));
    }
    return judgeBanner(target.banner, evidence, options as BannerRules);
  }
  return auditBannerPage(target, selectorsOf(options.banner), {
    ...options,
    now: (options.clock ?? systemClock).now(),
  });
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
  BannerClick,
  BannerEvidence,
  BannerFinding,
  BannerFindingCode,
  BannerObservation,
  BannerRules,
  BannerSnapshot,
} from './banner.js';
