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
import { cookieLifetimeSeconds } from './lifetime.js';
import { type NamePattern, namePatterns } from './name-patterns.js';
import { type OpenCookieDatabase, openCookieDatabasePurposes } from './open-cookie-database.js';
import {
  type CookieCategory,
  type CookiePurpose,
  categoryOfPurposes,
  cookiePurposes,
  defaultPurposes,
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
}

const overrideKeys = ['name', 'match', 'category', 'purposes', 'vendor', 'description', 'setByUser'];
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

const classifierOptionKeys = [
  'overrides',
  'openCookieDatabase',
  'knowledgeBase',
  'audienceMeasurementExempt',
  'preferenceMaxLifetimeSeconds',
  'clock',
];

function classifierOptionsIssues(value: unknown): Issues {
  if (!isRecord(value)) return [{ path: '', message: 'expected an object' }];
  const issues: Issues = [];
  const context = { path: '', issues };
  checkKnownKeys(value, classifierOptionKeys, '', issues);
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
    (field) => isRecord(field) && 'lookup' in field,
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
  if (value.audienceMeasurementExempt !== undefined) {
    issues.push(
      ...audienceMeasurementConditionsIssues(value.audienceMeasurementExempt, 'audienceMeasurementExempt'),
    );
  }
  checkOptional(
    value,
    'preferenceMaxLifetimeSeconds',
    (field) => typeof field === 'number' && Number.isSafeInteger(field) && field >= 0,
    'a non-negative integer',
    context,
  );
  checkOptional(value, 'clock', (field) => isRecord(field) && 'now' in field, 'a Clock', context);
  return issues;
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
}

interface Resolution {
  source: EvidenceSource;
  purposes: readonly CookiePurpose[];
  vendor?: string;
  confidence: number;
  evidence: CookieEvidence[];
  party?: 'first' | 'third';
  domainBound: boolean;
  setByUser: boolean;
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
 * Open Cookie Database, name patterns, lifetime and third-party heuristics. Unknown cookies are
 * `unclassified` and need consent — never "necessary". ePrivacy Art 5(3); GDPR Art 6(1)(a), 7.
 */
export function createClassifier(options: ClassifierOptions = {}): Classifier {
  const issues = classifierOptionsIssues(options);
  if (issues.length > 0) {
    throw cookiesError('cookies/invalid-options', `Invalid classifier options: ${describeIssues(issues)}`, {
      issues,
    });
  }
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
      return rule;
    }),
  );
  const knowledge = ruleSet(
    (config.knowledgeBase === false ? [] : (config.knowledgeBase ?? builtinKnowledgeBase)).map(
      (entry): Rule => {
        const rule: Rule = {
          kind: entry.match ?? 'exact',
          name: entry.name,
          source: 'knowledge-base',
          purposes: entry.purposes,
          vendor: entry.vendor,
        };
        if (entry.party) rule.party = entry.party;
        if (entry.domains) rule.domains = entry.domains;
        const url = knowledgeBaseSources[entry.vendor];
        if (url) rule.url = url;
        return rule;
      },
    ),
  );
  const database = config.openCookieDatabase;
  const defaults: Required<Omit<ClassifyOptions, 'audienceMeasurementExempt'>> & ClassifyOptions = {
    clock: config.clock ?? systemClock,
    preferenceMaxLifetimeSeconds: config.preferenceMaxLifetimeSeconds ?? 43_200,
  };
  if (config.audienceMeasurementExempt) defaults.audienceMeasurementExempt = config.audienceMeasurementExempt;

  function resolve(name: string, domain: string | undefined): Resolution | undefined {
    const stripped = hostPrefix.test(name) ? name.replace(hostPrefix, '') : undefined;
    for (const rules of [overrides, knowledge]) {
      const found =
        matchRules(rules, name, domain) ?? (stripped ? matchRules(rules, stripped, domain) : undefined);
      if (found) return found;
    }
    const target = stripped ?? name;
    if (database) {
      const match = database.lookup(name) ?? (stripped ? database.lookup(stripped) : undefined);
      if (match) {
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
          purposes,
          vendor: match.entry.platform,
          confidence,
          evidence,
          domainBound: false,
          setByUser: false,
        };
      }
    }
    const pattern = namePatternOf(target);
    return pattern ? fromNamePattern(pattern) : undefined;
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

    // Heuristics: lifetime and third-party context refine weak answers, and name the unknown.
    const category = categoryOfPurposes(purposes);
    if (
      resolution &&
      resolution.source === 'name-pattern' &&
      category === 'necessary' &&
      firstParty === false
    ) {
      confidence *= 0.6;
      evidence.push({
        source: 'heuristic',
        rule: 'third-party-necessary',
        detail: 'a necessary-looking name on a third-party cookie',
      });
    }
    // A cookie kept for years is not a session cookie, whatever its name or a database row says;
    // only a vendor's own documentation (knowledge base) or the site owner can say otherwise.
    if (
      resolution &&
      lifetimeDecides(resolution) &&
      lifetimeSeconds !== null &&
      lifetimeSeconds > longLivedSessionSeconds
    ) {
      confidence *= 0.7;
      purposes = purposes.map((purpose) => (purpose === 'session' ? 'unknown' : purpose));
      evidence.push({
        source: 'heuristic',
        rule: 'long-lived-session',
        detail: `read as a session cookie (${resolution.source}) but lives over a year: not exempt as a session cookie, consent required`,
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
    // Name patterns are refined by lifetime and party heuristics, and session answers of the
    // database by lifetime, so their answers are not kept whole.
    if (
      resolution &&
      resolution.source !== 'name-pattern' &&
      !lifetimeDecides(resolution) &&
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
      if (typeof cookie !== 'object' || cookie === null || typeof cookie.name !== 'string') {
        throw cookiesError('cookies/invalid-input', 'classify expects an object with a string `name`');
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
        if (hit.resolution?.domainBound !== true || domain === undefined) {
          return build(name, hit.resolution, cookie, callOptions);
        }
      }
      return build(name, resolve(name, domain), cookie, callOptions);
    },
  };
}

const memoLimit = 50_000;
const longLivedSessionSeconds = 366 * 86_400;

/** A `session` answer from a weak source (a name pattern, the database): its lifetime can overturn it. */
function lifetimeDecides(resolution: Resolution): boolean {
  return (
    (resolution.source === 'name-pattern' || resolution.source === 'open-cookie-database') &&
    resolution.purposes.includes('session')
  );
}

function namePatternOf(name: string): NamePattern | undefined {
  return namePatterns.find((pattern) => pattern.pattern.test(name));
}

function fromNamePattern(pattern: NamePattern): Resolution {
  return {
    source: 'name-pattern',
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
  const evidence: CookieEvidence = { source: rule.source, rule: `${kind}:${rule.name}`, detail };
  if (rule.url) evidence.url = rule.url;
  const resolution: Resolution = {
    source: rule.source,
    purposes: rule.purposes,
    confidence,
    evidence: [evidence],
    domainBound,
    setByUser: rule.setByUser === true,
  };
  if (rule.vendor) resolution.vendor = rule.vendor;
  if (rule.party) resolution.party = rule.party;
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
 * classifier once with `createClassifier`. ePrivacy Art 5(3).
 */
export function classifyCookie(
  cookie: CookieInput,
  options?: ClassifyOptions & Pick<ClassifierOptions, 'overrides' | 'openCookieDatabase'>,
): CookieClassification {
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
