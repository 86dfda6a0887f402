import { fixedClock } from '@privacykit/core';
import { engineOf, migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { Migrator, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { identityLookupHash } from './identity.js';
import { requestMigrations } from './migrations.js';
import { createRequestService } from './request-service.js';
import type { SubmitRequestInput } from './request-service.js';
import { allRows, testPolicy } from './test-support.js';

const secret = 'a test secret of more than thirty-two bytes!!';
const tenant = 'default';

function migrator(db: TestDatabase['db']) {
  return new Migrator({
    db,
    provider: { getMigrations: async () => ({ ...requestMigrations.migrations }) },
    migrationTableName: 'privacykit_requests_migrations',
    migrationLockTableName: 'privacykit_requests_migrations_lock',
  });
}

/** A request as the 0001 code stored it: one row, its identity rows, no intake slot. */
async function oldRequest(
  db: TestDatabase['db'],
  request: {
    id: string;
    right: string;
    status: string;
    receivedAt: string;
    /** When it was submitted, when not at receipt (a letter entered later). */
    createdAt?: string;
    emails: string[];
  },
) {
  await db
    .insertInto('privacykit_requests_requests')
    .values({
      id: request.id,
      tenant,
      request_right: request.right,
      details: '{}',
      channel: 'web',
      received_at: request.receivedAt,
      received_date: request.receivedAt.slice(0, 10),
      status: request.status,
      deadline: '2024-02-29',
      extension_months: 0,
      extension_reasons: '[]',
      extended_deadline: null,
      pause_while_verifying: 0,
      paused_days: 0,
      effective_deadline: '2024-02-29',
      assignee: null,
      outcome: null,
      duplicate_of: null,
      excessive: 0,
      verification_failures: 0,
      verification_locked: 0,
      created_at: request.createdAt ?? request.receivedAt,
      updated_at: request.createdAt ?? request.receivedAt,
    })
    .execute();
  await db
    .insertInto('privacykit_requests_identities')
    .values(
      request.emails.map((email, position) => ({
        id: `${request.id}-i${position}`,
        tenant,
        request_id: request.id,
        position,
        kind: 'email',
        value: email,
        lookup_hash: identityLookupHash(secret, 'email', email),
        channel: email,
        verified_at: null,
      })),
    )
    .execute();
}

describe.each(testEngines())('migrations 0002 (slots) and 0003 (duplicate links) on $engine', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('upgrades a database with requests, keeping duplicates the old code let through, and dedupes from then on', async () => {
    database = await createTestDatabase(engine);
    const { db } = database;
    expect((await migrator(db).migrateTo('0001_init')).error).toBeUndefined();

    const at = '2024-01-30T09:00:00.000Z';
    // Two identical submissions that raced under 0001: both open, same instant.
    await oldRequest(db, {
      id: 'r1',
      right: 'access',
      status: 'identity-pending',
      receivedAt: at,
      emails: ['ada@example.com'],
    });
    await oldRequest(db, {
      id: 'r2',
      right: 'access',
      status: 'identity-pending',
      receivedAt: at,
      emails: ['ada@example.com'],
    });
    await oldRequest(db, {
      id: 'r3',
      right: 'erasure',
      status: 'in-progress',
      receivedAt: at,
      emails: ['ada@example.com'],
    });
    // A closed request and a later open one for the same right and identity.
    await oldRequest(db, {
      id: 'r4',
      right: 'access',
      status: 'completed',
      receivedAt: '2024-01-02T09:00:00.000Z',
      emails: ['bob@example.com'],
    });
    await oldRequest(db, {
      id: 'r5',
      right: 'access',
      status: 'verified',
      receivedAt: at,
      emails: ['bob@example.com'],
    });
    // Two identities, and a later request sharing one of them.
    await oldRequest(db, {
      id: 'r6',
      right: 'access',
      status: 'identity-pending',
      receivedAt: '2024-01-29T09:00:00.000Z',
      emails: ['cy@example.com', 'di@example.com'],
    });
    await oldRequest(db, {
      id: 'r7',
      right: 'access',
      status: 'identity-pending',
      receivedAt: at,
      emails: ['di@example.com'],
    });

    expect(await migrate(db, [requestMigrations])).toEqual([
      {
        name: 'requests',
        applied: [
          '0002_intake_dedupe',
          '0003_duplicate_links',
          '0004_amendments',
          '0005_mail_throttle',
          '0006_code_guess_limit',
          '0007_submissions',
          '0008_drop_intake',
          '0009_redaction',
        ],
      },
    ]);

    const slots = async () =>
      Object.fromEntries(
        (
          await db
            .selectFrom('privacykit_requests_identities')
            .select(['id', 'dedupe_right'])
            .orderBy('id')
            .execute()
        ).map((row) => [row.id, row.dedupe_right]),
      );
    // The oldest open request per right and identity holds the slot (the one the duplicate check
    // answers with); the open duplicates and the closed request hold none.
    const upgraded = {
      'r1-i0': 'access',
      'r2-i0': null,
      'r3-i0': 'erasure',
      'r4-i0': null,
      'r5-i0': 'access',
      'r6-i0': 'access',
      'r6-i1': 'access',
      'r7-i0': null,
    };
    expect(await slots()).toEqual(upgraded);
    // Nothing of the subjects' requests is lost or changed.
    const statuses = await db
      .selectFrom('privacykit_requests_requests')
      .select(['id', 'status'])
      .orderBy('id')
      .execute();
    expect(statuses.map((row) => `${row.id}:${row.status}`)).toEqual([
      'r1:identity-pending',
      'r2:identity-pending',
      'r3:in-progress',
      'r4:completed',
      'r5:verified',
      'r6:identity-pending',
      'r7:identity-pending',
    ]);

    // A down migration and up again gives the same slots.
    const down = await migrator(db).migrateTo('0001_init');
    expect(down.error).toBeUndefined();
    expect(down.results?.map((result) => result.migrationName)).toEqual([
      '0009_redaction',
      '0008_drop_intake',
      '0007_submissions',
      '0006_code_guess_limit',
      '0005_mail_throttle',
      '0004_amendments',
      '0003_duplicate_links',
      '0002_intake_dedupe',
    ]);
    await migrate(db, [requestMigrations]);
    expect(await slots()).toEqual(upgraded);

    const service = createRequestService({
      db,
      policy: testPolicy({ tenant }),
      clock: fixedClock('2024-01-31T10:00:00Z'),
      secret,
    });
    const access = (email: string): SubmitRequestInput => ({
      right: 'access',
      identities: [{ kind: 'email', value: email }],
    });
    // The same answers as before the upgrade.
    expect(await service.submit(access('ada@example.com'))).toMatchObject({
      requestId: 'r1',
      duplicateOf: 'r1',
    });
    expect(await service.submit(access('bob@example.com'))).toMatchObject({
      requestId: 'r5',
      duplicateOf: 'r5',
    });
    // r6 also names cy@: it is no duplicate of a submission naming di@ alone (its answer would go
    // to cy@ too); r7, naming di@ alone, is.
    expect(await service.submit(access('di@example.com'))).toMatchObject({
      requestId: 'r7',
      duplicateOf: 'r7',
    });
    // With the slot holder closed, the open duplicate the old code let through is the answer.
    await service.transition('r1', { to: 'cancelled', by: 'staff:eve', reason: 'duplicate of r2' });
    expect(await service.submit(access('ada@example.com'))).toMatchObject({
      requestId: 'r2',
      duplicateOf: 'r2',
    });
    // Both closed: a new request, which takes the slot the closed r1 held.
    await service.transition('r2', { to: 'cancelled', by: 'staff:eve' });
    const fresh = await service.submit(access('ada@example.com'));
    expect(fresh.duplicateOf).toBeNull();
    const ada = await db
      .selectFrom('privacykit_requests_identities')
      .select(['request_id', 'dedupe_right'])
      .where('value', '=', 'ada@example.com')
      .where('dedupe_right', '=', 'access')
      .execute();
    expect(ada).toEqual([{ request_id: fresh.requestId, dedupe_right: 'access' }]);
    expect(await service.submit(access('ada@example.com'))).toMatchObject({
      requestId: fresh.requestId,
      duplicateOf: fresh.requestId,
    });
  });

  it('0003 links each open request that concurrent submissions created while another was open to it, audited', async () => {
    database = await createTestDatabase(engine);
    const { db } = database;
    expect((await migrator(db).migrateTo('0001_init')).error).toBeUndefined();

    const at = '2024-01-30T09:00:00.000Z';
    const open = (id: string, emails: string[], extra: { right?: string; status?: string } = {}) =>
      oldRequest(db, {
        id,
        right: extra.right ?? 'access',
        status: extra.status ?? 'identity-pending',
        receivedAt: at,
        emails,
      });
    // Three identical submissions that raced under 0001 (one of them naming a second identity).
    await open('a1', ['ada@example.com']);
    await open('a2', ['ada@example.com']);
    await open('a3', ['zed@example.com', 'ada@example.com'], { status: 'verified' });
    await open('e1', ['ada@example.com'], { right: 'erasure', status: 'in-progress' });
    // A letter received a week ago, entered a second after a web request it raced with.
    await open('d1', ['dee@example.com']);
    await oldRequest(db, {
      id: 'd0',
      right: 'access',
      status: 'identity-pending',
      receivedAt: '2024-01-23T09:00:00.000Z',
      createdAt: '2024-01-30T09:00:01.000Z',
      emails: ['dee@example.com'],
    });
    // Not duplicates: a request still open but received before the window, and the request after it.
    await oldRequest(db, {
      id: 'b1',
      right: 'access',
      status: 'verified',
      receivedAt: '2024-01-02T09:00:00.000Z',
      emails: ['bob@example.com'],
    });
    await open('b2', ['bob@example.com']);
    // Nor one created after a closed request (when it closed is not known).
    await oldRequest(db, {
      id: 'c1',
      right: 'access',
      status: 'completed',
      receivedAt: '2024-01-29T09:00:00.000Z',
      emails: ['cy@example.com'],
    });
    await open('c2', ['cy@example.com']);

    expect(await migrate(db, [requestMigrations])).toEqual([
      {
        name: 'requests',
        applied: [
          '0002_intake_dedupe',
          '0003_duplicate_links',
          '0004_amendments',
          '0005_mail_throttle',
          '0006_code_guess_limit',
          '0007_submissions',
          '0008_drop_intake',
          '0009_redaction',
        ],
      },
    ]);
    const service = createRequestService({
      db,
      policy: testPolicy({ tenant }),
      clock: fixedClock('2024-01-31T10:00:00Z'),
      secret,
    });
    const ids = ['a1', 'a2', 'a3', 'e1', 'd1', 'd0', 'b1', 'b2', 'c1', 'c2'];
    const links = async () =>
      Object.fromEntries(
        await Promise.all(ids.map(async (id) => [id, (await service.get(id)).duplicateOf] as const)),
      );
    const linked = {
      a1: null,
      a2: 'a1',
      a3: 'a1',
      e1: null,
      d1: null,
      d0: 'd1',
      b1: null,
      b2: null,
      c1: null,
      c2: null,
    };
    expect(await links()).toEqual(linked);
    // The audit trail of a linked request says when, by whom and to which request.
    const marked = async (id: string) =>
      (await service.audit(id)).filter((entry) => entry.action === 'marked-duplicate');
    expect(await marked('a2')).toEqual([
      expect.objectContaining({ by: 'system', from: null, to: null, data: { duplicateOf: 'a1' } }),
    ]);
    expect(await marked('a1')).toEqual([]);
    // The subject's own history shows the link too.
    const history = await service.historyFor([{ kind: 'email', value: 'ada@example.com' }]);
    expect(history.requests.map((request) => [request.id, request.duplicateOf])).toEqual([
      ['a1', null],
      ['a2', 'a1'],
      ['a3', 'a1'],
      ['e1', null],
    ]);

    // Down to 0002 removes the links and their audit entries; up again makes the same ones.
    const down = await migrator(db).migrateTo('0002_intake_dedupe');
    expect(down.results?.map((result) => result.migrationName)).toEqual([
      '0009_redaction',
      '0008_drop_intake',
      '0007_submissions',
      '0006_code_guess_limit',
      '0005_mail_throttle',
      '0004_amendments',
      '0003_duplicate_links',
    ]);
    expect(Object.values(await links()).every((link) => link === null)).toBe(true);
    expect(await marked('a2')).toEqual([]);
    await migrate(db, [requestMigrations]);
    expect(await links()).toEqual(linked);
    expect(await marked('a3')).toHaveLength(1);

    // From then on a duplicate submission is answered with the open request and creates none.
    const before = await db.selectFrom('privacykit_requests_requests').select('id').execute();
    expect(
      await service.submit({ right: 'access', identities: [{ kind: 'email', value: 'ada@example.com' }] }),
    ).toMatchObject({ requestId: 'a1', duplicateOf: 'a1' });
    expect(await db.selectFrom('privacykit_requests_requests').select('id').execute()).toHaveLength(
      before.length,
    );
    expect(await links()).toEqual(linked);
  });
});

/** The columns of index `name`, in order, on whichever table it is; empty when there is no such index. */
async function indexColumns(db: TestDatabase['db'], name: string): Promise<string[]> {
  const query =
    engineOf(db) === 'sqlite'
      ? sql<{ col: string }>`select i.name as col from sqlite_master m, pragma_index_info(m.name) i
          where m.type = 'index' and m.name = ${name} order by i.seqno`
      : engineOf(db) === 'postgres'
        ? sql<{ col: string }>`select a.attname as col from pg_index x
            join pg_class c on c.oid = x.indexrelid
            join pg_attribute a on a.attrelid = x.indrelid and a.attnum = any(x.indkey)
            where c.relname = ${name} order by array_position(x.indkey::int2[], a.attnum)`
        : sql<{ col: string }>`select column_name as col from information_schema.statistics
            where table_schema = database() and index_name = ${name} order by seq_in_index`;
  return (await query.execute(db)).rows.map((row) => row.col);
}

async function tableNames(db: TestDatabase['db']): Promise<string[]> {
  return (await db.introspection.getTables()).map((table) => table.name);
}

describe.each(testEngines())(
  'migration 0008 (the per-submission intake table dropped) on $engine',
  (engine) => {
    let database: TestDatabase | undefined;
    afterEach(async () => {
      await database?.destroy();
      database = undefined;
    });

    it('drops privacykit_requests_intake and its index with the hashed identifiers it held; down recreates it empty', async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      expect((await migrator(db).migrateTo('0007_submissions')).error).toBeUndefined();
      // A row as the code before 0008 wrote one for every submission: a keyed hash of the identity.
      await oldRequest(db, {
        id: 'r1',
        right: 'access',
        status: 'identity-pending',
        receivedAt: '2024-01-30T09:00:00.000Z',
        emails: ['ada@example.com'],
      });
      await db
        .insertInto('privacykit_requests_intake')
        .values({
          id: 'k1',
          tenant,
          lookup_hash: identityLookupHash(secret, 'email', 'ada@example.com'),
          request_id: 'r1',
          received_at: '2024-01-30T09:00:00.000Z',
        })
        .execute();
      expect(await indexColumns(db, 'privacykit_requests_intake_identity')).toEqual([
        'tenant',
        'lookup_hash',
        'received_at',
      ]);

      expect(await migrate(db, [requestMigrations])).toEqual([
        { name: 'requests', applied: ['0008_drop_intake', '0009_redaction'] },
      ]);
      expect(await tableNames(db)).not.toContain('privacykit_requests_intake');
      expect(await indexColumns(db, 'privacykit_requests_intake_identity')).toEqual([]);
      // The request itself is untouched.
      expect((await allRows(db, 'privacykit_requests_requests')).map((row) => row.id)).toEqual(['r1']);

      // Down gives the table back as 0001 made it, empty: what it held is gone for good.
      const down = await migrator(db).migrateTo('0007_submissions');
      expect(down.error).toBeUndefined();
      expect(down.results?.map((result) => result.migrationName)).toEqual([
        '0009_redaction',
        '0008_drop_intake',
      ]);
      expect(await allRows(db, 'privacykit_requests_intake')).toEqual([]);
      expect(await indexColumns(db, 'privacykit_requests_intake_identity')).toEqual([
        'tenant',
        'lookup_hash',
        'received_at',
      ]);
      expect(await migrate(db, [requestMigrations])).toEqual([
        { name: 'requests', applied: ['0008_drop_intake', '0009_redaction'] },
      ]);
      expect(await tableNames(db)).not.toContain('privacykit_requests_intake');
    });

    it('submissions store the hash of an identity only where it is used: its request’s identity row and its mail counter', async () => {
      database = await createTestDatabase(engine);
      const { db } = database;
      await migrate(db, [requestMigrations]);
      const service = createRequestService({
        db,
        policy: testPolicy({ tenant }),
        clock: fixedClock('2024-01-31T10:00:00Z'),
        secret,
      });
      const input: SubmitRequestInput = {
        right: 'access',
        identities: [{ kind: 'email', value: 'ada@example.com' }],
      };
      const first = await service.submit(input);
      // Two more submissions of the same request: duplicates, each with a handle of its own.
      for (let i = 0; i < 2; i++) {
        expect(await service.submit(input)).toMatchObject({ duplicateOf: first.requestId });
      }
      expect(await allRows(db, 'privacykit_requests_submissions')).toHaveLength(3);

      const hash = identityLookupHash(secret, 'email', 'ada@example.com');
      const holding: string[] = [];
      for (const table of (await tableNames(db)).filter((name) => name.startsWith('privacykit_requests_'))) {
        for (const row of await allRows(db, table)) {
          if (Object.values(row).some((value) => typeof value === 'string' && value.includes(hash)))
            holding.push(table);
        }
      }
      // One row per identity of a request, one counter per identity: none per submission.
      expect(holding.sort()).toEqual([
        'privacykit_requests_identities',
        'privacykit_requests_identity_limits',
      ]);
      expect(await tableNames(db)).not.toContain('privacykit_requests_intake');
    });
  },
);

