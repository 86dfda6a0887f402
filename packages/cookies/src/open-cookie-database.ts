import { cookiesError } from './errors.js';
import { parseCsv } from './csv.js';
import type { CookiePurpose } from './purpose.js';
import { type Issues, checkKnownKeys, checkOptional, describeIssues, isRecord } from './validate.js';

/** One row of the Open Cookie Database (github.com/jkwakman/Open-Cookie-Database, Apache-2.0). */
export interface OpenCookieDatabaseEntry {
  id: string;
  platform: string;
  /** The database's own category: Functional, Marketing, Analytics, Security, Necessary, Personalization. */
  category: string;
  name: string;
  domain: string;
  description: string;
  retention: string;
  controller: string;
  /**
   * `true` when `name` is a prefix: the database's "Wildcard match" column, or a name the CSV
   * writes with a trailing `*` (`UID_EXT_*` is loaded as the prefix `UID_EXT_`).
   */
  wildcard: boolean;
}

export interface OpenCookieDatabaseMatch {
  entry: OpenCookieDatabaseEntry;
  kind: 'exact' | 'case-insensitive' | 'prefix';
  /** Other rows with the same name but another platform: the attribution is then uncertain. */
  alternatives: number;
}

export interface OpenCookieDatabase {
  readonly entries: readonly OpenCookieDatabaseEntry[];
  /** Rows left out, with the reason (missing name, wrong column count). */
  readonly skipped: readonly { row: number; reason: string }[];
  /**
   * Rows loaded but worth a look, with the reason: an `ID` already used by an earlier row (the
   * database's IDs are meant to be unique; two rows sharing one are usually a bad merge).
   */
  readonly warnings: readonly { row: number; reason: string }[];
  /** Exact, then case-insensitive, then the longest guarded prefix. */
  lookup(name: string): OpenCookieDatabaseMatch | undefined;
}

export interface OpenCookieDatabaseOptions {
  /**
   * Shortest wildcard prefix ever used. The database has two-letter prefixes (`_s`, `CT`, `tp`,
   * `SR`) that would swallow unrelated names. Default 3.
   */
  minPrefixLength?: number;
}

const requiredColumns = {
  id: 'ID',
  platform: 'Platform',
  category: 'Category',
  name: 'Cookie / Data Key name',
  domain: 'Domain',
  description: 'Description',
  retention: 'Retention period',
  controller: 'Data Controller',
  wildcard: 'Wildcard match',
} as const;

/**
 * Loads the Open Cookie Database from its CSV text (the project ships no copy: pass the file
 * you downloaded). Throws `cookies/invalid-csv` when the header lacks a column it needs, and
 * `cookies/invalid-options` for options that are not `{ minPrefixLength?: positive integer }`.
 */
