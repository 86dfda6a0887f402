import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { migrate, openDatabase, writeTransaction } from '@privacykit/core/db';
import { createTestDatabase, lockWaiters, settled, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createExportStore } from './export-store.js';
import { exportSubject } from './export-subject.js';
import { collect, createHostSchema, dataMap, policy, unzip } from './fixtures.js';
import { subjectAccessMigrations } from './migrations.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return isPrivacyKitError(error) ? error.code : `other: ${String(error)}`;
  }
  return 'no error';
}

async function collectRest(iterator: AsyncIterator<unknown>): Promise<void> {
  for (;;) if ((await iterator.next()).done) return;
}

describe.each(testEngines())('export store on $engine', (engine) => {
  let test: TestDatabase;
  const clock = fixedClock('2024-06-01T12:00:00.000Z');

  beforeAll(async () => {
    test = await createTestDatabase(engine);
    await migrate(test.db, [subjectAccessMigrations]);
    await migrate(test.db, [subjectAccessMigrations]);
    await createHostSchema(test.db);
  });
  afterAll(async () => {
    await test?.destroy();
  });

  it('stores an export and hands it out once, to the bound requester only (hostile case 13)', async () => {
    const store = createExportStore({ db: test.db, clock });
    const zip = exportSubject({
      db: test.db,
      dataMap,
      policy,
      identities: { email: ['ada@example.com'] },
      clock,
    });
    const stored = await store.save(zip, { filename: 'ada.zip' });
    const { token, expiresAt } = await store.issueToken(stored.exportId, { binding: 'session-a' });
    expect(expiresAt).toBe('2024-06-01T12:15:00.000Z');

    expect(await codeOf(store.redeem(token, { binding: 'session-b' }))).toBe(
      'subject-access/token-binding-mismatch',
    );
    const redeemed = await store.redeem(token, { binding: 'session-a' });
    expect(redeemed.filename).toBe('ada.zip');
    const bytes = await collect(redeemed.stream);
    expect(bytes.length).toBe(stored.bytes);
    const files = await unzip(bytes);
    expect(JSON.parse(files.get('data/customers.json')!.toString('utf8'))[0].email).toBe('ada@example.com');

    expect(await codeOf(store.redeem(token, { binding: 'session-a' }))).toBe('subject-access/token-used');
  });

  it('refuses expired and unknown tokens, and lets only one of two concurrent redemptions win', async () => {
    const store = createExportStore({ db: test.db, clock });
    const stored = await store.save(Readable.from([Buffer.from('hello')]));
    const late = await store.issueToken(stored.exportId, { binding: 's' });
    clock.advance(15 * 60_000);
    expect(await codeOf(store.redeem(late.token, { binding: 's' }))).toBe('subject-access/token-expired');
    expect(await codeOf(store.redeem('x'.repeat(43), { binding: 's' }))).toBe('subject-access/token-unknown');
    expect(await codeOf(store.redeem('../../etc/passwd', { binding: 's' }))).toBe(
      'subject-access/token-unknown',
    );

    const race = await store.issueToken(stored.exportId, { binding: 's' });
    const results = await Promise.allSettled([
      store.redeem(race.token, { binding: 's' }),
      store.redeem(race.token, { binding: 's' }),
      store.redeem(race.token, { binding: 's' }),
    ]);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason.code).toBe('subject-access/token-used');
      else expect((await collect(result.value.stream)).toString()).toBe('hello');
    }
    clock.set('2024-06-01T12:00:00.000Z');
  });

  it('issues ≥ 128-bit tokens and stores only their hash (hostile case 14)', async () => {
    const store = createExportStore({ db: test.db, clock });
    const stored = await store.save(Readable.from([Buffer.from('data')]));
    const tokens = [];
    for (let i = 0; i < 20; i++) tokens.push(await store.issueToken(stored.exportId, { binding: 'b' }));
    expect(new Set(tokens.map((issued) => issued.token)).size).toBe(20);
    for (const { token } of tokens) expect(Buffer.from(token, 'base64url').length).toBeGreaterThanOrEqual(16);
    const rows = await test.db.selectFrom('privacykit_subject_access_tokens').selectAll().execute();
    const stored_ = JSON.stringify(rows);
    for (const { token } of tokens) expect(stored_).not.toContain(token);
    expect(stored_).not.toContain('"b"');
    expect(await codeOf(store.issueToken('no-such-export', { binding: 'b' }))).toBe(
      'subject-access/export-unknown',
    );
    expect(await codeOf(store.issueToken(stored.exportId, { binding: '' }))).toBe(
      'subject-access/invalid-input',
    );
    // Not a package at all: typed, not a TypeError from cleaning up after it.
    for (const source of [null, undefined, 42, 'text']) {
      expect(await codeOf(store.save(source as never)), String(source)).toBe('subject-access/invalid-input');
    }
    // Pieces that are not bytes: typed, and nothing of the package is kept (a TypeError before).
    const before = await test.db.selectFrom('privacykit_subject_access_packages').select('id').execute();
    for (const source of [
      [1, 2, 3],
      [Buffer.from('a'), null],
    ]) {
      expect(await codeOf(store.save(source as never)), JSON.stringify(source)).toBe(
        'subject-access/invalid-input',
      );
    }
    expect(await test.db.selectFrom('privacykit_subject_access_packages').select('id').execute()).toEqual(
      before,
    );
    // A ttl that is not a number: typed (a RangeError from an invalid date before).
    expect(await codeOf(store.issueToken(stored.exportId, { binding: 'b', ttl: '60000' as never }))).toBe(
      'subject-access/invalid-input',
    );
  });

  it('stores a package given as the bytes themselves (a Buffer or Uint8Array)', async () => {
    const store = createExportStore({ db: test.db, clock, chunkSize: 1024 });
    const bytes = Buffer.from('a collected export '.repeat(200));
    for (const source of [bytes, new Uint8Array(bytes)]) {
      const saved = await store.save(source);
      expect(saved.bytes).toBe(bytes.length);
      const { token } = await store.issueToken(saved.exportId, { binding: 's' });
      const redeemed = await store.redeem(token, { binding: 's' });
      expect(Buffer.compare(await collect(redeemed.stream), bytes)).toBe(0);
    }
  });

  it('encrypts packages at rest in chunks, and detects tampering', async () => {
    const store = createExportStore({ db: test.db, clock, chunkSize: 1024 });
    const marker = 'ada@example.com personal data marker ';
    const plain = Buffer.from(marker.repeat(200));
    const stored = await store.save(Readable.from([plain.subarray(0, 3000), plain.subarray(3000)]));
    const chunks = await test.db
      .selectFrom('privacykit_subject_access_chunks')
      .selectAll()
      .where('package_id', '=', stored.exportId)
      .orderBy('seq')
      .execute();
    expect(chunks.length).toBe(Math.ceil(plain.length / 1024));
    for (const chunk of chunks) {
      expect(Buffer.from(String(chunk.data), 'base64').toString('latin1')).not.toContain('personal data');
    }
    const first = await store.issueToken(stored.exportId, { binding: 'b' });
    expect(
      Buffer.compare(await collect((await store.redeem(first.token, { binding: 'b' })).stream), plain),
    ).toBe(0);

    // Swapping two chunks is caught by the authenticated data binding each chunk to its place.
    await test.db
      .updateTable('privacykit_subject_access_chunks')
      .set({ data: String(chunks[0]!.data) })
      .where('package_id', '=', stored.exportId)
      .where('seq', '=', 1)
      .execute();
    const second = await store.issueToken(stored.exportId, { binding: 'b' });
    const damaged = await store.redeem(second.token, { binding: 'b' });
    expect(await codeOf(collect(damaged.stream))).toBe('subject-access/export-corrupt');
    // A chunk gone from a package that is still there is damage too.
    await test.db
      .deleteFrom('privacykit_subject_access_chunks')
      .where('package_id', '=', stored.exportId)
      .where('seq', '=', 2)
      .execute();
    const third = await store.issueToken(stored.exportId, { binding: 'b' });
    expect(await codeOf(collect((await store.redeem(third.token, { binding: 'b' })).stream))).toBe(
      'subject-access/export-corrupt',
    );
  });

  it('says an export deleted while it was being downloaded is gone, not damaged', async () => {
    const store = createExportStore({ db: test.db, clock, chunkSize: 1024 });
    // Far more chunks than a stream reads ahead (16 KiB on Node 20, 64 KiB from Node 22).
    const plain = randomBytes(400 * 1024);
    const stored = await store.save(Readable.from([plain]));
    const { token } = await store.issueToken(stored.exportId, { binding: 'b' });
    const download = (await store.redeem(token, { binding: 'b' })).stream[Symbol.asyncIterator]();
    const first = await download.next();
    expect(first.done).toBe(false);
    expect(Buffer.compare(first.value as Buffer, plain.subarray(0, 1024))).toBe(0);
    expect(await store.delete(stored.exportId)).toMatchObject({ packages: 1 });
    expect(await codeOf(collectRest(download))).toBe('subject-access/export-unknown');
  });

  it('wraps package keys with a key-encryption key when given', async () => {
    const kek = randomBytes(32);
    const store = createExportStore({ db: test.db, clock, keyEncryptionKey: kek });
    const stored = await store.save(Readable.from([Buffer.from('secret export')]));
    const row = await test.db
      .selectFrom('privacykit_subject_access_packages')
      .select('data_key')
      .where('id', '=', stored.exportId)
      .executeTakeFirstOrThrow();
    expect(String(row.data_key)).toMatch(/^kek:/);
    const { token } = await store.issueToken(stored.exportId, { binding: 'b' });
    expect((await collect((await store.redeem(token, { binding: 'b' })).stream)).toString()).toBe(
      'secret export',
    );
    const withoutKek = createExportStore({ db: test.db, clock });
    const again = await withoutKek.issueToken(stored.exportId, { binding: 'b' });
    expect(await codeOf(withoutKek.redeem(again.token, { binding: 'b' }))).toBe(
      'subject-access/export-corrupt',
    );
    // Another key-encryption key (a misconfigured instance): a typed error, and the link is not
    // spent, so the subject can still download through an instance with the right key.
    const wrongKek = createExportStore({ db: test.db, clock, keyEncryptionKey: randomBytes(32) });
    const link = await wrongKek.issueToken(stored.exportId, { binding: 'c' });
    expect(await codeOf(wrongKek.redeem(link.token, { binding: 'c' }))).toBe('subject-access/export-corrupt');
    expect((await collect((await store.redeem(link.token, { binding: 'c' })).stream)).toString()).toBe(
      'secret export',
    );
  });

  it('stores big packages (multi-chunk, beyond 64 KB rows) and purges them after retention', async () => {
    const store = createExportStore({ db: test.db, clock, retention: 24 * 3600_000 });
    const big = randomBytes(700 * 1024);
    const stored = await store.save(Readable.from([big]));
    const { token } = await store.issueToken(stored.exportId, { binding: 'b' });
    expect(Buffer.compare(await collect((await store.redeem(token, { binding: 'b' })).stream), big)).toBe(0);

    const other = createExportStore({ db: test.db, clock, tenant: 'other-tenant', retention: 24 * 3600_000 });
    const kept = await other.save(Readable.from([Buffer.from('other tenant')]));
    clock.advance(24 * 3600_000);
    const purged = await store.purgeExpired();
    expect(purged.packages).toBeGreaterThanOrEqual(1);
    expect(purged.chunks).toBeGreaterThanOrEqual(3);
    const left = await test.db
      .selectFrom('privacykit_subject_access_chunks')
      .select('package_id')
      .where('package_id', '=', stored.exportId)
      .execute();
    expect(left).toEqual([]);
    expect(await codeOf(store.issueToken(stored.exportId, { binding: 'b' }))).toBe(
      'subject-access/export-unknown',
    );
    // Another tenant's packages are not touched by this tenant's purge.
    const otherRow = await test.db
      .selectFrom('privacykit_subject_access_packages')
      .select('id')
      .where('id', '=', kept.exportId)
      .execute();
    expect(otherRow).toHaveLength(1);
    clock.set('2024-06-01T12:00:00.000Z');
  });

  it('refuses save options its columns cannot hold, typed, before writing anything, and stops the export', async () => {
    const store = createExportStore({ db: test.db, clock });
    const packages = async () =>
      (await test.db.selectFrom('privacykit_subject_access_packages').select('id').execute()).length;
    const before = await packages();
    for (const [options, path] of [
      [{ filename: 'a'.repeat(256) }, 'filename'],
      [{ filename: '' }, 'filename'],
      [{ contentType: 'x'.repeat(256) }, 'contentType'],
      [{ requestId: 'r'.repeat(65) }, 'requestId'],
    ] as const) {
      const zip = exportSubject({
        db: test.db,
        dataMap,
        policy,
        identities: { email: ['ada@example.com'] },
        clock,
      });
      const failure = await store.save(zip, options).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isPrivacyKitError(failure) ? failure.code : failure, path).toBe('subject-access/invalid-input');
      expect((failure as { issues?: { path: string }[] }).issues?.[0]?.path).toBe(path);
      expect(zip.destroyed, path).toBe(true);
    }
    expect(await packages()).toBe(before);
    // The limits are in characters, as every engine's varchar counts them: 255 emoji fit.
    const wide = '🎉'.repeat(251) + '.zip';
    const stored = await store.save(Readable.from([Buffer.from('wide')]), {
      filename: wide,
      requestId: 'é'.repeat(64),
    });
    const { token } = await store.issueToken(stored.exportId, { binding: 'b' });
    expect((await store.redeem(token, { binding: 'b' })).filename).toBe(wide);
  });

  it('refuses bad store options with a typed error', () => {
    const code = (options: Partial<Parameters<typeof createExportStore>[0]>) => {
      try {
        createExportStore({ db: test.db, ...options });
      } catch (error) {
        return isPrivacyKitError(error) ? error.code : `other: ${String(error)}`;
      }
      return 'no error';
    };
    for (const options of [
      { ttl: -1 },
      { ttl: Number.NaN },
      { retention: 0 },
      { chunkSize: 10 },
      { chunkSize: 1024.5 },
      // Past what MariaDB takes in one statement (max_allowed_packet, 16 MiB by default) as base64.
      { chunkSize: 16 * 1024 * 1024 },
      { keyEncryptionKey: new Uint8Array(5) },
    ]) {
      expect(code(options), JSON.stringify(options)).toBe('subject-access/invalid-input');
    }
    expect(code({ chunkSize: 4 * 1024 * 1024, ttl: 60_000 })).toBe('no error');
  });

  it('stores and reads back chunks of the largest size allowed', async () => {
    const store = createExportStore({ db: test.db, clock, chunkSize: 4 * 1024 * 1024 });
    const big = randomBytes(4 * 1024 * 1024 + 1);
    const stored = await store.save(Readable.from([big]));
    const { token } = await store.issueToken(stored.exportId, { binding: 'b' });
    expect(Buffer.compare(await collect((await store.redeem(token, { binding: 'b' })).stream), big)).toBe(0);
    await store.delete(stored.exportId);
  });

  it('never issues a link that outlives its package', async () => {
    const store = createExportStore({ db: test.db, clock, retention: 3600_000 });
    const stored = await store.save(Readable.from([Buffer.from('short-lived')]));
    clock.advance(50 * 60_000);
    // 15 minutes from 12:50 would be 13:05; the package is deleted at 13:00.
    const { token, expiresAt } = await store.issueToken(stored.exportId, { binding: 'b' });
    expect(expiresAt).toBe(stored.expiresAt);
    clock.set(stored.expiresAt);
    expect(await codeOf(store.redeem(token, { binding: 'b' }))).toBe('subject-access/token-expired');
    clock.set('2024-06-01T12:00:00.000Z');
  });

  it('keeps nothing of a save whose source fails', async () => {
    const store = createExportStore({ db: test.db, clock, chunkSize: 1024 });
    async function* failing() {
      yield randomBytes(5000);
      throw new Error('boom');
    }
    const rows = async () => ({
      chunks: (await test.db.selectFrom('privacykit_subject_access_chunks').select('package_id').execute())
        .length,
      packages: (await test.db.selectFrom('privacykit_subject_access_packages').select('id').execute())
        .length,
    });
    const before = await rows();
    await expect(store.save(failing())).rejects.toThrow('boom');
    // Neither the chunks written before the failure nor the package row it started with remain.
    expect(await rows()).toEqual(before);
  });
});

