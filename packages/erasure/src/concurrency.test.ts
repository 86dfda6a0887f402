import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { openDatabase, writeTransaction } from '@privacykit/core/db';
import { createTestDatabase, startWorker, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeErasure } from './execute.js';
import { confirmNotification, deliverPending, listNotifications } from './outbox.js';
import type { ErasureNotification } from './outbox.js';
import { applicationWrites, holdWriteLock, planFixtureErasure, seedHost } from './testing-fixtures.js';

/** A worker in its own process (`test/<script>`): see `startWorker` in core's testing helpers. */
const worker = (script: string, args: readonly string[]) =>
  startWorker(fileURLToPath(new URL(`../test/${script}`, import.meta.url)), args);

describe.each(testEngines())('workers in separate processes on $engine', (engine) => {
  it('plan the same request at once: one plan is stored per request and every worker gets that plan', async () => {
    const t = await createTestDatabase(engine);
    try {
      await seedHost(t.db, { adaLogs: 3 });
      const requests = ['req-a', 'req-b', 'req-c', 'req-d'];
      const workers = [0, 1, 2].map(() => worker('planner.ts', [t.url, ...requests]));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const outcomes = await Promise.all(workers.map((w) => w.outcomes));

      const plans = await t.db
        .selectFrom('privacykit_erasure_plans')
        .select(['id', 'request_id'])
        .orderBy('request_id')
        .execute();
      // Two plans of one request would be executed as two erasures, each under its own lease,
      // with different pseudonyms and a second set of Art 19 notifications.
      expect(plans.map((plan) => plan.request_id)).toEqual(requests);
      for (const [index, request] of requests.entries()) {
        const stored = plans.find((plan) => plan.request_id === request)!.id;
        expect(
          outcomes.map((got) => got[index]),
          request,
        ).toEqual([stored, stored, stored]);
      }
    } finally {
      await t.destroy();
    }
  }, 120_000);

  it('replace the same plan at once: one new plan is stored, the old one superseded by it, and every worker gets the new one', async () => {
    const t = await createTestDatabase(engine);
    const barrier = mkdtempSync(join(tmpdir(), 'privacykit-replan-'));
    try {
      await seedHost(t.db);
      const first = await planFixtureErasure(t.db, { requestId: 'req-a' });
      // Each worker reads the plan it replaces, then waits in its first hold lookup until the
      // other has read it too: both set out to replace the same plan.
      const workers = [0, 1].map(() => worker('replanner.ts', [t.url, 'req-a', barrier, '2']));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const outcomes = (await Promise.all(workers.map((w) => w.outcomes))).flat();

      const plans = await t.db
        .selectFrom('privacykit_erasure_plans')
        .select(['id', 'status', 'superseded_by'])
        .where('request_id', '=', 'req-a')
        .execute();
      // Two current plans of one request would be executed as two erasures.
      const current = plans.filter((plan) => plan.status !== 'superseded');
      expect(current).toHaveLength(1);
      expect(current[0]!.id).not.toBe(first.id);
      expect(plans).toHaveLength(2);
      expect(plans.find((plan) => plan.id === first.id)).toMatchObject({
        status: 'superseded',
        superseded_by: current[0]!.id,
      });
      expect(outcomes).toEqual([current[0]!.id, current[0]!.id]);
    } finally {
      rmSync(barrier, { recursive: true, force: true });
      await t.destroy();
    }
  }, 120_000);
});