export function loadOpenCookieDatabase(
  csvText: string,
  options: OpenCookieDatabaseOptions = {},
): OpenCookieDatabase {
  if (typeof csvText !== 'string') {
    throw cookiesError('cookies/invalid-csv', 'loadOpenCookieDatabase expects the CSV text as a string');
  }
  const issues = optionsIssues(options);
  if (issues.length > 0) {
    throw cookiesError(
      'cookies/invalid-options',
      `Invalid Open Cookie Database options: ${describeIssues(issues)}`,
      { issues },
    );
  }
  const minPrefixLength = options.minPrefixLength ?? 3;
  const rows = parseCsv(csvText);
  const header = rows[0];
  if (!header) throw cookiesError('cookies/invalid-csv', 'The Open Cookie Database CSV is empty');
  const index: Record<keyof typeof requiredColumns, number> = {
    id: -1,
    platform: -1,
    category: -1,
    name: -1,
    domain: -1,
    description: -1,
    retention: -1,
    controller: -1,
    wildcard: -1,
  };
  const missing: string[] = [];
  for (const key of Object.keys(requiredColumns) as (keyof typeof requiredColumns)[]) {
    const column = header.findIndex((cell) => cell.trim() === requiredColumns[key]);
    if (column === -1) missing.push(requiredColumns[key]);
    index[key] = column;
  }
  if (missing.length > 0) {
    throw cookiesError('cookies/invalid-csv', `The CSV lacks the columns: ${missing.join(', ')}`, {
      details: { missing },
    });
  }

  const entries: OpenCookieDatabaseEntry[] = [];
  const skipped: { row: number; reason: string }[] = [];
  const warnings: { row: number; reason: string }[] = [];
  const rowOfId = new Map<string, number>();
  const starredPrefixes = new Set<OpenCookieDatabaseEntry>();
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!;
    if (row.length === 1 && row[0] === '') continue; // blank line
    // More cells than the header means an unquoted comma shifted the fields after it: the
    // description, retention and wildcard flag would be read from the wrong columns.
    if (row.length !== header.length) {
      skipped.push({
        row: r + 1,
        reason: `expected ${header.length} columns, found ${row.length}${
          row.length > header.length ? ' (an unquoted comma shifts the fields)' : ''
        }`,
      });
      continue;
    }
    const written = row[index.name]!.trim();
    // Some rows mark their prefix with a trailing `*` (`SCM*`, `UID_EXT_*`) and leave the
    // Wildcard column at 0; no cookie is literally named that way.
    const starred = written.endsWith('*');
    const name = starred ? written.replace(/\*+$/, '') : written;
    if (name === '') {
      skipped.push({ row: r + 1, reason: 'empty cookie name' });
      continue;
    }
    const id = row[index.id]!;
    const earlier = rowOfId.get(id);
    if (earlier !== undefined) warnings.push({ row: r + 1, reason: `ID "${id}" is also row ${earlier}'s` });
    else rowOfId.set(id, r + 1);
    entries.push({
      id,
      platform: row[index.platform]!.trim(),
      category: row[index.category]!.trim(),
      name,
      domain: row[index.domain]!.trim(),
      description: row[index.description]!,
      retention: row[index.retention]!.trim(),
      controller: row[index.controller]!.trim(),
      wildcard: starred || row[index.wildcard]!.trim() === '1',
    });
    if (starred) starredPrefixes.add(entries[entries.length - 1]!);
  }

  const exact = new Map<string, OpenCookieDatabaseEntry[]>();
  const folded = new Map<string, OpenCookieDatabaseEntry[]>();
  const prefixes: OpenCookieDatabaseEntry[] = [];
  for (const entry of entries) {
    if (entry.wildcard && entry.name.length >= minPrefixLength) prefixes.push(entry);
    // A `*` row names no cookie itself: `SCM*` must not answer for a cookie named `SCM`.
    if (starredPrefixes.has(entry)) continue;
    push(exact, entry.name, entry);
    push(folded, entry.name.toLowerCase(), entry);
  }
  prefixes.sort((a, b) => b.name.length - a.name.length);

  return {
    entries,
    skipped,
    warnings,
    lookup(name) {
      const same = exact.get(name);
      if (same) return { entry: same[0]!, kind: 'exact', alternatives: same.length - 1 };
      const insensitive = folded.get(name.toLowerCase());
      if (insensitive)
        return { entry: insensitive[0]!, kind: 'case-insensitive', alternatives: insensitive.length - 1 };
      for (const entry of prefixes) {
        if (
          name.length > entry.name.length &&
          name.startsWith(entry.name) &&
          plausiblePrefix(entry.name, name)
        ) {
          return { entry, kind: 'prefix', alternatives: 0 };
        }
      }
      return undefined;
    },
  };
}

function optionsIssues(options: unknown): Issues {
  if (!isRecord(options)) return [{ path: '', message: 'expected an object' }];
  const issues: Issues = [];
  checkKnownKeys(options, ['minPrefixLength'], '', issues);
  checkOptional(
    options,
    'minPrefixLength',
    (field) => typeof field === 'number' && Number.isSafeInteger(field) && field >= 1,
    'a positive integer',
    { path: '', issues },
  );
  return issues;
}

function push(
  map: Map<string, OpenCookieDatabaseEntry[]>,
  key: string,
  entry: OpenCookieDatabaseEntry,
): void {
  const list = map.get(key);
  if (list) list.push(entry);
  else map.set(key, [entry]);
}

const alphanumeric = /[A-Za-z0-9]/;

/**
 * A prefix is trusted when the name continues after a boundary (the prefix ends in `_`, `-`,
 * `.`, or the rest starts with one or with a digit), or when the prefix is long enough (≥ 5)
 * to be distinctive: `mp_` matches `mp_abc_mixpanel`, `MSO` does not match `MSOffice`.
 */
export function plausiblePrefix(prefix: string, name: string): boolean {
  const last = prefix[prefix.length - 1]!;
  const next = name[prefix.length]!;
  if (!alphanumeric.test(last)) return true;
  if (!alphanumeric.test(next) || (next >= '0' && next <= '9')) return true;
  return prefix.length >= 5;
}

