import type { JsonValue } from '@privacykit/core';
import { sha256Hex } from '@privacykit/core/crypto';
import { engineOf } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { ExpressionBuilder, Kysely } from 'kysely';
import { T, stateColumns } from './store.js';

/**
 * Reconciling what the ledger derives from its log with the log itself, for `verify()`. The
 * Merkle tree covers the entries only; beside them live
 * - the sealed evidence of each decision (outside the hash: shredding erases it), tied to its
 *   entry by the SHA-256 digest the entry carries;
 * - the current-state table `mayProcess()`, `current()` and `subjectsWithConsent()` read;
 * - the subject and event lookups `history()`, `receipt()`, `shredSubject()` and replay
 *   detection read, complete up to the head's `indexed_size`;
 * - the notice table, from which `mayProcess()`, `current()` and the set queries take the current
 *   notice hash of each purpose: each row is what a `notice-published` entry published.
 * An edit to any of them changes what the ledger answers without touching a hash. The checks
 * ride along the entry scan, a page at a time: each page of entries is read joined with their
 * lookup rows and the state row of their subject × purpose (primary-key reads inside the
 * database); at the end each derived table is counted against what the scan matched, and only
 * when a count is off is the state table read row by row to name the culprit.
 *
 * Which decision a state row holds: the one appended last, except that an imported decision
 * older than the one in force does not replace it (`upsertStates`). So a state row may point
 * at an entry followed by later decisions of its subject × purpose only when each of those was
 * decided earlier than it; rows of a shredded subject are gone and its evidence erased.
 */

/** An entry as the scan reads it, with what the derived tables hold about it. */
export interface EntryRow {
  id: number | string;
  seq: number | string;
  event_id: string;
  kind: string;
  subject_key: string | null;
  purpose: string | null;
  entry: string;
  leaf_hash: string;
  nodes: string | null;
  sealed: string | null;
  /** The seq the event lookup files this entry's event id under. */
  filed_seq: number | string | null;
  /** This entry's seq when the subject lookup holds it under its subject. */
  subject_filed: number | string | null;
  /** The current-state row of the entry's subject × purpose (`s_` columns), if any. */
  s_seq: number | string | null;
  s_event_id: string | null;
  s_subject_id: string | null;
  s_notice_version: string | null;
  /** The row's fixed-format columns in one string: see `PACKED`. */
  s_packed: string | null;
}

/**
 * A page of entries after `after` (an id) in id order, each joined with its current-state row
 * and its lookup rows: three primary-key reads per entry inside the database, no round trips.
 */
export function readEntryPage(
  db: Kysely<any>,
  page: { tenant: string; base: number; after: number; end: number; limit: number },
): Promise<EntryRow[]> {
  const { tenant } = page;
  return db
    .selectFrom(`${T.ledger} as l`)
    .leftJoin(`${T.eventIx} as ev`, (join) =>
      join.on('ev.tenant', '=', tenant).onRef('ev.event_id', '=', 'l.event_id'),
    )
    .leftJoin(`${T.subjectIx} as sx`, (join) =>
      join
        .on('sx.tenant', '=', tenant)
        .onRef('sx.subject_key', '=', 'l.subject_key')
        .onRef('sx.seq', '=', 'l.seq'),
    )
    .leftJoin(`${T.state} as s`, (join) =>
      join
        .on('s.tenant', '=', tenant)
        .onRef('s.purpose', '=', 'l.purpose')
        .onRef('s.subject_key', '=', 'l.subject_key'),
    )
    .select([
      'l.id',
      'l.seq',
      'l.event_id',
      'l.kind',
      'l.subject_key',
      'l.purpose',
      'l.entry',
      'l.leaf_hash',
      'l.nodes',
      'l.sealed',
      'ev.seq as filed_seq',
      'sx.seq as subject_filed',
      's.seq as s_seq',
      's.event_id as s_event_id',
      's.subject_id as s_subject_id',
      's.notice_version as s_notice_version',
      packed(db).as('s_packed'),
    ])
    .where('l.id', '>', page.after)
    .where('l.id', '<', page.end)
    .orderBy('l.id')
    .limit(page.limit)
    .execute() as Promise<EntryRow[]>;
}

