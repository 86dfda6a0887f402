import type { Clock } from '@privacykit/core';
import { cookiesError } from './errors.js';
import {
  type AudienceMeasurementConditions,
  type ExemptionGround,
  audienceMeasurementConditionsIssues,
  exemptionVerdict,
  isContextFreePurpose,
} from './exemption.js';
import { type KnownCookie, builtinKnowledgeBase, knowledgeBaseSources } from './knowledge-base.js';
import { cookieLifetimeSeconds, expiresTime, isCalendarPeriod, longestSeconds } from './lifetime.js';
import { type NamePattern, cookieNameTokens, namePatterns } from './name-patterns.js';
import { type OpenCookieDatabase, openCookieDatabasePurposes } from './open-cookie-database.js';
import {
  type CookieCategory,
  type CookiePurpose,
  categoryOfPurposes,
  cookiePurposes,
  defaultPurposes,
  purposeCategory,
} from './purpose.js';
import { domainMatches } from './site.js';
import { systemClock } from './system-clock.js';
import {
  type Issues,
  checkKnownKeys,
  checkOptional,
  describeIssues,
  isBoolean,
  isNonEmptyString,
  isRecord,
  isString,
  join,
} from './validate.js';

/** What the classifier needs to know about a cookie; only `name` is required. */
export interface CookieInput {
  name: string;
  domain?: string;
  path?: string;
  /** Expiry instant (a `Date`, ISO text or epoch milliseconds). */
  expires?: Date | string | number;
  /** Max-Age in seconds; wins over `expires`. */
  maxAge?: number;
  sameSite?: string;
  value?: string;
  /** Set on the site's own registrable domain. Unknown when omitted. */
  firstParty?: boolean;
  /** The cookie records a choice the visitor made in the interface (needed for the UI-preference exemption). */
  setByUser?: boolean;
}

/** Where an answer came from, in the order the sources are consulted. */
export type EvidenceSource =
  | 'override'
  | 'knowledge-base'
  | 'open-cookie-database'
  | 'name-pattern'
  | 'heuristic'
  | 'default'
  | 'exemption';

export interface CookieEvidence {
  source: EvidenceSource;
  /** The rule that matched: `exact:_ga`, `prefix:_ga_`, `pattern:…`, a purpose for exemption lines. */
  rule: string;
  detail: string;
  /** The vendor documentation or data set the rule comes from. */
  url?: string;
}

export interface CookieClassification {
  name: string;
  category: CookieCategory;
  purposes: readonly CookiePurpose[];
  /** ePrivacy Art 5(3): `false` only under the transmission or strictly-necessary exemptions (and the CNIL and WP194 readings of them). */
  consentRequired: boolean;
  /** The exemption ground when `consentRequired` is false. */
  exemption?: ExemptionGround;
  vendor?: string;
  /** 0–1: 1 for a site-owner override, about 0.95 for the knowledge base, lower for prefixes, patterns and heuristics; 0 when unknown. */
  confidence: number;
  /** The source that decided the category. */
  source: EvidenceSource;
  evidence: readonly CookieEvidence[];
}

/** A site owner's declaration about one cookie name, prefix or pattern; it wins over every other source. */
export interface CookieOverride {
  name: string;
  /** Default `exact`. */
  match?: 'exact' | 'prefix' | 'pattern';
  category?: 'necessary' | 'preferences' | 'analytics' | 'marketing';
  purposes?: readonly CookiePurpose[];
  vendor?: string;
  description?: string;
  /** The site owner states this interface-preference cookie is only written on the visitor's own choice. */
  setByUser?: boolean;
  /**
   * Where the site owner says the cookie is set. A cookie seen on the other side does not match the
   * declaration (evidence `declaration-mismatch`); one declared first-party and seen third-party is
   * not the cookie declared and loses the exemption the declaration gave it.
   */
  firstParty?: boolean;
  /**
   * How long the site owner says the cookie lives: `session`, or a calendar period (`P6M`, `P1Y`,
   * `P30D`). A cookie seen living longer than the period can last (a month counted as 31 days)
   * does not match the declaration (evidence `declaration-mismatch`: the notice misstates it); past
   * a year it also loses the exemption the declaration gave, as weak evidence would.
   */
  duration?: string;
}

const overrideKeys = [
  'name',
  'match',
  'category',
  'purposes',
  'vendor',
  'description',
  'setByUser',
  'firstParty',
  'duration',
];
const overrideCategories = ['necessary', 'preferences', 'analytics', 'marketing'];
const matchKinds = ['exact', 'prefix', 'pattern'];

