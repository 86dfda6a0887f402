import { fixedClock, isPrivacyKitError } from '@privacykit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyCookie, createClassifier } from './classifier.js';
import type { ClassifyOptions, CookieInput } from './classifier.js';
import { type AudienceMeasurementConditions, exemptionVerdict } from './exemption.js';
import { cookieLifetimeSeconds } from './lifetime.js';
import { loadOpenCookieDatabase } from './open-cookie-database.js';
import { overridesFromPolicy } from './policy-overrides.js';
import { cookieInputSchema } from './schemas.js';

const clock = fixedClock('2025-01-31T12:00:00Z');
const day = 86_400;
const cnil = { anonymous: true as const, siteOnly: true as const };

describe('sources, in order', () => {
  it('a site-owner override wins over the knowledge base', () => {
    const classifier = createClassifier({
      overrides: [{ name: '_ga', category: 'necessary', vendor: 'Us' }],
    });
    const result = classifier.classify({ name: '_ga' });
    expect(result).toMatchObject({ category: 'necessary', source: 'override', vendor: 'Us', confidence: 1 });
    expect(result.evidence[0]).toMatchObject({ source: 'override', rule: 'exact:_ga' });
  });

  it('override prefixes and patterns apply', () => {
    const classifier = createClassifier({
      overrides: [
        { name: 'shop_', match: 'prefix', category: 'necessary' },
        { name: '^exp_\\d+$', match: 'pattern', purposes: ['analytics'] },
      ],
    });
    expect(classifier.classify({ name: 'shop_basket' }).source).toBe('override');
    expect(classifier.classify({ name: 'exp_12' }).category).toBe('analytics');
  });

  it('rejects an override whose purposes contradict its category', () => {
    try {
      createClassifier({ overrides: [{ name: 'x', category: 'necessary', purposes: ['advertising'] }] });
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'cookies/invalid-options')).toBe(true);
    }
  });

  it('the knowledge base cites the vendor documentation', () => {
    const result = classifyCookie({ name: '_fbp' });
    expect(result).toMatchObject({
      category: 'marketing',
      vendor: 'Meta',
      source: 'knowledge-base',
      consentRequired: true,
    });
    expect(result.evidence[0]!.url).toMatch(/^https:\/\/www\.facebook\.com/);
  });

  it('knowledge-base prefixes and patterns: _ga_<id>, Rails _<app>_session, Drupal SESS<hash>', () => {
    expect(classifyCookie({ name: '_ga_Q1W2E3R4' })).toMatchObject({
      category: 'analytics',
      vendor: 'Google Analytics',
    });
    expect(classifyCookie({ name: '_shop_session' })).toMatchObject({
      category: 'necessary',
      consentRequired: false,
    });
    expect(classifyCookie({ name: `SESS${'a1'.repeat(16)}` })).toMatchObject({
      vendor: 'Drupal',
      category: 'necessary',
    });
  });

  it('strips __Host- and __Secure- before looking a name up', () => {
    expect(classifyCookie({ name: '__Secure-next-auth.session-token' })).toMatchObject({
      vendor: 'Auth.js',
      category: 'necessary',
    });
  });

  it('a generic name bound to a vendor domain applies only there', () => {
    expect(classifyCookie({ name: 'm', domain: 'm.stripe.com' })).toMatchObject({
      vendor: 'Stripe',
      confidence: 0.95,
    });
    const elsewhere = classifyCookie({ name: 'm', domain: 'example.org' });
    expect(elsewhere.vendor).toBeUndefined();
    expect(elsewhere.category).toBe('unclassified');
    expect(classifyCookie({ name: 'm' }).confidence).toBeLessThan(0.95);
  });

  it('the Open Cookie Database answers what the knowledge base does not know', () => {
    const csv = [
      'ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,Data Controller,User Privacy & GDPR Rights Portals,Wildcard match',
      '1,Acme Ads,Marketing,acme_uid,,"Tracks, across sites",1 year,Acme,,0',
      '2,Acme CDN,Functional,acme_lb,,Load balancing between servers,session,Acme,,0',
      '3,Acme Widgets,Functional,acmew_,,Stores widget state,1 year,Acme,,1',
      '4,Wrong,Marketing,_ga,,Misattributed,1 year,X,,0',
    ].join('\r\n');
    const classifier = createClassifier({ openCookieDatabase: loadOpenCookieDatabase(csv) });
    expect(classifier.classify({ name: 'acme_uid' })).toMatchObject({
      category: 'marketing',
      source: 'open-cookie-database',
      vendor: 'Acme Ads',
    });
    expect(classifier.classify({ name: 'ACME_UID' }).evidence[0]!.rule).toBe('case-insensitive:acme_uid');
    expect(classifier.classify({ name: 'acme_lb' })).toMatchObject({
      category: 'necessary',
      purposes: ['load-balancing'],
      consentRequired: false,
    });
    // Functional without a telling word: preferences that need consent, never necessary.
    expect(classifier.classify({ name: 'acmew_42' })).toMatchObject({
      category: 'preferences',
      consentRequired: true,
    });
    // The knowledge base stays ahead of the database.
    expect(classifier.classify({ name: '_ga' }).vendor).toBe('Google Analytics');
  });

  describe('the Open Cookie Database never exempts on weak evidence (K01, K02)', () => {
    const header =
      'ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,Data Controller,User Privacy & GDPR Rights Portals,Wildcard match';
    const database = (...rows: string[]) => loadOpenCookieDatabase([header, ...rows].join('\r\n'));
    const years3 = 3 * 365 * day;

    it('a prefix row alone does not make a cookie exempt; the cookie’s own name must agree', () => {
      const classifier = createClassifier({
        openCookieDatabase: database(
          '1,Shop,Functional,shopx_,,References a cart for anonymous users,session,Shop,,1',
        ),
      });
      expect(classifier.classify({ name: 'shopx_9f2', firstParty: true })).toMatchObject({
        vendor: 'Shop',
        category: 'preferences',
        consentRequired: true,
      });
      expect(classifier.classify({ name: 'shopx_tracking_id', firstParty: true })).toMatchObject({
        vendor: 'Shop',
        category: 'analytics',
        consentRequired: true,
      });
      // The name itself says cart: the prefix row and the name agree, the exemption stands.
      expect(classifier.classify({ name: 'shopx_cart', firstParty: true })).toMatchObject({
        vendor: 'Shop',
        purposes: ['cart'],
        consentRequired: false,
      });
    });

    it('a Functional row that speaks of tracking or identifying visitors is never read as necessary', () => {
      const classifier = createClassifier({
        openCookieDatabase: database(
          '1,Calls,Functional,calls_s,,"Stores a unique identifier, so that it can be tracked which session the visitor is in.",session,Calls,,0',
          '2,Portal,Functional,portal_v,,"Used to uniquely distinguish one site visitor from another. Essential for a secure service.",90 days,Portal,,0',
          '3,Chat,Functional,chat_c,,Chat widget session and visitor tracking cookie.,session,Chat,,0',
          // Not tracking: a negation, and consent categories named by a consent cookie.
          '4,CDN,Functional,cdn_chl,,Used for Captcha challenges. Not used for tracking.,session,CDN,,0',
          "5,CMP,Functional,cmp_analytics,,Remembers the visitor's consent for the 'Analytics' category.,1 year,CMP,,0",
          '6,CMP,Functional,cmp_state,,Whether visitors have given consent. It contains no information that can identify the site visitor.,1 year,CMP,,0',
          '7,Server,Functional,srv_sid,,Used to identify the users session on the server.,session,Server,,0',
        ),
      });
      for (const name of ['calls_s', 'portal_v', 'chat_c']) {
        expect(classifier.classify({ name, firstParty: true }), name).toMatchObject({
          category: 'preferences',
          consentRequired: true,
        });
      }
      expect(classifier.classify({ name: 'cdn_chl', firstParty: true })).toMatchObject({
        purposes: ['security'],
        consentRequired: false,
      });
      for (const name of ['cmp_analytics', 'cmp_state']) {
        expect(classifier.classify({ name, firstParty: true }), name).toMatchObject({
          purposes: ['consent-choice'],
          consentRequired: false,
        });
      }
      expect(classifier.classify({ name: 'srv_sid', firstParty: true })).toMatchObject({
        purposes: ['session'],
        consentRequired: false,
      });
    });

    it('a session answer on a cookie kept over a year needs consent, from the database or a name pattern', () => {
      const classifier = createClassifier({
        openCookieDatabase: database('1,Chat,Functional,chat_sid,,Stores the chat session,3 years,Chat,,0'),
      });
      // The bare name first: the memo must not answer the long-lived cookie from it.
      expect(classifier.classify({ name: 'chat_sid' })).toMatchObject({
        purposes: ['session'],
        consentRequired: false,
      });
      expect(classifier.classify({ name: 'chat_sid', firstParty: true })).toMatchObject({
        consentRequired: false,
      });
      const kept = classifier.classify({ name: 'chat_sid', firstParty: true, maxAge: years3 }, { clock });
      expect(kept).toMatchObject({ consentRequired: true, category: 'unclassified' });
      expect(kept.evidence.some((line) => line.rule === 'long-lived-session')).toBe(true);
      expect(classifyCookie({ name: 'app_sess', firstParty: true, maxAge: years3 }, { clock })).toMatchObject(
        {
          consentRequired: true,
        },
      );
      expect(classifyCookie({ name: 'app_sess', firstParty: true, maxAge: 3600 }, { clock })).toMatchObject({
        consentRequired: false,
      });
    });
  });

  it('name patterns come next, with low confidence', () => {
    const result = classifyCookie({ name: 'my_csrf_guard' });
    expect(result).toMatchObject({ category: 'necessary', source: 'name-pattern', consentRequired: false });
    expect(result.confidence).toBeLessThan(0.7);
    expect(classifyCookie({ name: 'site_cookie_consent' }).purposes).toEqual(['consent-choice']);
  });

  it('a third-party unknown cookie living months is treated as tracking', () => {
    const result = classifyCookie({ name: 'zz9q', firstParty: false, maxAge: 365 * day });
    expect(result).toMatchObject({ category: 'marketing', source: 'heuristic', consentRequired: true });
  });

  it('a necessary-looking name set third-party loses confidence', () => {
    const first = classifyCookie({ name: 'app_sess', firstParty: true });
    const third = classifyCookie({ name: 'app_sess', firstParty: false });
    expect(third.confidence).toBeLessThan(first.confidence);
    expect(third.evidence.some((line) => line.rule === 'third-party-necessary')).toBe(true);
  });

  it('unknown means unclassified and consent required — never necessary', () => {
    const result = classifyCookie({ name: 'qzx' });
    expect(result).toMatchObject({
      category: 'unclassified',
      consentRequired: true,
      confidence: 0,
      source: 'default',
    });
  });

  it('rejects a cookie without a string name with a typed error', () => {
    try {
      classifyCookie({ name: 42 } as unknown as { name: string });
      expect.unreachable();
    } catch (error) {
      expect(isPrivacyKitError(error, 'cookies/invalid-input')).toBe(true);
    }
  });

  it('answers the same from the memo as from a fresh classifier', () => {
    const classifier = createClassifier();
    const inputs: CookieInput[] = [
      { name: '_ga' },
      { name: 'connect.sid' },
      { name: 'lang' },
      { name: 'unknown_x' },
      { name: '_pk_id.1.a' },
      // The same names again with what else changes an answer: the memo must not answer these
      // from the bare name's entry.
      { name: '_ga', domain: '.google-analytics.com', firstParty: false },
      { name: 'unknown_x', maxAge: 400 * 24 * 3600 },
      { name: 'unknown_x', firstParty: false },
      { name: 'lang', setByUser: true },
    ];
    for (const input of inputs) classifier.classify(input); // fills the memo
    for (const input of inputs) {
      expect(classifier.classify(input)).toEqual(createClassifier().classify(input));
    }
  });
});

