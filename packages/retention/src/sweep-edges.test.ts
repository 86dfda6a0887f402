import { fixedClock, retentionRuleSchema } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { retentionMigrations } from './migrations.js';

const clock = fixedClock('2025-03-01T10:00:00Z');
const yearly = retentionRuleSchema.parse({
  id: 'yearly',
  title: 'Kept a year',
  facts: { at: { label: 'Collected' } },
  phases: [{ action: 'delete', due: { from: 'at', after: 'P1Y' } }],
});

describe.each(testEngines())('row budgets and large batches on $engine', (engine) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await migrate(t.db, [retentionMigrations]);
    await sql`create table t (id integer primary key, at varchar(32) not null, username varchar(64), ip varchar(64))`.execute(
      t.db,
    );
  });
  afterEach(async () => {
    await t.destroy();
  });

  async function insert(rows: { id: number; at: string; username?: string; ip?: string }[]) {
    for (let i = 0; i < rows.length; i += 500)
      await t.db
        .insertInto('t')
        .values(rows.slice(i, i + 500))
        .execute();
  }
  const count = async (where: string) =>
    Number(
      (await sql<{ n: unknown }>`select count(*) as n from t where ${sql.raw(where)}`.execute(t.db)).rows[0]
        ?.n,
    );
  const sweeper = () =>
    createRetentionEngine({
      db: t.db,
      clock,
      schedule: [{ rule: yearly, table: 't', key: 'id', facts: { at: 'at' } }],
    });

  it('rows whose dates cannot be read do not use up a row budget: the due rows behind them are deleted', async () => {
    const ids = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    await insert([
      ...ids(1, 50).map((id) => ({ id, at: '15/01/2021' })),
      ...ids(51, 100).map((id) => ({ id, at: '2021-01-15' })),
    ]);
    const run = await sweeper().sweep({ batchSize: 25, budget: { rows: 50 } });
    // Before: every sweep read the 50 unreadable rows first, counted them, and stopped there.
    expect(await count("at = '2021-01-15'")).toBe(0);
    expect(run.counts.map((c) => [c.outcome, c.count])).toEqual([
      ['done', 50],
      ['invalid', 50],
    ]);
    expect(run.complete).toBe(true);
    expect(await count("at = '15/01/2021'")).toBe(50);
  });

  it('a budget of exactly the rows due completes; one row short does not, and the next sweep finishes', async () => {
    await insert([1, 2, 3].map((id) => ({ id, at: '2021-01-15' })));
    const exact = await sweeper().sweep({ batchSize: 2, budget: 3 });
    // Before: reported incomplete ("rows remain due") with nothing left, and the CLI exited 1.
    expect(exact.complete).toBe(true);
    expect(await count('1 = 1')).toBe(0);
    await insert([4, 5, 6].map((id) => ({ id, at: '2021-01-15' })));
    const short = await sweeper().sweep({ batchSize: 2, budget: 2 });
    expect(short.complete).toBe(false);
    expect(await count('1 = 1')).toBe(1);
    const rest = await sweeper().sweep({ budget: 2 });
    expect(rest.complete).toBe(true);
    expect(await count('1 = 1')).toBe(0);
  });

  it('anonymises 12,000 rows in batches of 10,000 (the largest allowed), two columns replaced per row', async () => {
    const rule = retentionRuleSchema.parse({
      id: 'visits',
      title: 'Visits',
      facts: { at: { label: 'Visited' } },
      phases: [{ action: 'anonymise', due: { from: 'at', after: 'P13M' } }],
    });
    await insert(
      Array.from({ length: 12_000 }, (_, i) => ({
        id: i + 1,
        at: '2020-01-01T10:00:00.000Z',
        username: `user${i + 1}`,
        ip: `10.0.0.${i % 250}`,
      })),
    );
    const retention = createRetentionEngine({
      db: t.db,
      clock,
      pseudonymKey: 'k',
      schedule: [
        {
          rule,
          table: 't',
          key: 'id',
          facts: { at: { column: 'at', format: 'instant' } },
          anonymise: { username: 'pseudonym', ip: 'pseudonym' },
        },
      ],
    });
    // Before: SQLite refused the batch's 40,000 bound values ("too many SQL variables"), every run.
    const run = await retention.sweep({ batchSize: 10_000 });
    expect(run.status).toBe('finished');
    expect(run.counts.map((c) => [c.outcome, c.count])).toEqual([['done', 12_000]]);
    expect(await count("username like 'user%' or ip like '10.0.0.%'")).toBe(0);
    // Each row got its own pseudonym (the chunks did not mix up rows).
    const names = await t.db.selectFrom('t').select('username').execute();
    expect(new Set(names.map((row) => row.username)).size).toBe(12_000);
  });

  it.runIf(engine.engine === 'sqlite')(
    'keys beyond 2^53 name their own rows: the due one is anonymised or deleted, its neighbour is not, and the records say which',
    async () => {
      // 2^53 (not due) and 2^53 + 1 (due): read rounded before, the neighbour took the change.
      await sql`insert into t (id, at, username, ip) values (9007199254740992, '2025-01-15', 'bob', '10.0.0.2'), (9007199254740993, '2021-01-15', 'ada', '10.0.0.1')`.execute(
        t.db,
      );
      const anonymise = retentionRuleSchema.parse({
        id: 'anon',
        title: 'Anonymised after a year',
        facts: { at: { label: 'Collected' } },
        phases: [{ action: 'anonymise', due: { from: 'at', after: 'P1Y' } }],
      });
      await createRetentionEngine({
        db: t.db,
        clock,
        pseudonymKey: 'k',
        schedule: [
          {
            rule: anonymise,
            table: 't',
            key: 'id',
            facts: { at: 'at' },
            anonymise: { username: 'pseudonym' },
          },
        ],
      }).sweep();
      const rows = await sql<{
        id: string;
        username: string;
      }>`select cast(id as text) as id, username from t order by id`.execute(t.db);
      expect(rows.rows[0]).toEqual({ id: '9007199254740992', username: 'bob' });
      expect(rows.rows[1]?.id).toBe('9007199254740993');
      expect(rows.rows[1]?.username).not.toBe('ada');
      await sql`update t set at = '2021-01-15' where id = 9007199254740992`.execute(t.db);
      await sql`insert into t (id, at) values (9007199254740995, '2025-01-15')`.execute(t.db);
      const run = await sweeper().sweep();
      const left = await sql<{ id: string }>`select cast(id as text) as id from t`.execute(t.db);
      expect(left.rows).toEqual([{ id: '9007199254740995' }]);
      const records = await t.db
        .selectFrom('privacykit_retention_dispositions')
        .select('row_key')
        .where('run_id', '=', run.runId)
        .orderBy('row_key')
        .execute();
      expect(records.map((record) => record.row_key)).toEqual(['9007199254740992', '9007199254740993']);
    },
  );
});