/** Issues with an untrusted override (zod twin: `cookieOverrideSchema` on `/schemas`). */
export function cookieOverrideIssues(value: unknown, path = ''): Issues {
  if (!isRecord(value)) return [{ path, message: 'expected an object' }];
  const issues: Issues = [];
  const context = { path, issues };
  checkKnownKeys(value, overrideKeys, path, issues);
  if (!isNonEmptyString(value.name))
    issues.push({ path: join(path, 'name'), message: 'expected a non-empty string' });
  checkOptional(
    value,
    'match',
    (field) => matchKinds.includes(field as string),
    matchKinds.join(' | '),
    context,
  );
  checkOptional(
    value,
    'category',
    (field) => overrideCategories.includes(field as string),
    overrideCategories.join(' | '),
    context,
  );
  checkOptional(
    value,
    'purposes',
    (field) =>
      Array.isArray(field) &&
      field.length > 0 &&
      field.every((purpose) => (cookiePurposes as readonly unknown[]).includes(purpose)),
    'a non-empty array of cookie purposes',
    context,
  );
  checkOptional(value, 'vendor', isNonEmptyString, 'a non-empty string', context);
  checkOptional(value, 'description', isString, 'a string', context);
  checkOptional(value, 'setByUser', isBoolean, 'a boolean', context);
  checkOptional(value, 'firstParty', isBoolean, 'a boolean', context);
  checkOptional(
    value,
    'duration',
    (field) => field === 'session' || isCalendarPeriod(field),
    '"session" or a calendar period such as P6M',
    context,
  );
  if (issues.length > 0) return issues;
  const override = value as unknown as CookieOverride;
  if (override.category === undefined && override.purposes === undefined) {
    issues.push({ path, message: 'an override needs a category or purposes' });
  } else if (
    override.category !== undefined &&
    override.purposes !== undefined &&
    categoryOfPurposes(override.purposes) !== override.category
  ) {
    issues.push({ path, message: 'the purposes do not belong to the stated category' });
  }
  return issues;
}

/** Per-call settings that only affect the exemption verdict. */
export interface ClassifyOptions {
  /** The CNIL audience-measurement conditions the site meets (see `audienceMeasurementConditionsSchema`). */
  audienceMeasurementExempt?: AudienceMeasurementConditions;
  /** Longest lifetime of an exempt interface-preference cookie, in seconds. Default 43 200 (12 hours). */
  preferenceMaxLifetimeSeconds?: number;
  clock?: Clock;
}

export interface ClassifierOptions extends ClassifyOptions {
  /** Site-owner declarations; they win over every other source. */
  overrides?: readonly CookieOverride[];
  /** The Open Cookie Database, from `loadOpenCookieDatabase(csvText)`. */
  openCookieDatabase?: OpenCookieDatabase;
  /** Replace (or with `false`, switch off) the built-in knowledge base. */
  knowledgeBase?: readonly KnownCookie[] | false;
}

const classifyOptionKeys = ['audienceMeasurementExempt', 'preferenceMaxLifetimeSeconds', 'clock'];
const classifierOptionKeys = ['overrides', 'openCookieDatabase', 'knowledgeBase', ...classifyOptionKeys];
const classifyCookieOptionKeys = ['overrides', 'openCookieDatabase', ...classifyOptionKeys];

/**
 * Issues with options of the classifier, limited to the `allowed` keys: `createClassifier` takes
 * them all, `classify` only the verdict settings. The same checks at construction and per call:
 * a setting refused by `createClassifier` must not be taken quietly by `classify` (an
 * `audienceMeasurementExempt` without `anonymous: true` would exempt analytics).
 */
function classifierOptionsIssues(value: unknown, allowed: readonly string[]): Issues {
  if (!isRecord(value)) return [{ path: '', message: 'expected an object' }];
  const issues: Issues = [];
  checkKnownKeys(value, allowed, '', issues);
  const context = { path: '', issues };
  if (value.overrides !== undefined) {
    if (!Array.isArray(value.overrides)) issues.push({ path: 'overrides', message: 'expected an array' });
    else
      value.overrides.forEach((override, i) =>
        issues.push(...cookieOverrideIssues(override, join('overrides', i))),
      );
  }
  checkOptional(
    value,
    'openCookieDatabase',
    (field) => isRecord(field) && typeof field.lookup === 'function',
    'an OpenCookieDatabase',
    context,
  );
  checkOptional(
    value,
    'knowledgeBase',
    (field) => Array.isArray(field) || field === false,
    'an array or false',
    context,
  );
  issues.push(...classifyOptionsIssues(value));
  return issues;
}

/**
 * Issues with the verdict settings (`ClassifyOptions`) found on `value`, which may carry other
 * keys (`auditSetCookies` and `scanSite` options extend them).
 */
