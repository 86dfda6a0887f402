import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { auditSetCookies, violationOf } from './audit.js';
import { createClassifier } from './classifier.js';
import { browserGpcEnabled, consentCovers } from './consent-state.js';
import { builtinKnowledgeBase } from './knowledge-base.js';
import { loadOpenCookieDatabase } from './open-cookie-database.js';
import { overridesFromPolicy } from './policy-overrides.js';
import { parseSetCookieHeaders } from './set-cookie.js';
import { readOpenCookieDatabase, skipWithoutDatabase } from './test-support.js';

const clock = fixedClock('2025-03-01T00:00:00Z');
const responses = [
  {
    url: 'https://www.shop.example/',
    setCookie: [
      'connect.sid=s%3Aabc; Path=/; HttpOnly; SameSite=Lax',
      '_ga=GA1.1.1.1; Max-Age=63072000; Domain=.shop.example; Path=/',
      'lang=fr; Path=/',
      '__Secure-broken=1',
      'old=1; Max-Age=0',
    ],
  },
  {
    url: 'https://ad.doubleclick.net/pixel',
    setCookie: 'IDE=AHWqTUk; Max-Age=34190000; Domain=.doubleclick.net; Secure; SameSite=None',
  },
];

describe('auditSetCookies', () => {
  it('lists exactly the cookies set without the consent they need', () => {
    const audit = auditSetCookies({ site: 'https://www.shop.example', responses, consent: {}, clock });
    expect(
      audit.violations.map((violation) => [violation.name, violation.category, violation.firstParty]),
    ).toEqual([
      ['_ga', 'analytics', true],
      ['lang', 'preferences', true],
      ['IDE', 'marketing', false],
    ]);
    expect(
      audit.cookies.find((cookie) => cookie.cookie.name === 'connect.sid')?.classification.consentRequired,
    ).toBe(false);
    expect(audit.skipped.map((entry) => entry.reason)).toEqual([
      '__Secure- prefix without the Secure attribute',
      'deletes the cookie (expired)',
    ]);
  });

  it('skips a cookie whose Domain does not cover the host that set it: browsers never store it', () => {
    const audit = auditSetCookies({
      site: 'https://www.shop.example',
      responses: [
        {
          url: 'https://www.shop.example/',
          setCookie: [
            '_fbp=fb.1.1; Max-Age=7776000; Domain=tracker.example.net',
            '_gid=GA1.1; Max-Age=86400; Domain=shop.example',
            'sub=1; Max-Age=86400; Domain=other.shop.example',
          ],
        },
        // A third party claiming the site's domain would otherwise be counted as first-party.
        { url: 'https://ads.tracker.example/p', setCookie: 'uid=9; Max-Age=86400; Domain=shop.example' },
        { url: 'https://192.0.2.7/', setCookie: 'ip=1; Max-Age=86400; Domain=0.2.7' },
      ],
      consent: {},
      clock,
    });
    expect(audit.cookies.map((cookie) => [cookie.cookie.name, cookie.domain, cookie.firstParty])).toEqual([
      ['_gid', 'shop.example', true],
    ]);
    expect(audit.skipped).toEqual([
      {
        url: 'https://www.shop.example/',
        name: '_fbp',
        reason: 'Domain=tracker.example.net does not cover www.shop.example: browsers reject the cookie',
      },
      {
        url: 'https://www.shop.example/',
        name: 'sub',
        reason: 'Domain=other.shop.example does not cover www.shop.example: browsers reject the cookie',
      },
      {
        url: 'https://ads.tracker.example/p',
        name: 'uid',
        reason: 'Domain=shop.example does not cover ads.tracker.example: browsers reject the cookie',
      },
      {
        url: 'https://192.0.2.7/',
        name: 'ip',
        reason: 'Domain=0.2.7 does not cover 192.0.2.7: browsers reject the cookie',
      },
    ]);
  });

  it('analytics consent covers _ga; marketing consent covers IDE', () => {
    const audit = auditSetCookies({
      site: 'www.shop.example',
      responses,
      consent: { analytics: true, marketing: true, preferences: true },
      clock,
    });
    expect(audit.violations).toEqual([]);
  });

  it('Global Privacy Control refuses marketing even after "accept all"', () => {
    const audit = auditSetCookies({
      site: 'www.shop.example',
      responses,
      consent: { analytics: true, marketing: true, preferences: true, gpc: true },
      clock,
    });
    expect(audit.violations.map((violation) => violation.name)).toEqual(['IDE']);
    expect(audit.violations[0]!.reason).toMatch(/Global Privacy Control/);
  });

  it('an unclassified cookie is reported whatever the consent', () => {
    const audit = auditSetCookies({
      site: 'www.shop.example',
      responses: [{ url: 'https://www.shop.example/', setCookie: ['qqzx=1'] }],
      consent: { analytics: true, marketing: true, preferences: true },
      clock,
    });
    expect(audit.violations[0]).toMatchObject({ name: 'qqzx', category: 'unclassified' });
  });

  it('rejects a response whose setCookie is neither a string nor an array, naming it', () => {
    for (const setCookie of [42, { 'set-cookie': 'a=1' }]) {
      expect(() =>
        auditSetCookies({
          site: 'www.shop.example',
          responses: [{ url: 'https://www.shop.example/', setCookie: setCookie as unknown as string }],
          consent: {},
          clock,
        }),
      ).toThrow(
        expect.objectContaining({
          code: 'cookies/invalid-input',
          message: expect.stringContaining('responses[0].setCookie'),
        }),
      );
    }
    expect(() => parseSetCookieHeaders(42 as unknown as string)).toThrow(
      expect.objectContaining({
        code: 'cookies/invalid-input',
        message: expect.stringContaining('a number'),
      }),
    );
  });

  it.skipIf(skipWithoutDatabase)(
    'reports a 3-year lc_ads_campaign cookie set without consent, though the database has a LiveChat lc_ prefix',
    () => {
      const classifier = createClassifier({
        openCookieDatabase: loadOpenCookieDatabase(readOpenCookieDatabase()),
      });
      const audit = auditSetCookies({
        site: 'www.shop.example',
        responses: [
          { url: 'https://www.shop.example/', setCookie: ['lc_ads_campaign=x1; Max-Age=94608000; Path=/'] },
        ],
        consent: {},
        classifier,
        clock,
      });
      expect(audit.violations.map((violation) => violation.name)).toEqual(['lc_ads_campaign']);
    },
  );

  it('rejects malformed input with a typed error', () => {
    try {
      auditSetCookies({ site: '', responses: [], consent: {} });
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'cookies/invalid-input')).toBe(true);
    }
  });
});