describe.each(testEngines())('a save that fails on $engine', (engine) => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await createTestDatabase(engine);
    // The store's tables are missing: its first write fails, before it reads the export.
    await createHostSchema(test.db, { orders: 20_000 });
  });
  afterAll(async () => {
    await test?.destroy();
  });

  it('stops the export it was given: its spool files are removed and its connection given back', async () => {
    const spoolDirectory = mkdtempSync(join(tmpdir(), 'pk-spool-'));
    // One connection only (PostgreSQL, MySQL): an export left waiting on its cursor keeps it.
    const db = await openDatabase({ url: test.url, poolSize: 1 });
    try {
      const clock = fixedClock('2024-06-01T12:00:00.000Z');
      const zip = exportSubject({
        db,
        dataMap,
        policy,
        identities: { email: ['ada@example.com'] },
        clock,
        spoolDirectory,
      });
      const store = createExportStore({ db: test.db, clock });
      await expect(store.save(zip)).rejects.toThrow(/privacykit_subject_access_packages/);
      expect(zip.destroyed).toBe(true);
      await expect.poll(() => readdirSync(spoolDirectory), { timeout: 5000 }).toEqual([]);
      const answered = db.selectFrom('customers').select('id').where('id', '=', 1).execute();
      const late = new Promise((resolve) => setTimeout(() => resolve('no connection'), 5000));
      expect(await Promise.race([answered, late])).toEqual([{ id: 1 }]);
    } finally {
      await db.destroy();
      rmSync(spoolDirectory, { recursive: true, force: true });
    }
  });
});