export function classifyOptionsIssues(value: Record<string, unknown>, path = ''): Issues {
  const issues: Issues = [];
  const context = { path, issues };
  if (value.audienceMeasurementExempt !== undefined) {
    issues.push(
      ...audienceMeasurementConditionsIssues(
        value.audienceMeasurementExempt,
        join(path, 'audienceMeasurementExempt'),
      ),
    );
  }
  checkOptional(
    value,
    'preferenceMaxLifetimeSeconds',
    (field) => typeof field === 'number' && Number.isSafeInteger(field) && field >= 0,
    'a non-negative integer',
    context,
  );
  checkOptional(
    value,
    'clock',
    (field) => isRecord(field) && typeof field.now === 'function',
    'a Clock',
    context,
  );
  return issues;
}

function invalidOptions(what: string, issues: Issues): never {
  throw cookiesError('cookies/invalid-options', `Invalid ${what}: ${describeIssues(issues)}`, { issues });
}

/**
 * Issues with a cookie to classify. A lifetime that cannot be read is an error, never "no
 * lifetime": that would pass a long-lived cookie off as a session cookie.
 */
function cookieInputIssues(value: unknown): Issues {
  if (!isRecord(value) || typeof value.name !== 'string') {
    return [
      { path: isRecord(value) ? 'name' : '', message: 'classify expects an object with a string `name`' },
    ];
  }
  const issues: Issues = [];
  const context = { path: '', issues };
  for (const key of ['domain', 'path', 'sameSite', 'value'])
    checkOptional(value, key, isString, 'a string', context);
  for (const key of ['firstParty', 'setByUser']) checkOptional(value, key, isBoolean, 'a boolean', context);
  checkOptional(
    value,
    'maxAge',
    (field) => typeof field === 'number' && !Number.isNaN(field),
    'a number of seconds (Infinity: never expires)',
    context,
  );
  checkOptional(
    value,
    'expires',
    namesAnInstant,
    'a Date, ISO text or epoch milliseconds naming a real instant',
    context,
  );
  return issues;
}

/** What {@link cookieInputIssues} finds nothing wrong with, without building its report. */
function wellFormedCookie(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const cookie = value as Record<string, unknown>;
  if (typeof cookie.name !== 'string') return false;
  const { domain, path, sameSite, firstParty, setByUser, maxAge, expires } = cookie;
  return (
    (domain === undefined || typeof domain === 'string') &&
    (path === undefined || typeof path === 'string') &&
    (sameSite === undefined || typeof sameSite === 'string') &&
    (cookie.value === undefined || typeof cookie.value === 'string') &&
    (firstParty === undefined || typeof firstParty === 'boolean') &&
    (setByUser === undefined || typeof setByUser === 'boolean') &&
    (maxAge === undefined || (typeof maxAge === 'number' && !Number.isNaN(maxAge))) &&
    (expires === undefined || namesAnInstant(expires))
  );
}

function namesAnInstant(value: unknown): boolean {
  try {
    expiresTime(value);
    return true;
  } catch {
    return false;
  }
}

export interface Classifier {
  /** Category, purposes, consent verdict, vendor, confidence and evidence of one cookie. */
  classify(cookie: CookieInput, options?: ClassifyOptions): CookieClassification;
}

interface Rule {
  kind: 'exact' | 'prefix' | 'pattern';
  name: string;
  regex?: RegExp;
  source: 'override' | 'knowledge-base';
  purposes: readonly CookiePurpose[];
  vendor?: string;
  party?: 'first' | 'third';
  domains?: readonly string[];
  setByUser?: boolean;
  url?: string;
  description?: string;
  /** A name any site may use (`session`, `<app>_session`): weak evidence. */
  generic?: boolean;
  declared?: Declaration;
}

/** What a site owner's override says of where and how long the cookie lives. */
interface Declaration {
  firstParty?: boolean;
  duration?: string;
}

/**
 * How much an answer can be trusted to say a cookie is strictly necessary:
 * - `vendor`: a site-owner override or the vendor's own documentation of this name;
 * - `database`: a row of the Open Cookie Database, written by many hands;
 * - `name`: only the name looks necessary (a name pattern, or a generic name such as `session`
 *   that any site, tracker or not, may use).
 * Weak answers (`database`, `name`) lose a necessary purpose on a cookie kept over a year, and
 * `name` answers on a third-party cookie too (ePrivacy Art 5(3), K01, K02).
 */
type Strength = 'vendor' | 'database' | 'name';

