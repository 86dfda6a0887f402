import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Where a SQLite file's WAL is copied back into the database (a checkpoint, two fsyncs):
 * - `'background'` (default): on a worker thread with its own connection, so a commit only
 *   appends its pages to the WAL. The committing connection still checkpoints itself when the
 *   WAL reaches `walLimitPages` (the worker fell behind, or the log must restart from its start).
 * - `'inline'`: SQLite's default, by the connection that commits past 1000 WAL pages.
 */
export type CheckpointMode = 'background' | 'inline';

export interface BackgroundCheckpointOptions {
  /** How often the worker checkpoints, in milliseconds (default 20). */
  intervalMs?: number;
  /** The committing connection's own checkpoint threshold once the worker runs (default 10,000 pages). */
  walLimitPages?: number;
}

interface Pragmatic {
  pragma(source: string): unknown;
}

/** This module's own path, for the worker to load better-sqlite3 as this package does (tsup shims it in the CJS build). */
function basePath(): string {
  return fileURLToPath(import.meta.url);
}

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const done = new Int32Array(workerData.done);
const finish = () => {
  Atomics.store(done, 0, 1);
  Atomics.notify(done, 0);
};
let db;
try {
  const Database = require('node:module').createRequire(workerData.base)('better-sqlite3');
  db = new Database(workerData.file, { fileMustExist: true });
} catch (error) {
  finish();
  throw error;
}
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // Busy: the next tick tries again, and the committing connection checkpoints past its limit.
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  try {
    db.close();
  } finally {
    finish();
    parentPort.close();
  }
});
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
  const { intervalMs = 20, walLimitPages = 10_000 } = options;
  let stopped = false;
  const shared = new SharedArrayBuffer(4);
  const done = new Int32Array(shared);
  let worker: Worker | undefined = new Worker(WORKER, {
    eval: true,
    // Absolute: the worker opens the file later, and the process may change directory meanwhile.
    workerData: { base: basePath(), file: resolve(file), intervalMs, done: shared },
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
      worker.postMessage('stop');
      // The worker closes its connection within one checkpoint; wait for it (bounded).
      Atomics.wait(done, 0, 0, 10_000);
      worker = undefined;
    },
  };
}
