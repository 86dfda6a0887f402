import { withinMonths } from './lifetime.js';
import type { CookiePurpose } from './purpose.js';
import { type Issues, checkKnownKeys, checkOptional, isBoolean, isRecord } from './validate.js';

/**
 * The caller's assertion that its first-party audience measurement meets the CNIL conditions
 * (délibération 2020-091 art. 5, CNIL audience-measurement guidance): anonymous statistics
 * produced for this site alone, cookie lifetime ≤ 13 months not extended on each visit, data
 * kept ≤ 25 months. Without it, analytics cookies always need consent.
 */
export interface AudienceMeasurementConditions {
  anonymous: true;
  siteOnly: true;
  /** Set when the tool re-extends the cookie's lifetime on each visit: that breaks the exemption. */
  lifetimeExtendedOnVisit?: boolean;
  /** How long the measurement data are kept; more than 25 months breaks the exemption. */
  dataRetentionMonths?: number;
}

/** Issues with untrusted audience-measurement conditions (zod twin on `/schemas`). */
export function audienceMeasurementConditionsIssues(value: unknown, path = ''): Issues {
  if (!isRecord(value)) return [{ path, message: 'expected an object' }];
  const issues: Issues = [];
  const keys = ['anonymous', 'siteOnly', 'lifetimeExtendedOnVisit', 'dataRetentionMonths'];
  checkKnownKeys(value, keys, path, issues);
  const context = { path, issues };
  for (const key of ['anonymous', 'siteOnly']) {
    if (value[key] !== true) issues.push({ path: path ? `${path}.${key}` : key, message: 'expected true' });
  }
  checkOptional(value, 'lifetimeExtendedOnVisit', isBoolean, 'a boolean', context);
  checkOptional(
    value,
    'dataRetentionMonths',
    (field) => typeof field === 'number' && Number.isSafeInteger(field) && field > 0,
    'a positive integer',
    context,
  );
  return issues;
}

/** The Art 5(3) ground a cookie is exempt under. */
export type ExemptionGround =
  | 'transmission'
  | 'strictly-necessary'
  | 'audience-measurement'
  | 'ui-customisation';

export interface ExemptionContext {
  /** `undefined` when not known: exemptions that need a first-party cookie then fail. */
  firstParty: boolean | undefined;
  /** Seconds the cookie lives; `null` for a session cookie. */
  lifetimeSeconds: number | null;
  /** The cookie records a choice the visitor made in the interface (a language switch). */
  setByUser: boolean;
  audienceMeasurement: AudienceMeasurementConditions | undefined;
  /** Longest lifetime of an exempt interface-preference cookie. Default 12 hours (WP194 §3.6: "a few additional hours"). */
  preferenceMaxLifetimeSeconds: number;
  now: Date;
}

export interface PurposeVerdict {
  purpose: CookiePurpose;
  exempt: boolean;
  ground?: ExemptionGround;
  reason: string;
}

export interface ExemptionVerdict {
  consentRequired: boolean;
  /** The ground when exempt; for several purposes, the ground of the first one. */
  ground?: ExemptionGround;
  purposes: PurposeVerdict[];
}

/** True when the purpose's verdict never depends on lifetime, party or the caller's assertions. */
export function isContextFreePurpose(purpose: CookiePurpose): boolean {
  return purpose !== 'ui-preference' && purpose !== 'audience-measurement';
}

/**
 * The ePrivacy Art 5(3) verdict for a cookie with these purposes, as the EDPB (WP194,
 * Guidelines 2/2023) and the CNIL read the two exemptions. Exempt only when every purpose is.
 */
export function exemptionVerdict(
  purposes: readonly CookiePurpose[],
  context: ExemptionContext,
): ExemptionVerdict {
  const verdicts = purposes.map((purpose) => purposeVerdict(purpose, context));
  const exempt = verdicts.length > 0 && verdicts.every((verdict) => verdict.exempt);
  const result: ExemptionVerdict = { consentRequired: !exempt, purposes: verdicts };
  if (exempt && verdicts[0]?.ground) result.ground = verdicts[0].ground;
  return result;
}

