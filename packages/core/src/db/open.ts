import { realpathSync } from 'node:fs';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect } from 'kysely';
import type { KyselyPlugin } from 'kysely';
import { PrivacyKitError } from '../errors.js';
import { backgroundCheckpoints } from './checkpoints.js';
import type { CheckpointMode } from './checkpoints.js';
import type { Engine } from './engine.js';
import { assertSqliteDriverSafe } from './sqlite-driver.js';

export interface OpenDatabaseOptions {
  /** `sqlite:path/to/file.db`, `file:…`, `:memory:`, `postgres://…`, `postgresql://…`, `mysql://…` or `mariadb://…`. */
  url: string;
  /** Connection pool size for PostgreSQL and MySQL (default 10). */
  poolSize?: number;
  /**
   * SQLite files: where WAL checkpoints run (default `'background'`: a worker thread with its
   * own connection, so commits do not stall on them; `'inline'`: SQLite's default).
   */
  checkpoints?: CheckpointMode;
  /**
   * SQLite: the page size, in bytes, of a file this call creates (default 8192; a power of two
   * from 512 to 65536). An existing file keeps the size it was created with. 8 KiB pages hold
   * twice the rows of SQLite's 4 KiB default, so random-key upserts split pages half as often
   * and a commit appends fewer pages to the WAL.
   */
  sqlitePageSize?: number;
  /**
   * SQLite files with background checkpoints: how large the WAL may grow, in bytes, before the
   * committing connection checkpoints it itself so the log can restart (default 256 MiB; see
   * `backgroundCheckpoints`). Larger: fewer commits stall on that checkpoint, a larger WAL file.
   */
  sqliteWalLimitBytes?: number;
  /**
   * SQLite: overwrite deleted and replaced content with zeros (`secure_delete`, default true), so
   * a row deleted for erasure, retention or crypto-shredding is gone from the file, not left in
   * its free space for anyone with a copy of it to read. Costs a write of each page freed whole.
   * `truncateSqliteLog(db)` then clears the old page images still in the write-ahead log.
   */
  sqliteSecureDelete?: boolean;
}

