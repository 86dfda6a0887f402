import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
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

describe('dueDate agrees with retention', () => {
  const zones = ['UTC', 'Pacific/Apia', 'Pacific/Kiritimati', 'America/Los_Angeles', 'Australia/Lord_Howe'];
  const originalTz = process.env.TZ;
  afterEach(() => {
    process.env.TZ = originalTz;
  });

  it('reads a flag stored as 1/0 as true/false, as the sweep does (bank card: 15 months if deferred)', () => {
    const due = {
      when: [{ if: { fact: 'deferred', equals: true }, then: { from: 'debit', after: 'P15M' } }],
      otherwise: { from: 'debit', after: 'P13M' },
    };
    expect(dueDate(due, { deferred: 1, debit: '2024-01-31' })).toBe('2025-04-30');
    expect(dueDate(due, { deferred: true, debit: '2024-01-31' })).toBe('2025-04-30');
    expect(dueDate(due, { deferred: 0, debit: '2024-01-31' })).toBe('2025-02-28');
    // Text is not a flag for retention either.
    expect(dueDate(due, { deferred: 'true', debit: '2024-01-31' })).toBe('2025-02-28');
    const listed = { when: [{ if: { fact: 'kind', in: [2] }, then: { from: 'd' } }] };
    expect(dueDate(listed, { kind: '2', d: '2024-01-31' })).toBe('2024-01-31');
    expect(dueDate(listed, { kind: 'x', d: '2024-01-31' })).toBeUndefined();
  });

  it('counts an empty text value as present, as the sweep does (only a missing or NULL fact is absent)', () => {
    const due = {
      when: [{ if: { fact: 'settled', present: true }, then: { from: 'a' } }],
      otherwise: { from: 'b' },
    };
    const dates = { a: '2025-01-01', b: '2026-01-01' };
    expect(dueDate(due, { ...dates, settled: '' })).toBe('2025-01-01');
    expect(dueDate(due, { ...dates, settled: null })).toBe('2026-01-01');
    expect(dueDate(due, dates)).toBe('2026-01-01');
  });

  it('compares a condition as text, as the sweep does on every engine: no implicit number conversion', () => {
    const due = {
      when: [{ if: { fact: 'deferred', equals: true }, then: { from: 'debit', after: 'P15M' } }],
      otherwise: { from: 'debit', after: 'P13M' },
    };
    // A flag in a text column, written '1'.
    expect(dueDate(due, { deferred: '1', debit: '2024-01-31' })).toBe('2025-04-30');
    const zero = { when: [{ if: { fact: 'code', equals: 0 }, then: { from: 'd' } }] };
    expect(dueDate(zero, { code: '0', d: '2024-01-31' })).toBe('2024-01-31');
    // MySQL would take these for 0; the sweep does not.
    for (const code of ['abc', '00', '0.0', ' 0'])
      expect(dueDate(zero, { code, d: '2024-01-31' })).toBeUndefined();
    const one = { when: [{ if: { fact: 'num', equals: '1' }, then: { from: 'd' } }] };
    expect(dueDate(one, { num: 1, d: '2024-01-31' })).toBe('2024-01-31');
    expect(
      dueDate(
        { when: [{ if: { fact: 'num', equals: '01' }, then: { from: 'd' } }] },
        { num: 1, d: '2024-01-31' },
      ),
    ).toBeUndefined();
  });

  it('gives the same dates whatever the process time zone, days a zone skipped included', () => {
    for (const zone of zones) {
      process.env.TZ = zone;
      // Samoa skipped 2011-12-30, Kiritimati 1994-12-31: both are still calendar days.
      expect(dueDate({ from: 'd', after: 'P1M' }, { d: '2011-11-30' }), zone).toBe('2011-12-30');
      expect(dueDate({ from: 'd' }, { d: '2011-12-30' }), zone).toBe('2011-12-30');
      expect(dueDate({ from: 'd', after: 'P1D' }, { d: '1994-12-30' }), zone).toBe('1994-12-31');
      expect(dueDate({ from: 'm', endOfMonth: true }, { m: '1994-12' }), zone).toBe('1994-12-31');
      expect(dueDate({ from: 'd', after: 'P10Y' }, { d: '2024-02-29' }), zone).toBe('2034-02-28');
    }
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('1900-01-01T00:00:00Z'),
          max: new Date('2100-12-31T00:00:00Z'),
          noInvalidDate: true,
        }),
        fc.nat(20),
        fc.nat(30),
        fc.nat(40),
        fc.constantFrom(...zones),
        (instant, years, months, days, zone) => {
          const d = instant.toISOString().slice(0, 10);
          const due = { from: 'd', after: `P${years}Y${months}M${days}D` };
          process.env.TZ = 'UTC';
          const expected = dueDate(due, { d });
          process.env.TZ = zone;
          expect(dueDate(due, { d })).toBe(expected);
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
