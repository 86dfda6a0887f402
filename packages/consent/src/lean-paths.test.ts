import { canonicalJson, newId } from '@privacykit/core';
import { hmacSha256Hex } from '@privacykit/core/crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consentDecisionSchema } from './decision.js';
import { decisionEntryJson } from './entry-json.js';
import type { DecisionEntry } from './entry-json.js';
import { createIdMinter } from './ids.js';
import { createLeanDecisionParser } from './lean-decision.js';
import { createHmacSha256Hex } from './pseudonym.js';
import { pooledRandomBytes } from './random-pool.js';

const text = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.constantFrom('', 'a', 'EU', '"quoted"\\', '\u2028\u0000é', 'x'.repeat(101), 'y'.repeat(256)),
);
const hash = fc.oneof(
  fc.stringMatching(/^[0-9a-f]{64}$/),
  fc.constantFrom('A'.repeat(64), 'a'.repeat(63), 'g'.repeat(64)),
);
const validDatetime = fc.oneof(
  fc
    .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom('2025-01-15T10:00:00Z', '2025-01-15T10:00:00+02:00', '2024-02-29T23:59:59.5-05:30'),
);
const datetime = fc.oneof(
  fc
    .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    '2025-01-15T10:00:00Z',
    '2025-01-15T10:00:00+02:00',
    '2025-02-30T10:00:00Z',
    '2025-01-15 10:00:00Z',
    '2025-01-15T10:00:00',
    'yesterday',
  ),
);
const anything = fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.boolean(), text);

/** Decisions, mostly well-formed, with every field sometimes wrong. */
const decisionLike = fc.record(
  {
    subjectId: fc.oneof(text, anything),
    purpose: fc.oneof(fc.constantFrom('newsletter', 'analytics'), text, anything),
    purposes: fc.array(text, { maxLength: 2 }),
    state: fc.oneof(fc.constantFrom('granted', 'refused', 'withdrawn', 'expired'), anything),
    source: fc.oneof(fc.constantFrom('banner', 'form', 'api', 'gpc', 'import', 'cookie'), anything),
    method: fc.oneof(fc.constantFrom('click', 'import', 'gpc-signal', 'scroll'), text, anything),
    preTicked: fc.oneof(fc.boolean(), anything),
    explicit: fc.oneof(fc.boolean(), anything),
    notice: fc.oneof(
      fc.record(
        {
          version: fc.oneof(text, anything),
          hash: fc.oneof(hash, anything),
          language: fc.oneof(text, anything),
          other: text,
        },
        { requiredKeys: [] },
      ),
      anything,
    ),
    jurisdiction: fc.oneof(text, anything),
    evidence: fc.oneof(
      fc.record(
        { ip: fc.oneof(text, anything), userAgent: fc.oneof(text, anything), other: text },
        { requiredKeys: [] },
      ),
      anything,
    ),
    age: fc.oneof(fc.integer({ min: -2, max: 160 }), fc.double(), anything),
    parentalAuthorisation: fc.record({ method: text }),
    eventId: fc.oneof(text, anything),
    at: fc.oneof(datetime, anything),
    extra: anything,
  },
  { requiredKeys: [] },
);
const wellFormed = fc.record(
  {
    subjectId: fc.string({ minLength: 1, maxLength: 40 }),
    purpose: fc.constantFrom('newsletter', 'analytics'),
    state: fc.constantFrom('granted', 'refused', 'withdrawn'),
    source: fc.constantFrom('banner', 'form', 'api', 'import'),
    method: fc.constantFrom('click', 'import', 'toggle'),
    explicit: fc.boolean(),
    notice: fc.record(
      { version: fc.constantFrom('v1', 'v2'), language: fc.constantFrom('en', 'fr-FR') },
      { requiredKeys: [] },
    ),
    jurisdiction: fc.constantFrom('EU', 'FR', 'US-CA'),
    evidence: fc.record(
      { ip: fc.constantFrom('203.0.113.7', '::1'), userAgent: fc.string({ maxLength: 30 }) },
      { requiredKeys: [] },
    ),
    age: fc.integer({ min: 0, max: 150 }),
    eventId: fc.uuid(),
    at: validDatetime,
  },
  { requiredKeys: ['subjectId', 'state', 'source', 'method'] },
);

