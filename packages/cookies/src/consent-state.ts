import { z } from 'zod';
import type { CookieCategory } from './purpose.js';

/**
 * What the visitor agreed to, per cookie category. Missing means refused: silence is never
 * consent (EDPB 05/2020 ¶86, CNIL 2020-092). `gpc: true` (a `Sec-GPC: 1` request or
 * `navigator.globalPrivacyControl`) refuses marketing whatever the banner says.
 */
export const consentStateSchema = z
  .object({
    preferences: z.boolean().default(false),
    analytics: z.boolean().default(false),
    marketing: z.boolean().default(false),
    gpc: z.boolean().default(false),
  })
  .strict();
export type ConsentState = z.input<typeof consentStateSchema>;

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