interface Resolution {
  source: EvidenceSource;
  strength: Strength;
  purposes: readonly CookiePurpose[];
  vendor?: string;
  confidence: number;
  evidence: CookieEvidence[];
  party?: 'first' | 'third';
  domainBound: boolean;
  setByUser: boolean;
  declared?: Declaration;
}

interface RuleSet {
  exact: Map<string, Rule[]>;
  folded: Map<string, Rule[]>;
  prefixes: Rule[];
  patterns: Rule[];
}

const ocdUrl = 'https://github.com/jkwakman/Open-Cookie-Database';
const hostPrefix = /^__(host|secure)-/i;

/**
 * Builds a classifier over, in order: site-owner overrides, the built-in knowledge base, the
 * Open Cookie Database, the knowledge base's generic names (`session`, `<app>_session`), name
 * patterns, lifetime and third-party heuristics. Unknown cookies are `unclassified` and need
 * consent — never "necessary". ePrivacy Art 5(3); GDPR Art 6(1)(a), 7.
 */
export function createClassifier(options: ClassifierOptions = {}): Classifier {
  const issues = classifierOptionsIssues(options, classifierOptionKeys);
  if (issues.length > 0) invalidOptions('classifier options', issues);
  const config = options;
  const overrides = ruleSet(
    (config.overrides ?? []).map((override): Rule => {
      const purposes = override.purposes ?? defaultPurposes(override.category ?? 'unclassified');
      const rule: Rule = {
        kind: override.match ?? 'exact',
        name: override.name,
        source: 'override',
        purposes,
      };
      if (override.vendor) rule.vendor = override.vendor;
      if (override.setByUser) rule.setByUser = true;
      if (override.description) rule.description = override.description;
      if (override.firstParty !== undefined || override.duration !== undefined) {
        rule.declared = {};
        if (override.firstParty !== undefined) rule.declared.firstParty = override.firstParty;
        if (override.duration !== undefined) rule.declared.duration = override.duration;
      }
      return rule;
    }),
  );
  const knowledgeRules = (
    config.knowledgeBase === false ? [] : (config.knowledgeBase ?? builtinKnowledgeBase)
  ).map((entry): Rule => {
    const rule: Rule = {
      kind: entry.match ?? 'exact',
      name: entry.name,
      source: 'knowledge-base',
      purposes: entry.purposes,
      vendor: entry.vendor,
    };
    if (entry.party) rule.party = entry.party;
    if (entry.domains) rule.domains = entry.domains;
    if (entry.generic) rule.generic = true;
    const url = knowledgeBaseSources[entry.vendor];
    if (url) rule.url = url;
    return rule;
  });
  const knowledge = ruleSet(knowledgeRules.filter((rule) => !rule.generic));
  // Generic names come after the database: `rl_session` is Rudderstack's analytics cookie there,
  // though it has the shape of a Laravel session cookie.
  const genericKnowledge = ruleSet(knowledgeRules.filter((rule) => rule.generic));
  const database = config.openCookieDatabase;
  const defaults: Required<Omit<ClassifyOptions, 'audienceMeasurementExempt'>> & ClassifyOptions = {
    clock: config.clock ?? systemClock,
    preferenceMaxLifetimeSeconds: config.preferenceMaxLifetimeSeconds ?? 43_200,
  };
  if (config.audienceMeasurementExempt) defaults.audienceMeasurementExempt = config.audienceMeasurementExempt;

  function fromDatabase(name: string, stripped: string | undefined): Resolution | undefined {
    if (!database) return undefined;
    const target = stripped ?? name;
    const match = database.lookup(name) ?? (stripped ? database.lookup(stripped) : undefined);
    if (!match) return undefined;
    let purposes: readonly CookiePurpose[] = openCookieDatabasePurposes(match.entry);
    const base = match.kind === 'exact' ? 0.8 : match.kind === 'case-insensitive' ? 0.7 : 0.55;
    let confidence = match.alternatives > 0 ? base - 0.1 : base;
    const evidence: CookieEvidence[] = [
      {
        source: 'open-cookie-database',
        rule: `${match.kind}:${match.entry.name}`,
        detail: `${match.entry.platform} — ${match.entry.category}: ${match.entry.description.trim()}${
          match.alternatives > 0 ? ` (${match.alternatives} other platform(s) use this name)` : ''
        }`,
        url: ocdUrl,
      },
    ];
    // A prefix row describes the vendor's other cookies, not this one: `lc_` (a chat
    // widget's session) says nothing about `lc_ads_campaign`. It names the vendor, but an
    // exemption needs the cookie's own name to agree (K01, K02).
    if (match.kind === 'prefix' && categoryOfPurposes(purposes) === 'necessary') {
      const pattern = namePatternOf(target);
      if (pattern) {
        const resolution = fromNamePattern(pattern);
        resolution.vendor = match.entry.platform;
        resolution.evidence.unshift(...evidence);
        return resolution;
      }
      purposes = [match.entry.category.toLowerCase() === 'functional' ? 'functionality' : 'unknown'];
      confidence = Math.min(confidence, 0.4);
      evidence.push({
        source: 'heuristic',
        rule: 'prefix-not-exempt',
        detail: `only the prefix ${match.entry.name} matched and the name itself does not look strictly necessary: consent required`,
      });
    }
    return {
      source: 'open-cookie-database',
      strength: 'database',
      purposes,
      vendor: match.entry.platform,
      confidence,
      evidence,
      domainBound: false,
      setByUser: false,
    };
  }

  function resolve(name: string, domain: string | undefined): Resolution | undefined {
    const stripped = hostPrefix.test(name) ? name.replace(hostPrefix, '') : undefined;
    const lookup = (rules: RuleSet) =>
      matchRules(rules, name, domain) ?? (stripped ? matchRules(rules, stripped, domain) : undefined);
    const pattern = () => {
      const found = namePatternOf(stripped ?? name);
      return found ? fromNamePattern(found) : undefined;
    };
    const known = lookup(overrides) ?? lookup(knowledge) ?? fromDatabase(name, stripped);
    if (known) return known;
    const generic = lookup(genericKnowledge);
    if (!generic) return pattern();
    // A generic name says only "some framework's session"; a word naming ads or analytics in it
    // (`retarget_session`, `visitor_session`) says more.
    const named = pattern();
    if (named && !named.purposes.some(isNecessary) && named.purposes[0] !== 'ui-preference') {
      named.evidence.push(...generic.evidence);
      return named;
    }
    return generic;
  }

  function build(
    name: string,
    resolution: Resolution | undefined,
    input: CookieInput,
    callOptions: ClassifyOptions | undefined,
  ): CookieClassification {
    const evidence: CookieEvidence[] = resolution ? [...resolution.evidence] : [];
    let purposes = resolution?.purposes ?? (['unknown'] as const);
    let confidence = resolution?.confidence ?? 0;
    let source: EvidenceSource = resolution?.source ?? 'default';
    let vendor = resolution?.vendor;
    const settings = { ...defaults, ...callOptions };
    const needsTime = input.expires !== undefined || input.maxAge !== undefined;
    const now = needsTime || purposes.includes('audience-measurement') ? settings.clock.now() : new Date(0);
    const lifetimeSeconds = needsTime ? cookieLifetimeSeconds(input, now) : null;

    let firstParty = input.firstParty;
    if (firstParty === undefined && resolution?.party && resolution.source !== 'override') {
      firstParty = resolution.party === 'first';
      evidence.push({
        source: 'heuristic',
        rule: 'vendor-party',
        detail: `assumed ${resolution.party}-party: this is how ${resolution.vendor ?? 'the vendor'} sets it`,
      });
    } else if (
      firstParty !== undefined &&
      resolution?.party &&
      firstParty !== (resolution.party === 'first')
    ) {
      confidence = Math.max(0.1, confidence - 0.1);
      evidence.push({
        source: 'heuristic',
        rule: 'party-mismatch',
        detail: `seen as ${firstParty ? 'first' : 'third'}-party, but ${resolution.vendor ?? 'the vendor'} sets it ${resolution.party}-party`,
      });
    }

    // The site owner's declaration holds for the cookie it describes. Seen otherwise, the notice
    // misstates it (GDPR Art 13); seen third-party when declared first-party, or kept over a year
    // when declared shorter, it is not the cookie the declaration exempted.
    if (resolution?.declared) {
      const mismatch = declarationMismatch(resolution.declared, firstParty, lifetimeSeconds);
      if (mismatch) {
        confidence *= 0.5;
        if (mismatch.voidsExemption) purposes = withoutNecessary(purposes);
        evidence.push({
          source: 'heuristic',
          rule: 'declaration-mismatch',
          detail: `${mismatch.details.join('; ')}: ${
            mismatch.voidsExemption
              ? 'the declaration does not cover this cookie, consent required'
              : 'the notice misstates it (GDPR Art 13)'
          }`,
        });
      }
    }

    // Weak answers: only a vendor's own documentation or the site owner can say a cookie seen
    // third-party, or kept for years, is strictly necessary.
    if (resolution && resolution.strength === 'name' && firstParty === false && purposes.some(isNecessary)) {
      confidence *= 0.6;
      purposes = withoutNecessary(purposes);
      evidence.push({
        source: 'heuristic',
        rule: 'third-party-necessary',
        detail:
          'a necessary-looking name on a third-party cookie: the name alone cannot show the site needs it, consent required',
      });
    }
    if (
      resolution &&
      resolution.strength !== 'vendor' &&
      lifetimeSeconds !== null &&
      lifetimeSeconds > longLivedNecessarySeconds &&
      purposes.some(isNecessary)
    ) {
      const session = purposes.includes('session');
      confidence *= 0.7;
      purposes = withoutNecessary(purposes);
      evidence.push({
        source: 'heuristic',
        rule: session ? 'long-lived-session' : 'long-lived-necessary',
        detail: `read as strictly necessary (${resolution.source}) but lives over a year: not exempt on this evidence, consent required`,
      });
    }
    if (!resolution) {
      if (firstParty === false && lifetimeSeconds !== null && lifetimeSeconds > 30 * 86_400) {
        purposes = ['advertising'];
        confidence = 0.3;
        source = 'heuristic';
        vendor = undefined;
        evidence.push({
          source: 'heuristic',
          rule: 'third-party-persistent',
          detail: 'unknown third-party cookie living over 30 days: treated as cross-site tracking',
        });
      } else {
        evidence.push({
          source: 'default',
          rule: 'unknown',
          detail:
            'no override, knowledge-base entry, database row or name pattern matched: unclassified, consent required',
        });
      }
    }

    const verdict = exemptionVerdict(purposes, {
      firstParty,
      lifetimeSeconds,
      setByUser: input.setByUser === true || resolution?.setByUser === true,
      audienceMeasurement: settings.audienceMeasurementExempt,
      preferenceMaxLifetimeSeconds: settings.preferenceMaxLifetimeSeconds,
      now,
    });
    for (const line of verdict.purposes) {
      evidence.push({ source: 'exemption', rule: line.purpose, detail: line.reason });
    }
    const result: CookieClassification = {
      name,
      category: categoryOfPurposes(purposes),
      purposes,
      consentRequired: verdict.consentRequired,
      confidence: Math.round(confidence * 100) / 100,
      source,
      evidence,
    };
    if (verdict.ground) result.exemption = verdict.ground;
    if (vendor) result.vendor = vendor;
    return result;
  }

  // Memo of name → answer source (domain unknown). Answers that depend on nothing but the name
  // are kept whole, so a known cookie costs one Map lookup. Bounded: names come from the wire.
  const memo = new Map<string, Memo>();
  const remember = (name: string): Memo => {
    const resolution = resolve(name, undefined);
    const entry: Memo = { resolution };
    // Weak necessary answers are refined by lifetime and party, and declarations by both, so
    // their answers are not kept whole.
    if (
      resolution &&
      !dependsOnContext(resolution) &&
      (resolution.purposes.every(isContextFreePurpose) || !resolution.purposes.every(isExemptable))
    ) {
      entry.cached = deepFreeze(build(name, resolution, { name }, undefined));
    }
    if (memo.size < memoLimit) memo.set(name, entry);
    return entry;
  };
  for (const rules of [overrides, knowledge]) for (const name of rules.exact.keys()) remember(name);

  return {
    classify(cookie, callOptions) {
      // The common, well-formed cookie is checked inline (this runs on every call of the hot
      // path); the issues are worked out only for one that fails.
      const inputIssues = wellFormedCookie(cookie) ? undefined : cookieInputIssues(cookie);
      if (inputIssues !== undefined && inputIssues.length > 0) {
        throw cookiesError(
          'cookies/invalid-input',
          inputIssues[0]!.message.startsWith('classify expects')
            ? inputIssues[0]!.message
            : `Invalid cookie: ${describeIssues(inputIssues)}`,
          { issues: inputIssues },
        );
      }
      if (callOptions !== undefined) {
        const optionIssues = classifierOptionsIssues(callOptions, classifyOptionKeys);
        if (optionIssues.length > 0) invalidOptions('classify options', optionIssues);
      }
      const name = cookie.name;
      const domain = cookie.domain;
      const hit = memo.get(name) ?? (domain === undefined ? remember(name) : undefined);
      if (hit !== undefined) {
        const cached = hit.cached;
        if (
          cached !== undefined &&
          domain === undefined &&
          (cookie.firstParty === undefined || hit.resolution?.party === undefined)
        ) {
          return cached;
        }
        if (
          callOptions === undefined &&
          domain === undefined &&
          cookie.firstParty === undefined &&
          cookie.setByUser === undefined &&
          cookie.maxAge === undefined &&
          cookie.expires === undefined &&
          hit.resolution?.purposes.includes('audience-measurement') !== true
        ) {
          hit.bare ??= deepFreeze(build(name, hit.resolution, { name }, undefined));
          return hit.bare;
        }
        if (hit.resolution?.domainBound !== true || domain === undefined) {
          return build(name, hit.resolution, cookie, callOptions);
        }
      }
      return build(name, resolve(name, domain), cookie, callOptions);
    },
  };
}