describe('what needs consent is reported when set without it', () => {
  const site = 'https://shop.example';
  const years10 = 315_360_000;

  it('cookies of embedded content (YouTube, LinkedIn, Meta) are violations before consent, covered by preferences consent', () => {
    const responses = [
      {
        url: 'https://www.youtube.com/embed/x',
        setCookie: [
          'YSC=abc; Domain=.youtube.com; Path=/; Secure; SameSite=None',
          'VISITOR_INFO1_LIVE=x; Domain=.youtube.com; Max-Age=15552000; Secure; SameSite=None',
        ],
      },
      {
        url: 'https://www.linkedin.com/embed',
        setCookie: [
          'bscookie=v; Domain=.linkedin.com; Max-Age=31536000; Secure; SameSite=None',
          'lidc=v; Domain=.linkedin.com; Max-Age=86400; Secure; SameSite=None',
        ],
      },
      {
        url: 'https://www.facebook.com/plugins',
        setCookie: 'datr=v; Domain=.facebook.com; Max-Age=63072000; Secure; SameSite=None',
      },
    ];
    const refused = auditSetCookies({ site, responses, consent: {}, clock });
    expect(refused.violations.map((violation) => [violation.name, violation.category])).toEqual([
      ['YSC', 'preferences'],
      ['VISITOR_INFO1_LIVE', 'preferences'],
      ['bscookie', 'preferences'],
      ['lidc', 'preferences'],
      ['datr', 'preferences'],
    ]);
    const accepted = auditSetCookies({ site, responses, consent: { preferences: true }, clock });
    expect(accepted.violations).toEqual([]);
  });

  it('no cookie that needs consent is ever `necessary`, and each is a violation without consent', () => {
    const classifier = createClassifier();
    const names = builtinKnowledgeBase.filter((entry) => !entry.match).map((entry) => entry.name);
    for (const name of names) {
      for (const context of [{}, { firstParty: true }, { firstParty: false, maxAge: years10 }]) {
        const classification = classifier.classify({ name, ...context }, { clock });
        if (!classification.consentRequired) continue;
        expect(classification.category, name).not.toBe('necessary');
        const where = { domain: 'shop.example', firstParty: true, setBy: site };
        expect(violationOf(classification, {}, where), name).toBeDefined();
      }
    }
  });

  it('a multi-year third-party tracker is not exempted by a generic or necessary-looking name', () => {
    const names = [
      'auth_token',
      'oauth_uid',
      'author_ref',
      'visitor_session',
      'retarget_session',
      '_ads_session',
      'sb-track',
      'session',
      'cart_uid',
      'consent_uid',
      'xsrf_uid',
      'lb_uid',
    ];
    const audit = auditSetCookies({
      site,
      consent: {},
      clock,
      responses: [
        {
          url: 'https://px.tracker.example/pixel.gif',
          setCookie: names.map(
            (name) =>
              `${name}=abc123; Domain=.tracker.example; Path=/; Max-Age=${years10}; Secure; SameSite=None`,
          ),
        },
      ],
    });
    expect(audit.violations.map((violation) => violation.name)).toEqual(names);
  });

  it('a policy cookie declared necessary but not exempt, or seen unlike its declaration, is reported', () => {
    const classifier = createClassifier({
      overrides: overridesFromPolicy([
        {
          name: 'fraud_fp',
          prefix: false,
          provider: 'Us',
          firstParty: true,
          category: 'necessary',
          description: 'device fingerprint for fraud scoring',
          duration: 'P2Y',
          exempt: false,
        },
        {
          name: 'sess',
          prefix: false,
          provider: 'Us',
          firstParty: true,
          category: 'necessary',
          description: 'session',
          duration: 'session',
          exempt: true,
        },
      ]),
    });
    const audit = (url: string, setCookie: string) =>
      auditSetCookies({ site, responses: [{ url, setCookie }], consent: {}, classifier, clock });
    expect(audit('https://shop.example/', 'fraud_fp=1; Max-Age=63072000').violations).toHaveLength(1);
    // As declared: a first-party session cookie, exempt.
    expect(audit('https://shop.example/', 'sess=1; Path=/').violations).toEqual([]);
    const kept = audit('https://shop.example/', `sess=1; Max-Age=${5 * 365 * 86_400}`).violations;
    expect(kept.map((violation) => violation.reason)).toEqual([
      expect.stringContaining('declared a session cookie, seen living 1825 days'),
    ]);
    // Half an hour instead of the session: reported against the declaration, still exempt.
    const halfHour = audit('https://shop.example/', 'sess=1; Max-Age=1800');
    expect(halfHour.violations).toEqual([]);
    expect(halfHour.declarationMismatches).toEqual([
      {
        name: 'sess',
        domain: 'shop.example',
        setBy: 'https://shop.example/',
        detail: expect.stringContaining('declared a session cookie, seen living 1800s'),
      },
    ]);
    const elsewhere = audit('https://px.tracker.example/', 'sess=1; Domain=tracker.example').violations;
    expect(elsewhere.map((violation) => violation.reason)).toEqual([
      expect.stringContaining('declared first-party, seen third-party'),
    ]);
  });

  it('checks its verdict settings as createClassifier does', () => {
    for (const extra of [
      { audienceMeasurementExempt: { anonymous: false, siteOnly: false } },
      { preferenceMaxLifetimeSeconds: 'x' },
      { clock: 'now' },
      { unknownOption: true },
    ]) {
      expect(
        () =>
          auditSetCookies({ site, responses: [], consent: {}, ...extra } as unknown as Parameters<
            typeof auditSetCookies
          >[0]),
        JSON.stringify(extra),
      ).toThrow(expect.objectContaining({ code: 'cookies/invalid-input' }));
    }
    expect(() => auditSetCookies(null as unknown as Parameters<typeof auditSetCookies>[0])).toThrow(
      expect.objectContaining({ code: 'cookies/invalid-input' }),
    );
  });
});

describe('consent state', () => {
  it('silence is refusal; necessary is always covered; unclassified never', () => {
    expect(consentCovers({}, 'analytics')).toBe(false);
    expect(consentCovers({}, 'necessary')).toBe(true);
    expect(consentCovers({ analytics: true, marketing: true, preferences: true }, 'unclassified')).toBe(
      false,
    );
  });

  it('browserGpcEnabled is true only for navigator.globalPrivacyControl === true', () => {
    expect(browserGpcEnabled({ globalPrivacyControl: true })).toBe(true);
    for (const value of [false, 'true', 1, undefined])
      expect(browserGpcEnabled({ globalPrivacyControl: value })).toBe(false);
    expect(browserGpcEnabled(undefined)).toBe(false);
  });
});
