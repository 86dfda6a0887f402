// @privacykit/cookies/scan — load a site in headless Chromium (playwright-core, an optional peer,
// driving the system's Chromium) and record what it stores before consent, after refusal and
// after acceptance. Node-only; the root export stays browser-safe.
import type { Clock } from '@privacykit/core';
import type { Browser, Page } from 'playwright-core';
import { type CookieViolation, violationOf } from './audit.js';
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

export type ScanPhaseName = 'before-consent' | 'after-refusal' | 'after-acceptance';

export interface ScanOptions {
  /** CSS selectors of the banner's buttons. Defaults cover common CMPs and `[data-privacykit-consent="accept"|"refuse"]`. */
  banner?: { accept?: string; refuse?: string };
  classifier?: Classifier;
  /** Chromium binary; default `$CHROMIUM_PATH`, else `/usr/bin/chromium`. */
  executablePath?: string;
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

export interface ScanPhase {
  phase: ScanPhaseName;
  /** The consent the visitor has given in this phase. */
  consent: ConsentState;
  /** Whether the banner button was found and clicked; `null` before consent (no click). */
  bannerClicked: boolean | null;
  cookies: ScannedCookie[];
  storage: ScannedStorageItem[];
  violations: ScanViolation[];
}

export interface ScanViolation {
  kind: 'cookie' | 'localStorage' | 'sessionStorage';
  name: string;
  domain: string;
  category: CookieClassification['category'];
  vendor?: string;
  firstParty: boolean;
  reason: string;
  /** Every phase in which it was found without the consent it needs. */
  phases: ScanPhaseName[];
}

export interface ScanResult {
  url: string;
  site: string;
  phases: ScanPhase[];
  /** One entry per stored item, across phases. */
  violations: ScanViolation[];
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
    browser = await playwright.chromium.launch({ executablePath, headless: true, args: [...chromiumArgs] });
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
  try {
    const phases: ScanPhase[] = [];
    for (const phase of ['before-consent', 'after-refusal', 'after-acceptance'] as const) {
      const context = await browser.newContext(gpc ? { extraHTTPHeaders: { 'Sec-GPC': '1' } } : {});
      try {
        if (gpc) {
          await context.addInitScript(
            'Object.defineProperty(Navigator.prototype, "globalPrivacyControl", { get: () => true, configurable: true });',
          );
        }
        const page = await context.newPage();
        page.setDefaultTimeout(timeout);
        await load(page, url, timeout, settle);
        let bannerClicked: boolean | null = null;
        let consent: ConsentState = gpc ? { gpc: true } : noConsent;
        if (phase !== 'before-consent') {
          const selector =
            phase === 'after-refusal'
              ? (options.banner?.refuse ?? defaultRefuse)
              : (options.banner?.accept ?? defaultAccept);
          bannerClicked = await clickFirst(page, selector, timeout);
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
        phases.push({ phase, consent, bannerClicked, cookies, storage, violations });
      } finally {
        await context.close();
      }
    }
    return { url, site, phases, violations: mergeViolations(phases) };
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
