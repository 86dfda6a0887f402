// Rule conditions on value facts compare a column's value with the rule's literal. The three
// engines must pick the same rows, and the ones the planner (conditionHolds) picks: MySQL's
// implicit number ↔ text conversion ('abc' = 0, '01' = 1) must not decide what a sweep deletes.
import { fixedClock, retentionRuleSchema } from '@privacykit/core';
import type { RetentionCondition } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { retentionMigrations } from './migrations.js';
import { conditionHolds } from './plan.js';

// id → [code (VARCHAR), num (INTEGER), flag (BOOLEAN: PostgreSQL's own type; a 0/1 number elsewhere)]
const rows: Record<number, [string | null, number | null, 0 | 1 | null]> = {
  1: ['abc', 0, 1],
  2: ['0', 1, 0],
  3: ['00', 2, null],
  4: [' 0', null, 1],
  5: ['0.0', 0, 0],
  6: ['1', 1, 1],
  7: ['01', 10, 0],
  8: ['1abc', 9, 1],
  9: ['true', null, 0],
  10: [null, 1, null],
  11: ['10', 0, 1],
  12: ['9', 0, 0],
};

const cases: [string, RetentionCondition, number[]][] = [
  ['a text column equals the number 0: only the text "0"', { fact: 'code', equals: 0 }, [2]],
  ['a text column equals the number 1: only the text "1"', { fact: 'code', equals: 1 }, [6]],
  ['a text column equals false: only "0"', { fact: 'code', equals: false }, [2]],
  ['a text column in [10, "abc"]', { fact: 'code', in: [10, 'abc'] }, [1, 11]],
  ['an integer column equals "1": only 1', { fact: 'num', equals: '1' }, [2, 6, 10]],
  ['an integer column equals "01": nothing (1 is written "1")', { fact: 'num', equals: '01' }, []],
  ['an integer column equals "abc": nothing', { fact: 'num', equals: 'abc' }, []],
  ['an integer column equals "1abc": nothing', { fact: 'num', equals: '1abc' }, []],
  ['an integer column equals true: only 1', { fact: 'num', equals: true }, [2, 6, 10]],
  ['an integer column in ["0", 9]', { fact: 'num', in: ['0', 9] }, [1, 5, 8, 11, 12]],
  ['a boolean column equals true', { fact: 'flag', equals: true }, [1, 4, 6, 8, 11]],
  ['a boolean column in [false]', { fact: 'flag', in: ['0'] }, [2, 5, 7, 9, 12]],
  ['not (text column equals 0)', { not: { fact: 'code', equals: 0 } }, [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
];

const rule = (condition: RetentionCondition) =>
  retentionRuleSchema.parse({
    id: 'conditional',
    title: 'Conditional deletion',
    zone: 'UTC',
    facts: {
      ended: { label: 'the end', type: 'date' },
      code: { label: 'code', type: 'value' },
      num: { label: 'number', type: 'value' },
      flag: { label: 'flag', type: 'value' },
    },
    phases: [{ action: 'delete', due: { when: [{ if: condition, then: { from: 'ended' } }] } }],
  });

describe.each(testEngines())('condition literals against typed columns on $engine', (engine) => {
  let database: TestDatabase;
  let db: Kysely<any>;
  beforeAll(async () => {
    database = await createTestDatabase(engine);
    db = database.db;
    await migrate(db, [retentionMigrations]);
    await db.schema
      .createTable('accounts')
      .addColumn('id', 'integer', (col) => col.primaryKey())
      .addColumn('ended', sql`varchar(10)`)
      .addColumn('code', sql`varchar(16)`)
      .addColumn('num', 'integer')
      .addColumn('flag', 'boolean')
      .execute();
  });
  afterAll(async () => {
    await database?.destroy();
  });
  beforeEach(async () => {
    await db.deleteFrom('accounts').execute();
    await db.deleteFrom('privacykit_retention_applied').execute();
    await db
      .insertInto('accounts')
      .values(
        Object.entries(rows).map(([id, [code, num, flag]]) => ({
          id: Number(id),
          ended: '2000-01-01',
          code,
          num,
          flag,
        })),
      )
      .execute();
  });

  it.each(cases)('%s', async (_name, condition, expected) => {
    const retention = createRetentionEngine({
      db,
      clock: fixedClock('2025-01-01T00:00:00.000Z'),
      schedule: [
        {
          rule: rule(condition),
          table: 'accounts',
          key: 'id',
          facts: { ended: 'ended', code: 'code', num: 'num', flag: 'flag' },
        },
      ],
    });
    const before = (await db.selectFrom('accounts').selectAll().orderBy('id').execute()) as {
      id: number;
      code: string | null;
      num: number | null;
      flag: boolean | number | null;
    }[];
    // The planner, over the values as this engine's driver returns them, agrees.
    const planned = before
      .filter((row) =>
        conditionHolds(condition, rule(condition), { code: row.code, num: row.num, flag: row.flag }, 'UTC'),
      )
      .map((row) => Number(row.id));
    expect(planned).toEqual(expected);
    // The dry run counts what the sweep then does.
    const [dry] = await retention.dryRun({ sample: 20 });
    expect(dry!.due).toBe(expected.length);
    await retention.sweep();
    const left = (await db.selectFrom('accounts').select('id').orderBy('id').execute()).map((row) =>
      Number(row.id),
    );
    const deleted = Object.keys(rows)
      .map(Number)
      .filter((id) => !left.includes(id));
    expect(deleted).toEqual(expected);
  });
});
