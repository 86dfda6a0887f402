import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PrivacyKitError } from '../errors.js';

/**
 * Where a SQLite file's WAL is copied back into the database (a checkpoint, two fsyncs):
 * - `'background'` (default): on a worker thread with its own connection, so a commit only
 *   appends its pages to the WAL. The committing connection still checkpoints itself when the
 *   WAL reaches its limit (the worker fell behind, or the log must restart from its start).
 * - `'inline'`: SQLite's default, by the connection that commits past 1000 WAL pages.
 */
export type CheckpointMode = 'background' | 'inline';

export interface BackgroundCheckpointOptions {
  /** The shortest pause between the worker's passes, in milliseconds (default 20; the longest is 50 times it). */
  intervalMs?: number;
  /**
   * The worker paces its passes to checkpoint about this many WAL pages each (default 1000,
   * SQLite's own threshold), and skips a pass when the WAL has not changed.
   */
  thresholdPages?: number;
  /**
   * The committing connection's own checkpoint threshold once the worker runs, in bytes of WAL
   * (default 256 MiB). Under a steady stream of commits the worker never quite catches up (each
   * pass ends with an fsync while new commits arrive), so the log restarts only when the
   * committing connection reaches this limit and checkpoints the rest itself: a stall of about
   * three fsyncs. A larger limit stalls less often and lets the WAL file grow larger.
   */
  walLimitBytes?: number;
  /** The same limit in pages of the database; given, it takes precedence over `walLimitBytes`. */
  walLimitPages?: number;
}

/** The default {@link BackgroundCheckpointOptions.walLimitBytes}: 256 MiB. */
const DEFAULT_WAL_LIMIT_BYTES = 256 * 1024 * 1024;

/** The WAL limit in pages of `database` (at least one page). */
function walLimitPagesOf(database: Pragmatic, options: BackgroundCheckpointOptions): number {
  const { walLimitBytes = DEFAULT_WAL_LIMIT_BYTES, walLimitPages } = options;
  if (walLimitPages !== undefined) {
    if (!Number.isInteger(walLimitPages) || walLimitPages < 1) {
      throw new PrivacyKitError(
        'database/invalid-options',
        `walLimitPages is a whole number of pages from 1, got ${String(walLimitPages)}`,
      );
    }
    return walLimitPages;
  }
  if (typeof walLimitBytes !== 'number' || !Number.isFinite(walLimitBytes) || walLimitBytes <= 0) {
    throw new PrivacyKitError(
      'database/invalid-options',
      `walLimitBytes is a positive number of bytes, got ${String(walLimitBytes)}`,
    );
  }
  const row = (database.pragma('page_size') as { page_size?: number }[] | undefined)?.[0];
  const pageSize = row?.page_size ?? 4096;
  return Math.max(1, Math.ceil(walLimitBytes / pageSize));
}

interface Pragmatic {
  pragma(source: string): unknown;
}

/** This module's own path, for the worker to load better-sqlite3 as this package does (tsup shims it in the CJS build). */
function basePath(): string {
  return fileURLToPath(import.meta.url);
}

// The shared state: STARTING until the worker claims the file (OPEN) or stop() comes first
// (CANCELLED: the worker then never opens it), CLOSED once the worker's connection is closed.
const STARTING = 0;
const OPEN = 1;
const CLOSED = 2;
const CANCELLED = 3;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const state = new Int32Array(workerData.state);
const finish = () => {
  Atomics.store(state, 0, ${CLOSED});
  Atomics.notify(state, 0);
};
let db;
if (Atomics.compareExchange(state, 0, ${STARTING}, ${OPEN}) !== ${STARTING}) {
  // stop() came before the thread was up: nothing opened, nothing to close.
  parentPort.close();
} else {
  try {
    const Database = require('node:module').createRequire(workerData.base)('better-sqlite3');
    db = new Database(workerData.file, { fileMustExist: true });
  } catch (error) {
    finish();
    throw error;
  }
  run();
}
function run() {
  const fs = require('node:fs');
  // Only when the WAL changed (its mtime; stat by path opens no descriptor, whose close would drop
  // SQLite's POSIX locks), and paced to about thresholdPages frames a pass: the pause doubles while
  // a pass finds fewer frames added, halves when more (from intervalMs up to 50 times it).
  const wal = workerData.file + '-wal';
  const shortest = workerData.intervalMs;
  const longest = shortest * 50;
  let pause = shortest;
  let seen = 0;
  let lastLog = 0;
  let timer;
  const tick = () => {
    let mtime = seen;
    try {
      mtime = fs.statSync(wal).mtimeMs;
    } catch {
      // No WAL yet.
    }
    if (mtime !== seen) {
      seen = mtime;
      try {
        const { log } = db.pragma('wal_checkpoint(PASSIVE)')[0];
        const added = log >= lastLog ? log - lastLog : log;
        lastLog = log;
        pause = added >= workerData.thresholdPages ? Math.max(shortest, pause / 2) : Math.min(longest, pause * 2);
      } catch {
        // Busy: the next pass tries again, and the committing connection checkpoints past its limit.
      }
    }
    timer = setTimeout(tick, pause);
  };
  timer = setTimeout(tick, pause);
  parentPort.on('message', () => {
    clearTimeout(timer);
    try {
      db.close();
    } finally {
      finish();
      parentPort.close();
    }
  });
}
`;

/**
 * Checkpoints a WAL-mode SQLite file on a worker thread (unref'd: it never keeps a process
 * alive; it costs one thread start, about 40 ms of the other core, when the database opens).
 * `stop()` closes the worker's connection before returning, so the caller's own close is the
 * last one (SQLite then checkpoints and removes the WAL as usual, and a file deleted right after
 * cannot have a late connection write into it).
 */
export function backgroundCheckpoints(
  database: Pragmatic,
  file: string,
  options: BackgroundCheckpointOptions = {},
): { stop(): void; readonly running: boolean } {
  const { intervalMs = 20, thresholdPages = 1000 } = options;
  const walLimitPages = walLimitPagesOf(database, options);
  let stopped = false;
  const shared = new SharedArrayBuffer(4);
  const state = new Int32Array(shared);
  let worker: Worker | undefined = new Worker(WORKER, {
    eval: true,
    // Absolute: the worker opens the file later, and the process may change directory meanwhile.
    workerData: { base: basePath(), file: resolve(file), intervalMs, thresholdPages, state: shared },
  });
  worker.unref();
  // A worker that cannot start or dies leaves the checkpoints to SQLite, as without it.
  const fallBack = () => {
    worker = undefined;
    if (!stopped) database.pragma('wal_autocheckpoint = 1000');
  };
  worker.on('error', fallBack);
  worker.on('exit', fallBack);
  database.pragma(`wal_autocheckpoint = ${walLimitPages}`);
  return {
    get running() {
      return worker !== undefined;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (!worker) return;
      const stopping = worker;
      worker = undefined;
      // Not up yet (a short-lived process: a CLI command, a test): it will never open the file.
      if (Atomics.compareExchange(state, 0, STARTING, CANCELLED) === STARTING) {
        void stopping.terminate();
        return;
      }
      stopping.postMessage('stop');
      // The worker closes its connection within one checkpoint; wait for it (bounded).
      Atomics.wait(state, 0, OPEN, 10_000);
    },
  };
}
