import { definePolicy, fixedClock } from '@privacykit/core';
import type { RetentionRule } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import { retentionMigrations } from './migrations.js';
import type { ScheduleEntryInput } from './schedule.js';

// Host tables shared by two tenants, keyed (tenant_id, id): the same id in each tenant. A
// tenant's sweep must act on its own rows only, whatever the other tenant's rows look like.
const TODAY = '2025-06-01T12:00:00Z';

function tenantPolicy(tenant: string) {
  return definePolicy({
    tenant,
    version: '1',
    effectiveDate: '2024-01-01',
    controller: { name: 'Example SAS' },
    dpo: { email: 'dpo@example.com' },
    supervisoryAuthority: { name: 'CNIL' },
    purposes: [
      {
        id: 'service',
        name: 'Provide the service',
        description: 'The service.',
        legalBases: [{ basis: 'contract' }],
        categories: ['identity.name'],
      },
    ],
    rights: { offered: ['access'], channels: [{ kind: 'email', value: 'dpo@example.com' }] },
  });
}

function rule(id: string, action: 'delete' | 'restrict', after: string): RetentionRule {
  return {
    id,
    title: id,
    categories: [],
    purposes: [],
    facts: { seen: { label: 'last seen', type: 'date' } },
    phases: [{ action, due: { from: 'seen', after } }],
  } as unknown as RetentionRule;
}

const engineFor = (db: Kysely<any>, tenant: string, schedule: ScheduleEntryInput[]) =>
  createRetentionEngine({ db, policy: tenantPolicy(tenant), schedule, clock: fixedClock(TODAY) });

async function rows(db: Kysely<any>, table: string): Promise<string[]> {
  const result = await sql<{
    tenant_id: string;
    id: number;
  }>`select tenant_id, id from ${sql.table(table)} order by tenant_id, id`.execute(db);
  return result.rows.map((row) => `${row.tenant_id}/${Number(row.id)}`);
}

