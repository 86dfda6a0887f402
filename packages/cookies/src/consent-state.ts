import { type CookieCategory, type CookiePurpose, purposeCategory } from './purpose.js';
import { type Issues, checkKnownKeys, checkOptional, isBoolean, isRecord } from './validate.js';

/**
 * What the visitor agreed to, per cookie category. Missing means refused: silence is never
 * consent (EDPB 05/2020 ¶86, CNIL 2020-092). `gpc: true` (a `Sec-GPC: 1` request or
 * `navigator.globalPrivacyControl`) refuses marketing whatever the banner says.
 */
export interface ConsentState {
  preferences?: boolean;
  analytics?: boolean;
  marketing?: boolean;
  gpc?: boolean;
}

const consentStateKeys = ['preferences', 'analytics', 'marketing', 'gpc'] as const;

/** Issues with an untrusted consent state (the zod twin is `consentStateSchema` on `/schemas`). */
export function consentStateIssues(value: unknown, path = ''): Issues {
  const issues: Issues = [];
  if (!isRecord(value)) return [{ path, message: 'expected an object' }];
  checkKnownKeys(value, consentStateKeys, path, issues);
  for (const key of consentStateKeys) checkOptional(value, key, isBoolean, 'a boolean', { path, issues });
  return issues;
}

/** No consent at all: the state before the banner is answered, and after "refuse all". */
export const noConsent: ConsentState = Object.freeze({});

/** Consent to every category (the "accept all" state). */
export const fullConsent: ConsentState = Object.freeze({
  preferences: true,
  analytics: true,
  marketing: true,
});

/** Whether consent in `state` covers a cookie of `category`; `unclassified` is never covered. */
export function consentCovers(state: ConsentState, category: CookieCategory): boolean {
  switch (category) {
    case 'necessary':
      return true;
    case 'preferences':
      return state.preferences === true;
    case 'analytics':
      return state.analytics === true;
    case 'marketing':
      return state.marketing === true && state.gpc !== true;
    case 'unclassified':
      return false;
  }
}

/**
 * The consent categories a cookie with these purposes still needs under `state`: none when every
 * purpose outside the strictly necessary ones is covered. A cookie that serves several purposes
 * needs consent to each (GDPR Art 7(2) and EDPB 05/2020 on granular consent): analytics consent
 * alone does not cover one that is also a preference cookie. An `unknown` purpose is never
 * covered. Call it for a cookie whose verdict is `consentRequired`.
 */
export function missingConsent(state: ConsentState, purposes: readonly CookiePurpose[]): CookieCategory[] {
  const missing: CookieCategory[] = [];
  for (const purpose of purposes) {
    const category = purposeCategory(purpose);
    if (category === 'necessary' || consentCovers(state, category) || missing.includes(category)) continue;
    missing.push(category);
  }
  return missing;
}

/**
 * True when the browser signals Global Privacy Control: `navigator.globalPrivacyControl`
 * exactly `true`. The server-side `Sec-GPC` header is parsed by `@privacykit/consent`.
 */
export function browserGpcEnabled(
  navigatorLike: unknown = (globalThis as { navigator?: unknown }).navigator,
): boolean {
  return (
    typeof navigatorLike === 'object' &&
    navigatorLike !== null &&
    (navigatorLike as { globalPrivacyControl?: unknown }).globalPrivacyControl === true
  );
}
