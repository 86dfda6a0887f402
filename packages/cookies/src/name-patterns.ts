import type { CookiePurpose } from './purpose.js';

/** A naming convention that hints at a purpose when no knowledge source knows the cookie. */
export interface NamePattern {
  id: string;
  pattern: RegExp;
  purpose: CookiePurpose;
  confidence: number;
}

/** Consulted in order; the first match wins. Tested on the name without `__Host-`/`__Secure-`. */
export const namePatterns: readonly NamePattern[] = [
  {
    id: 'consent-choice',
    pattern: /consent|cookie[_-]?(notice|banner|law|policy|accepted|prefs?|choice|settings)|gdpr|ccpa/i,
    purpose: 'consent-choice',
    confidence: 0.6,
  },
  {
    id: 'csrf',
    pattern: /csrf|xsrf|anti-?forgery|request-?verification/i,
    purpose: 'security',
    confidence: 0.65,
  },
  {
    id: 'advertising',
    pattern: /(^|[_.-])ads?([_.-]|$)|advert|pixel|retarget|remarket|clickid|gclid|fbclid|msclkid|affiliate/i,
    purpose: 'advertising',
    confidence: 0.45,
  },
  {
    id: 'analytics',
    pattern: /analytic|(^|[_.-])stats?([_.-]|$)|track|visitor|utm|pageview|heatmap|a-?b-?test|experiment/i,
    purpose: 'analytics',
    confidence: 0.45,
  },
  {
    id: 'load-balancing',
    pattern: /(^|[_.-])(lb|alb|elb)([_.-]|$)|affinity|sticky|^route$|^srv_?id$|^server_?id$/i,
    purpose: 'load-balancing',
    confidence: 0.5,
  },
  {
    id: 'authentication',
    pattern: /auth|login|logged[_-]?in|jwt|access[_-]?token|refresh[_-]?token|remember[_-]?me|^token$/i,
    purpose: 'authentication',
    confidence: 0.5,
  },
  { id: 'cart', pattern: /cart|basket|checkout/i, purpose: 'cart', confidence: 0.5 },
  {
    id: 'session',
    pattern: /(^|[_.-])(sess|session|sid|sessid|sessionid)([_.-]|$)|sessid|session_?id|session$/i,
    purpose: 'session',
    confidence: 0.5,
  },
  {
    id: 'ui-preference',
    pattern: /lang|locale|currency|theme|dark[_-]?mode|timezone|font[_-]?size|i18n/i,
    purpose: 'ui-preference',
    confidence: 0.45,
  },
];
