import { addMonths } from 'date-fns/addMonths';
import { endOfMonth } from 'date-fns/endOfMonth';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { CivilDay, formatCivilDate, isCivilDate, parseCivilDate } from './civil-date.js';

const zones = [
  'UTC',
  'Pacific/Kiritimati',
  'Pacific/Apia',
  'America/Los_Angeles',
  'Europe/Paris',
  'Australia/Lord_Howe',
];
const originalTz = process.env.TZ;

describe('civil dates', () => {
  afterEach(() => {
    process.env.TZ = originalTz;
  });

  it('parses real calendar dates only', () => {
    expect(isCivilDate('2024-02-29')).toBe(true);
    expect(isCivilDate('2023-02-29')).toBe(false);
    expect(isCivilDate('2024-13-01')).toBe(false);
    expect(isCivilDate('2024-1-01')).toBe(false);
    expect(formatCivilDate(parseCivilDate('0099-03-01')!)).toBe('0099-03-01');
  });

  it('days a process time zone skipped stay valid (Kiritimati 1994-12-31, Samoa 2011-12-30)', () => {
    for (const zone of zones) {
      process.env.TZ = zone;
      expect(isCivilDate('1994-12-31'), zone).toBe(true);
      expect(isCivilDate('2011-12-30'), zone).toBe(true);
      expect(formatCivilDate(addMonths(parseCivilDate('1994-11-30')!, 1)), zone).toBe('1994-12-30');
    }
  });

  it('date-fns month arithmetic on a CivilDay is the same in every process time zone', () => {
    const day = fc.date({
      min: new Date('1900-01-01T00:00:00Z'),
      max: new Date('2100-12-31T00:00:00Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(
        day,
        fc.integer({ min: -40, max: 40 }),
        fc.constantFrom(...zones),
        (instant, months, zone) => {
          const text = instant.toISOString().slice(0, 10);
          process.env.TZ = 'UTC';
          const expected = formatCivilDate(addMonths(parseCivilDate(text)!, months));
          const monthEnd = formatCivilDate(endOfMonth(parseCivilDate(text)!));
          process.env.TZ = zone;
          const result = addMonths(parseCivilDate(text)!, months);
          expect(result).toBeInstanceOf(CivilDay);
          expect(formatCivilDate(result)).toBe(expected);
          expect(formatCivilDate(endOfMonth(parseCivilDate(text)!))).toBe(monthEnd);
        },
      ),
    );
  });
});