describe('consent exemption (ePrivacy Art 5(3))', () => {
  it('necessary purposes are exempt: session, auth, CSRF, load balancing, cart, consent choice', () => {
    const cases: [string, string][] = [
      ['PHPSESSID', 'strictly-necessary'],
      ['wordpress_logged_in_abc', 'strictly-necessary'],
      ['csrftoken', 'strictly-necessary'],
      ['AWSALB', 'transmission'],
      ['woocommerce_cart_hash', 'strictly-necessary'],
      ['OptanonConsent', 'strictly-necessary'],
    ];
    for (const [name, ground] of cases) {
      expect(classifyCookie({ name }), name).toMatchObject({
        category: 'necessary',
        consentRequired: false,
        exemption: ground,
      });
    }
  });

  it('marketing is never exempt, whatever the site asserts', () => {
    const result = classifyCookie(
      { name: 'IDE', firstParty: true, maxAge: 60 },
      { audienceMeasurementExempt: cnil, clock },
    );
    expect(result.consentRequired).toBe(true);
  });

  it('a cookie with several purposes is exempt only if all are (YouTube YSC: security + embed)', () => {
    const ysc = classifyCookie({ name: 'YSC' });
    // Needs consent, so never `necessary`: the embed is a feature nobody asked for (preferences).
    expect(ysc.category).toBe('preferences');
    expect(ysc.consentRequired).toBe(true);
    expect(ysc.evidence.filter((line) => line.source === 'exemption').map((line) => line.rule)).toEqual([
      'security',
      'embedded-content',
    ]);
    const mixed = createClassifier({
      overrides: [{ name: 'combo', purposes: ['session', 'analytics'] }],
    }).classify({ name: 'combo' });
    expect(mixed).toMatchObject({ category: 'analytics', consentRequired: true });
    const both = createClassifier({
      overrides: [{ name: 'combo', purposes: ['session', 'security'] }],
    }).classify({ name: 'combo' });
    expect(both.consentRequired).toBe(false);
  });

  describe('first-party audience measurement (CNIL conditions)', () => {
    const matomo = { name: '_pk_id.1.abcd', firstParty: true };

    it('needs consent unless the site asserts the CNIL conditions', () => {
      expect(classifyCookie({ ...matomo, maxAge: 30 * day }, { clock }).consentRequired).toBe(true);
      expect(
        classifyCookie({ ...matomo, maxAge: 30 * day }, { clock, audienceMeasurementExempt: cnil }),
      ).toMatchObject({
        consentRequired: false,
        exemption: 'audience-measurement',
      });
    });

    it('13 months exactly is allowed; one second more is not (calendar months, month-end clamp)', () => {
      // 2025-01-31 + 13 months = 2026-02-28 (clamped).
      const limit = new Date('2026-02-28T12:00:00Z');
      expect(
        classifyCookie({ ...matomo, expires: limit }, { clock, audienceMeasurementExempt: cnil })
          .consentRequired,
      ).toBe(false);
      expect(
        classifyCookie(
          { ...matomo, expires: new Date(limit.getTime() + 1000) },
          { clock, audienceMeasurementExempt: cnil },
        ).consentRequired,
      ).toBe(true);
    });

    it('a Max-Age beyond 13 months breaks it, and wins over Expires', () => {
      const result = classifyCookie(
        { ...matomo, expires: new Date('2025-02-01T00:00:00Z'), maxAge: 400 * day },
        { clock, audienceMeasurementExempt: cnil },
      );
      expect(result.consentRequired).toBe(true);
    });

    it('is never available third-party, with automatic extension, or with data kept over 25 months', () => {
      const opts = { clock, audienceMeasurementExempt: cnil };
      expect(classifyCookie({ ...matomo, firstParty: false, maxAge: day }, opts).consentRequired).toBe(true);
      expect(
        classifyCookie(
          { ...matomo, maxAge: day },
          { clock, audienceMeasurementExempt: { ...cnil, lifetimeExtendedOnVisit: true } },
        ).consentRequired,
      ).toBe(true);
      expect(
        classifyCookie(
          { ...matomo, maxAge: day },
          { clock, audienceMeasurementExempt: { ...cnil, dataRetentionMonths: 26 } },
        ).consentRequired,
      ).toBe(true);
      expect(
        classifyCookie(
          { ...matomo, maxAge: day },
          { clock, audienceMeasurementExempt: { ...cnil, dataRetentionMonths: 25 } },
        ).consentRequired,
      ).toBe(false);
    });

    it('Google Analytics is analytics the vendor also uses: never exempt', () => {
      expect(classifyCookie({ name: '_ga', firstParty: true, maxAge: day }, opts()).consentRequired).toBe(
        true,
      );
    });

    it('a site declares its own exempt measurement cookie through the policy', () => {
      const classifier = createClassifier({
        overrides: overridesFromPolicy([
          {
            name: 'stats_id',
            prefix: false,
            provider: 'Us',
            firstParty: true,
            category: 'analytics',
            description: 'anonymous visit counts',
            duration: 'session',
            exempt: true,
          },
        ]),
        audienceMeasurementExempt: cnil,
      });
      expect(classifier.classify({ name: 'stats_id', firstParty: true })).toMatchObject({
        consentRequired: false,
      });
      expect(
        classifier.classify({ name: 'stats_id', firstParty: true, maxAge: 500 * day }).consentRequired,
      ).toBe(true);
    });

    function opts() {
      return { clock, audienceMeasurementExempt: cnil };
    }
  });

  describe('interface preferences (WP194 §3.6)', () => {
    it('are exempt only when set by the user, first-party and short-lived', () => {
      expect(classifyCookie({ name: 'lang', firstParty: true }).consentRequired).toBe(true);
      expect(classifyCookie({ name: 'lang', firstParty: true, setByUser: true })).toMatchObject({
        consentRequired: false,
        exemption: 'ui-customisation',
      });
      expect(classifyCookie({ name: 'lang', firstParty: false, setByUser: true }).consentRequired).toBe(true);
      expect(
        classifyCookie({ name: 'lang', firstParty: true, setByUser: true, maxAge: 365 * day }, { clock })
          .consentRequired,
      ).toBe(true);
      expect(
        classifyCookie({ name: 'lang', firstParty: true, setByUser: true, maxAge: 3600 }, { clock })
          .consentRequired,
      ).toBe(false);
    });

    it('a chat widget is a feature not yet requested: consent needed', () => {
      expect(classifyCookie({ name: 'intercom-id-abc' })).toMatchObject({
        category: 'preferences',
        consentRequired: true,
      });
    });
  });
});