/** A connection string's engine, without opening anything. */
export function engineOfUrl(url: string): Engine {
  if (typeof url !== 'string' || url.length === 0) {
    throw new PrivacyKitError(
      'database/invalid-url',
      `a database URL is a non-empty string (sqlite:<file>, postgres://… or mysql://…), got ${url === '' ? 'an empty string' : typeof url}`,
    );
  }
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  if (/^(mysql|mariadb):\/\//i.test(url)) return 'mysql';
  if (url === ':memory:' || /^(sqlite|file):/i.test(url) || /\.(db|sqlite3?)$/i.test(url)) return 'sqlite';
  throw new PrivacyKitError(
    'database/invalid-url',
    `cannot tell the database engine of "${redact(url)}": use sqlite:<file>, postgres://… or mysql://…`,
  );
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}

async function load<T>(module: string, engine: string): Promise<T> {
  try {
    return (await import(module)) as T;
  } catch (cause) {
    throw new PrivacyKitError(
      'database/driver-missing',
      `${engine} needs the "${module}" package: npm install ${module}`,
      { cause },
    );
  }
}

type BetterSqlite = import('better-sqlite3').Database;
type BetterStatement = ReturnType<BetterSqlite['prepare']>;

/**
 * kysely's SQLite driver prepares every statement it runs; preparing costs more than running a
 * small statement. Reuse prepared statements by SQL text (LRU). A statement still being iterated
 * (a stream) is busy and cannot be reused, so a busy hit gets a fresh, uncached statement.
 */
export function withStatementCache(
  database: BetterSqlite,
  size = 512,
): { close(): void; prepare(sql: string): BetterStatement } {
  const cache = new Map<string, BetterStatement>();
  return {
    close: () => {
      cache.clear();
      database.close();
    },
    prepare(sql) {
      // Every statement kysely runs waits for another connection's lock as configured.
      restoreBusyTimeout(database as unknown as SqliteConnection);
      const cached = cache.get(sql);
      if (cached && !cached.busy) {
        cache.delete(sql);
        cache.set(sql, cached);
        return cached;
      }
      const statement = database.prepare(sql);
      if (!cached) {
        cache.set(sql, statement);
        if (cache.size > size) cache.delete(cache.keys().next().value as string);
      }
      return statement;
    },
  };
}

/** How long a SQLite connection `openDatabase` opens waits for another's write lock. */
export const SQLITE_BUSY_TIMEOUT_MS = 10_000;

/** The part of a better-sqlite3 statement a synchronous hot path uses. */
export interface SqliteStatement {
  run(...parameters: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  get(...parameters: unknown[]): unknown;
  all(...parameters: unknown[]): unknown[];
  /** Integers as `bigint` (exact beyond 2^53) instead of numbers. */
  safeIntegers(toggle?: boolean): SqliteStatement;
}

/** The part of a better-sqlite3 connection a synchronous hot path uses. */
export interface SqliteConnection {
  readonly open: boolean;
  readonly inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
  /** Runs SQL text without returning rows (better-sqlite3's `exec`). */
  exec(sql: string): unknown;
}

const sqliteConnections = new WeakMap<Kysely<any>, SqliteConnection>();
// The connection behind every instance derived from one openDatabase opened, transactions
// included (kysely hands them the same dialect adapter).
const adapterConnections = new WeakMap<object, SqliteConnection>();

/**
 * The instance `openDatabase` returns for SQLite: instances derived from it (`withPlugin`,
 * `withoutPlugins`, `withSchema`, `withTables`) run on the same connection, and are known to
 * `sqliteConnectionOf` as it is. Before, a `db.withPlugin(new CamelCasePlugin())` was not: its
 * writeTransaction waited in SQLite's busy handler with the event loop stopped (10 s, then
 * "database is locked"), and its traversal paged through keys beyond 2^53 by rounded keys.
 */
class SqliteKysely extends Kysely<any> {
  #derived<T extends Kysely<any>>(derived: T): T {
    const connection = sqliteConnections.get(this);
    if (connection) sqliteConnections.set(derived, connection);
    return derived;
  }
  override withPlugin(plugin: KyselyPlugin): Kysely<any> {
    return this.#derived(super.withPlugin(plugin));
  }
  override withoutPlugins(): Kysely<any> {
    return this.#derived(super.withoutPlugins());
  }
  override withSchema(schema: string): Kysely<any> {
    return this.#derived(super.withSchema(schema));
  }
  override withTables<T extends Record<string, Record<string, any>>>(): Kysely<any> {
    return this.#derived(super.withTables<T>());
  }
}

const sqliteFiles = new WeakMap<SqliteConnection, string>();

/**
 * The file of a connection `openDatabase` opened, as one canonical path (undefined in memory):
 * connections with the same file share its write lock, however its path was spelled.
 */
export function sqliteFileOf(connection: SqliteConnection): string | undefined {
  return sqliteFiles.get(connection);
}

/**
 * The better-sqlite3 connection behind a kysely instance that `openDatabase` opened, for a hot
 * path that must run a whole transaction synchronously (no await between statements); undefined
 * for any other instance (PostgreSQL, MySQL, or a SQLite kysely the host built itself). A caller
 * must leave the connection as it found it: check `inTransaction` first and never hold it
 * across an await, since kysely shares the same connection. Asking for it gives it back its busy
 * timeout, should `tryBeginImmediate` have left it without one.
 */
export function sqliteConnectionOf(db: Kysely<any>): SqliteConnection | undefined {
  const connection = sqliteConnections.get(db);
  if (!connection?.open) return undefined;
  restoreBusyTimeout(connection);
  return connection;
}

// The connection-bound instance a `writeTransaction` hands its work, while it runs → its connection.
const transactionConnections = new WeakMap<Kysely<any>, SqliteConnection>();

/** While `work` runs, `trx` (a writeTransaction's instance bound to `connection`) maps to it. */
export async function withTransactionConnection<R>(
  trx: Kysely<any>,
  connection: SqliteConnection | undefined,
  work: () => Promise<R>,
): Promise<R> {
  if (!connection) return work();
  transactionConnections.set(trx, connection);
  try {
    return await work();
  } finally {
    transactionConnections.delete(trx);
  }
}

/**
 * The connection a transaction runs on, while it runs (for reads that must see the transaction's
 * own writes): a `writeTransaction`'s `trx`, or a kysely `Transaction` of a database
 * `openDatabase` opened (its one connection is the transaction's); undefined for anything else.
 */
export function sqliteTransactionConnectionOf(trx: Kysely<any>): SqliteConnection | undefined {
  const connection =
    transactionConnections.get(trx) ??
    (trx.isTransaction ? adapterConnections.get(trx.getExecutor().adapter) : undefined);
  return connection?.open ? connection : undefined;
}

// Connections whose busy timeout `lowerBusyTimeout` set to 0 and that have not had it back yet.
const lowered = new WeakSet<SqliteConnection>();

/**
 * Sets a connection's busy timeout to 0 until {@link restoreBusyTimeout}, which runs before the
 * next statement kysely prepares on it, when `sqliteConnectionOf` hands it out again, and at the
 * latest when this turn of the event loop ends (setImmediate). A hot path that begins many
 * transactions in a row without waiting (tryBeginImmediate) pays for the pragma pair once, not
 * for every transaction: the pair cost about 5% of a consent decision.
 */
export function lowerBusyTimeout(connection: SqliteConnection): void {
  if (lowered.has(connection)) return;
  // `exec`: SQLite applies `busy_timeout` when the pragma is prepared, and exec prepares and runs it.
  connection.exec('pragma busy_timeout = 0');
  lowered.add(connection);
  setImmediate(() => restoreBusyTimeout(connection));
}

/** Gives a connection lowered by {@link lowerBusyTimeout} its busy timeout back; otherwise nothing. */
export function restoreBusyTimeout(connection: SqliteConnection): void {
  if (!lowered.delete(connection)) return;
  if (connection.open) connection.exec(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
}

function sqlitePath(url: string): string {
  if (url === ':memory:') return url;
  return url.replace(/^sqlite:(\/\/)?/i, '').replace(/^file:(\/\/)?/i, '') || ':memory:';
}

/**
 * Opens a kysely instance for SQLite (better-sqlite3, WAL, foreign keys on), PostgreSQL (pg,
 * with pg-cursor for streaming when installed) or MySQL/MariaDB (mysql2). Drivers are optional
 * peer dependencies: a missing one is a `database/driver-missing` error saying what to install;
 * a better-sqlite3 build that would abort the process on this Node.js (12.x compiled from source
 * against Node.js ≥ 24.19) is a `database/driver-incompatible` error.
 */
export async function openDatabase(options: OpenDatabaseOptions | string): Promise<Kysely<any>> {
  if (typeof options !== 'string' && (typeof options !== 'object' || options === null)) {
    throw new PrivacyKitError(
      'database/invalid-options',
      `openDatabase takes a URL or { url, … }, got ${options === null ? 'null' : typeof options}`,
    );
  }
  const {
    url,
    poolSize = 10,
    checkpoints = 'background',
    sqlitePageSize = 8192,
    sqliteWalLimitBytes,
    sqliteSecureDelete = true,
  } = typeof options === 'string' ? ({ url: options } as OpenDatabaseOptions) : options;
  const engine = engineOfUrl(url);
  if (
    !Number.isInteger(sqlitePageSize) ||
    sqlitePageSize < 512 ||
    sqlitePageSize > 65536 ||
    (sqlitePageSize & (sqlitePageSize - 1)) !== 0
  ) {
    throw new PrivacyKitError(
      'database/invalid-options',
      `sqlitePageSize is a power of two from 512 to 65536, got ${String(sqlitePageSize)}`,
    );
  }
  if (
    sqliteWalLimitBytes !== undefined &&
    (typeof sqliteWalLimitBytes !== 'number' ||
      !Number.isFinite(sqliteWalLimitBytes) ||
      sqliteWalLimitBytes <= 0)
  ) {
    throw new PrivacyKitError(
      'database/invalid-options',
      `sqliteWalLimitBytes is a positive number of bytes, got ${String(sqliteWalLimitBytes)}`,
    );
  }
  switch (engine) {
    case 'sqlite': {
      const module = await load<{ default: typeof import('better-sqlite3') }>('better-sqlite3', 'SQLite');
      assertSqliteDriverSafe(import.meta.url);
      let database: InstanceType<typeof module.default>;
      try {
        database = new module.default(sqlitePath(url));
      } catch (cause) {
        // A directory that does not exist, a path that is a directory, no permission.
        throw new PrivacyKitError(
          'database/invalid-url',
          `cannot open the SQLite file of "${redact(url)}": ${(cause as Error).message}`,
          { cause },
        );
      }
      // Before anything is written: a new file takes this size; an existing one keeps its own.
      database.pragma(`page_size = ${sqlitePageSize}`);
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
      database.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      // Deleted personal data goes from the file, not only from the tables (see the option).
      database.pragma(`secure_delete = ${sqliteSecureDelete === false ? 'OFF' : 'ON'}`);
      const connection = withStatementCache(database);
      if (checkpoints === 'background' && !database.memory) {
        const background = backgroundCheckpoints(
          database,
          database.name,
          sqliteWalLimitBytes === undefined ? {} : { walLimitBytes: sqliteWalLimitBytes },
        );
        const close = connection.close;
        connection.close = () => {
          background.stop();
          close();
        };
      }
      const db = new SqliteKysely({ dialect: new SqliteDialect({ database: connection }) });
      sqliteConnections.set(db, database as unknown as SqliteConnection);
      adapterConnections.set(db.getExecutor().adapter, database as unknown as SqliteConnection);
      if (!database.memory) {
        sqliteFiles.set(database as unknown as SqliteConnection, realpathSync(database.name));
      }
      return db;
    }
    case 'postgres': {
      const pg = await load<{ default: typeof import('pg') }>('pg', 'PostgreSQL');
      let cursor: unknown;
      try {
        const cursorModule = 'pg-cursor';
        cursor = ((await import(cursorModule)) as { default: unknown }).default;
      } catch {
        cursor = undefined;
      }
      const pool = new pg.default.Pool({
        connectionString: url,
        max: poolSize,
        types: {
          // int8 (counts, sequences, keys) as numbers while exact; beyond 2^53 as text, as
          // mysql2's supportBigNumbers does, so a host's snowflake ids are never rounded.
          // date as its civil date text (`2020-01-15`), as SQLite and mysql2 (dateStrings) give it:
          // node-pg's default, a Date at the server's local midnight, is a day early once read in
          // a zone west of the server's.
          getTypeParser: (oid: number, format?: unknown) =>
            oid === 20
              ? (value: string) => {
                  const number = Number(value);
                  return Number.isSafeInteger(number) ? number : value;
                }
              : oid === 1082
                ? (value: string) => value
                : pg.default.types.getTypeParser(oid, format as 'text'),
        },
      });
      // An idle client's error (server restart, failover, a dropped database) must not crash the
      // host process: the pool discards that client and the next query reconnects.
      pool.on('error', () => {});
      return new Kysely<any>({
        dialect: new PostgresDialect({ pool, ...(cursor ? { cursor: cursor as never } : {}) }),
      });
    }
    case 'mysql': {
      const mysql = await load<{ createPool: typeof import('mysql2').createPool }>('mysql2', 'MySQL');
      const pool = mysql.createPool({
        uri: url.replace(/^mariadb:/i, 'mysql:'),
        connectionLimit: poolSize,
        dateStrings: true,
        supportBigNumbers: true,
        decimalNumbers: true,
        timezone: 'Z',
        // DATETIME and TIMESTAMP as ISO 8601 UTC text, as instants are everywhere else (PostgreSQL
        // gives a Date, PrivacyKit's own columns hold ISO text); dates stay `YYYY-MM-DD`.
        typeCast: (field, next) => {
          if (field.type !== 'DATETIME' && field.type !== 'TIMESTAMP') return next();
          const text = field.string();
          return text === null ? null : mysqlInstant(text);
        },
      });
      // Sessions in UTC, so a TIMESTAMP reads (and NOW() writes) the instant itself, not the
      // server's local time; run before the connection's first query.
      pool.on('connection', (connection) => {
        connection.query("set time_zone = '+00:00'");
      });
      return new Kysely<any>({ dialect: new MysqlDialect({ pool: pool as never }) });
    }
    default: {
      const unreachable: never = engine;
      throw new PrivacyKitError('database/unsupported-engine', `unsupported engine ${String(unreachable)}`);
    }
  }
}

/**
 * A MySQL DATETIME/TIMESTAMP text (`2024-01-01 10:00:00.123`, UTC in a UTC session) as ISO 8601
 * (`2024-01-01T10:00:00.123Z`), its fraction kept to the last digit; a zero date as it is.
 */
function mysqlInstant(text: string): string {
  const match = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/.exec(text);
  if (!match || match[1]!.startsWith('0000')) return text;
  return `${match[1]}T${match[2]}.${(match[3] ?? '').padEnd(3, '0')}Z`;
}

/**
 * On a SQLite file `openDatabase` opened: copies the write-ahead log back into the database and
 * truncates it to nothing, so the old versions of pages it still held — rows as they were before
 * a deletion or an update, in the log until it is reused — are gone from every file a copy would
 * take. Call after deleting personal data (erasure, crypto-shredding): with `secure_delete` the
 * database file itself keeps none. Waits at most a second for readers of older snapshots (the
 * event loop waits too); answers whether the log was truncated (false: it is cleared later, as
 * the log is reused). Other engines and instances: false, nothing done (PostgreSQL keeps deleted
 * rows until VACUUM, MySQL until its purge).
 */
export async function truncateSqliteLog(db: Kysely<any>): Promise<boolean> {
  const connection = sqliteConnectionOf(db);
  if (!connection || !sqliteFiles.has(connection)) return false;
  const attempt = () =>
    db.connection().execute(async () => {
      restoreBusyTimeout(connection);
      connection.exec('pragma busy_timeout = 1000');
      try {
        const row = connection.prepare('pragma wal_checkpoint(TRUNCATE)').get() as
          | { busy?: number }
          | undefined;
        return row?.busy === 0;
      } catch {
        return false;
      } finally {
        connection.exec(`pragma busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      }
    });
  // A checkpoint already running (the background worker's pass) makes this one give up at once,
  // whatever the busy timeout: the log then kept the shredded rows until its next reset. Asked
  // again between the worker's passes (bounded: about two seconds).
  for (let tries = 1; ; tries++) {
    if (await attempt()) return true;
    if (tries >= 100) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
