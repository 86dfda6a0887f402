import type { Clock } from '@privacykit/core';
import {
  type Classifier,
  type CookieClassification,
  type ClassifyOptions,
  classifyOptionsIssues,
  createClassifier,
} from './classifier.js';
import { type ConsentState, consentStateIssues, missingConsent } from './consent-state.js';
import { cookiesError } from './errors.js';
import { cookieLifetimeSeconds } from './lifetime.js';
import { purposeCategory } from './purpose.js';
import { type SetCookie, isSetCookieList, parseSetCookieHeaders } from './set-cookie.js';
import { isFirstParty, normaliseHost } from './site.js';
import { systemClock } from './system-clock.js';
import {
  type Issues,
  checkKnownKeys,
  checkOptional,
  describeIssues,
  isNonEmptyString,
  isRecord,
  join,
} from './validate.js';

export interface AuditResponse {
  /** The URL that answered with these headers. */
  url: string;
  /** `Set-Cookie` values: an array, or one comma-joined string. */
  setCookie: string | readonly string[] | undefined;
}

export interface AuditOptions extends ClassifyOptions {
  /** The site being audited (a URL or host): cookies of another registrable domain are third-party. */
  site: string;
  responses: readonly AuditResponse[];
  consent: ConsentState;
  classifier?: Classifier;
}

export interface AuditedCookie {
  cookie: SetCookie;
  /** The cookie's domain: its Domain attribute, or the responding host. */
  domain: string;
  firstParty: boolean;
  /** Seconds it lives; `null` for a session cookie. */
  lifetimeSeconds: number | null;
  setBy: string;
  classification: CookieClassification;
}

export interface CookieViolation {
  name: string;
  domain: string;
  category: CookieClassification['category'];
  vendor?: string;
  firstParty: boolean;
  setBy: string;
  reason: string;
  classification: CookieClassification;
}

/** A cookie seen unlike the site owner's declaration of it (an override's `firstParty` or `duration`). */
export interface DeclarationMismatch {
  name: string;
  domain: string;
  setBy: string;
  /** How it differs, and whether that costs the exemption the declaration gave. */
  detail: string;
}

export interface CookieAudit {
  cookies: AuditedCookie[];
  violations: CookieViolation[];
  /** Cookies seen unlike their declaration: the notice misstates them (GDPR Art 13), or they are not the cookie declared. */
  declarationMismatches: DeclarationMismatch[];
  /** Headers a browser would ignore, and deletions (Max-Age ≤ 0, past Expires), with the reason. */
  skipped: { url: string; header?: string; name?: string; reason: string }[];
}

const auditKeys = [
  'site',
  'responses',
  'consent',
  'classifier',
  'audienceMeasurementExempt',
  'preferenceMaxLifetimeSeconds',
  'clock',
];

function auditIssues(options: unknown): Issues {
  if (!isRecord(options)) return [{ path: '', message: 'expected an object' }];
  const issues: Issues = [];
  if (!isNonEmptyString(options.site)) issues.push({ path: 'site', message: 'expected a non-empty string' });
  if (!Array.isArray(options.responses)) issues.push({ path: 'responses', message: 'expected an array' });
  else
    options.responses.forEach((response: unknown, i) => {
      const path = join('responses', i);
      if (!isRecord(response)) {
        issues.push({ path, message: 'expected an object with url and setCookie' });
        return;
      }
      if (!isNonEmptyString(response.url))
        issues.push({ path: join(path, 'url'), message: 'expected a non-empty string' });
      if (!isSetCookieList(response.setCookie))
        issues.push({
          path: join(path, 'setCookie'),
          message: 'expected a Set-Cookie string, an array of them, or undefined',
        });
    });
  issues.push(...consentStateIssues(options.consent, 'consent'));
  checkKnownKeys(options, auditKeys, '', issues);
  checkOptional(
    options,
    'classifier',
    (field) => isRecord(field) && typeof field.classify === 'function',
    'a Classifier',
    { path: '', issues },
  );
  // The verdict settings are checked as `createClassifier` checks them.
  issues.push(...classifyOptionsIssues(options));
  return issues;
}

/**
 * Lists the cookies the responses set without the consent they need (ePrivacy Art 5(3);
 * GDPR Art 7(1) — the controller must be able to show consent came first).
 */
