import { fixedClock, isPrivacyKitError, retentionRuleSchema } from '@privacykit/core';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createRetentionEngine } from './engine.js';
import type { RetentionEngineOptions } from './engine.js';
import { seedRule, seedWorld, worldDataMap, worldSchedule } from './fixtures/world.js';
import { retentionMigrations } from './migrations.js';

const TODAY = '2025-03-01T10:00:00.000Z'; // 11:00 in Paris

async function ids(db: Kysely<any>, table: string): Promise<number[]> {
  const rows = (await db.selectFrom(table).select('id').orderBy('id').execute()) as { id: number }[];
  return rows.map((row) => Number(row.id));
}

async function count(db: Kysely<any>, table: string): Promise<number> {
  const row = (await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirst()) as { n: unknown };
  return Number(row.n);
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isPrivacyKitError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
}

describe.each(testEngines())('retention engine on $engine', (engine) => {
  let database: TestDatabase;
  let db: Kysely<any>;
  const clock = fixedClock(TODAY);
  const make = (extra: Partial<RetentionEngineOptions> = {}) =>
    createRetentionEngine({
      db,
      schedule: worldSchedule,
      dataMap: worldDataMap,
      clock,
      pseudonymKey: 'test-key',
      ...extra,
    });

  beforeEach(async () => {
    clock.set(TODAY);
    database = await createTestDatabase(engine);
    db = database.db;
    await migrate(db, [retentionMigrations]);
    await seedWorld(db);
  });
  afterEach(async () => {
    await database?.destroy();
  });

  async function holdTheUsualSuspects(retention: ReturnType<typeof make>) {
    const row = await retention.placeHold({
      scope: { table: 'prospects', key: 6 },
      reason: 'case 2025-17',
      placedBy: 'legal@example.com',
    });
    const subject = await retention.placeHold({
      scope: { subject: { email: ['Held@Example.com'] } },
      reason: 'subject in litigation',
      placedBy: 'legal@example.com',
    });
    const child = await retention.placeHold({
      scope: { table: 'prospect_notes', key: 80 },
      reason: 'note is evidence',
      placedBy: 'legal@example.com',
    });
    return { row, subject, child };
  }

  it('a dry run reports what the sweep will do, with cutoffs and sample keys, and changes nothing', async () => {
    const retention = make();
    await holdTheUsualSuspects(retention);
    const before = await Promise.all(
      ['prospects', 'prospect_notes', 'bank_cards', 'customers', 'visits'].map((t) => count(db, t)),
    );
    const report = await retention.dryRun();
    const prospects = report.find((p) => p.rule === 'prospects');
    expect(prospects).toMatchObject({ due: 3, held: 3, sampleKeys: ['1', '3', '4'], today: '2025-03-01' });
    expect(prospects?.cutoffs.map((c) => c.value)).toEqual(['2022-03-01', '2022-03-01']);
    expect(report.find((p) => p.rule === 'bank-card' && p.action === 'delete')).toMatchObject({
      due: 2,
      sampleKeys: ['1', '3'],
    });
    expect(report.find((p) => p.rule === 'bank-card' && p.action === 'restrict')).toMatchObject({
      due: 1,
      sampleKeys: ['2'],
    });
    expect(report.find((p) => p.rule === 'customer-relationship' && p.action === 'delete')?.due).toBe(1);
    expect(report.find((p) => p.rule === 'customer-relationship' && p.action === 'restrict')?.due).toBe(1);
    expect(report.find((p) => p.rule === 'traffic-data')).toMatchObject({ due: 2, sampleKeys: ['1', '2'] });
    const after = await Promise.all(
      ['prospects', 'prospect_notes', 'bank_cards', 'customers', 'visits'].map((t) => count(db, t)),
    );
    expect(after).toEqual(before);
    expect(await count(db, 'privacykit_retention_dispositions')).toBe(0);
    expect(await count(db, 'privacykit_retention_runs')).toBe(0);
    expect(await count(db, 'privacykit_retention_applied')).toBe(0);

    // The sweep then does exactly what the dry run said.
    const result = await retention.sweep();
    const done = (rule: string, action: string) =>
      result.counts.find((c) => c.rule === rule && c.action === action && c.outcome === 'done')?.count ?? 0;
    for (const phase of report) expect(done(phase.rule, phase.action)).toBe(phase.due);
  });

  it('sweeps every due phase once, children first, with one disposition record per row and a certificate', async () => {
    const retention = make();
    await holdTheUsualSuspects(retention);
    const result = await retention.sweep({ batchSize: 2 });
    expect(result.complete).toBe(true);
    expect(await ids(db, 'prospects')).toEqual([2, 5, 6, 7, 8]);
    expect(await ids(db, 'prospect_notes')).toEqual([80]);
    expect(await ids(db, 'bank_cards')).toEqual([2]);
    expect(await ids(db, 'customers')).toEqual([1, 2]);
    const customers = (await db
      .selectFrom('customers')
      .select(['id', 'restricted'])
      .orderBy('id')
      .execute()) as {
      id: number;
      restricted: number;
    }[];
    expect(customers.map((c) => Number(c.restricted))).toEqual([0, 1]);
    expect(await retention.isRestricted({ table: 'customers', key: 2 })).toBe(true);
    expect(await retention.isRestricted({ table: 'customers', key: 1 })).toBe(false);
    expect(await retention.isRestricted({ table: 'bank_cards', key: '2', purpose: 'payments' })).toBe(true);

    const visits = (await db.selectFrom('visits').selectAll().orderBy('id').execute()) as Record<
      string,
      unknown
    >[];
    expect(visits[0]).toMatchObject({ ip: null, recorded_at: '2024-02' }); // Feb 1 in Paris
    expect(visits[0]?.username).toMatch(/^[0-9a-f]{64}$/);
    expect(visits[2]).toMatchObject({ username: 'eve', ip: '192.0.2.3' });

    const records = (await db
      .selectFrom('privacykit_retention_dispositions')
      .selectAll()
      .orderBy('seq')
      .execute()) as Record<string, unknown>[];
    expect(records).toHaveLength(13);
    expect(result.records).toBe(13);
    // A parent's notes are recorded (and deleted) before the parent.
    const order = records.map((r) => `${r.table_name}:${r.row_key}:${r.outcome}`);
    expect(order.indexOf('prospect_notes:10:cascade')).toBeLessThan(order.indexOf('prospects:1:done'));
    const card1 = records.find((r) => r.table_name === 'bank_cards' && r.row_key === '1');
    expect(card1).toMatchObject({
      action: 'delete',
      due_date: '2025-02-28',
      outcome: 'done',
      rule: 'bank-card',
    });
    const customer3 = records.find((r) => r.table_name === 'customers' && r.row_key === '3');
    expect(customer3).toMatchObject({ action: 'delete', phase: 1, due_date: '2024-12-31' });

    const check = await retention.verifyCertificate(result.runId);
    expect(check).toMatchObject({ valid: true, records: 13 });
    const certificate = await retention.certificate(result.runId);
    expect(certificate).toMatchObject({
      status: 'finished',
      policyVersion: 'unversioned',
      hash: result.hash,
    });
    expect(certificate.counts.find((c) => c.rule === 'prospects' && c.outcome === 'cascade')?.count).toBe(3);

    // Idempotent: nothing left to do.
    const again = await retention.sweep();
    expect(again.records).toBe(0);
    expect(await count(db, 'privacykit_retention_dispositions')).toBe(13);

    // Tampering with a record breaks the certificate.
    await db
      .updateTable('privacykit_retention_dispositions')
      .set({ due_date: '2025-03-01' })
      .where('run_id', '=', result.runId)
      .where('row_key', '=', '1')
      .where('table_name', '=', 'bank_cards')
      .execute();
    expect((await retention.verifyCertificate(result.runId)).valid).toBe(false);
  });

  it('answers erasure which rows a hold covers: by row, subject, table and category, with the reason and until date (Art 17(3)(e))', async () => {
    const retention = make();
    const keys = ['1', '6', '7', '8', '99'];
    expect(await retention.heldRows({ table: 'prospects', keys })).toEqual([]);
    const rowHold = await retention.placeHold({
      scope: { table: 'prospects', key: 6 },
      reason: 'case 2025-17',
      placedBy: 'legal',
    });
    const subjectHold = await retention.placeHold({
      scope: { subject: { email: ['Held@Example.com'] } },
      reason: 'subject in litigation',
      placedBy: 'legal',
      expiresAt: '2027-01-31T00:00:00.000Z',
    });
    expect(await retention.heldRows({ table: 'prospects', keys })).toEqual([
      { key: '6', reason: `legal hold ${rowHold.id}: case 2025-17` },
      { key: '7', reason: `legal hold ${subjectHold.id}: subject in litigation`, until: '2027-01-31' },
    ]);
    // Several holds on one row: each is named, oldest first, and the row is kept until the last one ends.
    clock.set(new Date(Date.parse(TODAY) + 60_000).toISOString());
    const later = await retention.placeHold({
      scope: { table: 'prospects', key: 7 },
      reason: 'tax audit',
      placedBy: 'legal',
      expiresAt: '2028-06-30T00:00:00.000Z',
    });
    expect(await retention.heldRows({ table: 'prospects', keys: ['7', '7'] })).toEqual([
      {
        key: '7',
        reason: `legal hold ${subjectHold.id}: subject in litigation; legal hold ${later.id}: tax audit`,
        until: '2028-06-30',
      },
    ]);
    const open = await retention.placeHold({
      scope: { table: 'prospects', key: 7 },
      reason: 'criminal inquiry',
      placedBy: 'legal',
    });
    const [both] = await retention.heldRows({ table: 'prospects', keys: ['7'] });
    expect(both?.reason).toContain(`legal hold ${open.id}: criminal inquiry`);
    expect(both).not.toHaveProperty('until');
    for (const hold of [later, open]) await retention.releaseHold(hold.id, { by: 'legal', reason: 'closed' });
    // The end is the day in the zone the table's rule keeps its dates in (the seed rules' Paris),
    // not the UTC date of the instant: 23:30Z is already the next day there.
    const late = await retention.placeHold({
      scope: { table: 'prospects', key: 8 },
      reason: 'late filing',
      placedBy: 'legal',
      expiresAt: '2029-03-01T23:30:00.000Z',
    });
    expect(await retention.heldRows({ table: 'prospects', keys: ['8'] })).toEqual([
      { key: '8', reason: `legal hold ${late.id}: late filing`, until: '2029-03-02' },
    ]);
    await retention.releaseHold(late.id, { by: 'legal', reason: 'closed' });
    // Only active holds of this tenant count; other tables are untouched.
    expect(await retention.heldRows({ table: 'prospects', keys, tenant: 'another' })).toEqual([]);
    expect(await retention.heldRows({ table: 'prospect_notes', keys: ['10', '80'] })).toEqual([]);
    const table = await retention.placeHold({
      scope: { table: 'prospect_notes' },
      reason: 'audit',
      placedBy: 'dpo',
    });
    expect(
      (await retention.heldRows({ table: 'prospect_notes', keys: ['10', '80'] })).map((row) => row.key),
    ).toEqual(['10', '80']);
    await retention.releaseHold(table.id, { by: 'dpo', reason: 'audit closed' });
    expect(await retention.heldRows({ table: 'prospect_notes', keys: ['10', '80'] })).toEqual([]);
    const category = await retention.placeHold({
      scope: { category: 'usage.traffic' },
      reason: 'regulator inquiry',
      placedBy: 'dpo',
    });
    expect(await retention.heldRows({ table: 'visits', keys: ['3'] })).toEqual([
      { key: '3', reason: `legal hold ${category.id}: regulator inquiry` },
    ]);
  });

  it('holds win on every path and the schedule resumes when they are released or expire', async () => {
    const retention = make();
    const { row, subject, child } = await holdTheUsualSuspects(retention);
    await retention.sweep();
    expect(await ids(db, 'prospects')).toEqual([2, 5, 6, 7, 8]);

    // A table hold and a category hold stop whole tables, however due their rows.
    clock.set('2026-06-01T10:00:00.000Z');
    const table = await retention.placeHold({
      scope: { table: 'bank_cards' },
      reason: 'audit',
      placedBy: 'dpo',
    });
    const category = await retention.placeHold({
      scope: { category: 'usage.traffic' },
      reason: 'regulator inquiry',
      placedBy: 'dpo',
      expiresAt: '2026-07-01T00:00:00.000Z',
    });
    const report = await retention.dryRun();
    expect(report.find((p) => p.rule === 'bank-card' && p.action === 'delete')).toMatchObject({
      due: 0,
      held: 1,
      heldBy: table.id,
    });
    const held = await retention.sweep();
    expect(held.counts.filter((c) => c.rule === 'bank-card' || c.rule === 'traffic-data')).toEqual([]);
    expect(await ids(db, 'bank_cards')).toEqual([2]);
    const visit3 = (await db.selectFrom('visits').select('ip').where('id', '=', 3).executeTakeFirst()) as {
      ip: string;
    };
    expect(visit3.ip).toBe('192.0.2.3');

    // Releasing needs who and why; released holds stop counting.
    await expectCode(retention.releaseHold(table.id, { by: '', reason: 'done' }), 'retention/invalid-hold');
    await expectCode(
      retention.releaseHold('nope', { by: 'dpo', reason: 'done' }),
      'retention/hold-not-found',
    );
    for (const hold of [row, subject, child, table]) {
      await retention.releaseHold(hold.id, { by: 'dpo', reason: 'case closed' });
    }
    await expectCode(
      retention.releaseHold(row.id, { by: 'dpo', reason: 'again' }),
      'retention/hold-already-released',
    );
    // The category hold expires on July 1st: after that, the sweep releases it and proceeds.
    clock.set('2026-07-02T10:00:00.000Z');
    const resumed = await retention.sweep();
    expect(resumed.expiredHolds).toBe(1);
    // By now every prospect is due (2 since 2026-05-01, 5 since 2025-03-02); none is held.
    expect(await ids(db, 'prospects')).toEqual([]);
    expect(await ids(db, 'prospect_notes')).toEqual([]);
    expect(await ids(db, 'bank_cards')).toEqual([]);
    const released = (await retention.holds()).find((h) => h.id === category.id);
    expect(released).toMatchObject({ releasedBy: 'system', releaseReason: 'expired' });
    expect(await retention.holds({ active: true })).toEqual([]);
    const visitsLeft = (await db
      .selectFrom('visits')
      .select('ip')
      .where('id', '=', 3)
      .executeTakeFirst()) as {
      ip: string | null;
    };
    expect(visitsLeft.ip).toBeNull();
  });

  it('rejects bad holds and schedules with typed errors and writes nothing', async () => {
    const retention = make();
    await expectCode(
      retention.placeHold({ scope: { table: 'prospects' }, reason: '  ', placedBy: 'dpo' }),
      'retention/invalid-hold',
    );
    await expectCode(
      retention.placeHold({ scope: { table: 'prospects; drop table x' }, reason: 'r', placedBy: 'dpo' }),
      'retention/invalid-hold',
    );
    await expectCode(
      retention.placeHold({ scope: { subject: { phone: ['1'] } }, reason: 'r', placedBy: 'dpo' }),
      'retention/invalid-hold',
    );
    // Past year 9999 the stored text (`+010000-…`) sorted before today's: the hold read as long
    // expired, and the sweep released it and deleted what it held.
    for (const expiresAt of [new Date('+010000-01-01T00:00:00Z'), '+010000-01-01T00:00:00Z']) {
      await expectCode(
        retention.placeHold({ scope: { table: 'prospects' }, reason: 'claim', placedBy: 'dpo', expiresAt }),
        'retention/invalid-hold',
      );
    }
    await expectCode(
      make({ dataMap: undefined }).placeHold({
        scope: { subject: { email: ['a@b.c'] } },
        reason: 'r',
        placedBy: 'dpo',
      }),
      'retention/needs-data-map',
    );
    expect(await count(db, 'privacykit_retention_holds')).toBe(0);
    expect(() =>
      make({
        schedule: [
          {
            rule: seedRule('prospects'),
            table: 'prospects',
            key: 'id',
            facts: { collectedAt: 'created_at' },
          },
        ],
      }),
    ).toThrow(expect.objectContaining({ code: 'retention/invalid-schedule' }));
    expect(() =>
      make({ schedule: [{ rule: 'prospects', table: 'prospects', key: 'id', facts: {} }] }),
    ).toThrow(expect.objectContaining({ code: 'retention/unknown-rule' }));
    await expectCode(make().sweep({ batchSize: 0 }), 'retention/invalid-schedule');
    // Before: a raw SQLite datatype mismatch from the LIMIT, after the run was opened.
    for (const budget of [
      1.5,
      0,
      { rows: 'abc' },
      { milliseconds: -1 },
      { milliseconds: Number.NaN },
      'ten',
    ]) {
      await expectCode(make().sweep({ budget: budget as never }), 'retention/invalid-schedule');
    }
    expect(await count(db, 'privacykit_retention_runs')).toBe(0);
  });

  it('refuses a hold that would protect nothing: an unknown table, or a row key the sweep would never match', async () => {
    const retention = make();
    // A typo and a different case: "active" holds on these would keep nothing from the sweep.
    for (const table of ['prospect', 'Prospects']) {
      await expectCode(
        retention.placeHold({ scope: { table }, reason: 'claim', placedBy: 'legal' }),
        'retention/invalid-hold',
      );
      await expectCode(
        retention.placeHold({ scope: { table, key: 1 }, reason: 'claim', placedBy: 'legal' }),
        'retention/invalid-hold',
      );
    }
    // '01' is not how the sweep spells key 1 (it compares cast(id as text)), 'one' is no key, 99 no row.
    for (const key of ['01', ' 1', 'one', '1.0', 99]) {
      await expectCode(
        retention.placeHold({ scope: { table: 'prospects', key }, reason: 'claim', placedBy: 'legal' }),
        'retention/invalid-hold',
      );
    }
    const refused = await retention
      .placeHold({ scope: { table: 'prospects', key: '01' }, reason: 'c', placedBy: 'l' })
      .then(
        () => '',
        (e: Error) => e.message,
      );
    expect(refused).toContain('give "1"');
    expect(await count(db, 'privacykit_retention_holds')).toBe(0);

    // The key as text or as a number holds the row; a child table of the schedule can be held too.
    await retention.placeHold({
      scope: { table: 'prospects', key: '1' },
      reason: 'claim',
      placedBy: 'legal',
    });
    await retention.placeHold({ scope: { table: 'prospects', key: 3 }, reason: 'claim', placedBy: 'legal' });
    await retention.placeHold({
      scope: { table: 'prospect_notes', key: 80 },
      reason: 'evidence',
      placedBy: 'dpo',
    });
    await retention.sweep();
    expect(await ids(db, 'prospects')).toEqual([1, 2, 3, 5, 8]);
  });

  it('a litigation hold on records not imported yet is a subject hold: it keeps them once they arrive, from sweeps and erasure', async () => {
    const retention = make();
    // The row does not exist yet: a row hold cannot check its key, so it is refused…
    await expectCode(
      retention.placeHold({ scope: { table: 'prospects', key: 9 }, reason: 'claim', placedBy: 'legal' }),
      'retention/invalid-hold',
    );
    // …and the refusal says what to do instead…
    await expect(
      retention.placeHold({ scope: { table: 'prospects', key: 9 }, reason: 'claim', placedBy: 'legal' }),
    ).rejects.toThrow(/hold their subject/);
    // …while a hold on the subject's identity needs no row, and covers every table the data map links.
    await retention.placeHold({
      scope: { subject: { email: ['Incoming@Example.com'] } },
      reason: 'litigation: records arriving from the legacy CRM',
      placedBy: 'legal',
    });
    // Imported the next day, already past their retention period.
    await db
      .insertInto('prospects')
      .values({ id: 9, email: 'incoming@example.com', created_at: '2020-06-01', last_contact_at: null })
      .execute();
    await retention.sweep();
    expect(await ids(db, 'prospects')).toContain(9);
    expect((await retention.heldRows({ table: 'prospects', keys: ['9'] })).map((held) => held.key)).toEqual([
      '9',
    ]);
  });

  it('reports the backlog with the oldest overdue date, and a budget stops a sweep that the next one resumes', async () => {
    const retention = make();
    const backlog = await retention.backlog();
    expect(backlog.find((b) => b.rule === 'prospects')).toMatchObject({ count: 6, oldestDue: '2023-06-01' });
    expect(backlog.find((b) => b.rule === 'bank-card' && b.action === 'delete')).toMatchObject({
      count: 2,
      oldestDue: '2024-12-31',
    });
    const first = await retention.sweep({ batchSize: 2, budget: 3 });
    expect(first.complete).toBe(false);
    expect(first.counts.reduce((n, c) => n + (c.outcome === 'done' ? c.count : 0), 0)).toBe(3);
    const rest = await retention.sweep({ batchSize: 2 });
    expect(rest.complete).toBe(true);
    expect((await retention.backlog()).every((b) => b.count === 0)).toBe(true);
    expect(await count(db, 'privacykit_retention_dispositions')).toBe(6 + 4 + 2 + 1 + 2 + 2); // prospects + notes, cards, customers, visits
  });

  it('leaves a row whose date it cannot read, reports it, and sweeps everything else', async () => {
    // Day-first, slashed and US dates sort at or above '0001-01-01', so SQL selects them as due.
    await db
      .insertInto('prospects')
      .values([
        { id: 20, email: 'p20@example.com', created_at: '15/01/2021', last_contact_at: null },
        { id: 21, email: 'p21@example.com', created_at: '2021/01/15', last_contact_at: null },
      ])
      .execute();
    await db
      .insertInto('bank_cards')
      .values({
        id: 20,
        email: 'c20@example.com',
        payment_received: '2024-01-30',
        debit_date: '01/31/2024',
        card_type: 'immediate',
        card_expiry: '2026-12',
      })
      .execute();
    const retention = make();
    const backlog = await retention.backlog();
    expect(backlog.find((b) => b.rule === 'prospects')).toMatchObject({
      count: 6,
      invalid: 2,
      invalidKeys: ['20', '21'],
    });
    expect(backlog.find((b) => b.rule === 'bank-card' && b.action === 'delete')).toMatchObject({
      count: 2,
      invalid: 1,
      invalidKeys: ['20'],
    });

    const result = await retention.sweep({ batchSize: 2 });
    // The valid overdue rows of every rule were handled, the unreadable ones left as they are.
    expect(await ids(db, 'prospects')).toEqual([2, 5, 20, 21]);
    expect(await ids(db, 'bank_cards')).toEqual([2, 20]);
    expect(await ids(db, 'customers')).toEqual([1, 2]);
    const invalid = result.counts.filter((c) => c.outcome === 'invalid');
    expect(invalid).toEqual([
      { rule: 'bank-card', table: 'bank_cards', phase: 1, action: 'delete', outcome: 'invalid', count: 1 },
      { rule: 'prospects', table: 'prospects', phase: 0, action: 'delete', outcome: 'invalid', count: 2 },
    ]);
    expect(await retention.certificate(result.runId)).toMatchObject({
      status: 'finished',
      counts: result.counts,
    });
    expect((await retention.verifyCertificate(result.runId)).valid).toBe(true);
    // The next sweep runs too, and reports them again until they are repaired.
    const again = await retention.sweep();
    expect(again.counts.map((c) => `${c.rule}:${c.outcome}:${c.count}`)).toEqual([
      'bank-card:invalid:1',
      'prospects:invalid:2',
    ]);
    await db.updateTable('prospects').set({ created_at: '2021-01-15' }).where('id', 'in', [20, 21]).execute();
    await retention.sweep();
    expect(await ids(db, 'prospects')).toEqual([2, 5]);
  });

  it('closes the run record as failed when a sweep stops on an error', async () => {
    const retention = make({
      dataMap: undefined,
      schedule: [
        worldSchedule[0]!,
        // A table the database does not have: the sweep cannot go on.
        {
          rule: seedRule('litigation'),
          table: 'no_such_cases',
          key: 'id',
          facts: { appealsExhausted: 'exhausted' },
        },
      ],
    });
    const error = await retention.sweep().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const runs = (await db.selectFrom('privacykit_retention_runs').select('id').execute()) as {
      id: string;
    }[];
    expect(runs).toHaveLength(1);
    const run = await retention.certificate(runs[0]!.id);
    expect(run.status).toBe('failed');
    expect(run.finishedAt).not.toBeNull();
    // What it did before the error is on the record and checkable.
    expect(run.counts.find((c) => c.rule === 'prospects' && c.outcome === 'done')?.count).toBe(6);
    expect((await retention.verifyCertificate(run.runId)).valid).toBe(true);
  });

  it('moves into the next phase later (restrict → delete) without repeating the first', async () => {
    const retention = make();
    await retention.sweep();
    clock.set('2029-07-01T10:00:00.000Z');
    const later = await retention.sweep();
    const customers = later.counts.filter((c) => c.rule === 'customer-relationship');
    expect(customers).toEqual([
      {
        rule: 'customer-relationship',
        table: 'customers',
        phase: 1,
        action: 'delete',
        outcome: 'done',
        count: 1,
      },
    ]);
    expect(await ids(db, 'customers')).toEqual([1]);
    // Progress rows of deleted rows go with them.
    const applied = (await db
      .selectFrom('privacykit_retention_applied')
      .select('row_key')
      .where('table_name', '=', 'customers')
      .execute()) as unknown[];
    expect(applied).toEqual([]);
  });

  it('archives, queues for review, and lifts a restriction when new activity makes it no longer due', async () => {
    await db.schema
      .createTable('marketing')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('last_purchase', sql`varchar(10)`)
      .addColumn('last_use', sql`varchar(10)`)
      .addColumn('subscribed', 'integer')
      .execute();
    await db.schema
      .createTable('marketing_archive')
      .addColumn('id', 'integer')
      .addColumn('last_purchase', sql`varchar(10)`)
      .addColumn('last_use', sql`varchar(10)`)
      .addColumn('subscribed', 'integer')
      .execute();
    await db
      .insertInto('marketing')
      .values([
        { id: 1, last_purchase: '2022-11-30', last_use: '2022-10-01', subscribed: 0 },
        { id: 2, last_purchase: '2022-11-30', last_use: null, subscribed: 1 },
        { id: 3, last_purchase: '2015-01-01', last_use: null, subscribed: 0 },
      ])
      .execute();
    const inactive = seedRule('marketing-inactive');
    const archiving = {
      ...inactive,
      id: 'inactive-archive',
      phases: [inactive.phases[0]!, { ...inactive.phases[1]!, action: 'archive' as const }],
    };
    const reviewing = {
      ...seedRule('litigation'),
      phases: [{ action: 'review' as const, due: { from: 'appealsExhausted' } }],
    };
    await db.schema
      .createTable('cases')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('exhausted', sql`varchar(10)`)
      .execute();
    await db
      .insertInto('cases')
      .values([
        { id: 1, exhausted: '2025-01-01' },
        { id: 2, exhausted: null },
      ])
      .execute();
    const retention = make({
      dataMap: undefined,
      schedule: [
        {
          rule: archiving,
          table: 'marketing',
          key: 'id',
          facts: { lastPurchase: 'last_purchase', lastAccountUse: 'last_use', subscribed: 'subscribed' },
          archiveTable: 'marketing_archive',
        },
        { rule: reviewing, table: 'cases', key: 'id', facts: { appealsExhausted: 'exhausted' } },
      ],
    });
    const first = await retention.sweep();
    expect(first.counts.map((c) => `${c.rule}:${c.action}:${c.outcome}:${c.count}`)).toEqual([
      'inactive-archive:restrict:done:1',
      'inactive-archive:archive:done:1',
      'litigation:review:done:1',
    ]);
    expect(await ids(db, 'marketing')).toEqual([1, 2]);
    expect(await ids(db, 'marketing_archive')).toEqual([3]);
    expect(await retention.isRestricted({ table: 'marketing', key: 1, purpose: 'newsletter' })).toBe(true);
    expect(await retention.isRestricted({ table: 'marketing', key: 1, purpose: 'service' })).toBe(false);
    expect((await retention.reviews()).map((r) => [r.table, r.key, r.dueDate])).toEqual([
      ['cases', '1', '2025-01-01'],
    ]);

    // Subscribing again lifts the marketing restriction (recorded), and it can come back later.
    await db.updateTable('marketing').set({ subscribed: 1 }).where('id', '=', 1).execute();
    const lifted = await retention.sweep();
    expect(lifted.counts.map((c) => `${c.rule}:${c.action}:${c.outcome}:${c.count}`)).toEqual([
      'inactive-archive:restrict:lifted:1',
    ]);
    expect(await retention.isRestricted({ table: 'marketing', key: 1 })).toBe(false);
    await db.updateTable('marketing').set({ subscribed: 0 }).where('id', '=', 1).execute();
    const again = await retention.sweep();
    expect(again.counts.map((c) => `${c.action}:${c.outcome}`)).toEqual(['restrict:done']);
    expect((await retention.sweep()).records).toBe(0);
  });
});