describe.each(testEngines())('retention on tables shared by tenants on $engine', (engine) => {
  let database: TestDatabase;
  let db: Kysely<any>;
  beforeEach(async () => {
    database = await createTestDatabase(engine);
    db = database.db;
    await migrate(db, [retentionMigrations]);
  });
  afterEach(async () => {
    await database?.destroy();
  });

  it("a delete sweep leaves another tenant's row with the same key, even one that is due and held", async () => {
    await db.schema
      .createTable('visits')
      .addColumn('tenant_id', 'varchar(16)', (col) => col.notNull())
      .addColumn('id', 'integer', (col) => col.notNull())
      .addColumn('seen', 'varchar(10)')
      .addPrimaryKeyConstraint('visits_pk', ['tenant_id', 'id'])
      .execute();
    await db
      .insertInto('visits')
      .values([
        { tenant_id: 'a', id: 1, seen: '2020-01-01' },
        { tenant_id: 'b', id: 1, seen: '2020-01-01' },
        { tenant_id: 'a', id: 2, seen: '2025-01-01' },
        { tenant_id: 'b', id: 2, seen: '2020-01-01' },
      ])
      .execute();
    const schedule: ScheduleEntryInput[] = [
      {
        rule: rule('visits', 'delete', 'P1Y'),
        table: 'visits',
        key: 'id',
        tenantColumn: 'tenant_id',
        facts: { seen: 'seen' },
      },
    ];
    const a = engineFor(db, 'a', schedule);
    const b = engineFor(db, 'b', schedule);
    await b.placeHold({ scope: { table: 'visits', key: 1 }, reason: 'litigation', placedBy: 'legal-b' });

    const run = await a.sweep();
    expect(run.counts.map((c) => [c.table, c.outcome, c.count])).toEqual([['visits', 'done', 1]]);
    // Tenant b's row 1 (held) and row 2 (due under the same rule) are b's sweep's business.
    expect(await rows(db, 'visits')).toEqual(['a/2', 'b/1', 'b/2']);

    await b.sweep();
    expect(await rows(db, 'visits')).toEqual(['a/2', 'b/1']);
  });

  it("deleting a tenant's parent row deletes that tenant's children only", async () => {
    for (const table of ['prospects', 'notes']) {
      await db.schema
        .createTable(table)
        .addColumn('tenant_id', 'varchar(16)', (col) => col.notNull())
        .addColumn('id', 'integer', (col) => col.notNull())
        .addColumn('prospect_id', 'integer')
        .addColumn('seen', 'varchar(10)')
        .addPrimaryKeyConstraint(`${table}_pk`, ['tenant_id', 'id'])
        .execute();
    }
    await db
      .insertInto('prospects')
      .values([
        { tenant_id: 'a', id: 1, seen: '2020-01-01' },
        { tenant_id: 'b', id: 1, seen: '2025-01-01' },
      ])
      .execute();
    await db
      .insertInto('notes')
      .values([
        { tenant_id: 'a', id: 10, prospect_id: 1 },
        { tenant_id: 'b', id: 20, prospect_id: 1 },
      ])
      .execute();
    const schedule: ScheduleEntryInput[] = [
      {
        rule: rule('prospects', 'delete', 'P3Y'),
        table: 'prospects',
        key: 'id',
        tenantColumn: 'tenant_id',
        facts: { seen: 'seen' },
        // No tenant column named: the parent's is the child's too.
        children: [{ table: 'notes', column: 'prospect_id', key: 'id' }],
      },
    ];
    const run = await engineFor(db, 'a', schedule).sweep();
    expect(run.counts.map((c) => [c.table, c.outcome, c.count])).toEqual([
      ['notes', 'cascade', 1],
      ['prospects', 'done', 1],
    ]);
    expect(await rows(db, 'prospects')).toEqual(['b/1']);
    expect(await rows(db, 'notes')).toEqual(['b/20']);
  });

  it("lifting a tenant's restriction leaves another tenant's restricted row with the same key restricted", async () => {
    await db.schema
      .createTable('members')
      .addColumn('tenant_id', 'varchar(16)', (col) => col.notNull())
      .addColumn('id', 'integer', (col) => col.notNull())
      .addColumn('seen', 'varchar(10)')
      .addColumn('restricted', 'integer', (col) => col.notNull().defaultTo(0))
      .addPrimaryKeyConstraint('members_pk', ['tenant_id', 'id'])
      .execute();
    await db
      .insertInto('members')
      .values([
        { tenant_id: 'a', id: 1, seen: '2020-01-01' },
        { tenant_id: 'b', id: 1, seen: '2020-01-01' },
      ])
      .execute();
    const schedule: ScheduleEntryInput[] = [
      {
        rule: rule('inactive', 'restrict', 'P27M'),
        table: 'members',
        key: 'id',
        tenantColumn: 'tenant_id',
        facts: { seen: 'seen' },
        restrictColumn: 'restricted',
      },
    ];
    const a = engineFor(db, 'a', schedule);
    const b = engineFor(db, 'b', schedule);
    await a.sweep();
    await b.sweep();
    // Tenant a's member comes back: a's next sweep lifts a's restriction, and only a's.
    await db.updateTable('members').set({ seen: '2025-05-01' }).where('tenant_id', '=', 'a').execute();
    const run = await a.sweep();
    expect(run.counts.map((c) => [c.table, c.outcome, c.count])).toEqual([['members', 'lifted', 1]]);
    const flags = await db
      .selectFrom('members')
      .select(['tenant_id', 'restricted'])
      .orderBy('tenant_id')
      .execute();
    expect(flags.map((row) => [row.tenant_id, Number(row.restricted)])).toEqual([
      ['a', 0],
      ['b', 1],
    ]);
    expect(await b.isRestricted({ table: 'members', key: 1 })).toBe(true);
  });
});
