import { retentionRuleSchema } from '@privacykit/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  addCivilDays,
  addPeriod,
  civilDateOf,
  cutoffFor,
  endOfMonthCivil,
  startOfCivilDay,
} from './civil-date.js';
import { planRetention } from './plan.js';
import { defineSchedule } from './schedule.js';

const day = fc
  .date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2060-12-31T00:00:00Z'), noInvalidDate: true })
  .map((date) => date.toISOString().slice(0, 10));
// Month ends and leap days are where calendars disagree: draw them often.
const monthEnd = fc
  .tuple(fc.integer({ min: 1990, max: 2060 }), fc.integer({ min: 1, max: 12 }))
  .map(([y, m]) => endOfMonthCivil(`${y}-${String(m).padStart(2, '0')}-01`));
const leapDay = fc.integer({ min: 1990, max: 2060 }).map((y) => `${y - (y % 4)}-02-29`);
const civil = fc.oneof(day, monthEnd, leapDay);
const period = fc
  .record({
    y: fc.integer({ min: 0, max: 12 }),
    m: fc.integer({ min: 0, max: 30 }),
    w: fc.integer({ min: 0, max: 3 }),
    d: fc.integer({ min: 0, max: 40 }),
  })
  .map(({ y, m, w, d }) => {
    const text = `P${y ? `${y}Y` : ''}${m ? `${m}M` : ''}${w ? `${w}W` : ''}${d ? `${d}D` : ''}`;
    return text === 'P' ? 'P1D' : text;
  });

function intlDate(instant: Date, zone: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(instant);
}

describe('calendar rules', () => {
  it('months first with the month-end clamp, never chained', () => {
    expect(addPeriod('2024-01-31', 'P1M')).toBe('2024-02-29');
    expect(addPeriod('2023-01-31', 'P1M')).toBe('2023-02-28');
    expect(addPeriod(addPeriod('2024-01-31', 'P1M'), 'P1M')).toBe('2024-03-29');
    expect(addPeriod('2024-01-31', 'P2M')).toBe('2024-03-31');
    expect(addPeriod('2024-02-29', 'P1Y')).toBe('2025-02-28');
    expect(addPeriod('2024-02-29', 'P4Y')).toBe('2028-02-29');
    expect(addPeriod('2020-01-01', 'P5Y')).toBe('2025-01-01'); // not 5 × 365 days
    expect(addPeriod('2024-01-31', 'P1M1D')).toBe('2024-03-01'); // months, then days
  });

  it('the cutoff is the exact inverse: d + P <= today iff d <= cutoff(today, P)', () => {
    fc.assert(
      fc.property(civil, civil, period, (trigger, today, p) => {
        expect(addPeriod(trigger, p) <= today).toBe(trigger <= cutoffFor(today, p));
      }),
      { numRuns: 3000 },
    );
  });

  it('a naive cutoff would be a day late at month ends; this one is not', () => {
    // Jan 31 + 13 months = Feb 28, due on Feb 28: the naive today − 13 months = Jan 28 misses it.
    expect(cutoffFor('2025-02-28', 'P13M')).toBe('2024-01-31');
    expect(addPeriod('2024-01-31', 'P13M')).toBe('2025-02-28');
  });

  it('adding months keeps the day or clamps to the target month’s end', () => {
    fc.assert(
      fc.property(civil, fc.integer({ min: 0, max: 200 }), (trigger, months) => {
        const result = addPeriod(trigger, `P${months}M`);
        const end = endOfMonthCivil(`${result.slice(0, 7)}-01`);
        const expectedDay = Math.min(Number(trigger.slice(8)), Number(end.slice(8)));
        expect(Number(result.slice(8))).toBe(expectedDay);
      }),
    );
  });

  it('is monotone in the trigger', () => {
    fc.assert(
      fc.property(civil, civil, period, (a, b, p) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(addPeriod(lo, p) <= addPeriod(hi, p)).toBe(true);
      }),
    );
  });
});