const memoLimit = 50_000;
const longLivedNecessarySeconds = 366 * 86_400;

function isNecessary(purpose: CookiePurpose): boolean {
  return purposeCategory(purpose) === 'necessary';
}

/** The purposes with every strictly-necessary one replaced by `unknown`: consent required. */
function withoutNecessary(purposes: readonly CookiePurpose[]): CookiePurpose[] {
  const result: CookiePurpose[] = [];
  for (const purpose of purposes) {
    const next = isNecessary(purpose) ? 'unknown' : purpose;
    if (!result.includes(next)) result.push(next);
  }
  return result;
}

/** Whether an answer can change with the cookie's lifetime or party (see `Strength`). */
function dependsOnContext(resolution: Resolution): boolean {
  return (
    resolution.source === 'name-pattern' ||
    resolution.declared !== undefined ||
    (resolution.strength !== 'vendor' && resolution.purposes.some(isNecessary))
  );
}

/**
 * How a cookie seen differs from what the site owner declared of it, and whether the difference
 * makes it another cookie than the one declared exempt.
 */
function declarationMismatch(
  declared: Declaration,
  firstParty: boolean | undefined,
  lifetimeSeconds: number | null,
): { details: string[]; voidsExemption: boolean } | undefined {
  const details: string[] = [];
  let voidsExemption = false;
  if (declared.firstParty !== undefined && firstParty !== undefined && declared.firstParty !== firstParty) {
    details.push(
      `declared ${declared.firstParty ? 'first' : 'third'}-party, seen ${firstParty ? 'first' : 'third'}-party`,
    );
    voidsExemption ||= declared.firstParty;
  }
  const declaredLongest =
    declared.duration === undefined
      ? Number.POSITIVE_INFINITY
      : declared.duration === 'session'
        ? 0
        : longestSeconds(declared.duration);
  if (lifetimeSeconds !== null && lifetimeSeconds > declaredLongest) {
    details.push(
      declared.duration === 'session'
        ? `declared a session cookie, seen living ${describeSeconds(lifetimeSeconds)}`
        : `declared to last ${declared.duration}, seen living ${describeSeconds(lifetimeSeconds)}`,
    );
    voidsExemption ||= lifetimeSeconds > longLivedNecessarySeconds;
  }
  return details.length > 0 ? { details, voidsExemption } : undefined;
}

