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

  const header =
    'ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,Data Controller,User Privacy & GDPR Rights Portals,Wildcard match';

  it('reports a row reusing an earlier row’s ID in `warnings`, and keeps both', () => {
    const database = loadOpenCookieDatabase(
      [
        header,
        '1,A,Marketing,x,,d,1 year,A,,0',
        '2,B,Functional,y,,d,1 year,B,,0',
        '1,C,Functional,x,,session,1 year,C,,0',
      ].join('\n'),
    );
    expect(database.entries).toHaveLength(3);
    expect(database.warnings).toEqual([{ row: 4, reason: 'ID "1" is also row 2\'s' }]);
  });

  it('refuses options that are not { minPrefixLength: positive integer } with a typed error', () => {
    for (const options of [
      null,
      { minPrefixLength: 0 },
      { minPrefixLength: '3' },
      { minPrefixLength: 2.5 },
      { min: 3 },
    ]) {
      expect(
        () => loadOpenCookieDatabase(header, options as unknown as { minPrefixLength?: number }),
        JSON.stringify(options),
      ).toThrow(expect.objectContaining({ code: 'cookies/invalid-options' }));
    }
  });

  it('skips a row whose unquoted comma shifts its fields, with the reason', () => {
    const database = loadOpenCookieDatabase(
      [
        header,
        '1,Acme,Functional,acme_cart,,Keeps the cart,session,Acme,,0',
        // The description's comma is not quoted: "1 year" would land in Description's place.
        '2,Acme,Functional,acme_id,,Identifies visitors, across sites,1 year,Acme,,0',
      ].join('\n'),
    );
    expect(database.entries.map((entry) => entry.name)).toEqual(['acme_cart']);
    expect(database.lookup('acme_id')).toBeUndefined();
    expect(database.skipped).toEqual([
      { row: 3, reason: expect.stringMatching(/^expected 10 columns, found 11/) },
    ]);
  });

  it('reads a name ending in * as a prefix even when the Wildcard column says 0', () => {
    const database = loadOpenCookieDatabase(
      [
        header,
        '1,Smaato,Marketing,SCM,,exact row,3 weeks,Smaato,,0',
        '2,Smaato,Marketing,SCM*,,starred row,3 weeks,Smaato,,0',
        '3,Undertone,Marketing,UID_EXT_*,,starred row,1 year,Undertone,,0',
      ].join('\n'),
    );
    expect(database.lookup('UID_EXT_8f3a')).toMatchObject({
      kind: 'prefix',
      entry: { name: 'UID_EXT_', wildcard: true, platform: 'Undertone' },
    });
    expect(database.lookup('SCM42')).toMatchObject({
      kind: 'prefix',
      entry: { name: 'SCM', description: 'starred row' },
    });
    // The exact row still answers for the exact name, alone.
    expect(database.lookup('SCM')).toMatchObject({
      kind: 'exact',
      alternatives: 0,
      entry: { description: 'exact row' },
    });
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
    expect(database.warnings).toEqual([]);
  });

  it('does not let two-letter prefixes (_s, CT, tp, SR) swallow unrelated names', () => {
    const database = loadOpenCookieDatabase(csv);
    for (const name of ['_session_token', 'CTX', 'tpl_mode', 'SRV', '_sx']) {
      expect(database.lookup(name), name).toBeUndefined();
    }
  });

  it('matches the rows written with a trailing * (SSPR_*, DSP2F_*, UID_EXT_*, SCM*)', () => {
    const database = loadOpenCookieDatabase(csv);
    for (const [name, prefix] of [
      ['SSPR_1234', 'SSPR_'],
      ['DSP2F_abcd', 'DSP2F_'],
      ['UID_EXT_8f3a', 'UID_EXT_'],
      ['SCM42', 'SCM'],
    ]) {
      expect(database.lookup(name!), name).toMatchObject({
        kind: 'prefix',
        entry: { name: prefix, category: 'Marketing' },
      });
    }
  });

  it('never exempts a first-party, 3-year cookie the database ties to tracking or knows only by prefix (K01, K02)', () => {
    const classifier = createClassifier({ openCookieDatabase: loadOpenCookieDatabase(csv) });
    const threeYears = 3 * 365 * 86_400;
    for (const name of [
      'lc_visitor_id',
      'lc_ads_campaign',
      'tawk_uuid_abc',
      'cc-tracking-id',
      'acalltrackersession',
      'Dynamics365PortalAnalytics',
    ]) {
      expect(classifier.classify({ name, firstParty: true, maxAge: threeYears }), name).toMatchObject({
        consentRequired: true,
      });
    }
    // LiveChat's own chat session id, kept 3 years: a session row, but too long-lived to be one.
    expect(classifier.classify({ name: '__lc2_cid', firstParty: true, maxAge: threeYears })).toMatchObject({
      consentRequired: true,
    });
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

  it('reads sign-in words as whole words and identifying in any phrasing: none of these is exempt', () => {
    const header =
      'ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,Data Controller,User Privacy & GDPR Rights Portals,Wildcard match';
    const rows = [
      // Before: "log in" inside "log information", "sign in" inside "assigning" and "design information".
      '1,Acme,Functional,acme_search_log,,Used to log information about searches,1 year,Acme,,0',
      '2,Acme,Functional,acme_variant,,Used for assigning the visitor to a page variant,1 year,Acme,,0',
      '3,Acme,Functional,acme_layout,,Stores design information for the page,1 year,Acme,,0',
      // Before: "identifying their users" was not identifying, and "Secure" (a brand) made it security.
      '4,Acme,Functional,acme_xd,,Enables identifying their users consistently across their domains. Secure 3P cookie.,89 days,Acme,,0',
      // Still exempt: what these say is signing in.
      '5,Acme,Functional,acme_sso,,Used for Google Single Sign On,1 year,Acme,,0',
      '6,Acme,Functional,acme_login,,Keeps the visitor logged in,session,Acme,,0',
    ];
    const classifier = createClassifier({
      openCookieDatabase: loadOpenCookieDatabase([header, ...rows].join('\n')),
      knowledgeBase: false,
    });
    for (const name of ['acme_search_log', 'acme_variant', 'acme_layout', 'acme_xd']) {
      expect(classifier.classify({ name }).consentRequired, name).toBe(true);
    }
    for (const name of ['acme_sso', 'acme_login']) {
      expect(classifier.classify({ name }), name).toMatchObject({
        category: 'necessary',
        purposes: ['authentication'],
        consentRequired: false,
      });
    }
  });
});
