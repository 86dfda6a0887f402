// The root export validates by hand; `/schemas` offers the same shapes as zod schemas. Both must
// accept and reject the same inputs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cookieOverrideIssues } from './classifier.js';
import { consentStateIssues } from './consent-state.js';
import { audienceMeasurementConditionsIssues } from './exemption.js';
import { cookiePurposes } from './purpose.js';
import { audienceMeasurementConditionsSchema, consentStateSchema, cookieOverrideSchema } from './schemas.js';

// Values that are sometimes right and often wrong for each field.
const loose = fc.oneof(
  fc.constant(undefined),
  fc.boolean(),
  fc.constantFrom(0, 1, -3, 2.5, 13, 25),
  fc.constantFrom('', 'x', 'exact', 'prefix', 'pattern', 'analytics', 'marketing', 'necessary'),
  fc.constant(null),
);
const purposes = fc.oneof(
  fc.constant(undefined),
  fc.constant([]),
  fc.array(fc.constantFrom(...cookiePurposes), { minLength: 1, maxLength: 3 }),
  fc.constant(['nonsense']),
);
const record = <T extends Record<string, fc.Arbitrary<unknown>>>(fields: T) =>
  fc
    .record(fields, { requiredKeys: [] })
    .chain((value) =>
      fc.oneof(fc.constant(value), fc.constant({ ...value, extra: 1 }), fc.constant('not an object')),
    );

describe('hand-written checks agree with the zod schemas', () => {
  it('override', () => {
    const arbitrary = record({
      name: loose,
      match: loose,
      category: fc.oneof(loose, fc.constantFrom('preferences', 'unclassified')),
      purposes,
      vendor: loose,
      description: loose,
      setByUser: loose,
      firstParty: loose,
      duration: fc.oneof(loose, fc.constantFrom('session', 'P6M', 'P1Y6M', 'P', '6 months')),
    });
    fc.assert(
      fc.property(arbitrary, (value) => {
        expect(cookieOverrideIssues(value).length === 0).toBe(cookieOverrideSchema.safeParse(value).success);
      }),
      { numRuns: 2000 },
    );
  });

  it('consent state', () => {
    const arbitrary = record({ preferences: loose, analytics: loose, marketing: loose, gpc: loose });
    fc.assert(
      fc.property(arbitrary, (value) => {
        expect(consentStateIssues(value).length === 0).toBe(consentStateSchema.safeParse(value).success);
      }),
      { numRuns: 1000 },
    );
  });

  it('audience-measurement conditions', () => {
    const arbitrary = record({
      anonymous: loose,
      siteOnly: loose,
      lifetimeExtendedOnVisit: loose,
      dataRetentionMonths: loose,
    });
    fc.assert(
      fc.property(arbitrary, (value) => {
        expect(audienceMeasurementConditionsIssues(value).length === 0).toBe(
          audienceMeasurementConditionsSchema.safeParse(value).success,
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('issues name the path of the bad field', () => {
    expect(cookieOverrideIssues({ name: '', category: 'analytics' }, 'overrides[2]')).toEqual([
      { path: 'overrides[2].name', message: 'expected a non-empty string' },
    ]);
    expect(consentStateIssues({ analytics: 'yes' }, 'consent')).toEqual([
      { path: 'consent.analytics', message: 'expected a boolean' },
    ]);
  });
});
