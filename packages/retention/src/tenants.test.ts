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

/** Prospects and their notes, both keyed (tenant_id, id): a note's prospect_id repeats across tenants. */
async function createProspectsAndNotes(db: Kysely<any>): Promise<void> {
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
}

const prospectsSchedule: ScheduleEntryInput[] = [
  {
    rule: rule('prospects', 'delete', 'P3Y'),
    table: 'prospects',
    key: 'id',
    tenantColumn: 'tenant_id',
    facts: { seen: 'seen' },
    children: [{ table: 'notes', column: 'prospect_id', key: 'id', tenantColumn: 'tenant_id' }],
  },
];

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
    await createProspectsAndNotes(db);
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
    const schedule = prospectsSchedule;
    const run = await engineFor(db, 'a', schedule).sweep();
    expect(run.counts.map((c) => [c.table, c.outcome, c.count])).toEqual([
      ['notes', 'cascade', 1],
      ['prospects', 'done', 1],
    ]);
    expect(await rows(db, 'prospects')).toEqual(['b/1']);
    expect(await rows(db, 'notes')).toEqual(['b/20']);
  });

  it("another tenant's held child with the same parent key does not keep this tenant's due parent", async () => {
    await createProspectsAndNotes(db);
    await db
      .insertInto('prospects')
      .values([
        { tenant_id: 'a', id: 1, seen: '2020-01-01' },
        { tenant_id: 'a', id: 5, seen: '2025-01-01' },
        { tenant_id: 'b', id: 1, seen: '2025-01-01' },
      ])
      .execute();
    // a's note 10 (held by a) belongs to a's prospect 5; b's note 10 to b's prospect 1.
    await db
      .insertInto('notes')
      .values([
        { tenant_id: 'a', id: 10, prospect_id: 5 },
        { tenant_id: 'b', id: 10, prospect_id: 1 },
      ])
      .execute();
    const schedule = prospectsSchedule;
    const a = engineFor(db, 'a', schedule);
    await a.placeHold({ scope: { table: 'notes', key: 10 }, reason: 'claim', placedBy: 'legal-a' });
    const run = await a.sweep();
    expect(run.counts.map((c) => [c.table, c.outcome, c.count])).toEqual([['prospects', 'done', 1]]);
    expect(await rows(db, 'prospects')).toEqual(['a/5', 'b/1']);
    expect(await rows(db, 'notes')).toEqual(['a/10', 'b/10']);
  });

  it('a child without a tenant column (it reaches its tenant through its parent) is deleted with its parent', async () => {
    await db.schema
      .createTable('orders')
      .addColumn('id', 'integer', (col) => col.primaryKey())
      .addColumn('tenant_id', 'varchar(16)', (col) => col.notNull())
      .addColumn('seen', 'varchar(10)')
      .execute();
    await db.schema
      .createTable('order_items')
      .addColumn('id', 'integer', (col) => col.primaryKey())
      .addColumn('order_id', 'integer')
      .execute();
    await db
      .insertInto('orders')
      .values([
        { id: 1, tenant_id: 'a', seen: '2020-01-01' },
        { id: 2, tenant_id: 'b', seen: '2020-01-01' },
      ])
      .execute();
    await db
      .insertInto('order_items')
      .values([
        { id: 11, order_id: 1 },
        { id: 21, order_id: 2 },
      ])
      .execute();
    const schedule: ScheduleEntryInput[] = [
      {
        rule: rule('orders', 'delete', 'P3Y'),
        table: 'orders',
        key: 'id',
        tenantColumn: 'tenant_id',
        facts: { seen: 'seen' },
        children: [{ table: 'order_items', column: 'order_id', key: 'id' }],
      },
    ];
    const a = engineFor(db, 'a', schedule);
    // A hold on a child row names it by key, with no tenant column to check (helper-94: "no such column").
    await a.placeHold({ scope: { table: 'order_items', key: 11 }, reason: 'claim', placedBy: 'legal-a' });
    expect((await a.sweep()).counts).toEqual([]);
    const [hold] = await a.holds({ active: true });
    await a.releaseHold(hold!.id, { by: 'legal-a', reason: 'settled' });
    const run = await a.sweep();
    expect(run.counts.map((c) => [c.table, c.outcome, c.count])).toEqual([
      ['order_items', 'cascade', 1],
      ['orders', 'done', 1],
    ]);
    const left = await db.selectFrom('order_items').select('id').execute();
    expect(left.map((row) => Number(row.id))).toEqual([21]);
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
