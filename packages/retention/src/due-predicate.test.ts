import { retentionRuleSchema } from '@privacykit/core';
import { engineOf } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { candidateQuery } from './candidates.js';
import { endOfMonthCivil } from './civil-date.js';
import { duePredicate } from './due-predicate.js';
import { currentPhase, planRetention } from './plan.js';
import { defineSchedule } from './schedule.js';
import { retentionMigrations } from './migrations.js';
import { migrate } from '@privacykit/core/db';

// One rule exercising every construct: latest, earliest, when/otherwise, in, not, present,
// endOfMonth on a date and on a month, an instant column, and days after months.
const rule = retentionRuleSchema.parse({
  id: 'mix',
  title: 'Everything at once',
  zone: 'America/New_York',
  facts: {
    a: { label: 'a', type: 'date' },
    b: { label: 'b', type: 'date' },
    t: { label: 't', type: 'date' },
    e: { label: 'e', type: 'month' },
    kind: { label: 'kind', type: 'value' },
    flag: { label: 'flag', type: 'value' },
  },
  phases: [
    {
      action: 'restrict',
      due: {
        when: [
          {
            if: { not: { fact: 'flag', equals: true } },
            then: {
              latest: [
                { from: 'a', after: 'P27M' },
                { from: 't', after: 'P1M2D' },
              ],
            },
          },
        ],
      },
    },
    {
      action: 'anonymise',
      due: {
        when: [
          {
            if: {
              all: [
                { fact: 'b', present: true },
                { fact: 'kind', in: ['x', 'y'] },
              ],
            },
            then: { from: 'b', after: 'P2Y' },
          },
        ],
        otherwise: { from: 't', after: 'P3Y' },
      },
    },
    {
      action: 'delete',
      due: {
        earliest: [
          {
            when: [
              { if: { fact: 'kind', equals: 'deferred' }, then: { from: 'b', after: 'P15M' } },
              { if: { fact: 'kind', in: ['x', 'y'] }, then: { from: 'a', after: 'P4Y' } },
            ],
            otherwise: { from: 'b', after: 'P5Y1M' },
          },
          { from: 'e', endOfMonth: true },
          { from: 'a', endOfMonth: true, after: 'P6Y2M' },
        ],
      },
    },
  ],
});

const schedule = defineSchedule([
  {
    rule,
    table: 'fact_rows',
    key: 'id',
    facts: { a: 'a', b: 'b', t: { column: 't', format: 'instant' }, e: 'e', kind: 'kind', flag: 'flag' },
    // Only the candidate queries are compared here (nothing is swept): a column no phase reads.
    anonymise: { note: 'null' },
  },
]);
const entry = schedule.entries[0]!;

const monthEnd = fc
  .tuple(fc.integer({ min: 2018, max: 2027 }), fc.integer({ min: 1, max: 12 }))
  .map(([y, m]) => endOfMonthCivil(`${y}-${String(m).padStart(2, '0')}-01`));
const anyDay = fc
  .date({ min: new Date('2018-01-01T00:00:00Z'), max: new Date('2027-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString().slice(0, 10));
const civil = fc.oneof(
  anyDay,
  monthEnd,
  fc.constantFrom('2020-02-29', '2024-02-29', '2024-01-31', '2023-03-31'),
);
const instant = fc
  .date({ min: new Date('2018-01-01T00:00:00Z'), max: new Date('2027-12-31T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null, freq: 4 });
const row = fc.record({
  a: maybe(civil),
  b: maybe(civil),
  t: maybe(instant),
  e: maybe(civil.map((d) => d.slice(0, 7))),
  kind: maybe(fc.constantFrom('deferred', 'x', 'y', 'immediate', 'Deferred')),
  flag: maybe(fc.constantFrom(0, 1)),
});

describe.each(testEngines())('the SQL predicate agrees with the planner on $engine', (engine) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await migrate(database.db, [retentionMigrations]);
    await database.db.schema
      .createTable('fact_rows')
      .addColumn('id', 'integer', (col) => col.primaryKey())
      .addColumn('a', sql`varchar(10)`)
      .addColumn('b', sql`varchar(10)`)
      .addColumn('t', sql`varchar(32)`)
      .addColumn('e', sql`varchar(7)`)
      .addColumn('kind', sql`varchar(16)`)
      .addColumn('flag', 'integer')
      .execute();
  });
  afterAll(async () => {
    await database?.destroy();
  });

  it('row selected iff the planner says due on or before today, phase by phase and for the current phase', async () => {
    const db = database.db;
    const runs = engineOf(db) === 'sqlite' ? 60 : 20;
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 40 }), civil, async (rows, today) => {
        await db.deleteFrom('fact_rows').execute();
        await db
          .insertInto('fact_rows')
          .values(rows.map((r, i) => ({ id: i + 1, ...r })))
          .execute();
        const plans = rows.map((r) => planRetention(rule, r));
        for (let phase = 0; phase < rule.phases.length; phase++) {
          const selected = (await db
            .selectFrom('fact_rows')
            .select('id')
            .where(duePredicate(rule.phases[phase]!.due, { entry, engine: engineOf(db), today }))
            .orderBy('id')
            .execute()) as { id: number }[];
          const expected = plans
            .map((plan, i) => ({ id: i + 1, due: plan.phases[phase]?.due ?? null }))
            .filter((p) => p.due !== null && p.due <= today)
            .map((p) => p.id);
          expect(selected.map((s) => Number(s.id))).toEqual(expected);

          const candidates = (await candidateQuery({
            db,
            tenant: 'default',
            entry,
            phase,
            today,
            now: '2030-01-01T00:00:00.000Z',
            holds: [],
          })
            .query.select('id')
            .orderBy('id')
            .execute()) as { id: number }[];
          const current = plans
            .map((plan, i) => ({ id: i + 1, phase: currentPhase(plan, today)?.index }))
            .filter((p) => p.phase === phase)
            .map((p) => p.id);
          expect(candidates.map((s) => Number(s.id))).toEqual(current);
        }
      }),
      { numRuns: runs },
    );
  });
});
