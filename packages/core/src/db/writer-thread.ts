import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CompiledQuery, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Driver, QueryResult } from 'kysely';
import { SQLITE_BUSY_TIMEOUT_MS, sqliteConnectionOf, sqliteFileOf } from './open.js';

/**
 * A second connection to a SQLite file that `openDatabase` opened, on a worker thread of its
 * own, behind a kysely instance. Within a transaction, an `INSERT` without `RETURNING` is sent
 * and not waited for: the thread runs it while this one goes on preparing the next, and a
 * failure comes back from the next statement that is waited for (a read, an update, `COMMIT`),
 * which then fails with it — a `COMMIT` after a failed insert never commits. Everything else
 * waits for its result, as on any connection.
 *
 * Its `writeTransaction`s take their turn with those of the process's other connections to the
 * file, so a synchronous hot path on the main connection (`tryBeginImmediate`) steps aside at
 * once instead of waiting on the thread for a lock the writer holds.
 */
export interface WriterThread {
  /** Runs its queries on the thread's connection. */
  readonly db: Kysely<any>;
  /** Closes the thread's connection (rolling back a transaction left open) and ends the thread. */
  close(): Promise<void>;
}

// Each writer thread's kysely instance: its file, for writeTransaction's turns, and the instance
// it was opened from, whose connection its transactions hold (see writeTransaction).
const writers = new WeakMap<Kysely<any>, { file: string; main: Kysely<any> }>();

/** The file a writer thread's kysely instance writes to, and the instance it was opened from. */
export function writerThreadOf(db: Kysely<any>): { file: string; main: Kysely<any> } | undefined {
  return writers.get(db);
}

/** This module's own path, for the worker to load better-sqlite3 as this package does. */
function basePath(): string {
  return fileURLToPath(import.meta.url);
}

// How many SQL texts the thread keeps by number.
const TEXTS = 1024;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
let db;
function open() {
  const Database = require('node:module').createRequire(workerData.base)('better-sqlite3');
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = ' + workerData.busyTimeout);
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('wal_autocheckpoint = ' + workerData.walAutocheckpoint);
}
try {
  open();
  parentPort.postMessage({ ready: true });
  parentPort.on('message', serve);
} catch (error) {
  if (db) db.close();
  parentPort.postMessage({ ready: false, message: String(error && error.message) });
  parentPort.close();
}
const statements = new Map();
const texts = new Map();
const prepare = (sql) => {
  let statement = statements.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    if (statements.size >= 512) statements.delete(statements.keys().next().value);
    statements.set(sql, statement);
  }
  return statement;
};
const failureOf = (error) => ({
  message: String(error && error.message),
  code: error && error.code,
  name: (error && error.name) || 'Error',
});
// The failure of a statement nobody waits for: the statements after it do not run, the next
// one waited for reports it; a rollback ends it.
let failure;
const bytes = (value) =>
  value instanceof Uint8Array && !Buffer.isBuffer(value)
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
    : value;
