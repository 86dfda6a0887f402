import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { countSubjectRows } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import type { ErasureReport } from './execute.js';
import { deliverPending, httpNotificationSender, listNotifications, recipientsFor } from './outbox.js';
import { getErasureRecord, planErasure } from './plan.js';
import {
  ada,
  bob,
  dataMap,
  dataMapWithAudit,
  dumpBob,
  dumpHost,
  facts,
  policy,
  seedHost,
  strategies,
} from './testing-fixtures.js';
import { maskValue } from './strategy.js';
import { verifyErasure } from './verify.js';

const clock = fixedClock('2025-06-01T12:00:00.000Z');

/** Each table's counts in the report stored on the plan. */
async function storedCounts(db: TestDatabase['db'], planId: string) {
  const report = (await getErasureRecord({ db, planId })).report as ErasureReport;
  return report.tables.map(({ table, deleted, updated, restricted }) => ({
    table,
    deleted,
    updated,
    restricted,
  }));
}
const base = { dataMap, policy, identities: ada, clock, strategies, facts };

describe.each(testEngines())('erasure on $engine', (engine) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await seedHost(t.db);
  });
  afterEach(async () => {
    await t.destroy();
  });

  it('plans without changing anything: deletions, masks, retained invoices with ground and date', async () => {
    const before = await dumpHost(t.db);
    const plan = await planErasure({ db: t.db, ...base });
    expect(await dumpHost(t.db)).toEqual(before);

    // Children before parents.
    const order = plan.tables.map((table) => table.table);
    expect(order.indexOf('order_lines')).toBeLessThan(order.indexOf('orders'));
    expect(order.indexOf('orders')).toBeLessThan(order.indexOf('customers'));
    expect(order.indexOf('invoices')).toBeLessThan(order.indexOf('customers'));

    const byName = Object.fromEntries(plan.tables.map((table) => [table.table, table]));
    expect(byName.order_lines).toMatchObject({ action: 'delete-row', rows: 4, erase: 4 });
    expect(byName.orders).toMatchObject({ action: 'delete-row', rows: 3, erase: 3 });
    expect(byName.orders!.sampleKeys).toEqual(['10', '11', '12']);
    expect(byName.logs).toMatchObject({ action: 'mask', rows: 5, erase: 5 });
    expect(byName.logs!.maskColumns.email).toEqual({ strategy: 'hmac' });

    const invoices = byName.invoices!;
    expect(invoices.erase).toBe(0);
    expect(invoices.retained).toHaveLength(1);
    expect(invoices.retained[0]).toMatchObject({
      source: 'rule',
      ground: 'legal-obligation',
      article: 'Art 17(3)(b)',
      ruleId: 'invoices',
      rows: 2,
      // 2020-01-31 + 10 years; 2024-02-29 + 10 years clamps to 2034-02-28.
      retainUntil: { earliest: '2030-01-31', latest: '2034-02-28', open: 0 },
    });
    // The marketing note is not an invoice's content: masked although the invoice is kept.
    expect(Object.keys(invoices.retained[0]!.maskColumns)).toEqual(['marketing_note']);

    // The customer row is kept as the invoices' anchor, its non-identity columns masked.
    const customers = byName.customers!;
    expect(customers.retained[0]).toMatchObject({ source: 'anchor', ground: 'legal-obligation', rows: 1 });
    expect(customers.retained[0]!.retainUntil.latest).toBe('2034-02-28');
    expect(Object.keys(customers.retained[0]!.maskColumns).sort()).toEqual(['born_on', 'name', 'phone']);

    expect(plan.summary).toMatchObject({ rows: 15, erase: 12, retained: 3, blocked: [] });
    // Art 19: processors that received Ada's data; staff (internal) are not notified.
    expect(recipientsFor(plan).map((r) => r.id)).toEqual(['hosting', 'mailer', 'payments']);

    // Serialisable and stored.
    expect(JSON.parse(JSON.stringify(plan))).toEqual(plan);
    const record = await getErasureRecord({ db: t.db, planId: plan.id });
    expect(record.status).toBe('planned');
    expect(record.plan).toEqual(plan);
  });

  it('executes, leaving only the restricted invoices and their anchor; verification proves it', async () => {
    const bobBefore = await dumpBob(t.db);
    expect(bobBefore.length).toBeGreaterThanOrEqual(7);
    const plan = await planErasure({ db: t.db, ...base });
    const report = await executeErasure(plan, { db: t.db, clock, batchSize: 2, setBasedBatchSize: 2 });

    // Rows are kept under Art 17(3): a partial erasure, with the ground reported.
    expect(report.status).toBe('partial');
    expect(report.failures).toEqual([]);
    expect(report.retained.find((r) => r.table === 'invoices')).toMatchObject({
      ground: 'legal-obligation',
      rows: 2,
    });
    const tables = Object.fromEntries(report.tables.map((r) => [r.table, r]));
    expect(tables.order_lines).toMatchObject({ status: 'done', deleted: 4 });
    expect(tables.orders).toMatchObject({ status: 'done', deleted: 3 });
    expect(tables.logs).toMatchObject({ status: 'done', updated: 5 });
    expect(tables.invoices).toMatchObject({ status: 'done', deleted: 0, restricted: 2 });

    // The access traversal on the original identities finds only the retained remainder.
    const left = await countSubjectRows({ db: t.db, dataMap, identities: ada });
    expect(left).toEqual({ customers: 1, invoices: 2 });

    const invoices = await t.db
      .selectFrom('invoices')
      .selectAll()
      .where('customer_id', '=', 1)
      .orderBy('id')
      .execute();
    expect(invoices.map((i) => i.billing_name)).toEqual(['Ada Lovelace', 'Ada Lovelace']);
    expect(invoices[0]!.marketing_note).toBe('[erased]');
    const customer = await t.db
      .selectFrom('customers')
      .selectAll()
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    expect(customer.name).toBe('[erased]');
    expect(customer.phone).toBe('[erased]');
    expect(
      String(customer.born_on instanceof Date ? customer.born_on.getFullYear() : customer.born_on),
    ).toMatch(/^1970/);

    // Logs keep their rows (statistics) with the subject's values masked.
    const logs = await t.db
      .selectFrom('logs')
      .selectAll()
      .where('id', '>=', 5000)
      .where('id', '<', 6000)
      .orderBy('id')
      .execute();
    expect(logs).toHaveLength(5);
    const pseudonym = logs[0]!.email as string;
    expect(pseudonym).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(logs.map((l) => l.email))).toEqual(new Set([pseudonym])); // stable: joins survive
    expect(logs.map((l) => l.ip)).toEqual(Array(5).fill('[erased]'));
    expect(logs.map((l) => l.at)).toEqual(Array(5).fill('2024-01-01T00:00:00.000Z'));
    expect(logs.map((l) => Number(l.latency))).toEqual([100, 100, 100, 200, 200]);
    expect(logs.every((l) => !String(l.message).startsWith('login'))).toBe(true);

    // Retained rows are restricted to storage only.
    const restrictions = await t.db
      .selectFrom('privacykit_erasure_restrictions')
      .selectAll()
      .orderBy('table_name')
      .orderBy('row_key')
      .execute();
    expect(
      restrictions.map((r) => `${r.table_name}:${r.row_key}:${r.purposes}:${r.ground}:${r.retain_until}`),
    ).toEqual([
      'customers:1:all:legal-obligation:2034-02-28',
      'invoices:1000:all:legal-obligation:2030-01-31',
      'invoices:1001:all:legal-obligation:2034-02-28',
    ]);

    // The other subject is untouched.
    expect(await dumpBob(t.db)).toEqual(bobBefore);

    const verification = await verifyErasure({ db: t.db, dataMap, plan, clock });
    expect(verification.leftovers).toEqual([]);
    expect(verification.ok).toBe(true);
    expect(verification.tables.invoices).toEqual({ found: 2, retained: 2, masked: 0 });
    const record = await getErasureRecord({ db: t.db, planId: plan.id });
    expect(record.status).toBe('partial');
    expect(record.verification).toMatchObject({ ok: true });
    expect(record.report).toMatchObject({ status: 'partial' });
  });

  it('a second run changes nothing and reports no changes, keeping the stored report of what the erasure did', async () => {
    const plan = await planErasure({ db: t.db, ...base });
    await executeErasure(plan, { db: t.db, clock });
    const after = await dumpHost(t.db);
    const stored = (await getErasureRecord({ db: t.db, planId: plan.id })).report as ErasureReport;
    const again = await executeErasure(plan, { db: t.db, clock });
    expect(again.changes).toBe(0);
    expect(again.status).toBe('partial');
    expect(again.tables.every((r) => r.deleted === 0 && r.updated === 0 && r.restricted === 0)).toBe(true);
    const kept = (await getErasureRecord({ db: t.db, planId: plan.id })).report as ErasureReport;
    expect(kept.changes).toBeGreaterThan(0);
    expect(kept.startedAt).toBe(stored.startedAt);
    expect(await storedCounts(t.db, plan.id)).toEqual(
      stored.tables.map(({ table, deleted, updated, restricted }) => ({
        table,
        deleted,
        updated,
        restricted,
      })),
    );
    expect(await dumpHost(t.db)).toEqual(after);
    expect(await listNotifications({ db: t.db, planId: plan.id })).toHaveLength(3);
  });

  it('verification finds rows that reappear after the erasure', async () => {
    const plan = await planErasure({ db: t.db, ...base });
    await executeErasure(plan, { db: t.db, clock });
    await t.db
      .insertInto('logs')
      .values({
        id: 7000,
        email: 'ada@example.com',
        ip: '1.1.1.1',
        message: 'x',
        at: '2025-03-07',
        latency: 1,
      })
      .execute();
    const verification = await verifyErasure({ db: t.db, plan, clock });
    expect(verification.ok).toBe(false);
    expect(verification.leftovers).toEqual([
      { table: 'logs', key: '7000', reason: 'not masked: email, ip, message, at, latency' },
    ]);
  });

  it('verification of kept rows checked set-based still names a new row and an unmasked kept row', async () => {
    const plan = await planErasure({ db: t.db, ...base });
    await executeErasure(plan, { db: t.db, clock });
    expect((await verifyErasure({ db: t.db, plan, clock })).tables.invoices).toEqual({
      found: 2,
      retained: 2,
      masked: 0,
    });
    await t.db
      .insertInto('invoices')
      .values({
        id: 1002,
        customer_id: 1,
        number: 'F-2025-1',
        issued_on: '2025-01-02',
        billing_name: 'Ada Lovelace',
        amount_cents: 1,
        marketing_note: null,
      })
      .execute();
    await t.db
      .updateTable('invoices')
      .set({ marketing_note: 'likes books' })
      .where('id', '=', 1000)
      .execute();
    const verification = await verifyErasure({ db: t.db, plan, clock });
    expect(verification.ok).toBe(false);
    expect(verification.leftovers).toEqual([
      { table: 'invoices', key: '1000', reason: 'not masked: marketing_note' },
      { table: 'invoices', key: '1002', reason: 'still present' },
    ]);
  });

  it('set-based deletes take setBasedBatchSize rows per transaction, not batchSize', async () => {
    const plan = await planErasure({ db: t.db, ...base });
    const batches: { table: string; deleted: number }[] = [];
    const report = await executeErasure(plan, {
      db: t.db,
      clock,
      batchSize: 2,
      onBatch: ({ table, deleted }) => {
        batches.push({ table, deleted });
      },
    });
    expect(report.status).toBe('partial');
    // order_lines (4 rows) and orders (3 rows) keep nothing: one transaction each by default.
    expect(batches.filter((b) => b.table === 'order_lines')).toEqual([{ table: 'order_lines', deleted: 4 }]);
    expect(batches.filter((b) => b.table === 'orders')).toEqual([{ table: 'orders', deleted: 3 }]);
    const again = await executeErasure(plan, { db: t.db, clock, batchSize: 2 });
    expect(again.changes).toBe(0);
  });

  it.each([
    ['the fifth batch', (_table: string, n: number) => n === 5],
    // Kept invoices are restricted, masked by key range (2 rows a batch here), set-based.
    ['the kept invoices', (table: string) => table === 'invoices'],
  ])(
    'a crash at %s followed by a re-run ends in the same state, with the same pseudonyms',
    async (_label, crashAt) => {
      const secrets = { hmacKey: 'k'.repeat(43), seed: 's'.repeat(43) };
      const reference = await createTestDatabase(engine);
      try {
        await seedHost(reference.db, { adaLogs: 9 });
        const refPlan = await planErasure({ db: reference.db, ...base, secrets });
        await executeErasure(refPlan, { db: reference.db, clock, batchSize: 2, setBasedBatchSize: 2 });

        await t.destroy();
        t = await createTestDatabase(engine);
        await seedHost(t.db, { adaLogs: 9 });
        const plan = await planErasure({ db: t.db, ...base, secrets });
        let batches = 0;
        await expect(
          executeErasure(plan, {
            db: t.db,
            clock,
            batchSize: 2,
            setBasedBatchSize: 2,
            onBatch: ({ table }) => {
              batches++;
              if (crashAt(table, batches)) throw new Error('power cut');
            },
          }),
        ).rejects.toThrow('power cut');
        const record = await getErasureRecord({ db: t.db, planId: plan.id });
        expect(record.status).toBe('executing');
        const resumed = await executeErasure(plan, { db: t.db, clock, batchSize: 2, setBasedBatchSize: 2 });
        expect(resumed.status).toBe('partial');
        expect(await dumpHost(t.db)).toEqual(await dumpHost(reference.db));
        // The stored report counts what both runs changed: the same as the uncrashed erasure's.
        expect(await storedCounts(t.db, plan.id)).toEqual(await storedCounts(reference.db, refPlan.id));
      } finally {
        await reference.destroy();
      }
    },
  );

  it('masks value-only strategies in SQL by key range: the values maskValue gives, resumable, verified', async () => {
    const secrets = { hmacKey: 'k'.repeat(43), seed: 's'.repeat(43) };
    const valueOnly = {
      logs: {
        email: 'hmac',
        ip: 'redact',
        at: 'generalise',
        latency: { strategy: 'generalise', bucket: 100 },
      },
      orders: { total: { strategy: 'generalise', bucket: 100 }, placed_at: 'generalise' },
    } as const;
    const masked = (table: string, row: Record<string, unknown>) => {
      const out = { ...row };
      for (const [column, input] of Object.entries(valueOnly[table as keyof typeof valueOnly])) {
        const strategy = typeof input === 'string' ? { strategy: input } : input;
        out[column] = maskValue(row[column], strategy, { secrets, table, column, key: '' });
      }
      return out;
    };
    const logsBefore = await t.db
      .selectFrom('logs')
      .selectAll()
      .where('email', '=', 'ada@example.com')
      .orderBy('id')
      .execute();
    const ordersBefore = await t.db
      .selectFrom('orders')
      .selectAll()
      .where('customer_id', '=', 1)
      .orderBy('id')
      .execute();
    expect(logsBefore.length).toBeGreaterThan(2);
    const plan = await planErasure({ db: t.db, ...base, strategies: valueOnly, secrets });
    let batches = 0;
    await expect(
      executeErasure(plan, {
        db: t.db,
        clock,
        batchSize: 2,
        setBasedBatchSize: 2,
        onBatch: ({ table }) => {
          if (table === 'logs' && ++batches === 1) throw new Error('power cut');
        },
      }),
    ).rejects.toThrow('power cut');
    const report = await executeErasure(plan, { db: t.db, clock, batchSize: 2, setBasedBatchSize: 2 });
    expect(report.status).toBe('partial');
    const logsAfter = await t.db
      .selectFrom('logs')
      .selectAll()
      .where(
        'id',
        'in',
        logsBefore.map((row) => row.id),
      )
      .orderBy('id')
      .execute();
    expect(logsAfter).toEqual(logsBefore.map((row) => masked('logs', row)));
    const ordersAfter = await t.db
      .selectFrom('orders')
      .selectAll()
      .where('customer_id', '=', 1)
      .orderBy('id')
      .execute();
    expect(ordersAfter).toEqual(ordersBefore.map((row) => masked('orders', row)));

    const verification = await verifyErasure({ db: t.db, plan, clock });
    expect(verification.ok).toBe(true);
    expect(verification.tables.orders).toEqual({ found: 3, retained: 0, masked: 3 });
    await t.db
      .insertInto('logs')
      .values({
        id: 7000,
        email: 'ada@example.com',
        ip: '1.1.1.1',
        message: 'x',
        at: '2025-03-07',
        latency: 1,
      })
      .execute();
    const again = await verifyErasure({ db: t.db, plan, clock });
    expect(again.ok).toBe(false);
    expect(again.leftovers).toEqual([
      { table: 'logs', key: '7000', reason: 'not masked: email, ip, at, latency' },
    ]);
  });

  it('masks free text past the distinct-value limit in one statement when every value masks alike', async () => {
    const extra = Array.from({ length: 1200 }, (_, i) => ({
      id: 20_000 + i,
      email: 'ada@example.com',
      ip: `198.51.100.${i}`,
      message: `note ${i} from ada`,
      at: '2024-01-01T00:00:00.000Z',
      latency: i,
    }));
    for (let i = 0; i < extra.length; i += 300) {
      await t.db
        .insertInto('logs')
        .values(extra.slice(i, i + 300))
        .execute();
    }
    const plan = await planErasure({
      db: t.db,
      ...base,
      strategies: {
        ...strategies,
        // A replacement writes one value whatever the input; plain redact turns every one of
        // these texts into the same replacement.
        logs: {
          email: 'hmac',
          ip: { strategy: 'redact', replacement: '[gone]' },
          message: 'redact',
          latency: { strategy: 'redact', replacement: 0 },
        },
      },
    });
    const updates: number[] = [];
    const run = () =>
      executeErasure(plan, {
        db: t.db,
        clock,
        batchSize: 100,
        onBatch: ({ table, updated }) => {
          if (table === 'logs') updates.push(updated);
        },
      });
    const first = await run();
    expect(first.failures).toEqual([]);
    expect(first.status).toBe('partial');
    // Set-based: one batch for all 1,205 rows, not pages of 100 through the client (MySQL's
    // collations compare loosely, so it keeps the row-by-row path).
    const batches = engine.engine === 'mysql' ? updates.length : 1;
    expect(updates).toHaveLength(batches);
    expect(updates.reduce((a, b) => a + b, 0)).toBe(1205);
    const left = await t.db
      .selectFrom('logs')
      .select(['ip', 'message', 'latency'])
      .distinct()
      .where('id', '>=', 5000)
      .where('id', '<', 6000)
      .union(
        t.db.selectFrom('logs').select(['ip', 'message', 'latency']).distinct().where('id', '>=', 20_000),
      )
      .execute();
    expect(left).toEqual([{ ip: '[gone]', message: '[erased]', latency: 0 }]);
    const second = await run();
    expect(second.changes).toBe(0);
    expect(updates).toHaveLength(batches);
    expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);
  });

  it('plans and executes kept rows set-based exactly as row by row', async () => {
    const secrets = { hmacKey: 'k'.repeat(43), seed: 's'.repeat(43) };
    const other = await createTestDatabase(engine);
    try {
      await seedHost(other.db);
      // A hold source holding nothing sends every table through the row-by-row path.
      const rowByRow = await planErasure({ db: other.db, ...base, secrets, holds: async () => [] });
      const setBased = await planErasure({ db: t.db, ...base, secrets });
      const strip = (plan: typeof setBased) => ({ ...plan, id: '', createdAt: '' });
      expect(strip(setBased)).toEqual(strip(rowByRow));
      const kept = (db: TestDatabase['db']) =>
        db
          .selectFrom('privacykit_erasure_retained')
          .select(['table_name', 'row_key', 'source', 'ground', 'rule_id', 'reason', 'retain_until', 'mask'])
          .orderBy('table_name')
          .orderBy('row_key')
          .execute();
      const stored = await kept(t.db);
      expect(stored.map((row) => row.table_name)).toContain('invoices');
      expect(stored).toEqual(await kept(other.db));
      await executeErasure(setBased, { db: t.db, clock });
      await executeErasure(rowByRow, { db: other.db, clock });
      expect(await dumpHost(t.db)).toEqual(await dumpHost(other.db));
      const restrictions = (db: TestDatabase['db']) =>
        db
          .selectFrom('privacykit_erasure_restrictions')
          .select(['table_name', 'row_key', 'ground', 'retain_until'])
          .orderBy('table_name')
          .orderBy('row_key')
          .execute();
      expect(await restrictions(t.db)).toEqual(await restrictions(other.db));
      expect((await verifyErasure({ db: t.db, plan: setBased, clock })).ok).toBe(true);
    } finally {
      await other.destroy();
    }
  });

  it("dates a kept row's instants in the rule's own zone, as retention does, on both planning paths", async () => {
    // 11:30 UTC on Jan 31 is still Jan 31 in Paris (the policy's zone) but Feb 1 on Kiritimati.
    await t.db.schema.alterTable('invoices').addColumn('issued_at', sql`varchar(32)`).execute();
    await t.db.updateTable('invoices').set({ issued_at: '2020-01-31T11:30:00.000Z' }).execute();
    const invoices = policy.retention.find((rule) => rule.id === 'invoices')!;
    const zoned = { ...policy, retention: [{ ...invoices, zone: 'Pacific/Kiritimati' }] };
    const options = { ...base, policy: zoned, facts: { invoices: { invoiceDate: 'issued_at' } } };
    const setBased = await planErasure({ db: t.db, ...options });
    const rowByRow = await planErasure({ db: t.db, ...options, holds: async () => [] });
    for (const plan of [setBased, rowByRow]) {
      const kept = plan.tables.find((table) => table.table === 'invoices')!.retained[0]!;
      expect(kept.retainUntil).toEqual({ earliest: '2030-02-01', latest: '2030-02-01', open: 0 });
    }
  });

  it('a legal hold keeps the held rows untouched under Art 17(3)(e) and reports a partial erasure', async () => {
    const asked: string[] = [];
    const plan = await planErasure({
      db: t.db,
      ...base,
      holds: async (table, keys) => {
        asked.push(table);
        return table === 'orders'
          ? keys
              .filter((key) => key === '11')
              .map((key) => ({ key, reason: 'dispute #42', until: '2026-12-31' }))
          : [];
      },
    });
    expect(asked).toContain('orders');
    const orders = plan.tables.find((table) => table.table === 'orders')!;
    expect(orders.retained).toEqual([
      expect.objectContaining({
        source: 'hold',
        ground: 'legal-claims',
        article: 'Art 17(3)(e)',
        reason: 'dispute #42',
        rows: 1,
      }),
    ]);
    expect(orders.erase).toBe(2);
    const report = await executeErasure(plan, { db: t.db, clock });
    expect(report.status).toBe('partial');
    expect(report.retained).toContainEqual(
      expect.objectContaining({ table: 'orders', ground: 'legal-claims', rows: 1 }),
    );
    const held = await t.db.selectFrom('orders').selectAll().where('customer_id', '=', 1).execute();
    expect(held.map((row) => Number(row.id))).toEqual([11]);
    expect(Number(held[0]!.total)).toBeCloseTo(99.99);
    const verification = await verifyErasure({ db: t.db, plan, clock });
    expect(verification.ok).toBe(true);
  });

  it.runIf(engine.engine === 'sqlite')(
    "keys beyond 2^53 name their own rows: the subject's erased, another person's untouched, a held one kept",
    async () => {
      // Snowflake-style ids, read rounded before: Bob's order 2^53 was erased for Ada's 2^53+1,
      // and the hold source was asked about Bob's key instead of Ada's held log row.
      await sql`insert into orders (id, customer_id, total, placed_at) values (9007199254740992, 2, '77.00', '2024-08-01T10:00:00.000Z'), (9007199254740993, 1, '13.00', '2024-08-02T10:00:00.000Z')`.execute(
        t.db,
      );
      await sql`insert into logs (id, email, ip, message, at, latency) values (9007199254740993, 'ada@example.com', '192.0.2.99', 'evidence in a lawsuit', '2024-03-03T09:00:00.000Z', 10)`.execute(
        t.db,
      );
      const offered: string[] = [];
      const holds = async (table: string, keys: readonly string[]) => {
        if (table === 'logs') offered.push(...keys);
        // Order 11 held too, so orders are erased row by row, by key.
        return table === 'orders'
          ? keys.filter((key) => key === '11')
          : table === 'logs'
            ? keys.filter((key) => key === '9007199254740993')
            : [];
      };
      const plan = await planErasure({ db: t.db, ...base, holds });
      expect(offered).toContain('9007199254740993');
      expect(offered).not.toContain('9007199254740992');
      await executeErasure(plan, { db: t.db, clock, holds });
      const exact = (query: string) =>
        sql<{ id: string }>`${sql.raw(query)}`.execute(t.db).then((r) => r.rows);
      expect(
        await exact('select cast(id as text) as id from orders where customer_id = 2 order by id'),
      ).toEqual([{ id: '20' }, { id: '9007199254740992' }]);
      expect(await exact('select cast(id as text) as id from orders where id = 9007199254740993')).toEqual(
        [],
      );
      expect(
        await exact('select cast(id as text) as id, message from logs where id = 9007199254740993'),
      ).toEqual([{ id: '9007199254740993', message: 'evidence in a lawsuit' }]);
      expect((await verifyErasure({ db: t.db, plan, clock })).ok).toBe(true);
    },
  );

  it('a legal hold placed after planning stops the execution before any row changes; a new plan keeps the held row', async () => {
    const held = new Set<string>();
    const holds = async (table: string, keys: readonly string[]) =>
      table === 'orders'
        ? keys.filter((key) => held.has(key)).map((key) => ({ key, reason: 'dispute #43' }))
        : [];
    const plan = await planErasure({ db: t.db, ...base, holds });
    expect(plan.tables.find((table) => table.table === 'orders')?.retained).toEqual([]);
    // The dispute is opened while the erasure awaits its approval.
    held.add('11');
    const before = await t.db.selectFrom('orders').selectAll().orderBy('id').execute();
    const error = await executeErasure(plan, { db: t.db, clock, holds }).catch((caught: unknown) => caught);
    expect(isPrivacyKitError(error) && error.code).toBe('erasure/held-since-planning');
    expect((error as { details?: unknown }).details).toMatchObject({
      table: 'orders',
      keys: ['11'],
      reasons: ['dispute #43'],
    });
    expect(await t.db.selectFrom('orders').selectAll().orderBy('id').execute()).toEqual(before);
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).status).toBe('planned');
    // Planned again, the held order is kept and the rest erased; the hold stays satisfied.
    const again = await planErasure({ db: t.db, ...base, holds });
    const report = await executeErasure(again, { db: t.db, clock, holds });
    expect(report.status).toBe('partial');
    const left = await t.db.selectFrom('orders').select('id').where('customer_id', '=', 1).execute();
    expect(left.map((row) => Number(row.id))).toEqual([11]);
  });

  it('a table without a primary key fails the request loudly, never a silent complete', async () => {
    const plan = await planErasure({ db: t.db, ...base, dataMap: dataMapWithAudit });
    const audit = plan.tables.find((table) => table.table === 'audit_trail')!;
    expect(audit.status).toBe('blocked');
    expect(plan.summary.blocked).toEqual(['audit_trail']);
    const report = await executeErasure(plan, { db: t.db, clock });
    expect(report.status).toBe('failed');
    expect(report.failures).toEqual([
      { table: 'audit_trail', reason: expect.stringContaining('no primary key') },
    ]);
    // Everything else was still erased.
    expect(report.tables.find((r) => r.table === 'orders')).toMatchObject({ status: 'done', deleted: 3 });
    // Not complete: no Art 19 notices yet, and the record says failed.
    expect(await listNotifications({ db: t.db, planId: plan.id })).toEqual([]);
    expect((await getErasureRecord({ db: t.db, planId: plan.id })).status).toBe('failed');
    const verification = await verifyErasure({ db: t.db, plan, clock });
    expect(verification.ok).toBe(false);
    expect(verification.leftovers[0]).toMatchObject({ table: 'audit_trail' });
  });

  it('a table the database refuses to change fails the request and skips its parents', async () => {
    const plan = await planErasure({ db: t.db, ...base });
    // Simulate a refusal (like a missing DELETE permission): the table vanished.
    await t.db.schema.dropTable('order_lines').execute();
    const report = await executeErasure(plan, { db: t.db, clock });
    expect(report.status).toBe('failed');
    const tables = Object.fromEntries(report.tables.map((r) => [r.table, r]));
    expect(tables.order_lines!.status).toBe('failed');
    expect(tables.orders).toMatchObject({
      status: 'skipped',
      reason: expect.stringContaining('order_lines'),
    });
    expect(tables.customers!.status).toBe('skipped');
    expect(tables.logs!.status).toBe('done');
    expect(report.failures.map((f) => f.table).sort()).toEqual(['customers', 'order_lines', 'orders']);
  });

  it('returns the same plan for the same request, and crypto-shreds once', async () => {
    const first = await planErasure({ db: t.db, ...base, requestId: 'req-1', subjectId: 'subj-ada' });
    const second = await planErasure({ db: t.db, ...base, requestId: 'req-1', subjectId: 'subj-ada' });
    expect(second.id).toBe(first.id);
    // Her address as typed another time is still her.
    const cased = await planErasure({
      db: t.db,
      ...base,
      identities: { email: [' ADA@example.com'] },
      requestId: 'req-1',
    });
    expect(cased.id).toBe(first.id);
    // Another person's identities under the same request: refused, not handed Ada's plan
    // (helper-92: the CLI then executed it and erased Ada for Bob's request).
    const other = await planErasure({ db: t.db, ...base, identities: bob, requestId: 'req-1' }).catch(
      (e: unknown) => e,
    );
    expect(isPrivacyKitError(other, 'erasure/invalid-input')).toBe(true);
    expect((other as { details: { planId?: string } }).details.planId).toBe(first.id);
    const shredded: string[] = [];
    const keyShredder = { shredSubject: async (id: string) => void shredded.push(id) };
    const report = await executeErasure(first, { db: t.db, clock, keyShredder });
    expect(report.requestId).toBe('req-1');
    expect(report.shredding).toMatchObject({ subjectId: 'subj-ada', status: 'shredded' });
    const again = await executeErasure(first, { db: t.db, clock, keyShredder });
    expect(again.shredding).toMatchObject({ status: 'already-shredded' });
    expect(shredded).toEqual(['subj-ada']);
    expect((await getErasureRecord({ db: t.db, planId: first.id })).shreddedAt).toBe(
      clock.now().toISOString(),
    );
  });

  it('refuses bad input with a typed error and writes nothing', async () => {
    const attempts = [
      () => planErasure({ db: t.db, ...base, identities: { email: ['  '] } }),
      () => planErasure({ db: t.db, ...base, strategies: { nope: 'delete-row' } }),
      () => planErasure({ db: t.db, ...base, strategies: { orders: { customer_id: 'hmac' } } }),
      () => planErasure({ db: t.db, ...base, strategies: { orders: { total: 'scramble' as never } } }),
      // Named after an Object.prototype key: passed as a known kind before, and the erasure of
      // nobody then reported itself complete and verified.
      () => planErasure({ db: t.db, ...base, identities: { constructor: ['ada@example.com'] } }),
      () => planErasure({ db: t.db, ...base, identities: { toString: ['ada@example.com'] } }),
      // A misspelt fact column: the database's own untyped error before.
      () => planErasure({ db: t.db, ...base, facts: { invoices: { invoiceDate: 'issued_at' } } }),
      // A misspelt fact name: accepted before, and every invoice was kept with no end date.
      () => planErasure({ db: t.db, ...base, facts: { invoices: { invoiceDat: 'issued_on' } } }),
      // Facts for a table no rule keeps: they date nothing.
      () => planErasure({ db: t.db, ...base, facts: { orders: { invoiceDate: 'created_at' } } }),
    ];
    const codes = [];
    for (const attempt of attempts) {
      const error = await attempt().catch((e: unknown) => e);
      expect(isPrivacyKitError(error)).toBe(true);
      codes.push((error as { code: string }).code);
    }
    expect(codes).toEqual([
      'erasure/no-identities',
      'erasure/unknown-table',
      'erasure/invalid-strategy',
      'erasure/invalid-input',
      'erasure/invalid-input',
      'erasure/invalid-input',
      'erasure/invalid-input',
      'erasure/invalid-input',
      'erasure/invalid-input',
    ]);
    const plans = await t.db.selectFrom('privacykit_erasure_plans').select('id').execute();
    expect(plans).toEqual([]);
  });

  it('Art 19: a recipient endpoint that is down keeps its notice pending and is retried with backoff', async () => {
    const seen: { status: number; key: string | undefined }[] = [];
    let calls = 0;
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk) => {
        body += chunk;
      });
      request.on('end', () => {
        calls++;
        const status = calls === 1 ? 503 : 200;
        seen.push({ status, key: request.headers['idempotency-key'] as string | undefined });
        JSON.parse(body);
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(status === 200 ? { receipt: `r-${calls}` } : { error: 'down' }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/art19`;
      const localClock = fixedClock('2025-06-01T12:00:00.000Z');
      const plan = await planErasure({ db: t.db, ...base, clock: localClock });
      await executeErasure(plan, { db: t.db, clock: localClock });
      const pending = await listNotifications({ db: t.db, planId: plan.id });
      expect(pending.map((n) => [n.recipientId, n.status])).toEqual([
        ['hosting', 'pending'],
        ['mailer', 'pending'],
        ['payments', 'pending'],
      ]);
      const send = httpNotificationSender({ endpoints: { hosting: url } });
      const options = { db: t.db, clock: localClock, send, backoff: { initialMs: 60_000, factor: 2 } };

      // Only the hosting endpoint exists; the others fail for want of one and stay pending too.
      const first = await deliverPending(options);
      expect(first).toEqual({ delivered: 0, retrying: 3, failed: 0 });
      const hosting = () =>
        listNotifications({ db: t.db, planId: plan.id }).then(
          (all) => all.find((n) => n.recipientId === 'hosting')!,
        );
      expect(await hosting()).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastError: expect.stringContaining('503'),
      });
      expect((await hosting()).nextAttemptAt).toBe('2025-06-01T12:01:00.000Z');

      // Not due yet: nothing is sent.
      expect(await deliverPending(options)).toEqual({ delivered: 0, retrying: 0, failed: 0 });
      expect(calls).toBe(1);

      localClock.advance(60_000);
      const second = await deliverPending(options);
      expect(second.delivered).toBe(1);
      const delivered = await hosting();
      expect(delivered).toMatchObject({
        status: 'delivered',
        attempts: 2,
        receipt: { status: 200, body: { receipt: 'r-2' } },
      });
      expect(seen.map((s) => s.status)).toEqual([503, 200]);
      // The same idempotency key both times.
      expect(seen[0]!.key).toBe(`${plan.id}:hosting`);
      expect(seen[1]!.key).toBe(seen[0]!.key);
      // The next failure of the others doubles the delay.
      const mailer = (await listNotifications({ db: t.db, planId: plan.id })).find(
        (n) => n.recipientId === 'mailer',
      )!;
      expect(mailer).toMatchObject({
        status: 'pending',
        attempts: 2,
        nextAttemptAt: '2025-06-01T12:03:00.000Z',
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('Art 19: a recipient that accepts with a long answer is delivered once, its receipt keeping the start of the answer', async () => {
    let calls = 0;
    // An HTML page of 100,000 characters: more than MySQL's TEXT column holds.
    const page = `<html>${'x'.repeat(99_987)}</html>`;
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        calls++;
        response.writeHead(200, { 'content-type': 'text/html' });
        response.end(page);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/art19`;
      const localClock = fixedClock('2025-06-01T12:00:00.000Z');
      const plan = await planErasure({ db: t.db, ...base, clock: localClock });
      await executeErasure(plan, { db: t.db, clock: localClock });
      const send = httpNotificationSender({ endpoints: () => url });
      const notices = (await listNotifications({ db: t.db, planId: plan.id })).length;
      expect(await deliverPending({ db: t.db, clock: localClock, send })).toEqual({
        delivered: notices,
        retrying: 0,
        failed: 0,
      });
      for (const notice of await listNotifications({ db: t.db, planId: plan.id })) {
        expect(notice).toMatchObject({
          status: 'delivered',
          attempts: 1,
          receipt: { status: 200, bodyTruncated: true, bodyLength: page.length },
        });
        expect((notice.receipt as { body: string }).body).toBe(page.slice(0, 8192));
      }
      // Delivered means not sent again, however late.
      localClock.advance(86_400_000);
      expect(await deliverPending({ db: t.db, clock: localClock, send })).toEqual({
        delivered: 0,
        retrying: 0,
        failed: 0,
      });
      expect(calls).toBe(notices);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('Art 19: a receipt that cannot be stored does not turn a delivery into a failed attempt: a note of the delivery says why', async () => {
    const plan = await planErasure({ db: t.db, ...base });
    await executeErasure(plan, { db: t.db, clock });
    const notices = (await listNotifications({ db: t.db, planId: plan.id })).length;
    const sent: string[] = [];
    const receipts = [
      // Not JSON: JSON.stringify throws on a BigInt.
      () => ({ ticket: 10n }),
      // JSON, but over the 60,000 bytes a receipt keeps.
      () => ({ log: 'é'.repeat(40_000) }),
      () => ({ ok: true }),
    ];
    const result = await deliverPending({
      db: t.db,
      clock,
      send: async (notification) => {
        sent.push(notification.recipient.id);
        return (receipts[(sent.length - 1) % receipts.length] as () => never)();
      },
    });
    expect(result).toEqual({ delivered: notices, retrying: 0, failed: 0 });
    const byRecipient = new Map(
      (await listNotifications({ db: t.db, planId: plan.id })).map((notice) => [notice.recipientId, notice]),
    );
    expect(byRecipient.get(sent[0]!)).toMatchObject({
      status: 'delivered',
      attempts: 1,
      receipt: {
        deliveredAt: '2025-06-01T12:00:00.000Z',
        receiptNotKept: expect.stringContaining('not JSON'),
      },
    });
    expect(byRecipient.get(sent[1]!)).toMatchObject({
      status: 'delivered',
      receipt: {
        receiptNotKept: expect.stringContaining('over the 60000 kept'),
        receiptStart: expect.stringMatching(/^\{"log":"éé/),
      },
    });
    expect(byRecipient.get(sent[2]!)).toMatchObject({ status: 'delivered', receipt: { ok: true } });
    expect(await deliverPending({ db: t.db, clock, send: async () => ({}) })).toEqual({
      delivered: 0,
      retrying: 0,
      failed: 0,
    });
  });

  it('Art 19: a delivery the database fails to record is not a failed attempt: the call fails with erasure/delivery-not-recorded and the notice is sent again under the same key once its claim ends', async () => {
    const localClock = fixedClock('2025-06-01T12:00:00.000Z');
    const plan = await planErasure({ db: t.db, ...base, clock: localClock });
    await executeErasure(plan, { db: t.db, clock: localClock });
    // The database refuses to mark a notice delivered (a disk full, a constraint a DBA added…),
    // and only that: recording a failed attempt would still work.
    if (engine.engine === 'sqlite') {
      await sql`create trigger pk_refuse_delivered before update on privacykit_erasure_outbox
        for each row when new.status = 'delivered' begin select raise(abort, 'disk full'); end`.execute(t.db);
    } else if (engine.engine === 'postgres') {
      await sql`create function pk_refuse_delivered() returns trigger language plpgsql as $$
        begin if new.status = 'delivered' then raise exception 'disk full'; end if; return new; end $$`.execute(
        t.db,
      );
      await sql`create trigger pk_refuse_delivered before update on privacykit_erasure_outbox
        for each row execute function pk_refuse_delivered()`.execute(t.db);
    } else {
      await sql
        .raw(`create trigger pk_refuse_delivered before update on privacykit_erasure_outbox
        for each row begin if new.status = 'delivered' then
        signal sqlstate '45000' set message_text = 'disk full'; end if; end`)
        .execute(t.db);
    }
    const keys: string[] = [];
    const send = async (notification: { idempotencyKey: string }) => {
      keys.push(notification.idempotencyKey);
      return { accepted: true };
    };
    const error = await deliverPending({ db: t.db, clock: localClock, send, leaseMs: 60_000 }).catch(
      (caught: unknown) => caught,
    );
    expect(isPrivacyKitError(error) && error.code).toBe('erasure/delivery-not-recorded');
    expect((error as Error).message).toContain('disk full');
    expect(keys).toHaveLength(1);
    const [first] = keys;
    const notice = () =>
      listNotifications({ db: t.db, planId: plan.id }).then(
        (all) => all.find((n) => n.idempotencyKey === first)!,
      );
    // Not counted as a failed attempt: no error recorded, claimed (hidden) until the lease ends.
    expect(await notice()).toMatchObject({
      status: 'pending',
      attempts: 0,
      nextAttemptAt: '2025-06-01T12:01:00.000Z',
    });
    expect((await notice()).lastError).toBeUndefined();
    if (engine.engine === 'postgres') {
      await sql`drop trigger pk_refuse_delivered on privacykit_erasure_outbox`.execute(t.db);
      await sql`drop function pk_refuse_delivered()`.execute(t.db);
    } else {
      await sql`drop trigger pk_refuse_delivered`.execute(t.db);
    }
    // Still claimed: the others go out, this one waits for its claim to end.
    const others = await deliverPending({ db: t.db, clock: localClock, send });
    expect(keys.filter((key) => key === first)).toHaveLength(1);
    localClock.advance(60_000);
    const again = await deliverPending({ db: t.db, clock: localClock, send });
    expect(others.delivered + again.delivered).toBe(
      (await listNotifications({ db: t.db, planId: plan.id })).length,
    );
    expect(keys.filter((key) => key === first)).toHaveLength(2);
    expect(await notice()).toMatchObject({ status: 'delivered', attempts: 1, receipt: { accepted: true } });
  });
});
