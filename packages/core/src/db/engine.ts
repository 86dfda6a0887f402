import { MysqlAdapter, PostgresAdapter, SqliteAdapter } from 'kysely';
import type { Kysely } from 'kysely';
import { PrivacyKitError } from '../errors.js';

/** The SQL engines PrivacyKit supports. */
export type Engine = 'sqlite' | 'postgres' | 'mysql';

/**
 * Which engine a kysely instance talks to, read from its adapter. Packages use it where SQL
 * must differ (`FOR UPDATE SKIP LOCKED`, `DELETE … LIMIT`, auto-increment columns).
 */
export function engineOf(db: Kysely<any>): Engine {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  if (adapter instanceof PostgresAdapter) return 'postgres';
  if (adapter instanceof MysqlAdapter) return 'mysql';
  // A second copy of kysely (or a compatible dialect) — fall back to the class name.
  const name = adapter.constructor.name.toLowerCase();
  if (name.includes('sqlite')) return 'sqlite';
  if (name.includes('postgres')) return 'postgres';
  if (name.includes('mysql')) return 'mysql';
  throw new PrivacyKitError(
    'database/unsupported-engine',
    `unsupported kysely adapter ${adapter.constructor.name}`,
  );
}