describe('weak evidence: generic names and name patterns (K01, K02)', () => {
  const header =
    'ID,Platform,Category,Cookie / Data Key name,Domain,Description,Retention period,Data Controller,User Privacy & GDPR Rights Portals,Wildcard match';
  const years3 = 3 * 365 * day;

  it('an exact database row wins over a generic framework name (rl_session is Rudderstack analytics)', () => {
    const classifier = createClassifier({
      openCookieDatabase: loadOpenCookieDatabase(
        `${header}\r\n1,Rudderstack,Analytics,rl_session,,"Stores the session-related information including sessionId if session tracking is enabled.",Session,Rudderstack,,0`,
      ),
    });
    expect(classifier.classify({ name: 'rl_session', firstParty: true })).toMatchObject({
      category: 'analytics',
      vendor: 'Rudderstack',
      consentRequired: true,
    });
    // Without a row saying otherwise, the framework's convention still holds for a first-party session cookie.
    expect(classifier.classify({ name: 'shop_session', firstParty: true })).toMatchObject({
      vendor: 'Laravel',
      consentRequired: false,
    });
  });

  it('necessary-looking words count only as whole words', () => {
    for (const name of ['author_ref', 'oauth_uid', 'cartography', 'lbs_weight', 'nonconsentual_x']) {
      const result = classifyCookie({ name, firstParty: true });
      expect(result.consentRequired, name).toBe(true);
    }
    for (const [name, purpose] of [
      ['auth_token', 'authentication'],
      ['userAuth', 'authentication'],
      ['XSRF-TOKEN-X', 'security'],
      ['csrftoken_v2', 'security'],
      ['cartId', 'cart'],
      ['site_cookie_consent', 'consent-choice'],
      ['app_lb', 'load-balancing'],
    ] as const) {
      expect(classifyCookie({ name, firstParty: true }).purposes, name).toEqual([purpose]);
    }
  });

  it('a necessary purpose from a weak source does not survive a lifetime over a year, whatever the purpose', () => {
    for (const name of [
      'my_csrf_guard',
      'auth_token',
      'cart_uid',
      'app_lb',
      'site_cookie_consent',
      'session',
    ]) {
      expect(classifyCookie({ name, firstParty: true }, { clock }).consentRequired, name).toBe(false);
      const kept = classifyCookie({ name, firstParty: true, maxAge: years3 }, { clock });
      expect(kept.consentRequired, name).toBe(true);
      expect(kept.category, name).toBe('unclassified');
    }
    // A vendor's own documentation still decides: Cloudflare's bot cookie, a PayPal security cookie.
    expect(
      classifyCookie({ name: '__cf_bm', firstParty: true, maxAge: years3 }, { clock }).consentRequired,
    ).toBe(false);
  });

  it('a necessary-looking name on a third-party cookie needs consent, even short-lived', () => {
    for (const name of ['cart_uid', 'auth_token', 'app_sess', 'session', '_shop_session']) {
      expect(classifyCookie({ name, firstParty: false }).consentRequired, name).toBe(true);
      expect(classifyCookie({ name, firstParty: true }).consentRequired, name).toBe(false);
    }
    // The vendor documents these as set on its own domain: still exempt there.
    expect(classifyCookie({ name: 'm', domain: 'm.stripe.com', firstParty: false }).consentRequired).toBe(
      false,
    );
  });
});

