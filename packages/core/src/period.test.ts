import { describe, expect, it } from 'vitest';
import { isPrivacyKitError } from './errors.js';
import { describePeriod, parsePeriod } from './period.js';

describe('periods', () => {
  it('parses calendar periods and describes them in words', () => {
    expect(parsePeriod('P1Y6M')).toEqual({ years: 1, months: 6, weeks: 0, days: 0 });
    expect(describePeriod('P13M')).toBe('13 months');
    expect(describePeriod('P1Y')).toBe('1 year');
    expect(describePeriod('P7Y3M')).toBe('7 years and 3 months');
  });

  it('refuses clock durations and garbage with a typed error', () => {
    for (const bad of ['P', 'PT5H', '5Y', 'P-1Y', 'P1.5Y', '']) {
      let caught: unknown;
      try {
        parsePeriod(bad);
      } catch (error) {
        caught = error;
      }
      expect(isPrivacyKitError(caught, 'period/invalid')).toBe(true);
    }
  });
});