describe.each(testEngines())('two rules on one table on $engine', (engine) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await migrate(t.db, [retentionMigrations]);
  });
  afterEach(async () => {
    await t.destroy();
  });

  it("a row one rule deletes takes the other rule's restriction with it: a new row under its key is not born restricted", async () => {
    await sql`create table people (email varchar(64) primary key, created_at varchar(10) not null, last_at varchar(10) not null, no_marketing integer not null default 0)`.execute(
      t.db,
    );
    await sql`insert into people (email, created_at, last_at) values ('ada@example.com', '2021-01-01', '2021-06-01')`.execute(
      t.db,
    );
    const marketing = retentionRuleSchema.parse({
      id: 'mkt',
      title: 'Marketing',
      facts: { last: { label: 'Last contact' } },
      phases: [{ action: 'restrict', due: { from: 'last', after: 'P27M' }, purposes: ['marketing'] }],
    });
    const prospects = retentionRuleSchema.parse({
      id: 'pros',
      title: 'Prospects',
      facts: { at: { label: 'Created' } },
      phases: [{ action: 'delete', due: { from: 'at', after: 'P3Y' } }],
    });
    const clock = fixedClock('2024-03-01T10:00:00Z');
    const retention = createRetentionEngine({
      db: t.db,
      clock,
      schedule: [
        {
          rule: marketing,
          table: 'people',
          key: 'email',
          facts: { last: 'last_at' },
          restrictColumn: 'no_marketing',
        },
        { rule: prospects, table: 'people', key: 'email', facts: { at: 'created_at' } },
      ],
    });
    await retention.sweep();
    expect(await t.db.selectFrom('people').select('email').execute()).toEqual([]);
    // Ada comes back as a new prospect under the same key.
    await sql`insert into people (email, created_at, last_at) values ('ada@example.com', '2024-04-01', '2024-04-01')`.execute(
      t.db,
    );
    const restricted = () =>
      retention.isRestricted({ table: 'people', key: 'ada@example.com', purpose: 'marketing' });
    // Before: true — the deleted row's restriction by the other rule was still on record.
    expect(await restricted()).toBe(false);
    const run = await retention.sweep();
    // Nor is a restriction that never applied to this row "lifted".
    expect(run.counts).toEqual([]);
  });
});