describe('a site owner’s declarations (overridesFromPolicy)', () => {
  const declared = (extra: Partial<Parameters<typeof overridesFromPolicy>[0][number]>) =>
    createClassifier({
      overrides: overridesFromPolicy([
        {
          name: 'shop_cookie',
          prefix: false,
          provider: 'Us',
          firstParty: true,
          category: 'necessary',
          description: 'keeps the basket',
          duration: 'P6M',
          exempt: true,
          ...extra,
        },
      ]),
    });

  it('exempt: false on a necessary cookie means consent is needed', () => {
    expect(
      declared({ exempt: false }).classify({ name: 'shop_cookie', firstParty: true }).consentRequired,
    ).toBe(true);
    expect(declared({}).classify({ name: 'shop_cookie', firstParty: true }).consentRequired).toBe(false);
  });

  it('a cookie seen unlike its declaration is reported; third-party or kept over a year, it loses the exemption', () => {
    const classifier = declared({});
    const mismatch = (input: CookieInput) =>
      classifier.classify(input, { clock }).evidence.find((line) => line.rule === 'declaration-mismatch')
        ?.detail;
    // 183 days is six months whatever month it starts in: no mismatch.
    expect(mismatch({ name: 'shop_cookie', firstParty: true, maxAge: 183 * day })).toBeUndefined();
    // Longer than declared: the notice misstates it, the site owner's purpose still stands.
    const longer = classifier.classify(
      { name: 'shop_cookie', firstParty: true, maxAge: 200 * day },
      { clock },
    );
    expect(longer.consentRequired).toBe(false);
    expect(mismatch({ name: 'shop_cookie', firstParty: true, maxAge: 200 * day })).toMatch(
      /declared to last P6M, seen living 200 days: the notice misstates it/,
    );
    // Not the cookie declared: kept for years, or set by a third party.
    expect(
      classifier.classify({ name: 'shop_cookie', firstParty: true, maxAge: 2 * 365 * day }, { clock })
        .consentRequired,
    ).toBe(true);
    expect(classifier.classify({ name: 'shop_cookie', firstParty: false }).consentRequired).toBe(true);
    expect(mismatch({ name: 'shop_cookie', firstParty: false })).toMatch(
      /declared first-party, seen third-party/,
    );
    const session = declared({ duration: 'session' });
    expect(
      session.classify({ name: 'shop_cookie', firstParty: true }).evidence.map((line) => line.rule),
    ).not.toContain('declaration-mismatch');
    const persistent = session.classify({ name: 'shop_cookie', firstParty: true, maxAge: 1800 }, { clock });
    expect(persistent.consentRequired).toBe(false);
    expect(persistent.evidence.find((line) => line.rule === 'declaration-mismatch')?.detail).toMatch(
      /declared a session cookie, seen living 1800s/,
    );
  });
});

