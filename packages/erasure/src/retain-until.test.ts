import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dueDate, factValue } from './retain-until.js';

describe('dueDate', () => {
  it('counts months first and clamps to the month end', () => {
    expect(dueDate({ from: 'd', after: 'P1M' }, { d: '2025-01-31' })).toBe('2025-02-28');
    expect(dueDate({ from: 'd', after: 'P1M' }, { d: '2024-01-31' })).toBe('2024-02-29');
    expect(dueDate({ from: 'd', after: 'P10Y' }, { d: '2024-02-29' })).toBe('2034-02-28');
    expect(dueDate({ from: 'd', after: 'P1M1D' }, { d: '2025-01-31' })).toBe('2025-03-01');
    expect(dueDate({ from: 'm', endOfMonth: true }, { m: '2026-02' })).toBe('2026-02-28');
  });

  it('takes the earliest, latest or the first matching case; a missing trigger is not due', () => {
    const facts = { a: '2025-01-01', b: '2026-01-01', settled: 'yes' };
    expect(dueDate({ earliest: [{ from: 'a' }, { from: 'b' }, { from: 'missing' }] }, facts)).toBe(
      '2025-01-01',
    );
    expect(dueDate({ latest: [{ from: 'a' }, { from: 'b' }] }, facts)).toBe('2026-01-01');
    expect(
      dueDate(
        { when: [{ if: { fact: 'settled', present: true }, then: { from: 'a' } }], otherwise: { from: 'b' } },
        facts,
      ),
    ).toBe('2025-01-01');
    expect(dueDate({ from: 'missing', after: 'P1Y' }, facts)).toBeUndefined();
  });

  it('never goes backwards and lands on a real date (property)', () => {
    fc.assert(
      fc.property(
        fc.date({ noInvalidDate: true, min: new Date(1950, 0, 1), max: new Date(2100, 0, 1) }),
        fc.nat(20),
        fc.nat(30),
        (date, years, months) => {
          const start = `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}-${String(date.getDate()).padStart(2, '0')}`;
          const due = dueDate({ from: 'd', after: `P${years}Y${months}M` }, { d: start })!;
          const [y, m, d] = due.split('-').map(Number) as [number, number, number];
          const real = new Date(y, m - 1, d);
          return due >= start && real.getDate() === d && real.getMonth() === m - 1;
        },
      ),
    );
  });
});

describe('factValue', () => {
  it('reads instants as civil dates in the zone', () => {
    expect(factValue('2024-12-31T23:30:00.000Z', 'Europe/Paris')).toBe('2025-01-01');
    expect(factValue('2024-12-31T23:30:00.000Z', 'UTC')).toBe('2024-12-31');
    expect(factValue('2024-12-31', 'Europe/Paris')).toBe('2024-12-31');
    expect(factValue(null, 'UTC')).toBeUndefined();
  });
});