export function auditSetCookies(options: AuditOptions): CookieAudit {
  const issues = auditIssues(options);
  if (issues.length > 0) {
    throw cookiesError('cookies/invalid-input', `Invalid audit input: ${describeIssues(issues)}`, { issues });
  }
  const consent = options.consent;
  const siteHost = hostOf(options.site);
  if (siteHost === undefined) throw cookiesError('cookies/invalid-input', `Invalid site "${options.site}"`);
  const classifier = options.classifier ?? createClassifier();
  const clock: Clock = options.clock ?? systemClock;
  const now = clock.now();
  const callOptions: ClassifyOptions = { clock: { now: () => now } };
  if (options.audienceMeasurementExempt)
    callOptions.audienceMeasurementExempt = options.audienceMeasurementExempt;
  if (options.preferenceMaxLifetimeSeconds !== undefined) {
    callOptions.preferenceMaxLifetimeSeconds = options.preferenceMaxLifetimeSeconds;
  }

  const audit: CookieAudit = { cookies: [], violations: [], declarationMismatches: [], skipped: [] };
  for (const response of options.responses) {
    const responseHost = hostOf(response.url);
    if (responseHost === undefined) {
      audit.skipped.push({ url: response.url, reason: 'invalid response URL' });
      continue;
    }
    const batch = parseSetCookieHeaders(response.setCookie);
    for (const skipped of batch.skipped) audit.skipped.push({ url: response.url, ...skipped });
    for (const cookie of batch.cookies) {
      const lifetimeSeconds = cookieLifetimeSeconds(cookie, now);
      if (lifetimeSeconds === 0) {
        audit.skipped.push({ url: response.url, name: cookie.name, reason: 'deletes the cookie (expired)' });
        continue;
      }
      // RFC 6265 §5.3 step 6: a Domain the response's host is not within is rejected by
      // browsers; the cookie is never stored, so it is neither first- nor third-party here.
      if (cookie.domain !== undefined && !domainCovers(cookie.domain, responseHost)) {
        audit.skipped.push({
          url: response.url,
          name: cookie.name,
          reason: `Domain=${cookie.domain} does not cover ${responseHost}: browsers reject the cookie`,
        });
        continue;
      }
      const domain = cookie.domain ?? responseHost;
      const firstParty = isFirstParty(domain, siteHost);
      const input = { name: cookie.name, domain, firstParty, value: cookie.value } as Parameters<
        Classifier['classify']
      >[0];
      if (cookie.expires) input.expires = cookie.expires;
      if (cookie.maxAge !== undefined) input.maxAge = cookie.maxAge;
      if (cookie.sameSite) input.sameSite = cookie.sameSite;
      if (cookie.path) input.path = cookie.path;
      const classification = classifier.classify(input, callOptions);
      audit.cookies.push({
        cookie,
        domain,
        firstParty,
        lifetimeSeconds,
        setBy: response.url,
        classification,
      });
      const violation = violationOf(classification, consent, { domain, firstParty, setBy: response.url });
      if (violation) audit.violations.push(violation);
      const mismatch = declarationMismatchOf(classification);
      if (mismatch) {
        audit.declarationMismatches.push({
          name: cookie.name,
          domain,
          setBy: response.url,
          detail: mismatch,
        });
      }
    }
  }
  return audit;
}

/**
 * The violation a cookie with this classification is under `consent`, if any: it needs consent
 * (`consentRequired`) and `consent` does not cover each of its purposes. The category alone is not
 * enough: a cookie needing consent is never excused as `necessary` (ePrivacy Art 5(3)).
 */
export function violationOf(
  classification: CookieClassification,
  consent: ConsentState,
  where: { domain: string; firstParty: boolean; setBy: string },
): CookieViolation | undefined {
  if (!classification.consentRequired) return undefined;
  const missing = missingConsent(consent, classification.purposes);
  // Consent needed while every purpose is strictly necessary leaves nothing a visitor could
  // consent to: never covered, like an unclassified cookie.
  const consentable = classification.purposes.some((purpose) => purposeCategory(purpose) !== 'necessary');
  if (missing.length === 0 && consentable) return undefined;
  const mismatch = classification.evidence.find((line) => line.rule === 'declaration-mismatch');
  const base =
    classification.category === 'unclassified' || !consentable
      ? mismatch
        ? 'set unlike the site declares it'
        : classification.source === 'override'
          ? 'declared as needing consent, but under no category a visitor can consent to: declare it as preferences, analytics or marketing'
          : 'unclassified cookie: no consent can cover it until it is classified (add an override)'
      : missing.length === 1 &&
          missing[0] === 'marketing' &&
          consent.marketing === true &&
          consent.gpc === true
        ? 'marketing cookie set although Global Privacy Control refuses it'
        : `${classification.category} cookie set without ${missing.join(' and ')} consent`;
  const reason = mismatch ? `${base} (${mismatch.detail})` : base;
  const violation: CookieViolation = {
    name: classification.name,
    domain: where.domain,
    category: classification.category,
    firstParty: where.firstParty,
    setBy: where.setBy,
    reason,
    classification,
  };
  if (classification.vendor) violation.vendor = classification.vendor;
  return violation;
}

/** What the classifier found different from the site owner's declaration of the cookie, if anything. */
export function declarationMismatchOf(classification: CookieClassification): string | undefined {
  return classification.evidence.find((line) => line.rule === 'declaration-mismatch')?.detail;
}

/** Whether a cookie's Domain covers `host` (RFC 6265 §5.1.3 domain-match; an IP only itself). */
function domainCovers(domain: string, host: string): boolean {
  const normalised = normaliseHost(domain);
  if (host === normalised) return true;
  const ip = /^[\d.]+$|:/.test(host);
  return !ip && host.endsWith(`.${normalised}`);
}

function hostOf(site: string): string | undefined {
  try {
    return normaliseHost(new URL(site.includes('://') ? site : `https://${site}`).hostname);
  } catch {
    return undefined;
  }
}