function purposeVerdict(purpose: CookiePurpose, context: ExemptionContext): PurposeVerdict {
  switch (purpose) {
    case 'load-balancing':
      return {
        purpose,
        exempt: true,
        ground: 'transmission',
        reason: 'load balancing: sole purpose of carrying out the transmission (WP194 §3.1)',
      };
    case 'session':
    case 'authentication':
    case 'security':
    case 'cart':
    case 'consent-choice':
    case 'strictly-necessary':
      return {
        purpose,
        exempt: true,
        ground: 'strictly-necessary',
        reason: `${purpose}: strictly necessary for the service the user requested (WP194 §3)`,
      };
    case 'ui-preference': {
      if (!context.setByUser) {
        return {
          purpose,
          exempt: false,
          reason: 'interface preference not shown to be set by the user (WP194 §3.6)',
        };
      }
      if (context.firstParty !== true) {
        return {
          purpose,
          exempt: false,
          reason: 'interface preference exempt only as a first-party cookie (WP194 §3.6)',
        };
      }
      if (
        context.lifetimeSeconds !== null &&
        context.lifetimeSeconds > context.preferenceMaxLifetimeSeconds
      ) {
        return {
          purpose,
          exempt: false,
          reason: `interface preference lives ${context.lifetimeSeconds}s, longer than the ${context.preferenceMaxLifetimeSeconds}s allowed without consent (WP194 §3.6)`,
        };
      }
      return {
        purpose,
        exempt: true,
        ground: 'ui-customisation',
        reason: 'interface preference set by the user, first-party and short-lived (WP194 §3.6)',
      };
    }
    case 'audience-measurement': {
      const conditions = context.audienceMeasurement;
      // Checked here too, not only where options are validated: `exemptionVerdict` is public, and
      // `{ anonymous: false }` is an object like any other.
      if (conditions?.anonymous !== true || conditions.siteOnly !== true) {
        return {
          purpose,
          exempt: false,
          reason: 'audience measurement: the CNIL conditions were not asserted (anonymous, site-only)',
        };
      }
      if (context.firstParty !== true) {
        return {
          purpose,
          exempt: false,
          reason: 'audience measurement exempt only as a first-party cookie (CNIL)',
        };
      }
      if (conditions.lifetimeExtendedOnVisit) {
        return {
          purpose,
          exempt: false,
          reason: 'audience measurement cookie is extended on each visit (CNIL: no automatic extension)',
        };
      }
      if (
        conditions.dataRetentionMonths !== undefined &&
        !(typeof conditions.dataRetentionMonths === 'number' && conditions.dataRetentionMonths <= 25)
      ) {
        return {
          purpose,
          exempt: false,
          reason: `measurement data kept ${conditions.dataRetentionMonths} months, more than 25 (CNIL)`,
        };
      }
      if (!withinMonths(context.lifetimeSeconds, context.now, 13)) {
        return {
          purpose,
          exempt: false,
          reason: 'audience measurement cookie lives longer than 13 months (CNIL)',
        };
      }
      return {
        purpose,
        exempt: true,
        ground: 'audience-measurement',
        reason: 'first-party anonymous audience measurement within the CNIL conditions',
      };
    }
    case 'functionality':
      return { purpose, exempt: false, reason: 'a feature the user has not requested yet: consent needed' };
    case 'embedded-content':
      return {
        purpose,
        exempt: false,
        reason: 'set by embedded third-party content the user did not request',
      };
    case 'analytics':
      return { purpose, exempt: false, reason: 'analytics outside the CNIL audience-measurement exemption' };
    case 'advertising':
      return { purpose, exempt: false, reason: 'advertising is never exempt' };
    case 'social-media':
      return { purpose, exempt: false, reason: 'social-media tracking is never exempt' };
    case 'unknown':
      return { purpose, exempt: false, reason: 'unknown purpose: consent required until classified' };
  }
}
