import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readAhead } from './read-ahead.js';

async function* slow<T>(items: readonly T[], failAt?: number): AsyncGenerator<T> {
  for (const [i, item] of items.entries()) {
    if (i === failAt) throw new Error(`failed at ${i}`);
    if (i % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    yield item;
  }
}

describe('readAhead', () => {
  it('yields every item in order, whatever the limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer(), { maxLength: 50 }),
        fc.integer({ min: 1, max: 10 }),
        async (items, limit) => {
          const out: number[] = [];
          for await (const item of readAhead(slow(items), limit)) out.push(item);
          expect(out).toEqual(items);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('surfaces a source error after the items before it', async () => {
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const item of readAhead(slow([1, 2, 3, 4], 2), 2)) out.push(item);
      })(),
    ).rejects.toThrow('failed at 2');
    expect(out).toEqual([1, 2]);
  });

  it('never runs more than `limit` items ahead, and closes the source when the consumer stops', async () => {
    let pulled = 0;
    let closed = false;
    async function* counted(): AsyncGenerator<number> {
      try {
        for (let i = 0; i < 1000; i++) {
          pulled++;
          await Promise.resolve();
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    for await (const item of readAhead(counted(), 5)) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      expect(pulled).toBeLessThanOrEqual(item + 1 + 5 + 1);
      if (item === 20) break;
    }
    expect(closed).toBe(true);
    expect(pulled).toBeLessThan(30);
  });
});