function describeSeconds(seconds: number): string {
  if (seconds === Number.POSITIVE_INFINITY) return 'for good';
  return seconds >= 86_400 ? `${Math.round(seconds / 86_400)} days` : `${seconds}s`;
}

function namePatternOf(name: string): NamePattern | undefined {
  const tokens = cookieNameTokens(name);
  return namePatterns.find((pattern) => pattern.pattern.test(tokens));
}

function fromNamePattern(pattern: NamePattern): Resolution {
  return {
    source: 'name-pattern',
    strength: 'name',
    purposes: [pattern.purpose],
    confidence: pattern.confidence,
    evidence: [
      {
        source: 'name-pattern',
        rule: `pattern:${pattern.id}`,
        detail: `name matches ${pattern.pattern}`,
      },
    ],
    domainBound: false,
    setByUser: false,
  };
}

interface Memo {
  resolution: Resolution | undefined;
  /** The full answer when it depends on nothing but the name. */
  cached?: CookieClassification;
  /**
   * The answer for the name alone — no domain, party, lifetime or call options — when it does
   * depend on them (a weak necessary answer): kept once asked for, as most lookups are by name.
   */
  bare?: CookieClassification;
}

function isExemptable(purpose: CookiePurpose): boolean {
  return (
    exemptionVerdict([purpose], {
      firstParty: true,
      lifetimeSeconds: null,
      setByUser: true,
      audienceMeasurement: { anonymous: true, siteOnly: true },
      preferenceMaxLifetimeSeconds: Number.POSITIVE_INFINITY,
      now: new Date(0),
    }).consentRequired === false
  );
}