/** An entry of the log, parsed. */
interface LoggedEntry {
  seq: number;
  eventId: string;
  kind: string;
  subjectKey: string | null;
  purpose: string | null;
  entry: Record<string, JsonValue>;
}

/** Something the derived tables say that the log does not. */
export interface Discrepancy {
  seq?: number;
  reason: string;
}

export interface ReconcileOptions {
  db: Kysely<any>;
  tenant: string;
  /** The id of the tenant's entry 0 (ids are `base + seq`). */
  base: number;
  /** `indexed_size` of the head row when the scan began. */
  indexedSize: number;
  /** The subject pseudonym of a subject id (HMAC). */
  pseudonym: (subjectId: string) => string;
  /** Seqs of the entries whose column is one of `values`: the lookup plus the unindexed tail. */
  lookup: (column: 'subject_key' | 'event_id', values: readonly string[]) => Promise<Map<string, number[]>>;
}

export interface Reconciler {
  /** Checks a page of entries, in seq order, after the tree accepted them. */
  page(
    entries: readonly { seq: number; row: EntryRow; entry: Record<string, JsonValue> }[],
  ): Promise<Discrepancy | undefined>;
  /** After the last page: `size` entries were scanned. */
  finish(size: number): Promise<Discrepancy | undefined>;
}

interface StateView {
  subject_key: string;
  purpose: string;
  subject_id: string;
  state: string;
  renewal: number | string;
  event_id: string;
  seq: number | string;
  notice_version: string;
  notice_hash: string;
  source: string;
  decided_at: string;
  expires_at: string | null;
  gpc_conflict: number | string;
}

/** The state columns verify compares with the log (the tenant is the ledger's; the key has no trace there). */
const STATE_VIEW = stateColumns.filter((column) => column !== 'tenant' && column !== 'key_material');

/**
 * The state row's columns whose values never hold a `|` (enumerations, numbers, hex, ISO
 * instants), joined with `|` in the database: one string per entry instead of seven halves
 * what reading the page costs the driver.
 */
const PACKED = [
  'state',
  'renewal',
  'notice_hash',
  'source',
  'decided_at',
  'expires_at',
  'gpc_conflict',
] as const;

function packed(db: Kysely<any>) {
  const parts = PACKED.map((column) =>
    column === 'expires_at' ? sql`coalesce(s.expires_at, '')` : sql.ref(`s.${column}`),
  );
  return engineOf(db) === 'mysql'
    ? sql<string | null>`concat(${sql.join(parts, sql`, '|', `)})`
    : sql<string | null>`${sql.join(parts, sql` || '|' || `)}`;
}

/** The joined state row of an entry row, if it has one. */
function stateOf(row: EntryRow): StateView | undefined {
  if (row.s_seq === null || row.s_seq === undefined || row.s_packed === null) return undefined;
  const [state, renewal, noticeHash, source, decidedAt, expiresAt, gpcConflict] = row.s_packed.split('|');
  return {
    subject_key: row.subject_key as string,
    purpose: row.purpose as string,
    subject_id: row.s_subject_id as string,
    state: state as string,
    renewal: renewal as string,
    event_id: row.s_event_id as string,
    seq: row.s_seq,
    notice_version: row.s_notice_version as string,
    notice_hash: noticeHash as string,
    source: source as string,
    decided_at: decidedAt as string,
    expires_at: expiresAt ? expiresAt : null,
    gpc_conflict: gpcConflict as string,
  };
}

