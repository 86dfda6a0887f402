import { isPrivacyKitError } from '@privacykit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createClassifier } from './classifier.js';
import { parseCsv } from './csv.js';
import { loadOpenCookieDatabase, plausiblePrefix } from './open-cookie-database.js';
import { readOpenCookieDatabase, skipWithoutDatabase } from './test-support.js';

describe('parseCsv (RFC 4180)', () => {
  it('handles quotes, doubled quotes, embedded commas and line breaks, CRLF and a BOM', () => {
    expect(parseCsv('\ufeffa,"b,c","d ""e""\nf"\r\ng,,h')).toEqual([
      ['a', 'b,c', 'd "e"\nf'],
      ['g', '', 'h'],
    ]);
  });

  it('round-trips any table (property)', () => {
    const cell = fc.string({ maxLength: 12 });
    fc.assert(
      fc.property(
        fc.array(fc.array(cell, { minLength: 2, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        (table) => {
          const width = table[0]!.length;
          const rows = table.map((row) => [...row, ...Array(width).fill('')].slice(0, width));
          const text = rows
            .map((row) => row.map((value) => `"${value.replaceAll('"', '""')}"`).join(','))
            .join('\r\n');
          expect(parseCsv(text)).toEqual(rows);
        },
      ),
    );
  });

  it('reports an unterminated quote as a typed error', () => {
    try {
      parseCsv('a,"b');
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'cookies/invalid-csv')).toBe(true);
    }
  });
});

describe('loadOpenCookieDatabase', () => {
  it('refuses a CSV without the columns it needs', () => {
    expect(() => loadOpenCookieDatabase('a,b\n1,2')).toThrow(
      expect.objectContaining({
        code: 'cookies/invalid-csv',
        message: expect.stringMatching(/lacks the columns/),
      }),
    );
  });

  it('guards prefixes: boundaries or length ≥ 5', () => {
    expect(plausiblePrefix('mp_', 'mp_abc_mixpanel')).toBe(true);
    expect(plausiblePrefix('_gat', '_gat_UA-1')).toBe(true);
    expect(plausiblePrefix('MSO', 'MSOffice')).toBe(false);
    expect(plausiblePrefix('AMCV_', 'AMCV_X')).toBe(true);
    expect(plausiblePrefix('TS01', 'TS01abc')).toBe(false);
    expect(plausiblePrefix('TS01', 'TS011f2b')).toBe(true);
  });
});

describe.skipIf(skipWithoutDatabase)('the real Open Cookie Database', () => {
  const csv = skipWithoutDatabase ? '' : readOpenCookieDatabase();

  it('loads all 2,264 rows', () => {
    const database = loadOpenCookieDatabase(csv);
    expect(database.entries).toHaveLength(2264);
    expect(database.skipped).toEqual([]);
  });

  it('does not let two-letter prefixes (_s, CT, tp, SR) swallow unrelated names', () => {
    const database = loadOpenCookieDatabase(csv);
    for (const name of ['_session_token', 'CTX', 'tpl_mode', 'SRV', '_sx']) {
      expect(database.lookup(name), name).toBeUndefined();
    }
  });

  it('matches exact, case-insensitive and longest prefix', () => {
    const database = loadOpenCookieDatabase(csv);
    expect(database.lookup('_ga')).toMatchObject({ kind: 'exact', entry: { platform: 'Google Analytics' } });
    expect(database.lookup('phpsessid')).toMatchObject({ kind: 'case-insensitive' });
    expect(database.lookup('AMCVS_12345%40AdobeOrg')).toMatchObject({
      kind: 'prefix',
      entry: { name: 'AMCVS_' },
    });
  });

  it('the knowledge base corrects the database’s misattributions (connect.sid, ajs_*, sessionid)', () => {
    const classifier = createClassifier({ openCookieDatabase: loadOpenCookieDatabase(csv) });
    expect(classifier.classify({ name: 'connect.sid' })).toMatchObject({
      vendor: 'Express',
      category: 'necessary',
    });
    expect(classifier.classify({ name: 'ajs_user_id' })).toMatchObject({ vendor: 'Segment' });
    expect(classifier.classify({ name: 'sessionid' })).toMatchObject({
      vendor: 'Django',
      category: 'necessary',
    });
    // Alone, the database gets them wrong: that is why it comes after the knowledge base.
    const alone = createClassifier({ openCookieDatabase: loadOpenCookieDatabase(csv), knowledgeBase: false });
    expect(alone.classify({ name: 'sessionid' }).category).toBe('marketing');
  });

  it('maps Functional rows by their description, never to necessary without a reason', () => {
    const classifier = createClassifier({
      openCookieDatabase: loadOpenCookieDatabase(csv),
      knowledgeBase: false,
    });
    expect(classifier.classify({ name: 'CookieConsent' }).purposes).toEqual(['consent-choice']);
    expect(classifier.classify({ name: '__cf_bm' })).toMatchObject({ category: 'necessary' });
  });
});
