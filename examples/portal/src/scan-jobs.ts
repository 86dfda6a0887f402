import { newId } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { HttpError } from './http-error.js';

export type ScanJobStatus = 'queued' | 'running' | 'done' | 'failed';

/** A page scan asked for in the back office, run after the request that asked for it has been answered. */
export interface ScanJob<T> {
  id: string;
  /** The checked address the browser loads. */
  url: string;
  /** The staff member who asked for it. */
  requestedBy: { id: string; email: string };
  status: ScanJobStatus;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  /** Set when `status` is `done`. */
  outcome?: T;
  /** Set when `status` is `failed`: why, in words a staff member can act on. */
  error?: string;
}

export interface ScanJobs<T> {
  /** Queues a scan; `undefined` when `maxPending` scans are already queued or running. */
  start(input: { url: string; requestedBy: { id: string; email: string } }): ScanJob<T> | undefined;
  get(id: string): ScanJob<T> | undefined;
}

/**
 * Scans run one at a time in this process, in the order asked: a headless browser is heavy, and a
 * scan takes seconds, longer than an HTTP request should be held open. Jobs live in memory (the
 * latest `keep` finished ones); the staff audit trail is the lasting record of who scanned what.
 */
export function createScanJobs<T>(options: {
  clock: Clock;
  run: (job: ScanJob<T>) => Promise<T>;
  /** Called once a job is done or failed (audit); its errors go to `logError`. */
  onSettled?: (job: ScanJob<T>) => Promise<void>;
  logError: (error: unknown) => void;
  /** Queued and running scans accepted at once (default 5). */
  maxPending?: number;
  /** Finished scans kept for their pages (default 50). */
  keep?: number;
}): ScanJobs<T> {
  const { clock, run, onSettled, logError } = options;
  const maxPending = options.maxPending ?? 5;
  const keep = options.keep ?? 50;
  const jobs = new Map<string, ScanJob<T>>();
  const queue: ScanJob<T>[] = [];
  let running = false;

  const prune = () => {
    let finished = [...jobs.values()].filter(
      (job) => job.status === 'done' || job.status === 'failed',
    ).length;
    for (const [id, job] of jobs) {
      if (finished <= keep) break;
      if (job.status === 'done' || job.status === 'failed') {
        jobs.delete(id);
        finished--;
      }
    }
  };

  const execute = async (job: ScanJob<T>) => {
    job.status = 'running';
    job.startedAt = clock.now();
    try {
      job.outcome = await run(job);
      job.status = 'done';
    } catch (error) {
      if (!(error instanceof HttpError)) logError(error);
      job.error =
        error instanceof HttpError
          ? error.message
          : 'Something went wrong on our side. Please try again later.';
      job.status = 'failed';
    }
    job.finishedAt = clock.now();
    try {
      await onSettled?.(job);
    } catch (error) {
      logError(error);
    }
    prune();
  };

  const next = () => {
    if (running) return;
    const job = queue.shift();
    if (!job) return;
    running = true;
    void execute(job).finally(() => {
      running = false;
      next();
    });
  };

  return {
    start({ url, requestedBy }) {
      if (queue.length + (running ? 1 : 0) >= maxPending) return undefined;
      const job: ScanJob<T> = {
        id: newId(clock.now()),
        url,
        requestedBy,
        status: 'queued',
        createdAt: clock.now(),
      };
      jobs.set(job.id, job);
      queue.push(job);
      next();
      return job;
    },
    get(id) {
      return jobs.get(id);
    },
  };
}