const CHUNK = 500;
const text = (value: JsonValue | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;
const quoted = (value: unknown) => JSON.stringify(value ?? null);

/** The first column whose stored value is not the one the log gives: `[column, stored, logged]`. */
function firstMismatch(
  columns: readonly (readonly [string, unknown, unknown])[],
): readonly [string, unknown, unknown] | undefined {
  return columns.find(([, stored, logged]) => stored !== logged);
}
const short = (subjectKey: string) => `${subjectKey.slice(0, 12)}…`;

function chunks<V>(values: readonly V[]): V[][] {
  const out: V[][] = [];
  for (let i = 0; i < values.length; i += CHUNK) out.push(values.slice(i, i + CHUNK));
  return out;
}

/** The notice a decision entry names. */
function noticeOf(entry: Record<string, JsonValue>): { version?: JsonValue; hash?: JsonValue } {
  const notice = entry.notice;
  return typeof notice === 'object' && notice !== null && !Array.isArray(notice) ? notice : {};
}

/** A notice version as its `notice-published` entry published it: what its table row must hold. */
interface PublishedNotice {
  seq: number;
  purpose: string;
  version: JsonValue | undefined;
  hash: JsonValue | undefined;
  language: JsonValue | undefined;
  at: JsonValue | undefined;
}

interface NoticeRow {
  purpose: string;
  version: string;
  hash: string;
  language: string;
  content: string;
  published_at: string;
  seq: number | string;
}

function publishedNotice(seq: number, purpose: string, entry: Record<string, JsonValue>): PublishedNotice {
  const { version, hash, language } = noticeOf(entry) as Record<string, JsonValue | undefined>;
  return { seq, purpose, version, hash, language, at: entry.at };
}

/**
 * Where a notice row disagrees with the entry that published it, undefined when they agree. The
 * content is outside the entry, but its hash is inside: receipts quote that content.
 */
function noticeDisagreement(row: NoticeRow, published: PublishedNotice): string | undefined {
  const where = `notice version ${quoted(row.version)} of "${row.purpose}"`;
  const mismatch = firstMismatch([
    ['purpose', row.purpose, published.purpose],
    ['version', row.version, published.version],
    ['hash', row.hash, published.hash],
    ['language', row.language, published.language],
    ['published_at', row.published_at, published.at],
  ]);
  if (mismatch) {
    const [column, actual, wanted] = mismatch;
    return `${where} says ${column} ${quoted(actual)} but entry ${published.seq}, which published it, says ${quoted(wanted)} (the notice row was edited)`;
  }
  if (sha256Hex(row.content) !== row.hash) {
    return `the stored content of ${where} does not hash to its notice hash (the notice row was edited)`;
  }
  return undefined;
}

const stateName = (row: { subject_key: string; purpose: string }) =>
  `the current state of subject ${short(row.subject_key)} for "${row.purpose}"`;

export function createReconciler(options: ReconcileOptions): Reconciler {
  const { db, tenant, base, indexedSize, pseudonym, lookup } = options;

  // Entries below `indexedSize` counted for the lookups, and state rows the scan matched.
  let indexedEntries = 0;
  let indexedWithSubject = 0;
  let confirmedStates = 0;
  let justifiedConflicts = 0;
  // Event ids of the unindexed tail seen so far (at most a batch in a healthy ledger).
  const tailEvents = new Map<string, number>();
  // Per subject, the first finding a later shredding of that subject would explain: its state
  // rows gone, its evidence erased. Cleared when the scan reaches the shredding.
  const untilShredded = new Map<string, Discrepancy>();
  // The notice versions the scan saw published, by seq: a handful per purpose, what
  // `loadNotices()` holds in memory anyway.
  const publishedNotices = new Map<number, PublishedNotice>();

  /** Every state row of these subjects (the state table is keyed by purpose first). */
  async function subjectStateRows(subjectKeys: readonly string[]): Promise<StateView[]> {
    const out: StateView[] = [];
    for (const chunk of chunks(subjectKeys)) {
      out.push(
        ...((await db
          .selectFrom(T.state)
          .select([...STATE_VIEW])
          .where('tenant', '=', tenant)
          .where('purpose', 'in', (eb: ExpressionBuilder<any, any>) =>
            eb.selectFrom(T.notices).select('purpose').distinct().where('tenant', '=', tenant),
          )
          .where('subject_key', 'in', chunk)
          .execute()) as StateView[]),
      );
    }
    return out;
  }

  async function entriesAt(seqs: readonly number[]): Promise<Map<number, LoggedEntry>> {
    const out = new Map<number, LoggedEntry>();
    for (const chunk of chunks([...new Set(seqs)])) {
      const rows = await db
        .selectFrom(T.ledger)
        .select(['id', 'event_id', 'kind', 'subject_key', 'purpose', 'entry'])
        .where(
          'id',
          'in',
          chunk.map((seq) => base + seq),
        )
        .execute();
      for (const row of rows) {
        let entry: Record<string, JsonValue>;
        try {
          entry = JSON.parse(row.entry) as Record<string, JsonValue>;
        } catch {
          entry = {};
        }
        const seq = Number(row.id) - base;
        out.set(seq, {
          seq,
          eventId: row.event_id,
          kind: row.kind,
          subjectKey: row.subject_key,
          purpose: row.purpose,
          entry,
        });
      }
    }
    return out;
  }

  /** The grants that expiry entries name, by event id. */
  async function grantsOf(expiries: readonly LoggedEntry[]): Promise<Map<string, LoggedEntry>> {
    const ids = new Set(expiries.flatMap((e) => text(e.entry.grantedEventId) ?? []));
    if (ids.size === 0) return new Map();
    const seqs = await lookup('event_id', [...ids]);
    const entries = await entriesAt([...seqs.values()].flat());
    const out = new Map<string, LoggedEntry>();
    for (const entry of entries.values()) {
      if (entry.kind === 'decision' && ids.has(entry.eventId)) out.set(entry.eventId, entry);
    }
    return out;
  }

  /**
   * Where a state row disagrees with the entry at its seq, as the ledger derives the row: from
   * a decision, or from an expiry and the grant it ended. Undefined when they agree.
   */
  function disagreement(
    row: StateView,
    at: LoggedEntry,
    grants: ReadonlyMap<string, LoggedEntry>,
  ): string | undefined {
    const where = () => stateName(row);
    if (at.kind !== 'decision' && at.kind !== 'expiry') {
      return `${where()} points at entry ${at.seq}, a ${at.kind} entry, not a decision`;
    }
    if (at.subjectKey !== row.subject_key || at.purpose !== row.purpose) {
      return `${where()} points at entry ${at.seq}, which is about another subject or purpose`;
    }
    const entry = at.entry;
    let decision: Record<string, JsonValue> = entry;
    let state = entry.state;
    let renewal = entry.renewal;
    if (at.kind === 'expiry') {
      const grantId = text(entry.grantedEventId) ?? '';
      const grant = grants.get(grantId);
      if (!grant || grant.subjectKey !== row.subject_key || grant.purpose !== row.purpose) {
        return `${where()} points at expiry entry ${at.seq}, whose grant ${grantId} is not in the ledger`;
      }
      decision = grant.entry;
      state = 'expired';
      renewal = false;
    }
    const notice = noticeOf(decision);
    const mismatch = firstMismatch([
      ['event_id', row.event_id, at.eventId],
      ['state', row.state, state],
      ['renewal', Boolean(Number(row.renewal)), renewal],
      ['notice_version', row.notice_version, notice.version],
      ['notice_hash', row.notice_hash, notice.hash],
      ['source', row.source, decision.source],
      // An expiry's row keeps the time of the grant it ended; rows written before that took the
      // expiry run's time, which is the ledger's too.
      [
        'decided_at',
        row.decided_at,
        at.kind === 'expiry' && row.decided_at === entry.at ? entry.at : decision.at,
      ],
      ['expires_at', row.expires_at ?? null, entry.expiresAt ?? null],
    ]);
    if (mismatch) {
      const [column, actual, wanted] = mismatch;
      return `${where()} says ${column} ${quoted(actual)} but entry ${at.seq} says ${quoted(wanted)} (the state row was edited)`;
    }
    // Last, being the dearest: subjectsWithConsent() hands out this id.
    if (pseudonym(row.subject_id) !== row.subject_key) {
      return `${where()} names a subject id that is not the subject of entry ${at.seq} (the state row was edited)`;
    }
    return undefined;
  }

  return {
    async page(entries) {
      // The state rows of subjects shredded in this page, and the grants of expiries that are
      // a current state: rare, so read apart.
      const shredded = entries.flatMap((e) =>
        e.row.kind === 'subject-shredded' && e.row.subject_key !== null ? [e.row.subject_key] : [],
      );
      const survivors = shredded.length > 0 ? await subjectStateRows([...new Set(shredded)]) : [];
      const logged = (e: (typeof entries)[number]): LoggedEntry => ({
        seq: e.seq,
        eventId: e.row.event_id,
        kind: e.row.kind,
        subjectKey: e.row.subject_key,
        purpose: e.row.purpose,
        entry: e.entry,
      });
      const currentExpiries = entries.filter(
        (e) => e.row.kind === 'expiry' && e.row.s_seq !== null && Number(e.row.s_seq) === e.seq,
      );
      const grants = currentExpiries.length > 0 ? await grantsOf(currentExpiries.map(logged)) : new Map();

      for (const e of entries) {
        const { seq, row } = e;
        const eventId = row.event_id;
        const subjectKey = row.subject_key;

        // The lookups: where the event id is filed, whether the subject lookup holds the entry.
        const filedAt = row.filed_seq === null ? undefined : Number(row.filed_seq);
        if (filedAt !== undefined && filedAt !== seq) {
          const holder =
            entries.find((other) => other.seq === filedAt)?.row.event_id ??
            (await entriesAt([filedAt])).get(filedAt)?.eventId;
          if (holder === eventId) {
            const [a, b] = seq < filedAt ? [seq, filedAt] : [filedAt, seq];
            return {
              seq: b,
              reason: `event id ${eventId} appears twice in the ledger (entries ${a} and ${b}): a replayed event`,
            };
          }
          return {
            seq,
            reason: `the event lookup files event ${eventId} of entry ${seq} under entry ${filedAt} (a misfiled or edited lookup row)`,
          };
        }
        if (seq < indexedSize) {
          if (filedAt === undefined) {
            return {
              seq,
              reason: `entry ${seq} is missing from the event lookup: receipt() and replay detection cannot find event ${eventId}`,
            };
          }
          indexedEntries++;
          if (subjectKey !== null) {
            if (row.subject_filed === null) {
              return {
                seq,
                reason: `entry ${seq} is missing from the subject lookup: history() and shredSubject() skip it`,
              };
            }
            indexedWithSubject++;
          }
        } else {
          const before = tailEvents.get(eventId);
          if (before !== undefined) {
            return {
              seq,
              reason: `event id ${eventId} appears twice in the ledger (entries ${before} and ${seq}): a replayed event`,
            };
          }
          tailEvents.set(eventId, seq);
        }

        // Sealed evidence: outside the hash, but its digest is inside.
        const digest = row.kind === 'decision' ? text(e.entry.evidence) : undefined;
        if (row.sealed !== null) {
          if (digest === undefined) {
            return { seq, reason: `entry ${seq} carries sealed evidence it was not recorded with` };
          }
          if (sha256Hex(row.sealed) !== digest) {
            return {
              seq,
              reason: `the sealed evidence of entry ${seq} is not the evidence it was recorded with (swapped, edited or replaced)`,
            };
          }
        } else if (digest !== undefined && subjectKey !== null && !untilShredded.has(subjectKey)) {
          untilShredded.set(subjectKey, {
            seq,
            reason: `the sealed evidence of entry ${seq} was erased, but its subject was never shredded`,
          });
        }

        if (row.kind === 'notice-published' && row.purpose !== null) {
          publishedNotices.set(seq, publishedNotice(seq, row.purpose, e.entry));
        }

        // The current state of the entry's subject × purpose.
        if (subjectKey === null) continue;
        const state = stateOf(row);
        if (row.kind === 'decision' || row.kind === 'expiry') {
          const stateSeq = Number(state?.seq);
          if (!state) {
            if (!untilShredded.has(subjectKey)) {
              untilShredded.set(subjectKey, {
                seq,
                reason: `entry ${seq} decided for subject ${short(subjectKey)} and "${row.purpose}", which has no current-state row though the subject was never shredded (the row was deleted)`,
              });
            }
          } else if (stateSeq === seq) {
            const problem = disagreement(state, logged(e), grants);
            if (problem) return { seq, reason: problem };
            confirmedStates++;
          } else if (stateSeq < seq && !(String(e.entry.at) < state.decided_at)) {
            // The current state is the entry appended last, unless that one is an import of a
            // decision made before the one in force (see `upsertStates`).
            return {
              seq,
              reason: `${stateName({ subject_key: subjectKey, purpose: row.purpose as string })} is entry ${stateSeq}, but entry ${seq} came after it and is not older (the state row was rolled back)`,
            };
          }
        } else if (row.kind === 'gpc-conflict') {
          if (state && state.event_id === text(e.entry.grantedEventId)) {
            if (Number(state.gpc_conflict) !== 1) {
              return {
                seq,
                reason: `the GPC conflict logged at entry ${seq} is missing from the current state of its grant (gpc_conflict was cleared)`,
              };
            }
            justifiedConflicts++;
          }
        } else if (row.kind === 'subject-shredded') {
          untilShredded.delete(subjectKey);
          const survivor = survivors.find(
            (candidate) => candidate.subject_key === subjectKey && Number(candidate.seq) < seq,
          );
          if (survivor) {
            return {
              seq,
              reason: `${stateName(survivor)} (entry ${Number(survivor.seq)}) outlived its shredding at entry ${seq}, and its evidence key with it`,
            };
          }
        }
      }
      return undefined;
    },

    async finish(size) {
      // Findings a shredding appended after the scan (concurrently) explains.
      if (untilShredded.size > 0) {
        const seqs = await lookup('subject_key', [...untilShredded.keys()]);
        const later = [...(await entriesAt([...seqs.values()].flat().filter((seq) => seq >= size))).values()];
        for (const [subjectKey, finding] of untilShredded) {
          const shredded = later.some(
            (e) => e.kind === 'subject-shredded' && e.subjectKey === subjectKey && e.seq > (finding.seq ?? 0),
          );
          if (shredded) untilShredded.delete(subjectKey);
        }
        const first = [...untilShredded.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))[0];
        if (first) return first;
      }

      if (indexedSize > size) {
        return {
          seq: size,
          reason: `the head says ${indexedSize} entries are in the lookups but the ledger holds ${size}`,
        };
      }
      const head = await db
        .selectFrom(T.head)
        .select('indexed_size')
        .where('tenant', '=', tenant)
        .executeTakeFirst();
      // Entries indexed while the scan ran are not this scan's to count.
      const moved = Number(head?.indexed_size ?? indexedSize) !== indexedSize;
      for (const [table, expected, name] of [
        [T.eventIx, indexedEntries, 'event'],
        [T.subjectIx, indexedWithSubject, 'subject'],
      ] as const) {
        let query = db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .where('tenant', '=', tenant);
        if (moved) query = query.where('seq', '<', indexedSize);
        const n = Number((await query.executeTakeFirst())?.n ?? 0);
        if (n !== expected) {
          return {
            reason: `the ${name} lookup holds ${n} rows for ${expected} indexed entries: ${n - expected} of them match no entry (forged or misfiled)`,
          };
        }
      }

      const notice = await auditNoticeTable(size);
      if (notice) return notice;

      const counts = await db
        .selectFrom(T.state)
        .select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum('gpc_conflict').as('flagged')])
        .where('tenant', '=', tenant)
        .executeTakeFirst();
      if (Number(counts?.n ?? 0) === confirmedStates && Number(counts?.flagged ?? 0) === justifiedConflicts) {
        return undefined;
      }
      // Some state row matched no entry in the scan: find it (or learn that decisions
      // recorded while the scan ran moved the rows on).
      return auditStateTable();
    },
  };

  /**
   * Every notice row against the `notice-published` entry at its seq, and every such entry
   * against its row: the current notice of a purpose is its row of the highest seq, so an edited
   * hash, language or seq, a deleted or a forged row changes what `mayProcess()` answers.
   */
  async function auditNoticeTable(size: number): Promise<Discrepancy | undefined> {
    const unclaimed = new Map(publishedNotices);
    let after: { purpose: string; version: string } | undefined;
    for (;;) {
      let query = db
        .selectFrom(T.notices)
        .select(['purpose', 'version', 'hash', 'language', 'content', 'published_at', 'seq'])
        .where('tenant', '=', tenant);
      if (after) {
        const { purpose, version } = after;
        query = query.where((eb) =>
          eb.or([
            eb('purpose', '>', purpose),
            eb.and([eb('purpose', '=', purpose), eb('version', '>', version)]),
          ]),
        );
      }
      const rows = (await query.orderBy('purpose').orderBy('version').limit(1000).execute()) as NoticeRow[];
      if (rows.length === 0) break;
      // Rows the scan cannot vouch for: a seq it passed without a publication there (or whose
      // publication another row already claimed), or one appended while it ran.
      const unscanned = rows.filter((row) => !unclaimed.has(Number(row.seq)));
      const at = unscanned.length > 0 ? await entriesAt(unscanned.map((row) => Number(row.seq))) : new Map();
      for (const row of rows) {
        const seq = Number(row.seq);
        let published = unclaimed.get(seq);
        if (published) {
          unclaimed.delete(seq);
        } else {
          const entry = seq >= size ? at.get(seq) : undefined;
          if (entry?.kind === 'notice-published' && entry.purpose !== null) {
            published = publishedNotice(seq, entry.purpose, entry.entry);
          }
        }
        if (!published) {
          return {
            seq,
            reason: `notice version ${quoted(row.version)} of "${row.purpose}" points at entry ${seq}, which did not publish it (a notice row without its entry: forged, moved or duplicated)`,
          };
        }
        const problem = noticeDisagreement(row, published);
        if (problem) return { seq, reason: problem };
      }
      const tail = rows[rows.length - 1] as NoticeRow;
      after = { purpose: tail.purpose, version: tail.version };
    }
    const missing = [...unclaimed.values()].sort((a, b) => a.seq - b.seq)[0];
    if (missing) {
      return {
        seq: missing.seq,
        reason: `entry ${missing.seq} published notice version ${quoted(missing.version)} of "${missing.purpose}", which has no row in the notice table (the row was deleted or moved)`,
      };
    }
    return undefined;
  }

  /** Every state row against the entry at its seq, and every GPC conflict flag against the log. */
  async function auditStateTable(): Promise<Discrepancy | undefined> {
    let after: { purpose: string; subject_key: string } | undefined;
    for (;;) {
      let query = db
        .selectFrom(T.state)
        .select([...STATE_VIEW])
        .where('tenant', '=', tenant);
      if (after) {
        const { purpose, subject_key } = after;
        query = query.where((eb) =>
          eb.or([
            eb('purpose', '>', purpose),
            eb.and([eb('purpose', '=', purpose), eb('subject_key', '>', subject_key)]),
          ]),
        );
      }
      const rows = (await query
        .orderBy('purpose')
        .orderBy('subject_key')
        .limit(1000)
        .execute()) as StateView[];
      if (rows.length === 0) return undefined;
      const at = await entriesAt(rows.map((row) => Number(row.seq)));
      const grants = await grantsOf([...at.values()].filter((e) => e.kind === 'expiry'));
      for (const row of rows) {
        const seq = Number(row.seq);
        const entry = at.get(seq);
        if (!entry) {
          return {
            seq,
            reason: `${stateName(row)} points at entry ${seq}, which the ledger does not hold (a state row without an entry)`,
          };
        }
        const problem = disagreement(row, entry, grants);
        if (problem) return { seq, reason: problem };
      }
      const flagged = rows.filter((row) => Number(row.gpc_conflict) !== 0);
      if (flagged.length > 0) {
        const seqs = await lookup(
          'subject_key',
          flagged.map((row) => row.subject_key),
        );
        const conflicts = [...(await entriesAt([...seqs.values()].flat())).values()].filter(
          (e) => e.kind === 'gpc-conflict',
        );
        for (const row of flagged) {
          const logged = conflicts.some(
            (e) =>
              e.subjectKey === row.subject_key &&
              e.purpose === row.purpose &&
              text(e.entry.grantedEventId) === row.event_id,
          );
          if (!logged) {
            return {
              seq: Number(row.seq),
              reason: `${stateName(row)} flags a GPC conflict the ledger never logged`,
            };
          }
        }
      }
      const tail = rows[rows.length - 1] as StateView;
      after = { purpose: tail.purpose, subject_key: tail.subject_key };
    }
  }
}
