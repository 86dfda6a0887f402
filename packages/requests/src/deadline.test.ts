import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isPrivacyKitError } from '@privacykit/core';
import { addCalendarMonths, civilDateIn, deadlineFor, nextWorkingDay } from './deadline.js';

const zones = [
  'UTC',
  'Europe/Paris',
  'Europe/London',
  'America/New_York',
  'Asia/Tokyo',
  'Pacific/Kiritimati',
  'Pacific/Pago_Pago',
  'Australia/Adelaide',
];

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

describe('deadlineFor (Art 12(3))', () => {
  it('gives 29 Feb in a leap year and 28 Feb otherwise for a request received on 31 Jan (hostile case 7)', () => {
    expect(deadlineFor('2024-01-31T10:00:00Z', { zone: 'Europe/Paris' })).toBe('2024-02-29');
    expect(deadlineFor('2023-01-31T10:00:00Z', { zone: 'Europe/Paris' })).toBe('2023-02-28');
    expect(deadlineFor('2024-03-31T10:00:00Z', { zone: 'UTC' })).toBe('2024-04-30');
    expect(deadlineFor('2024-12-15T10:00:00Z', { zone: 'UTC' })).toBe('2025-01-15');
  });

  it('reads receipt in the controller zone: 23:59 in UTC+1 on a month’s last day is still that day', () => {
    // 31 Jan 23:59 in Paris (UTC+1) is 22:59 UTC on 31 Jan; 00:30 on 1 Feb in Paris is still 31 Jan in UTC.
    expect(deadlineFor('2024-01-31T22:59:00Z', { zone: 'Europe/Paris' })).toBe('2024-02-29');
    expect(deadlineFor('2024-01-31T23:30:00Z', { zone: 'Europe/Paris' })).toBe('2024-03-01');
    expect(deadlineFor('2024-01-31T23:30:00Z', { zone: 'UTC' })).toBe('2024-02-29');
    // 30 Apr 23:59 Paris (UTC+2, summer time) = 21:59 UTC.
    expect(deadlineFor('2024-04-30T21:59:00Z', { zone: 'Europe/Paris' })).toBe('2024-05-30');
    expect(deadlineFor('2024-04-30T22:01:00Z', { zone: 'Europe/Paris' })).toBe('2024-06-01');
  });

  it('is unaffected by DST switches: receipt on the switch day, or a deadline landing on one', () => {
    // Paris springs forward on 31 Mar 2024 at 02:00 and falls back on 27 Oct 2024 at 03:00.
    expect(deadlineFor('2024-03-31T00:30:00Z', { zone: 'Europe/Paris' })).toBe('2024-04-30');
    expect(deadlineFor('2024-03-31T01:30:00Z', { zone: 'Europe/Paris' })).toBe('2024-04-30');
    expect(deadlineFor('2024-09-27T12:00:00Z', { zone: 'Europe/Paris' })).toBe('2024-10-27');
    expect(deadlineFor('2024-10-27T00:59:00Z', { zone: 'Europe/Paris' })).toBe('2024-11-27');
    expect(deadlineFor('2024-02-29T23:30:00Z', { zone: 'America/New_York' })).toBe('2024-03-29');
  });

  it('moves a deadline falling on a holiday or weekend to the next working day (Reg 1182/71 Art 3(4))', () => {
    // 14 Jun 2024 + 1 month = Sunday 14 Jul (Bastille Day): Monday 15 Jul.
    expect(deadlineFor('2024-06-14T09:00:00Z', { zone: 'Europe/Paris' })).toBe('2024-07-14');
    expect(deadlineFor('2024-06-14T09:00:00Z', { zone: 'Europe/Paris', holidays: ['2024-07-14'] })).toBe(
      '2024-07-15',
    );
    // 1 Apr 2024 + 1 month = Wednesday 1 May (Labour Day): Thursday 2 May.
    expect(deadlineFor('2024-04-01T09:00:00Z', { zone: 'Europe/Paris', holidays: ['2024-05-01'] })).toBe(
      '2024-05-02',
    );
    // A Friday holiday then a weekend: Monday.
    expect(nextWorkingDay('2024-11-01', { holidays: ['2024-11-01'] })).toBe('2024-11-04');
  });

  it('rejects unknown zones and invalid instants with typed errors', () => {
    expect(() => deadlineFor('2024-01-31T10:00:00Z', { zone: 'Mars/Olympus' })).toThrow(
      expect.objectContaining({ code: 'requests/invalid-zone' }),
    );
    try {
      deadlineFor('yesterday', { zone: 'UTC' });
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'requests/invalid-input')).toBe(true);
    }
  });

  it('refuses a missing zone instead of reading the date in the server own zone (helper-88)', () => {
    // Before, these took the process's TZ: under America/New_York 2024-02-01T02:00Z was 31 Jan.
    for (const zone of [undefined, null, '', 5]) {
      expect(() => deadlineFor('2024-02-01T02:00:00Z', { zone } as never)).toThrow(
        expect.objectContaining({ code: 'requests/invalid-zone' }),
      );
      expect(() => civilDateIn('2024-02-01T02:00:00Z', zone as never)).toThrow(
        expect.objectContaining({ code: 'requests/invalid-zone' }),
      );
    }
  });

  it('refuses months or days that are not whole numbers, and a date that is no date', () => {
    for (const months of [Number.NaN, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => addCalendarMonths('2024-01-31', months)).toThrow(
        expect.objectContaining({ code: 'requests/invalid-input' }),
      );
    }
    expect(() => nextWorkingDay('garbage', {})).toThrow(
      expect.objectContaining({ code: 'requests/invalid-input' }),
    );
  });

  it('property: the deadline is in the next month, on min(day, days in that month)', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1990-01-01T00:00:00Z'),
          max: new Date('2100-12-31T23:59:59Z'),
          noInvalidDate: true,
        }),
        fc.constantFrom(...zones),
        (instant, zone) => {
          const received = civilDateIn(instant, zone);
          const [y, m, d] = received.split('-').map(Number) as [number, number, number];
          const ny = m === 12 ? y + 1 : y;
          const nm = m === 12 ? 1 : m + 1;
          const expected = `${String(ny).padStart(4, '0')}-${String(nm).padStart(2, '0')}-${String(Math.min(d, daysInMonth(ny, nm))).padStart(2, '0')}`;
          expect(deadlineFor(instant, { zone })).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('property: the civil date of receipt matches Intl in the zone (timezone edges)', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('2000-01-01T00:00:00Z'),
          max: new Date('2060-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        fc.constantFrom(...zones),
        (instant, zone) => {
          const parts = new Intl.DateTimeFormat('en-CA', {
            timeZone: zone,
            year: 'numeric',
            month: '2-digit',
            day: '2-digit',
          }).format(instant);
          expect(civilDateIn(instant, zone)).toBe(parts);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('property: periods are counted from receipt, never chained (31 Jan + 3 months = 30 Apr)', () => {
    expect(addCalendarMonths('2024-01-31', 3)).toBe('2024-04-30');
    fc.assert(
      fc.property(
        fc.integer({ min: 1990, max: 2100 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 31 }),
        fc.integer({ min: 1, max: 3 }),
        (year, month, rawDay, months) => {
          const day = Math.min(rawDay, daysInMonth(year, month));
          const date = `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
          const result = addCalendarMonths(date, months);
          const target = new Date(Date.UTC(year, month - 1 + months, 1));
          const ty = target.getUTCFullYear();
          const tm = target.getUTCMonth() + 1;
          expect(result).toBe(
            `${ty}-${String(tm).padStart(2, '0')}-${String(Math.min(day, daysInMonth(ty, tm))).padStart(2, '0')}`,
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('deadlines whatever the server’s own time zone', () => {
  const original = process.env.TZ;
  afterEach(() => {
    process.env.TZ = original;
  });

  it('counts from days the process zone skipped (Kiritimati 1994-12-31, Samoa 2011-12-30)', () => {
    for (const tz of ['Pacific/Kiritimati', 'Pacific/Apia', 'America/Los_Angeles', 'UTC']) {
      process.env.TZ = tz;
      expect(addCalendarMonths('1994-12-31', 2), tz).toBe('1995-02-28');
      expect(addCalendarMonths('2011-12-30', 1), tz).toBe('2012-01-30');
      expect(deadlineFor('1994-12-31T12:00:00Z', { zone: 'UTC' }), tz).toBe('1995-01-31');
      expect(deadlineFor('2024-01-31T10:00:00Z', { zone: 'Europe/Paris' }), tz).toBe('2024-02-29');
    }
  });
});

describe('deadline arguments from plain JavaScript', () => {
  it('no options or no instant: a typed error, not a TypeError', () => {
    const code = (run: () => unknown) => {
      try {
        run();
        return 'no error';
      } catch (error) {
        return isPrivacyKitError(error) ? error.code : String(error);
      }
    };
    expect(code(() => deadlineFor('2024-01-31T10:00:00Z', undefined as never))).toBe(
      'requests/invalid-options',
    );
    expect(code(() => civilDateIn(null as never, 'Europe/Paris'))).toBe('requests/invalid-input');
    expect(code(() => civilDateIn({} as never, 'Europe/Paris'))).toBe('requests/invalid-input');
  });
});