const consentWords =
  /consent|cookie ?(preference|choice|setting|banner|notice|polic|law)|opt[- ]?(in|out)|gdpr|ccpa/i;
const loadBalancingWords =
  /load[- ]?balanc|server (pool|affinity|selection)|sticky|data ?cent(er|re) selection|route[sd]? (the )?(request|traffic)/i;
const securityWords = /csrf|xsrf|forgery|\bbots?\b|fraud|secur|captcha|ddos|firewall|spam|malicious|abuse/i;
// Whole words: "log information", "assigning" and "design information" are no sign-in.
const authenticationWords =
  /\blog(ged|ging)?[- ]?ins?\b|\bsign(ed|ing)?[- ]?(in|on)s?\b|authenticat|credential/i;
const cartWords = /shopping (cart|basket)|\bcart\b|basket|checkout/i;
const sessionWords = /\bsession\b/i;
const preferenceWords =
  /language|currency|preferen|locali[sz]|region|theme|font|display|layout|remember.*(setting|choice)/i;

// Words saying the cookie follows or counts people. Negated uses ("not used for tracking",
// "no information that can identify the site visitor", DO_NOT_TRACK) are removed first; "visitor"
// counts when the cookie identifies visitors, not in "whether the visitor has accepted", and
// identifying "the user's session" is what a session cookie does. Erring towards "tracking" only
// costs a consent question; erring the other way sets a tracker without consent (K02).
const negatedTracking =
  /\b(not|never|no|without|nothing)\b[^.]{0,60}?\b(track|identif)[^.]*|do[_ -]not[_ -]track/gi;
const person = String.raw`(visitor|user)s?\b(?!['’]?s? session)`;
const identifyingWords = new RegExp(
  [
    String.raw`\btrack`,
    String.raw`visitor[- ](tracking|identification|identifier|id\b)`,
    // "identifying their users consistently across their domains" (Permutive's pxid) too.
    String.raw`identif\w* (each |every |the |unique |individual |their |your |our |its |a |an |all |returning |new |repeat |specific |different |anonymous |same )*(site |website |platform |app )?${person}`,
    String.raw`distinguish\w* .{0,30}\b${person}`,
    String.raw`(unique|random) (id|identifier)\w*.{0,20}\b${person}`,
  ].join('|'),
  'i',
);
// Words naming a consent-demanding purpose. A consent cookie names them as the categories the
// visitor chose ("consent for the 'Analytics' category"), so consent wording is read first.
const measurementWords =
  /analytic|statistic|advertis|marketing|\bads?\b|retarget|remarket|profil|attribution|experiment/i;

/**
 * True when a row's description says the cookie tracks, identifies or measures visitors, or
 * serves ads: such a row is never read as strictly necessary, whatever else it says (K01, K02).
 */
export function describesTracking(description: string): boolean {
  const text = description.replace(negatedTracking, ' ');
  if (identifyingWords.test(text)) return true;
  return !consentWords.test(text) && measurementWords.test(text);
}

/**
 * The purposes an Open Cookie Database row stands for. Its "Functional" merges necessary and
 * preference cookies, so the description decides which; a Functional row without a telling
 * word, or whose description speaks of tracking, identifying visitors, analytics or advertising,
 * becomes `functionality` (preferences, consent needed) — never necessary by default.
 */
export function openCookieDatabasePurposes(entry: OpenCookieDatabaseEntry): CookiePurpose[] {
  switch (entry.category.toLowerCase()) {
    case 'analytics':
      return ['analytics'];
    case 'marketing':
      return ['advertising'];
    case 'security':
      return ['security'];
    case 'personalization':
      return ['functionality'];
    case 'necessary':
      return [necessaryPurpose(entry.description) ?? 'strictly-necessary'];
    case 'functional': {
      if (describesTracking(entry.description)) return ['functionality'];
      const necessary = necessaryPurpose(entry.description);
      if (necessary) return [necessary];
      return [preferenceWords.test(entry.description) ? 'ui-preference' : 'functionality'];
    }
    default:
      return ['unknown'];
  }
}

function necessaryPurpose(description: string): CookiePurpose | undefined {
  if (consentWords.test(description)) return 'consent-choice';
  if (loadBalancingWords.test(description)) return 'load-balancing';
  if (securityWords.test(description)) return 'security';
  if (authenticationWords.test(description)) return 'authentication';
  if (cartWords.test(description)) return 'cart';
  if (sessionWords.test(description)) return 'session';
  return undefined;
}