describe('zones', () => {
  const zones = [
    'Europe/Paris',
    'America/New_York',
    'Pacific/Auckland',
    'Asia/Kolkata',
    'UTC',
    'Pacific/Kiritimati',
  ];
  // Around the 2024 European and American DST weekends.
  const dstInstant = fc.oneof(
    fc.date({
      min: new Date('2024-03-08T00:00:00Z'),
      max: new Date('2024-04-02T00:00:00Z'),
      noInvalidDate: true,
    }),
    fc.date({
      min: new Date('2024-10-25T00:00:00Z'),
      max: new Date('2024-11-05T00:00:00Z'),
      noInvalidDate: true,
    }),
  );

  it('an instant’s civil date is the wall-clock date in the zone, across DST weekends', () => {
    fc.assert(
      fc.property(dstInstant, fc.constantFrom(...zones), (instant, zone) => {
        expect(civilDateOf(instant, zone)).toBe(intlDate(instant, zone));
      }),
      { numRuns: 2000 },
    );
  });

  it('a civil day starts at local midnight: the instant before it is the previous day', () => {
    fc.assert(
      fc.property(civil, fc.constantFrom(...zones), (date, zone) => {
        const start = startOfCivilDay(date, zone);
        // A day the zone skipped (Kiritimati's 1994-12-31) "starts" where the next one does.
        const skipped = zone === 'Pacific/Kiritimati' && date === '1994-12-31';
        expect(civilDateOf(start, zone)).toBe(skipped ? addCivilDays(date, 1) : date);
        expect(civilDateOf(new Date(start.getTime() - 1), zone)).toBe(addCivilDays(date, -1));
      }),
      { numRuns: 1500 },
    );
  });

  describe('with a process TZ unlike the rule’s', () => {
    const original = process.env.TZ;
    afterEach(() => {
      if (original === undefined) delete process.env.TZ;
      else process.env.TZ = original;
    });
    const rule = retentionRuleSchema.parse({
      id: 'mix',
      title: 'Mixed',
      zone: 'Europe/Paris',
      facts: { at: { label: 'the event', type: 'date' }, expiry: { label: 'expiry', type: 'month' } },
      phases: [
        { action: 'restrict', due: { from: 'at', after: 'P1M' } },
        {
          action: 'delete',
          due: {
            earliest: [
              { from: 'at', after: 'P13M' },
              { from: 'expiry', endOfMonth: true },
            ],
          },
        },
      ],
    });

    it('plans the same dates whatever process.env.TZ says', () => {
      const samples = fc.sample(
        fc.record({
          at: fc.oneof(
            civil,
            dstInstant.map((d) => d.toISOString()),
          ),
          expiry: civil.map((d) => d.slice(0, 7)),
        }),
        { numRuns: 300, seed: 42 },
      );
      const planAll = () => samples.map((facts) => planRetention(rule, facts).phases.map((p) => p.due));
      process.env.TZ = 'UTC';
      const utc = planAll();
      process.env.TZ = 'Pacific/Kiritimati';
      expect(new Date(2024, 0, 1).getTimezoneOffset()).toBe(-840); // the process TZ did change
      const kiritimati = planAll();
      process.env.TZ = 'America/Los_Angeles';
      const losAngeles = planAll();
      expect(kiritimati).toEqual(utc);
      expect(losAngeles).toEqual(utc);
      // And the rule's zone is what counts: 23:30Z on Jan 31 is Feb 1 in Paris.
      expect(planRetention(rule, { at: '2024-01-31T23:30:00Z' }).phases[0]?.due).toBe('2024-03-01');
    });
  });
});

describe('bad input to the date functions', () => {
  it('an unknown zone, a fact set that is no object, a schedule that is none: typed errors, not garbage or a TypeError', () => {
    const code = (run: () => unknown) => {
      try {
        return { value: run() };
      } catch (error) {
        return { code: (error as { code?: unknown }).code ?? String(error) };
      }
    };
    // Before: "0NaN-NaN-NaN" and an Invalid Date.
    expect(code(() => civilDateOf(new Date('2024-01-01T00:00:00Z'), 'Bad/Zone'))).toEqual({
      code: 'retention/invalid-zone',
    });
    expect(code(() => startOfCivilDay('2024-01-01', 'Bad/Zone'))).toEqual({ code: 'retention/invalid-zone' });
    expect(code(() => civilDateOf(new Date('2024-01-31T23:30:00Z'), 'Europe/Paris'))).toEqual({
      value: '2024-02-01',
    });
    const rule = retentionRuleSchema.parse({
      id: 'r',
      title: 'r',
      facts: { at: { label: 'at' } },
      phases: [{ action: 'delete', due: { from: 'at', after: 'P1Y' } }],
    });
    for (const facts of [null, undefined, 'at', []]) {
      expect(
        code(() => planRetention(rule, facts as never)),
        String(facts),
      ).toEqual({ code: 'retention/invalid-fact' });
    }
    for (const input of [null, undefined, 42]) {
      expect(
        code(() => defineSchedule(input as never)),
        String(input),
      ).toEqual({ code: 'retention/invalid-schedule' });
    }
  });
});
