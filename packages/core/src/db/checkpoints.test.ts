import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { isPrivacyKitError } from '../errors.js';
import { backgroundCheckpoints } from './checkpoints.js';
import { openDatabase, sqliteConnectionOf } from './open.js';

const dir = mkdtempSync(join(tmpdir(), 'pk-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** About `pages` WAL pages of new rows, each its own transaction, as a hot path commits them. */
function writePages(db: Kysely<any>, pages: number): void {
  const conn = sqliteConnectionOf(db);
  if (!conn) throw new Error('not a SQLite connection openDatabase opened');
  const insert = conn.prepare('insert into blobs (body) values (?)');
  for (let i = 0; i < pages; i++) insert.run('x'.repeat(3500));
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

async function opened(name: string, checkpoints?: 'background' | 'inline') {
  const file = join(dir, `${name}.db`);
  const db = await openDatabase(checkpoints ? { url: `sqlite:${file}`, checkpoints } : `sqlite:${file}`);
  await sql`create table blobs (id integer primary key, body text not null)`.execute(db);
  return { db, file };
}

describe('SQLite checkpoints', () => {
  it('copies committed pages into the database file on a worker thread, not in the committing call', async () => {
    const { db, file } = await opened('background');
    const before = statSync(file).size;
    // 300 rows (under 1000 WAL frames, SQLite's own threshold): only the worker can copy them.
    writePages(db, 300);
    expect(statSync(file).size).toBe(before);
    expect(await until(() => statSync(file).size > before + 250 * 4096)).toBe(true);
    // 256 MiB of WAL in the 8 KiB pages openDatabase gives a new file.
    const pragma = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    expect(pragma.rows[0]?.wal_autocheckpoint).toBe(32_768);
    await db.destroy();
  });

  it('inline: leaves checkpoints to SQLite (nothing copied below 1000 pages)', async () => {
    const { db, file } = await opened('inline', 'inline');
    // The same writes with the worker, side by side: by the time it has copied its pages, the
    // inline connection has copied none (a relative check, not a guess at how long to wait).
    const background = await opened('inline-beside-background');
    const before = statSync(file).size;
    const backgroundBefore = statSync(background.file).size;
    writePages(db, 300);
    writePages(background.db, 300);
    expect(await until(() => statSync(background.file).size > backgroundBefore + 250 * 4096)).toBe(true);
    expect(statSync(file).size).toBe(before);
    await background.db.destroy();
    const pragma = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    expect(pragma.rows[0]?.wal_autocheckpoint).toBe(1000);
    await db.destroy();
  });

  it('closes the worker’s connection before its own: the last close folds the WAL in and removes it', async () => {
    const { db, file } = await opened('closing');
    writePages(db, 300);
    await db.destroy();
    // With a second connection still open, SQLite would leave the WAL behind.
    expect(existsSync(`${file}-wal`)).toBe(false);
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('select count(*) as n from blobs').get()).toEqual({ n: 300 });
    reader.close();
  });

  it('closed before its worker is up (a CLI command, a script): nothing lost, the WAL folded in, and the worker never opens the file', async () => {
    const file = join(dir, 'short-lived.db');
    const database = new Database(file);
    database.pragma('journal_mode = WAL');
    database.exec('create table blobs (id integer primary key, body text not null)');
    const checkpoints = backgroundCheckpoints(database, file);
    database.prepare('insert into blobs (body) values (?)').run('x');
    // In the same tick as the worker's creation: it cannot have claimed the file yet.
    checkpoints.stop();
    expect(checkpoints.running).toBe(false);
    database.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    // A worker opening the file after all would hold it open in this process (Linux: /proc).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const holding = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file);
      } catch {
        return false;
      }
    });
    expect(holding).toEqual([]);
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('select count(*) as n from blobs').get()).toEqual({ n: 1 });
    reader.close();
  });

  it('keeps every commit while the worker checkpoints and the file is reopened at once', async () => {
    const file = join(dir, 'reopen.db');
    let total = 0;
    for (let round = 0; round < 4; round++) {
      const db = await openDatabase(`sqlite:${file}`);
      await sql`create table if not exists blobs (id integer primary key, body text not null)`.execute(db);
      for (let burst = 0; burst < 5; burst++) {
        writePages(db, 400);
        total += 400;
        await new Promise((resolve) => setTimeout(resolve, 15));
      }
      await db.destroy();
    }
    const reader = new Database(file, { readonly: true });
    expect(reader.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(reader.prepare('select count(*) as n from blobs').get()).toEqual({ n: total });
    reader.close();
  });

  it('sets the committing connection’s limit in bytes of WAL, whatever the page size; pages given win', () => {
    const limits: number[] = [];
    for (const [name, pageSize, options] of [
      ['limit-4k', 4096, { walLimitBytes: 64 * 1024 * 1024 }],
      ['limit-8k', 8192, { walLimitBytes: 64 * 1024 * 1024 }],
      ['limit-odd', 8192, { walLimitBytes: 100_000 }],
      ['limit-pages', 8192, { walLimitBytes: 64 * 1024 * 1024, walLimitPages: 1234 }],
    ] as const) {
      const database = new Database(join(dir, `${name}.db`));
      database.pragma(`page_size = ${pageSize}`);
      database.pragma('journal_mode = WAL');
      const background = backgroundCheckpoints(database, join(dir, `${name}.db`), options);
      limits.push(database.pragma('wal_autocheckpoint', { simple: true }) as number);
      background.stop();
      database.close();
    }
    // 100,000 bytes is 12.2 pages of 8 KiB: rounded up, never below the size asked for.
    expect(limits).toEqual([16_384, 8_192, 13, 1234]);
  });

  it('refuses a WAL limit that is not a positive size with a typed error, before opening anything', async () => {
    const database = new Database(join(dir, 'bad-limit.db'));
    database.pragma('journal_mode = WAL');
    for (const options of [{ walLimitBytes: 0 }, { walLimitBytes: Number.NaN }, { walLimitPages: 2.5 }]) {
      expect(() => backgroundCheckpoints(database, join(dir, 'bad-limit.db'), options)).toThrow(
        expect.objectContaining({ code: 'database/invalid-options' }),
      );
    }
    // Nothing was changed on the connection by the refused calls.
    expect(database.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    database.close();
    for (const sqliteWalLimitBytes of [-1, Number.POSITIVE_INFINITY, 0]) {
      const file = join(dir, `bad-wal-${String(sqliteWalLimitBytes)}.db`);
      await expect(openDatabase({ url: `sqlite:${file}`, sqliteWalLimitBytes })).rejects.toSatisfy(
        (error: unknown) =>
          isPrivacyKitError(error, 'database/invalid-options') &&
          String(error).includes('sqliteWalLimitBytes'),
      );
      expect(existsSync(file)).toBe(false);
    }
  });

  it('keeps the WAL file near a small limit under a steady stream of commits', async () => {
    const file = join(dir, 'small-limit.db');
    const db = await openDatabase({ url: `sqlite:${file}`, sqliteWalLimitBytes: 512 * 1024 });
    await sql`create table blobs (id integer primary key, body text not null)`.execute(db);
    const pragma = await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db);
    expect(pragma.rows[0]?.wal_autocheckpoint).toBe(64);
    let largest = 0;
    for (let burst = 0; burst < 20; burst++) {
      writePages(db, 100);
      largest = Math.max(largest, statSync(`${file}-wal`).size);
    }
    // 2,000 commits append about 33 MB of WAL frames, and with the default limit the file grows
    // to that (the worker never quite catches up with a steady stream). With this limit the log
    // restarts near it: the file stays within a few times the limit (a checkpoint of the
    // committing connection can find the worker's under way and leave the restart to the next;
    // on a loaded machine — CI builds beside it — that happened often enough for 4.3 MB), and
    // far below the 33 MB it reaches without one.
    expect(largest).toBeLessThan(8 * 1024 * 1024);
    const reader = new Database(file, { readonly: true });
    expect(reader.prepare('select count(*) as n from blobs').get()).toEqual({ n: 2000 });
    reader.close();
    await db.destroy();
  });

  it('falls back to SQLite’s own checkpoints when the worker cannot open the file', async () => {
    const database = new Database(join(dir, 'fallback.db'));
    database.pragma('journal_mode = WAL');
    const background = backgroundCheckpoints(database, join(dir, 'missing', 'elsewhere.db'));
    expect(database.pragma('wal_autocheckpoint', { simple: true })).toBe(65_536);
    expect(await until(() => !background.running)).toBe(true);
    expect(database.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    background.stop();
    database.close();
  });
});
