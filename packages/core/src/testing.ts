import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Engine } from './db/engine.js';
import { engineOf } from './db/engine.js';
import { openDatabase } from './db/open.js';
import { isPrivacyKitError } from './errors.js';

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

/** How a script run by {@link runScript} ended, with everything it wrote. */
export interface ScriptRun {
  out: string;
  err: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `node --import tsx <script> <args…>` in a process of its own to its end (crash tests: a
 * writer killed mid-run). `onOutput` sees all it has written to stdout after each chunk, with a
 * way to SIGKILL it.
 */
export function runScript(
  script: string,
  args: readonly string[],
  options: { cwd?: string; onOutput?: (out: string, kill: () => void) => void } = {},
): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      options.onOutput?.(out, () => child.kill('SIGKILL'));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ out, err, code, signal }));
  });
}

/**
 * Another process's write lock on a SQLite file, for lock tests: a process of its own opens
 * `file` with better-sqlite3, takes `BEGIN IMMEDIATE` and commits `ms` later. `locked` resolves
 * once it holds the lock, `released` once it has committed and exited (rejecting if it fails).
 */
export function holdSqliteWriteLock(
  file: string,
  ms: number,
): { locked: Promise<void>; released: Promise<void> } {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const script = `const Database = require(${JSON.stringify(driver)});
const db = new Database(${JSON.stringify(file)}, { fileMustExist: true });
db.prepare('begin immediate').run();
process.stdout.write('locked\\n');
setTimeout(() => { db.prepare('commit').run(); db.close(); }, ${Number(ms)});`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const released = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`lock holder exited ${code}: ${err}`)),
    );
  });
  const locked = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    released.then(() => reject(new Error('lock holder exited before it held the lock')), reject);
  });
  return { locked, released };
}

// ---------------------------------------------------------------------------------------------
// Workers in processes of their own, for concurrency tests: each opens its own connections, says
// `ready`, waits for `go` on stdin (so every worker starts at once) and prints one JSON line.

/** A worker process started by {@link startWorker}. */
export interface Worker<T> {
  /** Resolves once the worker is connected and waiting; rejects if it exits first. */
  ready: Promise<void>;
  /** Lets it start. */
  go(): void;
  /** The JSON line it printed last; rejects when it exits non-zero. */
  outcomes: Promise<T>;
}

/**
 * Starts `node --import tsx <script> <args…>` (the script uses {@link waitForGo} and
 * {@link printOutcomes}).
 */
export function startWorker<T = string[]>(
  script: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Worker<T> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
  });
  const name = basename(script);
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const outcomes = new Promise<T>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${name} exited ${code}: ${err}`));
      resolve(JSON.parse(out.slice(READY.length)) as T);
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.startsWith(READY)) resolve();
    });
    // A worker that dies before it is ready fails the test instead of hanging it.
    outcomes.then(
      () => reject(new Error(`${name} exited before it was ready: ${err}`)),
      (error: unknown) => reject(error),
    );
  });
  return { ready, go: () => child.stdin.end('go\n'), outcomes };
}

const READY = 'ready\n';

/** In a worker: says `ready` and waits for `go` on stdin. */
export async function waitForGo(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  process.stdout.write(READY);
  for await (const line of lines) if (line === 'go') break;
  lines.close();
}

/** In a worker: what a failed call answers, its `PrivacyKitError` code or the error itself. */
export function outcomeOf(error: unknown): string {
  if (isPrivacyKitError(error)) return error.code;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** In a worker: prints its outcomes as the one JSON line {@link startWorker} reads. */
export function printOutcomes(outcomes: unknown): void {
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
}

/**
 * How many statements starting with one of `statements` are waiting for a lock on `db`'s
 * database now (PostgreSQL: `pg_stat_activity`; MySQL/MariaDB: the process list, which shows
 * waits its lock tables miss). Lets a test know a request has reached a lock another connection
 * holds, instead of sleeping. Not for SQLite (one writer at a time; nothing waits on a row).
 */
export async function lockWaiters(db: Kysely<any>, statements: readonly string[]): Promise<number> {
  const matches = (column: string) =>
    sql.join(
      statements.map((statement) => sql`${sql.ref(column)} like ${`${statement}%`}`),
      sql` or `,
    );
  // Only this test's database: other suites may run on the same server.
  const query =
    engineOf(db) === 'postgres'
      ? sql<{ n: unknown }>`select count(*) as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and (${matches('query')})`
      : sql<{ n: unknown }>`select count(*) as n from information_schema.processlist
          where db = database() and (${matches('info')})`;
  return Number((await query.execute(db)).rows[0]?.n ?? 0);
}

/** Whether `promise` has settled yet (resolved or rejected), read synchronously. */
export function settled(promise: Promise<unknown>): () => boolean {
  let done = false;
  const end = () => {
    done = true;
  };
  promise.then(end, end);
  return () => done;
}

/**
 * Whether to skip a suite whose outside dependency (a browser, a data file) is missing. On a
 * developer's machine it is skipped with a warning; under CI (`CI` set) a missing dependency is
 * an error, so a run that tests nothing cannot pass for one that tests everything.
 */
export function skipWithout(available: boolean, what: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (available) return false;
  if (env.CI) throw new Error(`${what} is missing, and CI runs every test: install it`);
  console.warn(`${what} is missing: its tests are skipped`);
  return true;
}

/** The Chromium the browser tests drive (Debian's, or `CHROMIUM_PATH`). */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