describe('SQLite one-statement deletes', () => {
  it('roll back and rerun checked when the planner disagrees with SQL, acting only on rows the planner dates', async () => {
    const database = await createTestDatabase({ engine: 'sqlite', url: 'sqlite' });
    try {
      const { db } = database;
      await migrate(db, [retentionMigrations]);
      // `kind` has no type, so no affinity: SQL compares '1' with 1 as unequal, the planner as equal.
      await sql`create table leads (id integer primary key, added_on text, kind)`.execute(db);
      await sql`insert into leads values (1, '2020-01-01', 2), (2, '2020-01-01', '1'), (3, '2020-01-01', 1), (4, '2024-06-01', 2)`.execute(
        db,
      );
      const rule = retentionRuleSchema.parse({
        id: 'leads',
        title: 'Leads',
        facts: { addedOn: { label: 'added' }, kind: { label: 'kind', type: 'value' } },
        phases: [
          {
            action: 'delete',
            due: {
              when: [{ if: { fact: 'kind', equals: 1 }, then: { from: 'addedOn', after: 'P10Y' } }],
              otherwise: { from: 'addedOn', after: 'P1Y' },
            },
          },
        ],
      });
      const retention = createRetentionEngine({
        db,
        schedule: [{ rule, table: 'leads', key: 'id', facts: { addedOn: 'added_on', kind: 'kind' } }],
        clock: fixedClock(TODAY),
      });
      const result = await retention.sweep({ batchSize: 10 });
      // Row 2 is selected by SQL (otherwise branch) but not due by the planner (P10Y): kept.
      expect(await ids(db, 'leads')).toEqual([2, 3, 4]);
      expect(result.counts).toEqual([
        { rule: 'leads', table: 'leads', phase: 0, action: 'delete', outcome: 'done', count: 1 },
      ]);
      expect((await retention.verifyCertificate(result.runId)).valid).toBe(true);
    } finally {
      await database.destroy();
    }
  });
});