function ruleSet(rules: Rule[]): RuleSet {
  const set: RuleSet = { exact: new Map(), folded: new Map(), prefixes: [], patterns: [] };
  for (const rule of rules) {
    switch (rule.kind) {
      case 'exact':
        addTo(set.exact, rule.name, rule);
        addTo(set.folded, rule.name.toLowerCase(), rule);
        break;
      case 'prefix':
        set.prefixes.push(rule);
        break;
      case 'pattern':
        try {
          rule.regex = new RegExp(rule.name);
        } catch (cause) {
          throw cookiesError('cookies/invalid-options', `Invalid cookie name pattern ${rule.name}`, {
            cause,
          });
        }
        set.patterns.push(rule);
        break;
    }
  }
  set.prefixes.sort((a, b) => b.name.length - a.name.length);
  return set;
}

function addTo(map: Map<string, Rule[]>, key: string, rule: Rule): void {
  const list = map.get(key);
  if (list) list.push(rule);
  else map.set(key, [rule]);
}

function applies(rule: Rule, domain: string | undefined): boolean {
  if (!rule.domains || domain === undefined) return true;
  return rule.domains.some((candidate) => domainMatches(domain, candidate));
}

function matchRules(rules: RuleSet, name: string, domain: string | undefined): Resolution | undefined {
  const exact = rules.exact.get(name)?.find((rule) => applies(rule, domain));
  if (exact) return fromRule(exact, 'exact', domain);
  for (const rule of rules.prefixes) {
    if (name.startsWith(rule.name) && applies(rule, domain)) return fromRule(rule, 'prefix', domain);
  }
  for (const rule of rules.patterns) {
    if (rule.regex!.test(name) && applies(rule, domain)) return fromRule(rule, 'pattern', domain);
  }
  const folded = rules.folded.get(name.toLowerCase())?.find((rule) => applies(rule, domain));
  if (folded) return fromRule(folded, 'case-insensitive', domain);
  return undefined;
}

