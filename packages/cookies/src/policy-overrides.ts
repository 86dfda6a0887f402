import type { DeclaredCookie } from '@privacykit/core';
import type { CookieOverride } from './classifier.js';
import type { CookiePurpose } from './purpose.js';

/**
 * Turns the cookies a policy declares (`definePolicy({ cookies })`) into classifier overrides,
 * so a scan checks what the notice promises. An `exempt` analytics cookie becomes first-party
 * audience measurement and an `exempt` preference a user-set interface preference: the
 * classifier still checks the CNIL and WP194 conditions before agreeing.
 */
export function overridesFromPolicy(cookies: readonly DeclaredCookie[]): CookieOverride[] {
  return cookies.map((cookie) => {
    const override: CookieOverride = {
      name: cookie.name,
      match: cookie.prefix ? 'prefix' : 'exact',
      purposes: purposesOf(cookie),
      vendor: cookie.provider,
      description: cookie.description,
    };
    if (cookie.category === 'preferences' && cookie.exempt) override.setByUser = true;
    return override;
  });
}

function purposesOf(cookie: DeclaredCookie): CookiePurpose[] {
  switch (cookie.category) {
    case 'necessary':
      return ['strictly-necessary'];
    case 'preferences':
      return [cookie.exempt ? 'ui-preference' : 'functionality'];
    case 'analytics':
      return [cookie.exempt ? 'audience-measurement' : 'analytics'];
    case 'marketing':
      return ['advertising'];
  }
}
