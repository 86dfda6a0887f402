import { HttpError } from './http-error.js';

/**
 * Bounds how many password hashes (scrypt: 128 MiB and most of a second each at the production
 * cost) run at once, and how many sign-ins may wait for one. Rate limits count requests per
 * address or account; a flood of sign-ins from many addresses for many accounts passes them all,
 * and without this bound each one started its own scrypt: the server ran out of memory or took
 * minutes to answer anyone. Past the queue a sign-in gets a 503 with `Retry-After` at once.
 */
export interface HashGate {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Hashes running now. */
  readonly running: number;
  /** Sign-ins waiting for one. */
  readonly waiting: number;
}

export function createHashGate(options: {
  running: number;
  waiting: number;
  retryAfterSeconds?: number;
}): HashGate {
  const limit = Math.max(1, Math.floor(options.running));
  const queueLimit = Math.max(0, Math.floor(options.waiting));
  const queue: (() => void)[] = [];
  let running = 0;
  const release = () => {
    // The slot passes straight to the next waiter, so `running` never exceeds the limit.
    const next = queue.shift();
    if (next) next();
    else running -= 1;
  };
  return {
    async run(task) {
      if (running >= limit) {
        if (queue.length >= queueLimit) {
          throw new HttpError(
            503,
            'Sign-in is busy right now. Please try again in a few seconds.',
            options.retryAfterSeconds ?? 5,
          );
        }
        await new Promise<void>((resolve) => queue.push(resolve));
      } else {
        running += 1;
      }
      try {
        return await task();
      } finally {
        release();
      }
    },
    get running() {
      return running;
    },
    get waiting() {
      return queue.length;
    },
  };
}