describe('inputs and options are checked, never guessed', () => {
  const matomo = { name: '_pk_id.1.abcd', firstParty: true };

  it('per-call options are checked as createClassifier checks them', () => {
    const bad: unknown[] = [
      null,
      { audienceMeasurementExempt: { anonymous: false, siteOnly: false } },
      { audienceMeasurementExempt: { anonymous: true, siteOnly: true, dataRetentionMonths: '99' } },
      { preferenceMaxLifetimeSeconds: 'x' },
      { preferenceMaxLifetimeSeconds: -1 },
      { clock: {} },
      { knowledgeBase: false },
    ];
    for (const options of bad) {
      const call = options as ClassifyOptions;
      expect(() => createClassifier().classify(matomo, call), JSON.stringify(options)).toThrow(
        expect.objectContaining({ code: 'cookies/invalid-options' }),
      );
      expect(() => classifyCookie(matomo, call), JSON.stringify(options)).toThrow(
        expect.objectContaining({ code: 'cookies/invalid-options' }),
      );
    }
    expect(() => classifyCookie(matomo, { overrides: 'x' } as unknown as ClassifyOptions)).toThrow(
      expect.objectContaining({ code: 'cookies/invalid-options' }),
    );
  });

  it('exemptionVerdict grants the audience-measurement exemption only on anonymous and siteOnly both true', () => {
    const context = {
      firstParty: true,
      lifetimeSeconds: day,
      setByUser: false,
      preferenceMaxLifetimeSeconds: 43_200,
      now: clock.now(),
    };
    const verdict = (conditions: unknown) =>
      exemptionVerdict(['audience-measurement'], {
        ...context,
        audienceMeasurement: conditions as AudienceMeasurementConditions,
      }).consentRequired;
    expect(verdict({ anonymous: true, siteOnly: true })).toBe(false);
    expect(verdict({ anonymous: false, siteOnly: false })).toBe(true);
    expect(verdict({ anonymous: true, siteOnly: 'yes' })).toBe(true);
    expect(verdict({ anonymous: true, siteOnly: true, dataRetentionMonths: '12' })).toBe(true);
  });

  it('maxAge Infinity is a cookie kept for good, not a session cookie', () => {
    expect(cookieLifetimeSeconds({ maxAge: Number.POSITIVE_INFINITY }, clock.now())).toBe(
      Number.POSITIVE_INFINITY,
    );
    const opts = { clock, audienceMeasurementExempt: cnil };
    expect(classifyCookie({ ...matomo, maxAge: Number.POSITIVE_INFINITY }, opts).consentRequired).toBe(true);
    expect(
      classifyCookie({ name: 'app_sess', firstParty: true, maxAge: Number.POSITIVE_INFINITY }, { clock })
        .consentRequired,
    ).toBe(true);
  });

  it('a lifetime it cannot read is a typed error, never a session cookie', () => {
    const unreadable: Partial<CookieInput>[] = [
      { maxAge: '315360000' as unknown as number },
      { maxAge: Number.NaN },
      { expires: '2099-13-45' },
      { expires: 1e20 },
      { expires: new Date(Number.NaN) },
      { expires: {} as unknown as string },
    ];
    for (const lifetime of unreadable) {
      expect(() => classifyCookie({ ...matomo, ...lifetime }, { clock }), JSON.stringify(lifetime)).toThrow(
        expect.objectContaining({ code: 'cookies/invalid-input' }),
      );
      expect(() => cookieLifetimeSeconds(lifetime, clock.now()), JSON.stringify(lifetime)).toThrow(
        expect.objectContaining({ code: 'cookies/invalid-input' }),
      );
    }
  });

  it('agrees with cookieInputSchema on what a cookie may be', () => {
    const loose = fc.oneof(
      fc.constant(undefined),
      fc.boolean(),
      fc.constantFrom(0, 3600, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e20, 1_800_000_000_000),
      fc.constantFrom('', 'x', '2030-01-01T00:00:00Z', '2099-13-45', '3600'),
      fc.constant(null),
      fc.constant(new Date('2030-01-01T00:00:00Z')),
      fc.constant(new Date(Number.NaN)),
    );
    const arbitrary = fc.record(
      {
        name: fc.oneof(fc.constantFrom('_ga', 'x', ''), loose),
        domain: loose,
        path: loose,
        expires: loose,
        maxAge: loose,
        sameSite: loose,
        value: loose,
        firstParty: loose,
        setByUser: loose,
      },
      { requiredKeys: [] },
    );
    const classifier = createClassifier();
    fc.assert(
      fc.property(arbitrary, (value) => {
        let accepted = true;
        try {
          classifier.classify(value as CookieInput, { clock });
        } catch (error) {
          expect(isPrivacyKitError(error, 'cookies/invalid-input')).toBe(true);
          accepted = false;
        }
        expect(accepted).toBe(cookieInputSchema.safeParse(value).success);
      }),
      { numRuns: 2000 },
    );
  });
});
