import { canonicalJson } from '@privacykit/core';
import type { JsonValue } from '@privacykit/core';

/** The fields of a `decision` ledger entry (v1), as the ledger builds it. */
export interface DecisionEntry {
  v: 1;
  subject: string;
  purpose: string;
  state: string;
  renewal: boolean;
  notice: { id: string; version: string; hash: string; language: string };
  source: string;
  method: string;
  jurisdiction: string;
  at: string;
  expiresAt?: string;
  /** A grant given as explicit consent (Art 9(2)(a)); absent otherwise. */
  explicit?: true;
  age?: { threshold: number; belowThreshold: boolean; parentalAuthorisation?: string };
  /** SHA-256 hex of the sealed evidence. */
  evidence?: string;
}

// A string with no quote, backslash, control character or surrogate serialises as itself in
// quotes (RFC 8785 §3.2.2.2 = JSON.stringify); ids, hashes and timestamps always do, and the
// test is half the cost of JSON.stringify.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters JSON escapes.
const ESCAPES = /["\\\u0000-\u001f\ud800-\udfff]/;
const s = (value: string): string => (ESCAPES.test(value) ? JSON.stringify(value) : `"${value}"`);

// The quoted form of the few values every entry repeats (tenant, purpose, state, source,
// method, jurisdiction): looked up instead of tested. Bounded: cleared when it fills up.
const quoted = new Map<string, string>();
const q = (value: string): string => {
  let out = quoted.get(value);
  if (out === undefined) {
    if (typeof value !== 'string') return s(value);
    if (quoted.size >= 256) quoted.clear();
    out = s(value);
    quoted.set(value, out);
  }
  return out;
};

/**
 * Exactly `canonicalJson({ ...entry, seq, id, tenant, kind: 'decision' })` for the fixed shape of
 * a decision entry, written out with its keys already in RFC 8785 order (property-tested
 * against `canonicalJson`). Appends spent more time sorting keys than hashing.
 */
export function decisionEntryJson(entry: DecisionEntry, seq: number, id: string, tenant: string): string {
  let out = '{';
  if (entry.age !== undefined) {
    const age = entry.age;
    out += `"age":{"belowThreshold":${age.belowThreshold}`;
    if (age.parentalAuthorisation !== undefined)
      out += `,"parentalAuthorisation":${s(age.parentalAuthorisation)}`;
    out += `,"threshold":${num(age.threshold)}},`;
  }
  out += `"at":${s(entry.at)}`;
  if (entry.evidence !== undefined) out += `,"evidence":${s(entry.evidence)}`;
  if (entry.expiresAt !== undefined) out += `,"expiresAt":${s(entry.expiresAt)}`;
  if (entry.explicit !== undefined) {
    if (entry.explicit !== true) throw new TypeError('explicit is true or absent');
    out += ',"explicit":true';
  }
  out += `,"id":${s(id)},"jurisdiction":${q(entry.jurisdiction)},"kind":"decision","method":${q(entry.method)}`;
  out += noticeJson(entry.notice);
  out += `,"purpose":${q(entry.purpose)},"renewal":${entry.renewal},"seq":${num(seq)},"source":${q(entry.source)}`;
  out += `,"state":${q(entry.state)},"subject":${s(entry.subject)},"tenant":${q(tenant)},"v":1}`;
  return out;
}

// The notice part of the last entry written: consecutive decisions mostly answer the same notice.
let lastNotice = {
  hash: '',
  id: '',
  language: '',
  version: '',
  json: ',"notice":{"hash":"","id":"","language":"","version":""}',
};
function noticeJson(n: DecisionEntry['notice']): string {
  const last = lastNotice;
  if (n.hash === last.hash && n.id === last.id && n.language === last.language && n.version === last.version)
    return last.json;
  const json = `,"notice":{"hash":${s(n.hash)},"id":${s(n.id)},"language":${s(n.language)},"version":${s(n.version)}}`;
  lastNotice = { hash: n.hash, id: n.id, language: n.language, version: n.version, json };
  return json;
}

function num(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`${value} has no JSON form`);
  return Object.is(value, -0) ? '0' : String(value);
}

/**
 * Whether `text` is the canonical JSON of `entry`, the value parsed from it (what `verify()`
 * asks of every entry). A decision entry is re-serialised the fast way first: when that gives
 * `text` back, `entry` has exactly the fixed shape, for which `decisionEntryJson` is
 * `canonicalJson`. Any other entry, or a miss, goes through `canonicalJson`.
 */
export function isCanonicalEntry(text: string, entry: Record<string, JsonValue>): boolean {
  if (entry.kind === 'decision') {
    try {
      const fast = decisionEntryJson(
        entry as unknown as DecisionEntry,
        entry.seq as number,
        entry.id as string,
        entry.tenant as string,
      );
      if (fast === text) return true;
    } catch {
      // Not the fixed shape: the general check decides.
    }
  }
  try {
    return canonicalJson(entry) === text;
  } catch {
    return false;
  }
}
