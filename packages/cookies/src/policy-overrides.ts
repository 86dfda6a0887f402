import type { DeclaredCookie } from '@privacykit/core';
import type { CookieOverride } from './classifier.js';
import type { CookiePurpose } from './purpose.js';

/**
 * Turns the cookies a policy declares (`definePolicy({ cookies })`) into classifier overrides,
 * so a scan checks what the notice promises (GDPR Art 13; ePrivacy Art 5(3)). Each declaration
 * is taken at its word, no further:
 * - `exempt` decides the exemption: a `necessary` cookie declared `exempt: false` needs consent
 *   (and, being in no category a visitor can consent to, is reported until it is declared as
 *   preferences, analytics or marketing); an `exempt` analytics cookie becomes first-party
 *   audience measurement and an `exempt` preference a user-set interface preference, and the
 *   classifier still checks the CNIL and WP194 conditions before agreeing;
 * - `firstParty` and `duration` describe the cookie: one seen third-party when declared
 *   first-party, or living longer than declared (a `session` cookie seen persistent), does not
 *   match the declaration (evidence `declaration-mismatch`) and loses the exemption it gave.
 */
export function overridesFromPolicy(cookies: readonly DeclaredCookie[]): CookieOverride[] {
  return cookies.map((cookie) => {
    const override: CookieOverride = {
      name: cookie.name,
      match: cookie.prefix ? 'prefix' : 'exact',
      purposes: purposesOf(cookie),
      vendor: cookie.provider,
      description:
        cookie.category === 'necessary' && cookie.exempt !== true
          ? `declared necessary but not exempt (exempt: false): ${cookie.description}`
          : cookie.description,
      // `firstParty` defaults to true in a parsed policy; a hand-built list may leave it out.
      firstParty: cookie.firstParty !== false,
      duration: cookie.duration,
    };
    if (cookie.category === 'preferences' && cookie.exempt === true) override.setByUser = true;
    return override;
  });
}

function purposesOf(cookie: DeclaredCookie): CookiePurpose[] {
  switch (cookie.category) {
    case 'necessary':
      // `exempt` defaults to false in the policy schema: only an explicit `true` exempts.
      return [cookie.exempt === true ? 'strictly-necessary' : 'unknown'];
    case 'preferences':
      return [cookie.exempt === true ? 'ui-preference' : 'functionality'];
    case 'analytics':
      return [cookie.exempt === true ? 'audience-measurement' : 'analytics'];
    case 'marketing':
      return ['advertising'];
  }
}