const baseConfidence = {
  override: { exact: 1, prefix: 1, pattern: 1, 'case-insensitive': 0.95 },
  'knowledge-base': { exact: 0.95, prefix: 0.9, pattern: 0.8, 'case-insensitive': 0.85 },
} as const;

function fromRule(
  rule: Rule,
  kind: 'exact' | 'prefix' | 'pattern' | 'case-insensitive',
  domain: string | undefined,
): Resolution {
  const domainBound = rule.domains !== undefined;
  let confidence: number = baseConfidence[rule.source][kind];
  let detail = rule.source === 'override' ? 'declared by the site owner' : `${rule.vendor} documentation`;
  if (rule.description) detail += `: ${rule.description}`;
  if (domainBound && domain === undefined) {
    confidence -= 0.2;
    detail += ` (a generic name: ${rule.vendor} sets it on ${rule.domains!.join(', ')}; the cookie's domain is unknown)`;
  }
  if (rule.generic) {
    confidence = Math.min(confidence, 0.6);
    detail += ' (a generic name other sites and trackers use too: weak evidence)';
  }
  const evidence: CookieEvidence = { source: rule.source, rule: `${kind}:${rule.name}`, detail };
  if (rule.url) evidence.url = rule.url;
  const resolution: Resolution = {
    source: rule.source,
    strength: rule.generic ? 'name' : 'vendor',
    purposes: rule.purposes,
    confidence,
    evidence: [evidence],
    domainBound,
    setByUser: rule.setByUser === true,
  };
  if (rule.vendor) resolution.vendor = rule.vendor;
  if (rule.party) resolution.party = rule.party;
  if (rule.declared) resolution.declared = rule.declared;
  return resolution;
}

function deepFreeze<T extends object>(value: T): T {
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null && !Object.isFrozen(child)) deepFreeze(child);
  }
  return Object.freeze(value);
}

let defaultClassifier: Classifier | undefined;

/**
 * Classifies one cookie with the built-in knowledge base, name patterns and heuristics.
 * Pass `overrides` or `openCookieDatabase` to use them for this call; for many cookies build a
 * classifier once with `createClassifier`. Its options are checked as `createClassifier`'s
 * (`cookies/invalid-options`). ePrivacy Art 5(3).
 */
export function classifyCookie(
  cookie: CookieInput,
  options?: ClassifyOptions & Pick<ClassifierOptions, 'overrides' | 'openCookieDatabase'>,
): CookieClassification {
  if (options !== undefined) {
    const issues = classifierOptionsIssues(options, classifyCookieOptionKeys);
    if (issues.length > 0) invalidOptions('classifyCookie options', issues);
  }
  if (options?.overrides || options?.openCookieDatabase) {
    const { overrides, openCookieDatabase, ...callOptions } = options;
    const classifier = createClassifier({
      ...(overrides ? { overrides } : {}),
      ...(openCookieDatabase ? { openCookieDatabase } : {}),
    });
    return classifier.classify(cookie, callOptions);
  }
  defaultClassifier ??= createClassifier();
  return defaultClassifier.classify(cookie, options);
}
