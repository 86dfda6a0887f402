import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHashGate } from './hash-gate.js';
import type { HttpError } from './http-error.js';

describe('the password hash gate', () => {
  it('never runs more tasks at once than allowed, queues up to its limit, refuses the rest with 503 and Retry-After', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 30 }),
        async (running, waiting, delays) => {
          const gate = createHashGate({ running, waiting, retryAfterSeconds: 7 });
          let now = 0;
          let peak = 0;
          const outcomes = await Promise.allSettled(
            delays.map((delay) =>
              gate.run(async () => {
                now += 1;
                peak = Math.max(peak, now);
                await new Promise((resolve) => setTimeout(resolve, delay));
                now -= 1;
                return delay;
              }),
            ),
          );
          expect(peak).toBeLessThanOrEqual(running);
          const refused = outcomes.filter((outcome) => outcome.status === 'rejected');
          // Started all at once: exactly those past the running slots and the queue are refused.
          expect(refused).toHaveLength(Math.max(0, delays.length - running - waiting));
          for (const outcome of refused) {
            const error = (outcome as PromiseRejectedResult).reason as HttpError;
            expect(error.status).toBe(503);
            expect(error.retryAfter).toBe(7);
          }
          expect(gate.running).toBe(0);
          expect(gate.waiting).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('frees its slot when a task fails', async () => {
    const gate = createHashGate({ running: 1, waiting: 0 });
    await expect(gate.run(() => Promise.reject(new Error('scrypt failed')))).rejects.toThrow('scrypt failed');
    expect(await gate.run(async () => 'next')).toBe('next');
  });
});