describe.each(testEngines())('Art 19 notifications worked by two workers on $engine', (engine) => {
  const start = '2025-06-01T12:00:00.000Z';
  const later = (ms: number) => fixedClock(new Date(Date.parse(start) + ms).toISOString());
  let t: TestDatabase;
  let second: Kysely<any>;
  beforeEach(async () => {
    t = await createTestDatabase(engine);
    await seedHost(t.db);
    // Another worker: its own connections to the same database.
    second = await openDatabase(t.url);
    const plan = await planFixtureErasure(t.db);
    await executeErasure(plan, { db: t.db, clock: fixedClock(start) });
  });
  afterEach(async () => {
    await second.destroy();
    await t.destroy();
  });

  async function notices() {
    const all = await listNotifications({ db: t.db });
    expect(all.length).toBeGreaterThan(0);
    return all;
  }

  it('a notification confirmed by hand while an automatic attempt fails stays delivered, with the manual receipt, and is not sent again', async () => {
    const ids = new Map((await notices()).map((notice) => [notice.idempotencyKey, notice.id]));
    const sent: string[] = [];
    const result = await deliverPending({
      db: t.db,
      clock: fixedClock(start),
      send: async (notification: ErasureNotification) => {
        sent.push(notification.idempotencyKey);
        // Meanwhile the recipient phoned back and a person records it (another process).
        await confirmNotification({
          db: second,
          id: ids.get(notification.idempotencyKey)!,
          receipt: { by: 'phone' },
          clock: fixedClock(start),
        });
        throw new Error('endpoint down');
      },
    });
    expect(result).toMatchObject({ delivered: 0, failed: 0 });
    for (const notice of await notices()) {
      expect(notice).toMatchObject({ status: 'delivered', receipt: { by: 'phone' } });
    }
    // A day later nothing is due: the confirmed notices are not sent again.
    const again: string[] = [];
    await deliverPending({
      db: t.db,
      clock: later(86_400_000),
      send: async (notification) => {
        again.push(notification.idempotencyKey);
        return { ok: true };
      },
    });
    expect(again).toEqual([]);
    expect(sent.length).toBe(ids.size);
  });

  it('a worker that stalled past its claim and then fails does not put back a notification another worker delivered', async () => {
    const count = (await notices()).length;
    const delivered: string[] = [];
    // Worker A claims each notice for one second and stalls; worker B, two seconds later, finds
    // the claims expired, takes the notices over and delivers them; then A's attempts fail.
    const a = await deliverPending({
      db: t.db,
      clock: fixedClock(start),
      leaseMs: 1000,
      send: async () => {
        if (delivered.length === 0) {
          await deliverPending({
            db: second,
            clock: later(2000),
            send: async (notification) => {
              delivered.push(notification.idempotencyKey);
              return { worker: 'b' };
            },
          });
        }
        throw new Error('timed out');
      },
    });
    expect(delivered.length).toBe(count);
    expect(a).toMatchObject({ delivered: 0 });
    for (const notice of await notices()) {
      expect(notice).toMatchObject({ status: 'delivered', receipt: { worker: 'b' }, attempts: 1 });
    }
    // Nothing is due any more, however late: B's deliveries stand.
    const resent: string[] = [];
    await deliverPending({
      db: t.db,
      clock: later(86_400_000),
      send: async (notification) => {
        resent.push(notification.idempotencyKey);
        return {};
      },
    });
    expect(resent).toEqual([]);
  });

  it('a notification a worker delivered keeps that receipt: confirming it by hand afterwards is refused, not overwritten', async () => {
    await deliverPending({ db: t.db, clock: fixedClock(start), send: async () => ({ status: 202 }) });
    const [notice] = await notices();
    const error = await confirmNotification({
      db: second,
      id: notice!.id,
      receipt: { by: 'phone' },
      clock: later(60_000),
    }).catch((caught: unknown) => caught);
    expect(isPrivacyKitError(error) && error.code).toBe('erasure/notification-already-delivered');
    const [kept] = (await notices()).filter((entry) => entry.id === notice!.id);
    expect(kept).toMatchObject({ status: 'delivered', receipt: { status: 202 } });
    const missing = await confirmNotification({ db: second, id: 'no-such-notice', receipt: {} }).catch(
      (caught: unknown) => caught,
    );
    expect(isPrivacyKitError(missing) && missing.code).toBe('erasure/plan-not-found');
  });

  // SQLite only: better-sqlite3 waits for a lock on the thread (the other engines' drivers do
  // not). `second` is the application's own connection to the same file here.

  it.runIf(engine.engine === 'sqlite')(
    'a delivery that starts while another connection of the process holds a write transaction claims the notices once it commits, without waiting out the busy timeout',
    async () => {
      const count = (await notices()).length;
      const events: string[] = [];
      const { committed } = await holdWriteLock(second, 'settings-changed');
      const application = committed.then(() => void events.push('application committed'));
      const started = performance.now();
      const result = await deliverPending({
        db: t.db,
        clock: fixedClock(start),
        send: async (notification) => {
          events.push('sent');
          return { to: notification.recipient.id };
        },
      });
      const took = performance.now() - started;
      await application;
      // Before, the first claim's standalone UPDATE slept in SQLite's busy handler on the thread,
      // so the application never committed: 10 s, then "database is locked", nothing sent.
      expect(took).toBeLessThan(5000);
      expect(events[0]).toBe('application committed');
      expect(result).toEqual({ delivered: count, retrying: 0, failed: 0 });
      for (const notice of await notices()) {
        expect(notice).toMatchObject({
          status: 'delivered',
          attempts: 1,
          receipt: { to: notice.recipientId },
        });
      }
      expect(await applicationWrites(t.db)).toEqual([{ action: 'login' }, { action: 'settings-changed' }]);
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    "each attempt's outcome is recorded once a write transaction another connection of the process took during the send commits, without waiting out the busy timeout",
    async () => {
      const count = (await notices()).length;
      expect(count).toBeGreaterThan(1);
      const started = performance.now();
      let sends = 0;
      const result = await deliverPending({
        db: t.db,
        clock: fixedClock(start),
        send: async (notification) => {
          // While the recipient answers, the application writes and holds its transaction: this
          // attempt's outcome has to wait for the write lock.
          await holdWriteLock(second, `settings-changed-${sends}`);
          // The first recipient's endpoint is down; the others accept.
          if (sends++ === 0) throw new Error('endpoint down');
          return { to: notification.recipient.id };
        },
      });
      const took = performance.now() - started;
      // Before, recording the outcome slept in SQLite's busy handler on the thread: 10 s, then
      // "database is locked" (taken for a failed send), and 10 s more recording that.
      expect(took).toBeLessThan(5000);
      expect(result).toEqual({ delivered: count - 1, retrying: 1, failed: 0 });
      const all = await notices();
      expect(all.filter((notice) => notice.status === 'delivered')).toHaveLength(count - 1);
      const retrying = all.filter((notice) => notice.status === 'pending');
      expect(retrying).toHaveLength(1);
      expect(retrying[0]).toMatchObject({
        attempts: 1,
        lastError: 'endpoint down',
        nextAttemptAt: '2025-06-01T12:01:00.000Z',
      });
      expect(await applicationWrites(t.db)).toEqual([
        { action: 'login' },
        ...Array.from({ length: count }, (_, i) => ({ action: `settings-changed-${i}` })),
      ]);
    },
  );

  it.runIf(engine.engine === 'sqlite')(
    'a notice confirmed by hand while another connection of the process holds a write transaction is recorded once it commits, without waiting out the busy timeout',
    async () => {
      const [notice] = await notices();
      const { committed } = await holdWriteLock(second, 'settings-changed');
      let applicationCommitted = false;
      const application = committed.then(() => {
        applicationCommitted = true;
      });
      const started = performance.now();
      await confirmNotification({ db: t.db, id: notice!.id, receipt: { by: 'phone' }, clock: later(60_000) });
      const took = performance.now() - started;
      await application;
      // Before: the confirmation's standalone UPDATE, 10 s in the busy handler, "database is locked".
      expect(took).toBeLessThan(5000);
      expect(applicationCommitted).toBe(true);
      const [confirmed] = (await notices()).filter((entry) => entry.id === notice!.id);
      expect(confirmed).toMatchObject({
        status: 'delivered',
        receipt: { by: 'phone' },
        deliveredAt: '2025-06-01T12:01:00.000Z',
      });
      expect(await applicationWrites(t.db)).toEqual([{ action: 'login' }, { action: 'settings-changed' }]);
    },
  );

  it('a notice confirmed inside the application’s own transaction is part of it: rolled back with it, committed with it', async () => {
    const [first, second] = await notices();
    const confirm = (db: Kysely<any>, id: string, by: string) =>
      confirmNotification({ db, id, receipt: { by }, clock: later(60_000) });
    await expect(
      t.db.transaction().execute(async (trx) => {
        await confirm(trx, first!.id, 'phone');
        throw new Error('the application rolls back');
      }),
    ).rejects.toThrow('the application rolls back');
    expect((await notices()).find((entry) => entry.id === first!.id)?.status).toBe('pending');
    await t.db.transaction().execute((trx) => confirm(trx, first!.id, 'phone'));
    await writeTransaction(t.db, (trx) => confirm(trx, second!.id, 'letter'));
    const byId = new Map((await notices()).map((entry) => [entry.id, entry]));
    expect(byId.get(first!.id)).toMatchObject({ status: 'delivered', receipt: { by: 'phone' } });
    expect(byId.get(second!.id)).toMatchObject({ status: 'delivered', receipt: { by: 'letter' } });
    // A notice that does not exist: the typed error, from inside a transaction too.
    const missing = await writeTransaction(t.db, (trx) => confirm(trx, 'no-such-notice', 'phone')).catch(
      (error: unknown) => error,
    );
    expect(isPrivacyKitError(missing) && missing.code).toBe('erasure/plan-not-found');
  });
});

describe.each(testEngines())('erasures of different subjects executed at once on $engine', (engine) => {
  it('each completes: no table fails on a lock conflict between the two executions', async () => {
    const t = await createTestDatabase(engine);
    try {
      await seedHost(t.db);
      // Twenty more customers, each with an order and its line, an invoice (kept) and a log.
      const ids = Array.from({ length: 20 }, (_, i) => 3 + i);
      await t.db
        .insertInto('customers')
        .values(
          ids.map((id) => ({ id, email: `c${id}@example.com`, name: `C ${id}`, phone: null, born_on: null })),
        )
        .execute();
      await t.db
        .insertInto('orders')
        .values(
          ids.map((id) => ({
            id: 100 + id,
            customer_id: id,
            total: '1.00',
            placed_at: '2024-05-01T10:00:00.000Z',
          })),
        )
        .execute();
      await t.db
        .insertInto('order_lines')
        .values(ids.map((id) => ({ id: 1000 + id, order_id: 100 + id, product: 'Pen', quantity: 1 })))
        .execute();
      await t.db
        .insertInto('invoices')
        .values(
          ids.map((id) => ({
            id: 3000 + id,
            customer_id: id,
            number: `F-${id}`,
            issued_on: '2024-02-29',
            billing_name: `C ${id}`,
            amount_cents: 100,
            marketing_note: 'n',
          })),
        )
        .execute();
      await t.db
        .insertInto('logs')
        .values(
          ids.map((id) => ({
            id: 7000 + id,
            email: `c${id}@example.com`,
            ip: '192.0.2.1',
            message: 'login',
            at: '2024-03-03T09:00:00.000Z',
            latency: 1,
          })),
        )
        .execute();
      const planIds: string[] = [];
      for (const id of ids) {
        const plan = await planFixtureErasure(t.db, { identities: { email: [`c${id}@example.com`] } });
        planIds.push(plan.id);
      }
      // Neighbouring subjects at the same time: one worker from each end.
      const half = planIds.length / 2;
      const workers = [
        worker('executor.ts', [t.url, ...planIds.slice(0, half)]),
        worker('executor.ts', [t.url, ...planIds.slice(half).reverse()]),
      ];
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const outcomes = (await Promise.all(workers.map((w) => w.outcomes))).flat();
      // Every plan reports exactly once, and each completes (partial: the retained invoices stay).
      expect(outcomes).toEqual(planIds.map(() => 'partial'));
    } finally {
      await t.destroy();
    }
  }, 120_000);
});

describe.each(testEngines())('two erasures of one subject executed at once on $engine', (engine) => {
  it('both complete: neither fails a table on the rows or restrictions the other is writing', async () => {
    const t = await createTestDatabase(engine);
    try {
      await seedHost(t.db, { adaLogs: 9 });
      // Two requests of the same person (by mail, then through the portal): two plans.
      const planIds: string[] = [];
      for (const requestId of ['by-mail', 'portal']) {
        const plan = await planFixtureErasure(t.db, { requestId });
        planIds.push(plan.id);
      }
      const workers = planIds.map((planId) => worker('executor.ts', [t.url, planId]));
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const outcomes = (await Promise.all(workers.map((w) => w.outcomes))).flat();
      expect(outcomes).toEqual(['partial', 'partial']);
    } finally {
      await t.destroy();
    }
  }, 120_000);
});