// SQLite runs each write transaction under `BEGIN IMMEDIATE` (one writer at a time, no row to
// wait on: the request simply runs after the deletion), so this is for the engines with row locks.
describe.each(testEngines().filter((engine) => engine.engine !== 'sqlite'))(
  'a download link asked for while the export is being deleted on $engine',
  (engine) => {
    it('is refused once the deletion commits, and no token is left behind for an export that is gone', async () => {
      const test = await createTestDatabase(engine);
      try {
        await migrate(test.db, [subjectAccessMigrations]);
        await createHostSchema(test.db);
        const clock = fixedClock('2024-06-01T12:00:00.000Z');
        const store = createExportStore({ db: test.db, clock });
        const stored = await store.save(
          exportSubject({ db: test.db, dataMap, policy, identities: { email: ['ada@example.com'] }, clock }),
        );
        // Another worker (its own connection) is deleting the export, and has not committed yet.
        const other = await openDatabase(test.url);
        let deleted!: () => void;
        const deleting = new Promise<void>((resolve) => {
          deleted = resolve;
        });
        let finish!: () => void;
        const finishing = new Promise<void>((resolve) => {
          finish = resolve;
        });
        const deletion = other.transaction().execute(async (trx) => {
          await trx
            .deleteFrom('privacykit_subject_access_packages')
            .where('id', '=', stored.exportId)
            .execute();
          deleted();
          await finishing;
          await trx
            .deleteFrom('privacykit_subject_access_tokens')
            .where('package_id', '=', stored.exportId)
            .execute();
        });
        await deleting;
        const issued = store.issueToken(stored.exportId, { binding: 'session-a' }).then(
          () => 'issued',
          (error: unknown) => (isPrivacyKitError(error) ? error.code : String(error)),
        );
        // The deletion commits once the request has reached the export's lock (or has answered).
        const answered = settled(issued);
        while (!answered() && (await lockWaiters(other, ['select'])) === 0)
          await new Promise((resolve) => setImmediate(resolve));
        finish();
        await deletion;
        expect(await issued).toBe('subject-access/export-unknown');
        const tokens = await test.db
          .selectFrom('privacykit_subject_access_tokens')
          .select('package_id')
          .where('package_id', '=', stored.exportId)
          .execute();
        expect(tokens).toEqual([]);
        await other.destroy();
      } finally {
        await test.destroy();
      }
    });
  },
);

