import { canonicalJson } from '@privacykit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashLine } from './engine.js';

describe('disposition record hashing', () => {
  it('writes exactly the canonical JSON (RFC 8785) of a record', () => {
    const text = fc.string({ unit: 'binary', maxLength: 20 });
    fc.assert(
      fc.property(
        fc.record({
          runId: text,
          tenant: text,
          rule: text,
          phase: fc.nat(50),
          action: fc.constantFrom('delete', 'anonymise', 'restrict', 'archive', 'review'),
          table: text,
          key: text,
          dueDate: fc.option(text, { nil: null }),
          actedAt: text,
          outcome: fc.constantFrom('done' as const, 'cascade' as const, 'lifted' as const),
        }),
        (record) => {
          expect(hashLine(record)).toBe(`${canonicalJson(record)}\n`);
        },
      ),
      { numRuns: 500 },
    );
  });
});
