import type { CookiePurpose } from './purpose.js';

/** A naming convention that hints at a purpose when no knowledge source knows the cookie. */
export interface NamePattern {
  id: string;
  /** Tested on the name's tokens (`cookieNameTokens`): `_auth_token_` for `authToken` or `auth-token`. */
  pattern: RegExp;
  purpose: CookiePurpose;
  confidence: number;
}

/**
 * The name as `_`-separated lower-case words with a `_` at each end, camelCase split:
 * `__Host-authToken` → `_host_auth_token_`, `XSRF-TOKEN` → `_xsrf_token_`. Patterns written on
 * it match whole words, so `auth` finds `auth_token` and `userAuth`, not `author` or `oauth`.
 */
export function cookieNameTokens(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_');
  return `_${words}_`.replace(/_+/g, '_');
}

// Necessary-looking words must be whole words (or a word with a known suffix, `csrftoken`): a
// name pattern that exempts a cookie is weak evidence, and a plain substring (`auth` in `author`,
// `cart` in `cartography`) would exempt trackers. The consent-demanding patterns (advertising,
// analytics) keep matching inside words: erring there only costs a consent question.
const word = (words: string) => new RegExp(`_(${words})_`);

/** Consulted in order; the first match wins. Tested on the name without `__Host-`/`__Secure-`. */
export const namePatterns: readonly NamePattern[] = [
  {
    id: 'consent-choice',
    pattern:
      /_(cookie_?)?(consent|consents|consented)(_?(id|mode|status|state|given|v\d+))?_|_cookie_?(notice|banner|law|policy|accepted|prefs?|choice|settings)_|_(gdpr|ccpa)_/,
    purpose: 'consent-choice',
    confidence: 0.6,
  },
  {
    id: 'csrf',
    pattern: /_(csrf|xsrf)(_?(token|key|guard|cookie))?_|_anti_?forgery|_request_?verification/,
    purpose: 'security',
    confidence: 0.65,
  },
  {
    id: 'advertising',
    pattern: /_ads?_|advert|pixel|retarget|remarket|clickid|gclid|fbclid|msclkid|affiliate/,
    purpose: 'advertising',
    confidence: 0.45,
  },
  {
    id: 'analytics',
    pattern: /analytic|_stats?_|track|visitor|utm|pageview|heatmap|a_?b_?test|experiment/,
    purpose: 'analytics',
    confidence: 0.45,
  },
  {
    id: 'load-balancing',
    pattern:
      /_(lb|alb|elb|affinity|sticky|sticky_?session)_|_session_?affinity_|^_route_$|^_(srv|server)_?id_$/,
    purpose: 'load-balancing',
    confidence: 0.5,
  },
  {
    id: 'authentication',
    pattern:
      /_(auth|authn|authtoken|login|logged_?in|signed_?in|jwt|access_?token|refresh_?token|id_?token|remember_?me)_|^_token_$/,
    purpose: 'authentication',
    confidence: 0.5,
  },
  { id: 'cart', pattern: word('cart|basket|checkout|shopping_?cart'), purpose: 'cart', confidence: 0.5 },
  {
    id: 'session',
    pattern: /_(sess|session|sid|sessid|sessionid|session_?id)_|[a-z](sessid|sessionid)_/,
    purpose: 'session',
    confidence: 0.5,
  },
  {
    id: 'ui-preference',
    pattern: word(
      'lang|language|locale|lng|i18n|currency|theme|dark_?mode|color_?scheme|timezone|font_?size',
    ),
    purpose: 'ui-preference',
    confidence: 0.45,
  },
];
