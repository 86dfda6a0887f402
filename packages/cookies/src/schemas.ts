// @privacykit/cookies/schemas — zod schemas of the package's input shapes, for callers that
// validate at their own edges (HTTP, config files) with zod. The root export checks the same
// shapes by hand (validate.test.ts keeps both in agreement) so browser bundles leave zod out.
import { z } from 'zod';
import type { CookieInput, CookieOverride } from './classifier.js';
import type { ConsentState } from './consent-state.js';
import type { AudienceMeasurementConditions } from './exemption.js';
import { expiresTime, isCalendarPeriod } from './lifetime.js';
import { categoryOfPurposes, cookiePurposes } from './purpose.js';

const namesAnInstant = (value: string | number) => {
  try {
    expiresTime(value);
    return true;
  } catch {
    return false;
  }
};

export const cookieInputSchema = z.object({
  name: z.string(),
  domain: z.string().optional(),
  path: z.string().optional(),
  // An unreadable lifetime is refused, never taken for a session cookie.
  expires: z
    .union([z.date(), z.string().refine(namesAnInstant), z.number().refine(namesAnInstant)])
    .optional(),
  // Infinity: never expires (zod's number alone refuses it).
  maxAge: z
    .union([z.number(), z.literal(Number.POSITIVE_INFINITY), z.literal(Number.NEGATIVE_INFINITY)])
    .optional(),
  sameSite: z.string().optional(),
  value: z.string().optional(),
  firstParty: z.boolean().optional(),
  setByUser: z.boolean().optional(),
}) satisfies z.ZodType<CookieInput>;

export const cookieOverrideSchema = z
  .object({
    name: z.string().min(1),
    match: z.enum(['exact', 'prefix', 'pattern']).default('exact'),
    category: z.enum(['necessary', 'preferences', 'analytics', 'marketing']).optional(),
    purposes: z.array(z.enum(cookiePurposes)).min(1).optional(),
    vendor: z.string().min(1).optional(),
    description: z.string().optional(),
    setByUser: z.boolean().optional(),
    firstParty: z.boolean().optional(),
    duration: z
      .string()
      .refine((text) => text === 'session' || isCalendarPeriod(text), {
        message: 'expected "session" or a calendar period such as P6M',
      })
      .optional(),
  })
  .strict()
  .refine((override) => override.category !== undefined || override.purposes !== undefined, {
    message: 'an override needs a category or purposes',
  })
  .refine(
    (override) =>
      override.category === undefined ||
      override.purposes === undefined ||
      categoryOfPurposes(override.purposes) === override.category,
    { message: 'the purposes do not belong to the stated category' },
  ) satisfies z.ZodType<CookieOverride>;

export const audienceMeasurementConditionsSchema = z
  .object({
    anonymous: z.literal(true),
    siteOnly: z.literal(true),
    lifetimeExtendedOnVisit: z.boolean().default(false),
    dataRetentionMonths: z.number().int().positive().optional(),
  })
  .strict() satisfies z.ZodType<AudienceMeasurementConditions>;

export const consentStateSchema = z
  .object({
    preferences: z.boolean().default(false),
    analytics: z.boolean().default(false),
    marketing: z.boolean().default(false),
    gpc: z.boolean().default(false),
  })
  .strict() satisfies z.ZodType<ConsentState>;
