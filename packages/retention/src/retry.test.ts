import { isPrivacyKitError } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { withRetry } from './retry.js';

const deadlock = Object.assign(new Error('Deadlock found when trying to get lock'), {
  code: 'ER_LOCK_DEADLOCK',
  errno: 1213,
});

describe('withRetry', () => {
  it('runs a batch that lost to a concurrent writer again, and returns what the winning run returns', async () => {
    let runs = 0;
    const result = await withRetry(async () => {
      runs++;
      if (runs < 3) throw deadlock;
      return 'swept';
    });
    expect(result).toBe('swept');
    expect(runs).toBe(3);
  });

  it('after the last lost run throws retention/write-conflict with the driver error as its cause, never the raw error', async () => {
    let runs = 0;
    const error = await withRetry(async () => {
      runs++;
      throw deadlock;
    }, 4).catch((caught: unknown) => caught);
    expect(runs).toBe(4);
    expect(isPrivacyKitError(error) && error.code).toBe('retention/write-conflict');
    expect((error as Error).cause).toBe(deadlock);
  });

  it('does not run again after any other error', async () => {
    let runs = 0;
    const bug = new TypeError('not a race');
    await expect(
      withRetry(async () => {
        runs++;
        throw bug;
      }),
    ).rejects.toBe(bug);
    expect(runs).toBe(1);
  });
});