const DAY = 24 * 3600_000;

type Hold = (work: (trx: Kysely<any>) => Promise<void>) => Promise<void>;

/**
 * Runs `call` while the application's own connection writes in a transaction it holds across an
 * await (300 ms); settles once both have, with `call`'s result or error and how long it took.
 */
async function whileTheApplicationWrites<T>(hold: Hold, call: () => Promise<T>) {
  let holding!: () => void;
  const held = new Promise<void>((resolve) => {
    holding = resolve;
  });
  const order: string[] = [];
  const application = hold(async (trx) => {
    await trx
      .insertInto('customers')
      .values({ id: 100, email: 'grace@example.com', name: 'Grace' })
      .execute();
    holding();
    await new Promise((resolve) => setTimeout(resolve, 300));
  }).then(
    () => void order.push('application committed'),
    (error: unknown) => error,
  );
  await held;
  const start = performance.now();
  const run = call().then(
    (result) => {
      order.push('done');
      return { result, error: undefined };
    },
    (error: unknown) => ({ result: undefined, error }),
  );
  const [applicationError, { result, error }] = await Promise.all([application, run]);
  return { result, error, applicationError, ms: performance.now() - start, order };
}

// SQLite only: better-sqlite3 waits for a lock on the thread (the other engines' drivers do not).
describe.each(testEngines().filter((engine) => engine.engine === 'sqlite'))(
  "the store's writes while another connection of the same process writes, on $engine",
  (engine) => {
    let test: TestDatabase;
    let app: Kysely<any>;
    const rowsOf = async (exportId: string) => ({
      packages: (
        await test.db
          .selectFrom('privacykit_subject_access_packages')
          .select('id')
          .where('id', '=', exportId)
          .execute()
      ).length,
      chunks: (
        await test.db
          .selectFrom('privacykit_subject_access_chunks')
          .select('seq')
          .where('package_id', '=', exportId)
          .execute()
      ).length,
      tokens: (
        await test.db
          .selectFrom('privacykit_subject_access_tokens')
          .select('token_hash')
          .where('package_id', '=', exportId)
          .execute()
      ).length,
    });
    const grace = async () =>
      test.db.selectFrom('customers').select(['id', 'email']).where('id', '=', 100).execute();

    beforeEach(async () => {
      test = await createTestDatabase(engine);
      await migrate(test.db, [subjectAccessMigrations]);
      await createHostSchema(test.db);
      // The application's own connection to the same file.
      app = await openDatabase(test.url);
    });
    afterEach(async () => {
      await app.destroy();
      await test.destroy();
    });

    it("save waits for the application's transaction to commit, then stores the export, without waiting out the busy timeout", async () => {
      const store = createExportStore({
        db: test.db,
        clock: fixedClock('2024-06-01T12:00:00.000Z'),
        chunkSize: 1024,
      });
      const plain = randomBytes(3000);
      const { result, error, applicationError, ms, order } = await whileTheApplicationWrites(
        (work) => app.transaction().execute(work),
        () => store.save(Readable.from([plain])),
      );
      expect(applicationError).toBeUndefined();
      // Before, save's lone inserts slept in SQLite's busy handler on the thread while the
      // application's transaction waited for that thread to commit: 10 s, then "database is locked".
      expect(error).toBeUndefined();
      expect(ms).toBeLessThan(5000);
      expect(order).toEqual(['application committed', 'done']);
      expect(await rowsOf(result!.exportId)).toEqual({ packages: 1, chunks: 3, tokens: 0 });
      const { token } = await store.issueToken(result!.exportId, { binding: 's' });
      expect(Buffer.compare(await collect((await store.redeem(token, { binding: 's' })).stream), plain)).toBe(
        0,
      );
      expect(await grace()).toEqual([{ id: 100, email: 'grace@example.com' }]);
    });

    it('redeem waits for a write transaction of another connection to commit, then spends the token, without waiting out the busy timeout', async () => {
      const store = createExportStore({ db: test.db, clock: fixedClock('2024-06-01T12:00:00.000Z') });
      const stored = await store.save(Readable.from([Buffer.from('hello')]));
      const { token } = await store.issueToken(stored.exportId, { binding: 's' });
      const { result, error, applicationError, ms, order } = await whileTheApplicationWrites(
        (work) => writeTransaction(app, work),
        () => store.redeem(token, { binding: 's' }),
      );
      expect(applicationError).toBeUndefined();
      expect(error).toBeUndefined();
      expect(ms).toBeLessThan(5000);
      expect(order).toEqual(['application committed', 'done']);
      expect((await collect(result!.stream)).toString()).toBe('hello');
      expect(await codeOf(store.redeem(token, { binding: 's' }))).toBe('subject-access/token-used');
      expect(await grace()).toEqual([{ id: 100, email: 'grace@example.com' }]);
    });

    it("delete waits for the application's transaction to commit, then deletes the export, without waiting out the busy timeout", async () => {
      const store = createExportStore({
        db: test.db,
        clock: fixedClock('2024-06-01T12:00:00.000Z'),
        chunkSize: 1024,
      });
      const gone = await store.save(Readable.from([randomBytes(3000)]));
      const kept = await store.save(Readable.from([Buffer.from('kept')]));
      await store.issueToken(gone.exportId, { binding: 's' });
      expect(await rowsOf(gone.exportId)).toEqual({ packages: 1, chunks: 3, tokens: 1 });

      const { result, error, applicationError, ms, order } = await whileTheApplicationWrites(
        (work) => app.transaction().execute(work),
        () => store.delete(gone.exportId),
      );
      expect(applicationError).toBeUndefined();
      expect(error).toBeUndefined();
      // Before, the deletion slept in SQLite's busy handler on the thread while the application's
      // transaction waited for that thread to commit: 10 s, then "database is locked".
      expect(ms).toBeLessThan(5000);
      expect(order).toEqual(['application committed', 'done']);

      expect(result).toEqual({ packages: 1, chunks: 3, tokens: 1 });
      expect(await rowsOf(gone.exportId)).toEqual({ packages: 0, chunks: 0, tokens: 0 });
      expect(await rowsOf(kept.exportId)).toEqual({ packages: 1, chunks: 1, tokens: 0 });
      expect(await grace()).toEqual([{ id: 100, email: 'grace@example.com' }]);
    });

    it('purgeExpired waits for a write transaction of another connection to commit, then purges the expired exports, without waiting out the busy timeout', async () => {
      const clock = fixedClock('2024-06-01T12:00:00.000Z');
      const store = createExportStore({ db: test.db, clock, retention: DAY });
      const expired = [
        await store.save(Readable.from([Buffer.from('first')])),
        await store.save(Readable.from([Buffer.from('second')])),
      ];
      await store.issueToken(expired[0]!.exportId, { binding: 's' });
      clock.advance(DAY);
      const fresh = await store.save(Readable.from([Buffer.from('fresh')]));

      const { result, error, applicationError, ms, order } = await whileTheApplicationWrites(
        (work) => writeTransaction(app, work),
        () => store.purgeExpired(),
      );
      expect(applicationError).toBeUndefined();
      expect(error).toBeUndefined();
      expect(ms).toBeLessThan(5000);
      expect(order).toEqual(['application committed', 'done']);

      expect(result).toEqual({ packages: 2, chunks: 2, tokens: 1 });
      for (const { exportId } of expired) {
        expect(await rowsOf(exportId)).toEqual({ packages: 0, chunks: 0, tokens: 0 });
      }
      expect(await rowsOf(fresh.exportId)).toEqual({ packages: 1, chunks: 1, tokens: 0 });
      const { token } = await store.issueToken(fresh.exportId, { binding: 's' });
      expect((await collect((await store.redeem(token, { binding: 's' })).stream)).toString()).toBe('fresh');
      expect(await grace()).toEqual([{ id: 100, email: 'grace@example.com' }]);
    });
  },
);