describe.each(testEngines())('migration 0009 (closed_at, redacted_at) on $engine', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('backfills closed_at from the closing transition (or updated_at), and goes down and up again', async () => {
    database = await createTestDatabase(engine);
    const { db } = database;
    expect((await migrator(db).migrateTo('0008_drop_intake')).error).toBeUndefined();
    const receivedAt = '2024-01-30T09:00:00.000Z';
    for (const [id, status] of [
      ['r1', 'completed'],
      ['r2', 'denied'],
      ['r3', 'identity-pending'],
      ['r4', 'in-progress'],
    ] as const) {
      await oldRequest(db, { id, right: 'access', status, receivedAt, emails: [`${id}@example.com`] });
    }
    const entry = (requestId: string, occurred_at: string, action: string, to_status: string | null) => ({
      tenant,
      request_id: requestId,
      occurred_at,
      actor: 'staff:eve',
      action,
      from_status: null,
      to_status,
      reason: null,
      data: null,
    });
    await db
      .insertInto('privacykit_requests_audit')
      .values([
        entry('r1', '2024-02-01T10:00:00.000Z', 'transition', 'in-progress'),
        entry('r1', '2024-02-10T10:00:00.000Z', 'transition', 'completed'),
        // Later steps that close nothing do not count.
        entry('r1', '2024-02-11T10:00:00.000Z', 'extension-notice-sent', null),
        entry('r4', '2024-02-12T10:00:00.000Z', 'transition', 'in-progress'),
      ])
      .execute();

    const closedAt = async () =>
      Object.fromEntries(
        (await allRows(db, 'privacykit_requests_requests')).map((row) => [row.id, row.closed_at ?? null]),
      );
    expect(await migrate(db, [requestMigrations])).toEqual([
      { name: 'requests', applied: ['0009_redaction'] },
    ]);
    const expected = { r1: '2024-02-10T10:00:00.000Z', r2: receivedAt, r3: null, r4: null };
    expect(await closedAt()).toEqual(expected);
    expect((await allRows(db, 'privacykit_requests_requests')).every((row) => row.redacted_at === null)).toBe(
      true,
    );

    const down = await migrator(db).migrateTo('0008_drop_intake');
    expect(down.error).toBeUndefined();
    expect(down.results?.map((result) => result.migrationName)).toEqual(['0009_redaction']);
    const [row] = await allRows(db, 'privacykit_requests_requests');
    expect(Object.keys(row ?? {})).not.toContain('closed_at');
    expect(Object.keys(row ?? {})).not.toContain('redacted_at');

    expect(await migrate(db, [requestMigrations])).toEqual([
      { name: 'requests', applied: ['0009_redaction'] },
    ]);
    expect(await closedAt()).toEqual(expected);

    // The backfilled closure is what redaction counts from.
    const service = createRequestService({
      db,
      policy: testPolicy(),
      secret,
      clock: fixedClock('2025-02-10T12:00:00Z'),
    });
    const seen: Record<string, string | null> = {};
    const result = await service.redact({
      dueAt: (request) => {
        seen[request.id] = request.closedAt?.toISOString() ?? null;
        return request.closedAt ? new Date(request.closedAt.getTime() + 365 * 86_400_000) : null;
      },
    });
    expect(seen).toEqual({ r1: expected.r1, r2: expected.r2, r3: null });
    expect(result).toEqual({ redacted: 2, closed: 2, unverified: 0 });
  });
});
