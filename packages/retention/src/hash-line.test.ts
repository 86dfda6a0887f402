import { canonicalJson } from '@privacykit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashLine, hashLines } from './engine.js';

const text = fc.string({ unit: 'binary', maxLength: 20 });
const record = (shared: fc.Arbitrary<string>) =>
  fc.record({
    runId: shared,
    tenant: shared,
    rule: shared,
    phase: fc.nat(3),
    action: fc.constantFrom('delete', 'anonymise', 'restrict', 'archive', 'review'),
    table: shared,
    key: text,
    dueDate: fc.option(text, { nil: null }),
    actedAt: shared,
    outcome: fc.constantFrom('done' as const, 'cascade' as const, 'lifted' as const),
  });

describe('disposition record hashing', () => {
  it('writes exactly the canonical JSON (RFC 8785) of a record', () => {
    fc.assert(
      fc.property(record(text), (r) => {
        expect(hashLine(r)).toBe(`${canonicalJson(r)}\n`);
      }),
      { numRuns: 500 },
    );
  });

  it('writes a batch exactly as its records one by one, whatever fields they share', () => {
    // Few distinct values, so records share fields in runs and differ between them.
    const shared = fc.constantFrom('a', 'b', '"q"', 'é\u2028');
    fc.assert(
      fc.property(fc.array(record(shared), { maxLength: 30 }), (records) => {
        expect(hashLines(records)).toBe(records.map(hashLine).join(''));
      }),
      { numRuns: 300 },
    );
  });
});
