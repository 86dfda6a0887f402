import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Engine } from './db/engine.js';
import { openDatabase } from './db/open.js';

/** An engine a suite runs against: SQLite always, the others when their URL is configured. */
export interface TestEngine {
  engine: Engine;
  /** Admin URL: a fresh database is created under it for each `createTestDatabase`. */
  url: string;
}

/**
 * The engines to test on, like kysely's `DIALECTS`: SQLite always; PostgreSQL when
 * `PRIVACYKIT_TEST_POSTGRES_URL` is set; MySQL/MariaDB when `PRIVACYKIT_TEST_MYSQL_URL` is set.
 * Use with `describe.each(testEngines())`.
 */
export function testEngines(env: NodeJS.ProcessEnv = process.env): TestEngine[] {
  const engines: TestEngine[] = [{ engine: 'sqlite', url: 'sqlite' }];
  if (env.PRIVACYKIT_TEST_POSTGRES_URL)
    engines.push({ engine: 'postgres', url: env.PRIVACYKIT_TEST_POSTGRES_URL });
  if (env.PRIVACYKIT_TEST_MYSQL_URL) engines.push({ engine: 'mysql', url: env.PRIVACYKIT_TEST_MYSQL_URL });
  return engines;
}

export interface TestDatabase {
  engine: Engine;
  db: Kysely<any>;
  /** URL of the fresh database, for a second connection or another process. */
  url: string;
  /** Closes the connection and drops the database (deletes the SQLite file). */
  destroy(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/**
 * A fresh, empty database on `engine`, so suites running in parallel never see each other's
 * tables: a WAL-mode SQLite file in the temp directory, or a new PostgreSQL / MySQL database.
 */
export async function createTestDatabase(engine: TestEngine): Promise<TestDatabase> {
  const name = `pk_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  switch (engine.engine) {
    case 'sqlite': {
      const file = join(tmpdir(), `${name}.sqlite`);
      const url = `sqlite:${file}`;
      const db = await openDatabase(url);
      return {
        engine: 'sqlite',
        db,
        url,
        async destroy() {
          await db.destroy();
          for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
        },
      };
    }
    case 'postgres':
    case 'mysql': {
      const admin = await openDatabase({ url: engine.url, poolSize: 1 });
      const { sql } = await import('kysely');
      await sql`create database ${sql.id(name)}`.execute(admin);
      const url = withDatabase(engine.url, name);
      const db = await openDatabase(url);
      return {
        engine: engine.engine,
        db,
        url,
        async destroy() {
          await db.destroy();
          if (engine.engine === 'postgres') {
            // pg's pool.end() resolves before the server has seen every client go: wait for the
            // sessions to end, so dropping the database never terminates a closing connection.
            for (let attempt = 0; attempt < 100; attempt++) {
              const { rows } = await sql<{
                n: number;
              }>`select count(*)::int as n from pg_stat_activity where datname = ${name}`.execute(admin);
              if ((rows[0]?.n ?? 0) === 0) break;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
          await sql`drop database if exists ${sql.id(name)}${engine.engine === 'postgres' ? sql` with (force)` : sql``}`.execute(
            admin,
          );
          await admin.destroy();
        },
      };
    }
  }
}
