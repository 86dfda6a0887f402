/**
 * Why a cookie is there. The purpose, not the category, decides the ePrivacy Art 5(3) verdict:
 * a cookie with several purposes is exempt only when every one of them is.
 */
export const cookiePurposes = [
  // Strictly necessary for a service the user asked for (Art 5(3) second exemption, WP194 §3).
  'session',
  'authentication',
  'security',
  'cart',
  'consent-choice',
  'strictly-necessary',
  // Sole purpose of carrying out the transmission (Art 5(3) first exemption, WP194 §3.1).
  'load-balancing',
  // User-interface customisation: exempt only when set by the user, first-party and short-lived (WP194 §3.6).
  'ui-preference',
  // Features the user did not explicitly ask for yet (chat widgets, players): consent needed.
  'functionality',
  // Marks a cookie that belongs to embedded third-party content (a video, a social widget):
  // the embed was not requested by the user, so the cookie is never exempt, whatever the vendor
  // uses it for on its own site (YouTube's YSC is "security" there).
  'embedded-content',
  // First-party audience measurement: exempt only under the CNIL conditions (délibération 2020-091 art. 5).
  'audience-measurement',
  // Analytics the vendor also uses for itself, or session replay, heatmaps, A/B testing.
  'analytics',
  'advertising',
  'social-media',
  'unknown',
] as const;
export type CookiePurpose = (typeof cookiePurposes)[number];

export const cookieCategories = [
  'necessary',
  'preferences',
  'analytics',
  'marketing',
  'unclassified',
] as const;
export type CookieCategory = (typeof cookieCategories)[number];

/**
 * The category a purpose belongs to. `embedded-content` is `preferences` at least: like a chat
 * widget or a player (`functionality`), the embed is a feature the visitor has not asked for, so
 * its cookies need consent and are never `necessary`, even when the vendor's own purpose is
 * security or load balancing (YSC, datr, lidc). A vendor's analytics or ads purpose ranks higher.
 */
export function purposeCategory(purpose: CookiePurpose): CookieCategory {
  switch (purpose) {
    case 'session':
    case 'authentication':
    case 'security':
    case 'cart':
    case 'consent-choice':
    case 'strictly-necessary':
    case 'load-balancing':
      return 'necessary';
    case 'ui-preference':
    case 'functionality':
    case 'embedded-content':
      return 'preferences';
    case 'audience-measurement':
    case 'analytics':
      return 'analytics';
    case 'advertising':
    case 'social-media':
      return 'marketing';
    case 'unknown':
      return 'unclassified';
  }
}

const rank: Record<CookieCategory, number> = {
  necessary: 0,
  preferences: 1,
  analytics: 2,
  marketing: 3,
  unclassified: 4,
};

/**
 * The category of a cookie with these purposes: the most consent-demanding one wins, so a
 * cookie that remembers a language and also serves ads is `marketing`.
 */
export function categoryOfPurposes(purposes: readonly CookiePurpose[]): CookieCategory {
  let best: CookieCategory | undefined;
  for (const purpose of purposes) {
    const category = purposeCategory(purpose);
    if (best === undefined || rank[category] > rank[best]) best = category;
  }
  return best ?? 'unclassified';
}

/** Default purposes for a cookie known only by its category (site-owner declarations). */
export function defaultPurposes(category: CookieCategory): CookiePurpose[] {
  switch (category) {
    case 'necessary':
      return ['strictly-necessary'];
    case 'preferences':
      return ['functionality'];
    case 'analytics':
      return ['analytics'];
    case 'marketing':
      return ['advertising'];
    case 'unclassified':
      return ['unknown'];
  }
}