describe('lean decision parser', () => {
  it('accepts only what consentDecisionSchema accepts, with the same result', () => {
    const lean = createLeanDecisionParser();
    fc.assert(
      fc.property(fc.oneof(decisionLike, wellFormed), (input) => {
        const fast = lean(input);
        const slow = consentDecisionSchema.safeParse(input);
        if (fast !== undefined) {
          expect(slow.success).toBe(true);
          expect(fast).toEqual(slow.data);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('vouches for well-formed decisions (the hot path is taken)', () => {
    const lean = createLeanDecisionParser();
    fc.assert(
      fc.property(wellFormed, (input) => {
        expect(lean(input)).toEqual(consentDecisionSchema.parse(input));
      }),
      { numRuns: 1000 },
    );
  });

  it('leaves invalid input to zod', () => {
    const lean = createLeanDecisionParser();
    const base = { subjectId: 's', purpose: 'p', state: 'granted', source: 'banner', method: 'click' };
    expect(lean(base)).toBeDefined();
    for (const bad of [
      { ...base, subjectId: '' },
      { ...base, state: 'expired' },
      { ...base, extra: 1 },
      { ...base, purposes: ['p', 'q'] },
      { ...base, at: '2025-02-30T00:00:00Z' },
      { ...base, notice: { hash: 'A'.repeat(64) } },
      { ...base, evidence: { ip: 1 } },
      { ...base, age: 1.5 },
      { ...base, purpose: undefined },
      null,
      [base],
    ]) {
      expect(lean(bad)).toBeUndefined();
    }
  });
});

// Printable ASCII, and any code point (controls, lone surrogates) that JSON must escape.
const shortText = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 20 }));
const entryArb: fc.Arbitrary<DecisionEntry> = fc.record(
  {
    v: fc.constant(1 as const),
    subject: shortText,
    purpose: shortText,
    state: fc.constantFrom('granted', 'refused', 'withdrawn'),
    renewal: fc.boolean(),
    notice: fc.record({ id: shortText, version: shortText, hash: shortText, language: shortText }),
    source: shortText,
    method: shortText,
    jurisdiction: shortText,
    at: shortText,
    expiresAt: shortText,
    explicit: fc.constant(true as const),
    age: fc.record(
      {
        threshold: fc.integer({ min: 13, max: 16 }),
        belowThreshold: fc.boolean(),
        parentalAuthorisation: shortText,
      },
      { requiredKeys: ['threshold', 'belowThreshold'] },
    ),
    evidence: shortText,
  },
  {
    requiredKeys: [
      'v',
      'subject',
      'purpose',
      'state',
      'renewal',
      'notice',
      'source',
      'method',
      'jurisdiction',
      'at',
    ],
  },
);

describe('decisionEntryJson', () => {
  it('writes exactly canonicalJson of the entry with seq, id, tenant and kind', () => {
    fc.assert(
      fc.property(entryArb, fc.nat(), shortText, shortText, (entry, seq, id, tenant) => {
        expect(decisionEntryJson(entry, seq, id, tenant)).toBe(
          canonicalJson({ ...entry, seq, id, tenant, kind: 'decision' }),
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe('createIdMinter', () => {
  it('mints UUIDv7 ids like newId: time first, version 7, RFC variant, unique', () => {
    const mint = createIdMinter();
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.date({ min: new Date(0), max: new Date('2200-01-01'), noInvalidDate: true }), (at) => {
        const id = mint(at);
        const reference = newId(at);
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(id.slice(0, 13)).toBe(reference.slice(0, 13));
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('createHmacSha256Hex', () => {
  it('equals core hmacSha256Hex for any key (short, empty, longer than a block) and any text', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'grapheme', minLength: 20, maxLength: 70 })),
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        (key, data) => {
          const hmac = createHmacSha256Hex(key);
          expect(hmac(data)).toBe(hmacSha256Hex(key, data));
          expect(hmac(`${data}!`)).toBe(hmacSha256Hex(key, `${data}!`));
        },
      ),
      { numRuns: 1000 },
    );
    // Data longer than the buffer the key block sits in (it grows), then short data again.
    const hmac = createHmacSha256Hex('key');
    for (const data of ['é'.repeat(600), 'x'.repeat(5000), 'short', '']) {
      expect(hmac(data)).toBe(hmacSha256Hex('key', data));
    }
  });
});

describe('pooledRandomBytes', () => {
  it('never hands out the same bytes twice and copies them out of the pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const bytes = pooledRandomBytes(12);
      expect(bytes.length).toBe(12);
      const hex = bytes.toString('hex');
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    const a = pooledRandomBytes(32);
    const copy = Buffer.from(a);
    pooledRandomBytes(32);
    expect(a.equals(copy)).toBe(true);
    expect(pooledRandomBytes(5000).length).toBe(5000);
  });
});
