import { Migrator, sql } from 'kysely';
import type { CreateTableBuilder, Kysely, Migration, MigrationResult } from 'kysely';
import { PrivacyKitError } from '../errors.js';
import { engineOf } from './engine.js';
import { writeTransaction } from './write-transaction.js';

/**
 * The in-code migrations of one package. Each package owns tables prefixed
 * `privacykit_<name>_` and its own migration table, so it never collides with the host
 * application's migrations or with another package.
 */
export interface PackageMigrations {
  /** Short package name: `consent`, `retention`, … */
  name: string;
  /** Migration name → migration; applied in name order (prefix names with 0001_, 0002_, …). */
  migrations: Readonly<Record<string, Migration>>;
}

export interface MigrateResult {
  name: string;
  applied: string[];
}

/**
 * Checked before anything is written: a string, `[{}]` or a name with a quote in it created
 * tables such as `privacykit_undefined_migrations`; `undefined` or `[null]` threw a TypeError.
 */
function assertPackages(packages: unknown): asserts packages is readonly PackageMigrations[] {
  const invalid = (message: string) => new PrivacyKitError('database/invalid-options', `migrate: ${message}`);
  if (!Array.isArray(packages))
    throw invalid('give an array of package migrations, e.g. [consentMigrations]');
  packages.forEach((pkg: unknown, i) => {
    const { name, migrations } = (pkg ?? {}) as { name?: unknown; migrations?: unknown };
    // It names tables (`privacykit_<name>_migrations`): lower-case letters, digits, - and _.
    if (typeof name !== 'string' || !/^[a-z][a-z0-9_-]{0,47}$/.test(name)) {
      throw invalid(
        `packages[${i}].name must be a short lower-case package name, got ${JSON.stringify(name)}`,
      );
    }
    if (typeof migrations !== 'object' || migrations === null || Array.isArray(migrations)) {
      throw invalid(`packages[${i}] ("${name}") has no migrations record`);
    }
    for (const [id, migration] of Object.entries(migrations)) {
      if (typeof (migration as { up?: unknown } | null)?.up !== 'function') {
        throw invalid(`packages[${i}] ("${name}") migration "${id}" has no up() function`);
      }
    }
  });
}

/**
 * Brings the tables of the given packages up to date, idempotently: already-applied migrations
 * are skipped, concurrent callers wait on kysely's migration lock (on SQLite, on the write lock
 * of one transaction a package, which also leaves nothing of a migration that fails).
 *
 * @throws PrivacyKitError `database/migration-failed` naming the package and migration.
 */
export async function migrate(
  db: Kysely<any>,
  packages: readonly PackageMigrations[],
): Promise<MigrateResult[]> {
  assertPackages(packages);
  const results: MigrateResult[] = [];
  for (const pkg of packages) {
    const run = (on: Kysely<any>) =>
      new Migrator({
        db: on,
        provider: { getMigrations: async () => ({ ...pkg.migrations }) },
        migrationTableName: `privacykit_${pkg.name}_migrations`,
        migrationLockTableName: `privacykit_${pkg.name}_migrations_lock`,
      }).migrateToLatest();
    // SQLite: kysely's migration lock is a no-op there and it runs migrations outside any
    // transaction, so two processes starting together both ran a migration (one failed "table
    // already exists"), and a migration failing halfway left its first tables behind, never to
    // run again. One write transaction a package (SQLite's DDL is transactional): the second
    // process waits its turn and finds the migrations applied; a failure leaves nothing.
    const { error, results: steps = [] } =
      engineOf(db) === 'sqlite' && !db.isTransaction
        ? await writeTransaction(db, async (trx) => {
            const outcome = await run(trx);
            if (outcome.error) throw new FailedMigration(outcome);
            return outcome;
          }).catch((error: unknown) => {
            if (error instanceof FailedMigration) return error.outcome;
            throw error;
          })
        : await run(db);
    if (error) {
      const failed = steps.find((step: MigrationResult) => step.status === 'Error');
      throw new PrivacyKitError(
        'database/migration-failed',
        `migration ${pkg.name}/${failed?.migrationName ?? '?'} failed: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    results.push({ name: pkg.name, applied: steps.map((step) => step.migrationName) });
  }
  if (engineOf(db) === 'mysql' && results.some((result) => result.applied.length > 0)) {
    await binaryTenantColumns(db);
  }
  return results;
}

/** A migration run that failed, thrown to roll its transaction back and caught after. */
class FailedMigration extends Error {
  constructor(readonly outcome: Awaited<ReturnType<Migrator['migrateToLatest']>>) {
    super('migration failed');
  }
}

/**
 * MySQL and MariaDB compare text by the column's collation, and their default ones ignore case:
 * under a plain `varchar` tenant column, tenant `Acme` would read and delete tenant `acme`'s
 * rows. Every `tenant` column of PrivacyKit's tables (`privacykit_…`) is given its character
 * set's binary collation, once: after the migrations that created or changed them.
 */
async function binaryTenantColumns(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{
    name: string;
    type: string;
    nullable: string;
    charset: string;
    collation: string;
  }>`
    select table_name as name, column_type as type, is_nullable as nullable,
      character_set_name as charset, collation_name as collation
    from information_schema.columns
    where table_schema = database() and column_name = 'tenant' and table_name like 'privacykit\_%'`.execute(
    db,
  );
  for (const row of rows) {
    if (!row.charset || row.collation === `${row.charset}_bin`) continue;
    await sql`alter table ${sql.id(row.name)} modify column tenant ${sql.raw(row.type)} character set ${sql.raw(row.charset)} collate ${sql.raw(`${row.charset}_bin`)} ${sql.raw(row.nullable === 'NO' ? 'not null' : 'null')}`.execute(
      db,
    );
  }
}

/**
 * Adds an auto-incrementing integer primary key `column` in each engine's own way
 * (SQLite `integer primary key autoincrement`, PostgreSQL identity, MySQL `auto_increment`).
 */
export function autoIncrementColumn<T extends string, C extends string>(
  db: Kysely<any>,
  table: CreateTableBuilder<T, C>,
  column: string,
): CreateTableBuilder<T, C> {
  switch (engineOf(db)) {
    case 'sqlite':
      return table.addColumn(column, 'integer', (col) => col.primaryKey().autoIncrement().notNull()) as never;
    case 'postgres':
      return table.addColumn(column, 'bigint', (col) =>
        col.primaryKey().generatedAlwaysAsIdentity(),
      ) as never;
    case 'mysql':
      return table.addColumn(column, 'bigint', (col) => col.primaryKey().autoIncrement().notNull()) as never;
  }
}

/**
 * Portable column types. Instants are ISO 8601 UTC text (sort and compare as text on every
 * engine); civil dates are `YYYY-MM-DD` text; JSON is text; flags are 0/1 integers. Short
 * indexed text uses varchar because MySQL cannot index unbounded text.
 */
export const columnType = {
  id: sql`varchar(64)`,
  tenant: sql`varchar(64)`,
  instant: sql`varchar(32)`,
  civilDate: sql`varchar(10)`,
  hash: sql`varchar(128)`,
  shortText: sql`varchar(255)`,
  text: sql`text`,
  json: sql`text`,
  flag: sql`integer`,
} as const;