function serve(message) {
  if (message.close) {
    failure = undefined;
    try {
      db.close();
    } finally {
      // After every answer before it: the caller knows then that nothing is left to answer.
      parentPort.postMessage({ closed: true });
      parentPort.close();
    }
    return;
  }
  const { id, parameters } = message;
  // A statement's text comes once, with its number; after that the number alone.
  let sql = message.sql;
  if (sql === undefined) sql = texts.get(message.text);
  else {
    texts.set(message.text, sql);
    texts.delete(message.text - ${TEXTS});
  }
  if (failure) {
    if (!/^\\s*rollback\\b/i.test(sql)) {
      if (id !== undefined) parentPort.postMessage({ id, failure });
      return;
    }
    failure = undefined;
  }
  try {
    const statement = prepare(sql);
    const args = parameters.map(bytes);
    if (statement.reader) {
      const rows = statement.all(args);
      if (id !== undefined) parentPort.postMessage({ id, rows });
    } else {
      const { changes, lastInsertRowid } = statement.run(args);
      if (id !== undefined) parentPort.postMessage({ id, changes, lastInsertRowid });
    }
  } catch (error) {
    if (id === undefined) failure = failureOf(error);
    else parentPort.postMessage({ id, failure: failureOf(error) });
  }
}
`;

interface Reply {
  id: number;
  rows?: Record<string, unknown>[];
  changes?: number;
  lastInsertRowid?: number | bigint;
  failure?: { message: string; code?: unknown; name: string };
}

/** The error a statement failed with on the thread, with its driver code (SQLITE_…) kept. */
function errorOf(failure: NonNullable<Reply['failure']>): Error {
  const error = new Error(failure.message) as Error & { code?: unknown };
  error.name = failure.name;
  if (failure.code !== undefined) error.code = failure.code;
  return error;
}

/** Values of a row the thread sent back: bytes as Buffers again (structured cloning drops the class). */
function rowOf(row: Record<string, unknown>): Record<string, unknown> {
  for (const key in row) {
    const value = row[key];
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
      row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  }
  return row;
}

/** The default {@link WriterThreadOptions.pipelined}: an `INSERT` without `RETURNING`. */
export function isPlainInsert(sql: string): boolean {
  return /^\s*insert\b/i.test(sql) && !/\breturning\b/i.test(sql);
}

export interface WriterThreadOptions {
  /**
   * Which statements a transaction sends without waiting for their result (default
   * {@link isPlainInsert}); theirs is `{ rows: [] }`, with no affected-row count. Asked once per
   * SQL text.
   */
  pipelined?: (sql: string) => boolean;
}

class ThreadConnection implements DatabaseConnection {
  #worker: Worker;
  #pending = new Map<number, { resolve: (reply: Reply) => void; reject: (error: Error) => void }>();
  #next = 0;
  #inTransaction = false;
  #ended: Error | undefined;
  #pipelined: (sql: string) => boolean;
  // The number each SQL text was last sent under, so the text crosses to the thread once; the
  // thread keeps the last TEXTS numbers, so an older one is sent again under a new number.
  #texts = new Map<string, number>();
  #numbered = 0;
  // The answer of #pipelined for each SQL text seen (bounded).
  #decided = new Map<string, boolean>();

  constructor(worker: Worker, pipelined: (sql: string) => boolean) {
    this.#worker = worker;
    this.#pipelined = pipelined;
    worker.on('message', (reply: Reply & { closed?: boolean }) => {
      if (reply.closed) {
        this.end(new Error('the writer thread is closed'));
        return;
      }
      const waiting = this.#pending.get(reply.id);
      if (!waiting) return;
      this.#pending.delete(reply.id);
      waiting.resolve(reply);
    });
  }

  /** The thread is gone: whatever still waits, and whatever comes, fails with `error`. */
  end(error: Error): void {
    this.#ended ??= error;
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
  }

  /** Closing: nothing more is sent; what was sent still gets its own answer. */
  refuse(error: Error): void {
    this.#ended ??= error;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#ended) throw this.#ended;
    const { sql } = query;
    const parameters = query.parameters as unknown[];
    const known = this.#texts.get(sql);
    const first = known === undefined || this.#numbered - known >= TEXTS;
    const text = first ? this.#numbered : known;
    // The text is numbered once the thread has it: a message that cannot be sent (a value
    // structured cloning refuses) leaves the numbering as it was.
    const sent = () => {
      if (!first) return;
      this.#numbered++;
      if (this.#texts.size >= 2 * TEXTS) this.#texts.clear();
      this.#texts.set(sql, text);
    };
    if (this.#inTransaction && this.#isPipelined(sql)) {
      this.#worker.postMessage(first ? { text, sql, parameters } : { text, parameters });
      sent();
      return { rows: [] };
    }
    const id = this.#next++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#worker.postMessage(first ? { id, text, sql, parameters } : { id, text, parameters });
      } catch (error) {
        this.#pending.delete(id);
        throw error;
      }
      sent();
    });
    const word = /^\s*(\w+)/.exec(sql)?.[1]?.toLowerCase();
    if (word === 'rollback') this.#inTransaction = false;
    if (reply.failure) throw errorOf(reply.failure);
    if (word === 'begin') this.#inTransaction = true;
    else if (word === 'commit' || word === 'end') this.#inTransaction = false;
    if (reply.rows) return { rows: reply.rows.map(rowOf) as R[] };
    return {
      rows: [],
      numAffectedRows: BigInt(reply.changes ?? 0),
      insertId: BigInt(reply.lastInsertRowid ?? 0),
    };
  }

  #isPipelined(sql: string): boolean {
    let pipelined = this.#decided.get(sql);
    if (pipelined === undefined) {
      pipelined = this.#pipelined(sql);
      if (this.#decided.size >= 512) this.#decided.clear();
      this.#decided.set(sql, pipelined);
    }
    return pipelined;
  }

  // biome-ignore lint/correctness/useYield: streaming is not offered; the error says so.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('a writer thread does not stream query results');
  }
}

class ThreadDriver implements Driver {
  #connection: ThreadConnection;
  #close: () => Promise<void>;
  // One connection: each user waits for the one before it to release it.
  #queue: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  constructor(connection: ThreadConnection, close: () => Promise<void>) {
    this.#connection = connection;
    this.#close = close;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const before = this.#queue;
    let release!: () => void;
    this.#queue = new Promise<void>((resolve) => {
      release = resolve;
    });
    await before;
    this.#release = release;
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  async destroy(): Promise<void> {
    await this.#close();
  }
}

/**
 * Opens a {@link WriterThread} on the file behind `db` (a SQLite file `openDatabase` opened), with
 * the same settings (WAL, `synchronous = NORMAL`, foreign keys, busy timeout, WAL checkpoint
 * threshold). Undefined for any other database (in memory, PostgreSQL, MySQL, a kysely instance
 * the host built) or when the thread cannot start: the caller then writes on `db` itself. It
 * costs a thread start (tens of milliseconds, on the other core): worth it for bulk writes.
 */
export async function openWriterThread(
  db: Kysely<any>,
  options: WriterThreadOptions = {},
): Promise<WriterThread | undefined> {
  const { pipelined = isPlainInsert } = options;
  const raw = sqliteConnectionOf(db);
  const file = raw && sqliteFileOf(raw);
  if (!raw || !file) return undefined;
  const walAutocheckpoint = Number(
    (raw.prepare('pragma wal_autocheckpoint').get() as { wal_autocheckpoint?: unknown } | undefined)
      ?.wal_autocheckpoint ?? 1000,
  );
  let worker: Worker;
  try {
    worker = new Worker(WORKER, {
      eval: true,
      workerData: { base: basePath(), file, busyTimeout: SQLITE_BUSY_TIMEOUT_MS, walAutocheckpoint },
    });
  } catch {
    return undefined;
  }
  // Not unref'd: a caller awaiting its answer must keep the process alive; close() ends it.
  const ready = await new Promise<boolean>((resolve) => {
    worker.once('message', (message: { ready?: boolean }) => resolve(message.ready === true));
    worker.once('error', () => resolve(false));
    worker.once('exit', () => resolve(false));
  });
  if (!ready) {
    await worker.terminate();
    return undefined;
  }
  const connection = new ThreadConnection(worker, pipelined);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('error', (error) => connection.end(error instanceof Error ? error : new Error(String(error))));
  void exited.then(() =>
    connection.end(
      new Error('the writer thread ended before answering: whether the statement took effect is unknown'),
    ),
  );
  let closing: Promise<void> | undefined;
  const close = () => {
    // Statements already sent run and answer first (the thread takes messages in order); a
    // statement still unanswered when the thread has ended fails, its outcome unknown.
    closing ??= (async () => {
      connection.refuse(new Error('the writer thread is closed'));
      worker.postMessage({ close: true });
      await exited;
    })();
    return closing;
  };
  const kysely = new Kysely<any>({
    dialect: {
      createAdapter: () => new SqliteAdapter(),
      createDriver: () => new ThreadDriver(connection, close),
      createIntrospector: (instance) => new SqliteIntrospector(instance),
      createQueryCompiler: () => new SqliteQueryCompiler(),
    },
  });
  writers.set(kysely, { file, main: db });
  return { db: kysely, close };
}
