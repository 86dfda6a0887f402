// Regression guards for the current-state table (`privacykit_consent_state`), through the public
// API only: a decision one instance recorded is what every other instance (another connection,
// another process, a process started after a crash) answers from at once, and shredding leaves
// none of the subject's personal data behind. They hold however the state table is maintained
// (in the append's transaction today; batched behind the appends was tried and may come back).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedClock } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger, ConsentLedgerOptions, RecordedDecision, StatsRow } from './ledger.js';
import { grant, migratedDatabase, runTestScript, testPolicy } from './test-fixtures.js';

const NEWSLETTER = 'newsletter';
const AUDIENCE = 'audience-measurement';
const ADS = 'targeted-advertising'; // tagged cross-context-advertising: refused by GPC
const PURPOSES = [NEWSLETTER, AUDIENCE, ADS] as const;
const START = '2025-06-01T00:00:00.000Z';
const DAY = 24 * 3600 * 1000;

type Decided = 'granted' | 'refused' | 'withdrawn';

/** What the ledger must answer for one subject × purpose: its last decision. */
interface ModelEntry {
  state: Decided;
  eventId: string;
  renewal: boolean;
}

/** The expected outcome of decisions, kept beside the ledger by the test. */
class Model {
  readonly pairs = new Map<string, ModelEntry>();
  readonly subjects = new Set<string>();

  private key(subjectId: string, purpose: string): string {
    return `${subjectId}\u0000${purpose}`;
  }

  get(subjectId: string, purpose: string): ModelEntry | undefined {
    return this.pairs.get(this.key(subjectId, purpose));
  }

  /** The renewal flag the next decision must carry: a grant over a valid grant (no expiry here). */
  renewalOf(subjectId: string, purpose: string, state: Decided): boolean {
    return state === 'granted' && this.get(subjectId, purpose)?.state === 'granted';
  }

  apply(subjectId: string, purpose: string, state: Decided, recorded: RecordedDecision): void {
    const renewal = this.renewalOf(subjectId, purpose, state);
    expect(recorded, `recorded ${state} of ${subjectId}/${purpose}`).toMatchObject({
      purpose,
      state,
      renewal,
    });
    this.pairs.set(this.key(subjectId, purpose), { state, eventId: recorded.eventId, renewal });
    this.subjects.add(subjectId);
  }

  /** Subjects holding a grant of `purpose`, sorted. */
  granted(purpose: string): string[] {
    return [...this.subjects].filter((subject) => this.get(subject, purpose)?.state === 'granted').sort();
  }

  /** `{ purpose, state, count }` rows as `stats()` must count them, sorted. */
  counts(): { purpose: string; state: string; count: number }[] {
    const counts = new Map<string, number>();
    for (const [key, entry] of this.pairs) {
      const purpose = key.split('\u0000')[1] as string;
      const slot = `${purpose}\u0000${entry.state}`;
      counts.set(slot, (counts.get(slot) ?? 0) + 1);
    }
    return [...counts]
      .map(([slot, count]) => {
        const [purpose, state] = slot.split('\u0000') as [string, string];
        return { purpose, state, count };
      })
      .sort(byPurposeAndState);
  }

  /** What `current(subjectId).purposes` must say, purpose by purpose. */
  expectedCurrent(subjectId: string): Record<string, { state: string; eventId?: string; renewal: boolean }> {
    return Object.fromEntries(
      PURPOSES.map((purpose) => {
        const entry = this.get(subjectId, purpose);
        return [
          purpose,
          entry
            ? { state: entry.state, eventId: entry.eventId, renewal: entry.renewal }
            : { state: 'none', renewal: false },
        ];
      }),
    );
  }
}

const byPurposeAndState = (a: { purpose: string; state: string }, b: { purpose: string; state: string }) =>
  a.purpose < b.purpose ? -1 : a.purpose > b.purpose ? 1 : a.state < b.state ? -1 : a.state > b.state ? 1 : 0;

/** `stats()` reduced to what the model predicts (every row also on the current notice). */
async function countsOf(ledger: ConsentLedger): Promise<{ purpose: string; state: string; count: number }[]> {
  const rows: StatsRow[] = await ledger.stats();
  for (const row of rows) expect(row.reconsentRequired, `${row.purpose} ${row.state}`).toBe(false);
  return rows.map(({ purpose, state, count }) => ({ purpose, state, count })).sort(byPurposeAndState);
}

/** `current()` reduced to state, event and renewal per purpose. */
async function currentOf(
  ledger: ConsentLedger,
  subjectId: string,
): Promise<Record<string, { state: string; eventId?: string; renewal: boolean }>> {
  const { purposes } = await ledger.current(subjectId);
  return Object.fromEntries(
    Object.entries(purposes).map(([purpose, status]) => [
      purpose,
      {
        state: status.state,
        ...(status.eventId !== undefined ? { eventId: status.eventId } : {}),
        renewal: status.renewal,
      },
    ]),
  );
}

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const id of iterable) out.push(id);
  return out.sort();
}

async function collectPages(iterable: AsyncIterable<string[]>): Promise<string[]> {
  const out: string[] = [];
  for await (const page of iterable) out.push(...page);
  return out.sort();
}

/** A small deterministic PRNG (mulberry32): the same run every time. */
function random(seed: number): (below: number) => number {
  let a = seed >>> 0;
  return (below) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * below);
  };
}

/** Records `state` through `ledger` (a withdrawal through `withdraw()`), updating the model. */
async function decide(
  ledger: ConsentLedger,
  model: Model,
  subjectId: string,
  purpose: string,
  state: Decided,
  evidence?: { ip?: string; userAgent?: string },
): Promise<RecordedDecision> {
  const recorded =
    state === 'withdrawn'
      ? await ledger.withdraw(subjectId, purpose, evidence ? { evidence } : {})
      : await ledger.record(grant(subjectId, purpose, { state, ...(evidence ? { evidence } : {}) }));
  model.apply(subjectId, purpose, state, recorded);
  return recorded;
}

/** Every cell of every `privacykit_consent_*` table, as text, with where it was found. */
async function consentCells(
  database: TestDatabase,
): Promise<{ tables: string[]; cells: { table: string; column: string; text: string }[] }> {
  const db = database.db;
  const query =
    database.engine === 'sqlite'
      ? sql<{
          name: string;
        }>`select name as name from sqlite_master where type = 'table' and name like 'privacykit_consent_%'`
      : database.engine === 'postgres'
        ? sql<{
            name: string;
          }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_name like 'privacykit_consent_%'`
        : sql<{
            name: string;
          }>`select table_name as name from information_schema.tables where table_schema = database() and table_name like 'privacykit_consent_%'`;
  const tables = (await query.execute(db)).rows.map((row) => String(row.name)).sort();
  const cells: { table: string; column: string; text: string }[] = [];
  for (const table of tables) {
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db)).rows;
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        if (value instanceof Uint8Array) {
          const bytes = Buffer.from(value);
          for (const text of [bytes.toString('utf8'), bytes.toString('hex'), bytes.toString('base64')])
            cells.push({ table, column, text });
        } else if (value instanceof Date) {
          cells.push({ table, column, text: value.toISOString() });
        } else {
          cells.push({
            table,
            column,
            text: typeof value === 'object' ? JSON.stringify(value) : String(value),
          });
        }
      }
    }
  }
  return { tables, cells };
}

/** The cells containing any of `needles`, as `table.column: needle` (empty when none does). */
function cellsContaining(
  cells: readonly { table: string; column: string; text: string }[],
  needles: readonly string[],
): string[] {
  const found: string[] = [];
  for (const cell of cells) {
    for (const needle of needles) {
      if (cell.text.includes(needle)) found.push(`${cell.table}.${cell.column}: ${needle}`);
    }
  }
  return found;
}

/** Runs test/crash-writer.ts to its end: `exit` (process.exit(0)) or `kill` (SIGKILL). */
async function runCrashWriter(
  args: readonly string[],
  mode: 'exit' | 'kill',
): Promise<{ out: string; code: number | null; signal: NodeJS.Signals | null }> {
  const { out, err, code, signal } = await runTestScript('crash-writer.ts', [...args, mode]);
  if (!out.startsWith('recorded ')) throw new Error(`crash-writer exited ${code} ${signal}: ${err}`);
  return { out, code, signal };
}

describe.each(testEngines())('state visible to every instance on $engine', (engine) => {
  let database: TestDatabase | undefined;
  const others: { destroy(): Promise<void> }[] = [];
  afterEach(async () => {
    // The second connections first: the test database is dropped with its own.
    await Promise.all(others.splice(0).map((db) => db.destroy()));
    await database?.destroy();
    database = undefined;
  });

  /** A fresh migrated database, ledger A on its connection and ledger B on a connection of its own. */
  async function twoInstances(
    options: Omit<ConsentLedgerOptions, 'db' | 'policy'>,
  ): Promise<{ database: TestDatabase; a: ConsentLedger; b: ConsentLedger }> {
    database = await migratedDatabase(engine);
    const second = await openDatabase(database.url);
    others.push(second);
    const a = createConsentLedger({ ...options, db: database.db, policy: testPolicy });
    const b = createConsentLedger({ ...options, db: second, policy: testPolicy });
    // Both share the head row's pseudonym secret: one subject, one key, on both instances.
    expect(await b.subjectKey('same-subject')).toBe(await a.subjectKey('same-subject'));
    return { database, a, b };
  }

  it('a decision one instance records is what another instance answers at once, across 2,200 interleaved decisions and two 1,000-entry checkpoints (withdrawals included)', async () => {
    const clock = fixedClock(START);
    const { a, b } = await twoInstances({ clock });
    const model = new Model();
    const startSize = (await a.verify()).size;
    const next = random(20250601);
    const subjects = 300;
    const operations = 2200;
    let lastSubject = '';
    let lastPurpose = '';
    let reverse = 0;
    // Each subject's decisions in order, as history() must list them (IPs truncated to /24).
    const log = new Map<string, [string, string, Decided, { ip: string } | undefined][]>();
    for (let i = 0; i < operations; i++) {
      let writer = a;
      let reader = b;
      let subjectId: string;
      let purpose: string;
      let state: Decided;
      let evidence: { ip: string } | undefined;
      if (i % 50 === 49) {
        // B overrides what A decided last for that very subject × purpose; A must answer B's.
        writer = b;
        reader = a;
        reverse++;
        subjectId = lastSubject;
        purpose = lastPurpose;
        state = model.get(subjectId, purpose)?.state === 'granted' ? 'withdrawn' : 'granted';
      } else {
        subjectId = `s-${next(subjects)}`;
        purpose = PURPOSES[next(PURPOSES.length)] as string;
        const roll = next(10);
        state = roll < 5 ? 'granted' : roll < 7 ? 'refused' : 'withdrawn';
        if (i % 7 === 0) evidence = { ip: `10.${(i >> 8) & 255}.${i & 255}.9` };
      }
      const recorded = await decide(writer, model, subjectId, purpose, state, evidence);
      const truncated = evidence && { ip: evidence.ip.replace(/\.9$/, '.0') };
      log.set(subjectId, [...(log.get(subjectId) ?? []), [recorded.eventId, purpose, state, truncated]]);
      lastSubject = subjectId;
      lastPurpose = purpose;
      // The other instance answers from the decision just made, whatever the checkpoint cycle.
      expect(
        await reader.mayProcess(subjectId, purpose),
        `op ${i}: mayProcess(${subjectId}, ${purpose})`,
      ).toBe(state === 'granted');
      if (i % 3 === 0 || writer === b) {
        expect(await currentOf(reader, subjectId), `op ${i}: current(${subjectId})`).toEqual(
          model.expectedCurrent(subjectId),
        );
      }
    }
    expect(reverse).toBe(44);
    expect(model.subjects.size).toBe(subjects);

    // The ledger crossed at least two 1,000-entry checkpoints.
    const size = startSize + operations;
    expect(size).toBeGreaterThan(2000);
    for (const ledger of [a, b]) {
      expect(await ledger.verify()).toMatchObject({ ok: true, size });
      expect(await countsOf(ledger)).toEqual(model.counts());
      for (const purpose of PURPOSES) {
        expect(await collect(ledger.subjectsWithConsent(purpose)), `subjectsWithConsent(${purpose})`).toEqual(
          model.granted(purpose),
        );
        expect(await collectPages(ledger.subjectPagesWithConsent(purpose, { pageSize: 37 }))).toEqual(
          model.granted(purpose),
        );
      }
    }
    // The histories of the subjects with the most evidence, evidence sealed on A opened on B.
    const withEvidence = [...log]
      .map(([subjectId, entries]) => [subjectId, entries.filter((entry) => entry[3]).length] as const)
      .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
      .slice(0, 5);
    expect(withEvidence.every(([, count]) => count >= 2)).toBe(true);
    for (const [subjectId] of withEvidence) {
      expect(
        (await b.history(subjectId)).map((entry) => [
          entry.eventId,
          entry.purpose,
          entry.state,
          entry.evidence,
        ]),
        subjectId,
      ).toEqual(log.get(subjectId));
    }
    // Every subject × purpose, answered by B, and every subject's full status on A.
    for (const subjectId of model.subjects) {
      for (const purpose of PURPOSES) {
        expect(await b.mayProcess(subjectId, purpose), `${subjectId}/${purpose}`).toBe(
          model.get(subjectId, purpose)?.state === 'granted',
        );
      }
      expect(await currentOf(a, subjectId), subjectId).toEqual(model.expectedCurrent(subjectId));
    }
  }, 120_000);

  // process.exit(0) on SQLite; SIGKILL (no exit handlers run) everywhere.
  it.each(engine.engine === 'sqlite' ? (['exit', 'kill'] as const) : (['kill'] as const))(
    'decisions of a process that ended without closing the database (%s) are all current for a fresh instance, the 234 past the 1,000th included, evidence readable',
    async (mode) => {
      database = await migratedDatabase(engine);
      const dir = mkdtempSync(join(tmpdir(), 'pk-crash-'));
      try {
        // The plan: 1,000 decisions over 250 subjects, then 234 more (not a multiple of 1,000)
        // that decide new subjects, overturn earlier decisions, and end with `late-final`.
        const next = random(1234);
        type Planned = { subjectId: string; purpose: string; state: Decided; evidence?: { ip: string } };
        const decisions: Planned[] = [];
        const early: [string, string][] = [];
        for (let i = 0; i < 1000; i++) {
          const subjectId = `c-${next(250)}`;
          const purpose = PURPOSES[next(3)] as string;
          const roll = next(10);
          const state: Decided = roll < 5 ? 'granted' : roll < 7 ? 'refused' : 'withdrawn';
          decisions.push({
            subjectId,
            purpose,
            state,
            ...(i % 5 === 0 ? { evidence: { ip: `192.0.${i % 256}.${(i % 200) + 1}` } } : {}),
          });
          early.push([subjectId, purpose]);
        }
        const lastState = new Map<string, Decided>();
        for (const d of decisions) lastState.set(`${d.subjectId}\u0000${d.purpose}`, d.state);
        for (let j = 0; j < 232; j++) {
          if (j % 2 === 0) {
            decisions.push({
              subjectId: `late-${j / 2}`,
              purpose: PURPOSES[j % 3] as string,
              state: j % 6 === 4 ? 'refused' : 'granted',
              evidence: { ip: `198.51.100.${j}` },
            });
          } else {
            // Overturn an early decision: the stale state would show the old one.
            const [subjectId, purpose] = early[(j * 7) % early.length] as [string, string];
            const before = lastState.get(`${subjectId}\u0000${purpose}`);
            const state: Decided = before === 'granted' ? 'withdrawn' : 'granted';
            lastState.set(`${subjectId}\u0000${purpose}`, state);
            decisions.push({ subjectId, purpose, state });
          }
        }
        decisions.push({
          subjectId: 'late-final',
          purpose: AUDIENCE,
          state: 'refused',
          evidence: { ip: '2001:db8:1234:5678::1' },
        });
        decisions.push({
          subjectId: 'late-final',
          purpose: NEWSLETTER,
          state: 'granted',
          evidence: { ip: '203.0.113.77' },
        });
        expect(decisions).toHaveLength(1234);

        const planFile = join(dir, 'plan.json');
        const resultsFile = join(dir, 'results.json');
        writeFileSync(planFile, JSON.stringify({ clock: START, decisions }));
        const run = await runCrashWriter([database.url, planFile, resultsFile], mode);
        expect(run.out).toBe('recorded 1234\n');
        expect(mode === 'exit' ? run.code : run.signal).toBe(mode === 'exit' ? 0 : 'SIGKILL');
        const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as RecordedDecision[];

        const model = new Model();
        decisions.forEach((d, i) =>
          model.apply(d.subjectId, d.purpose, d.state, results[i] as RecordedDecision),
        );
        // 3 notices, then the decisions: the checkpoint at 1,000 entries leaves the last 234 behind it.
        const firstSeq = (results[0] as RecordedDecision).seq;
        expect(results.map((r) => r.seq)).toEqual(decisions.map((_, i) => firstSeq + i));

        // A fresh instance, on a fresh connection, after the process is gone.
        const fresh = await openDatabase(database.url);
        others.push(fresh);
        const clock = fixedClock(START);
        const ledger = createConsentLedger({ db: fresh, policy: testPolicy, clock });

        for (const subjectId of model.subjects) {
          expect(await currentOf(ledger, subjectId), subjectId).toEqual(model.expectedCurrent(subjectId));
        }
        for (const d of decisions.slice(1000)) {
          expect(await ledger.mayProcess(d.subjectId, d.purpose), `${d.subjectId}/${d.purpose}`).toBe(
            model.get(d.subjectId, d.purpose)?.state === 'granted',
          );
        }
        for (const purpose of PURPOSES) {
          expect(await collect(ledger.subjectsWithConsent(purpose)), purpose).toEqual(model.granted(purpose));
        }
        expect(await countsOf(ledger)).toEqual(model.counts());

        // The subject recorded last: its whole history, evidence decrypted (IPs truncated).
        expect(
          (await ledger.history('late-final')).map((entry) => [
            entry.eventId,
            entry.kind,
            entry.purpose,
            entry.state,
            entry.evidence,
          ]),
        ).toEqual([
          [results[1232]?.eventId, 'decision', AUDIENCE, 'refused', { ip: '2001:db8:1234::' }],
          [results[1233]?.eventId, 'decision', NEWSLETTER, 'granted', { ip: '203.0.113.0' }],
        ]);
        expect((await ledger.history('late-0'))[0]).toMatchObject({
          eventId: results[1000]?.eventId,
          evidence: { ip: '198.51.100.0' },
        });
        const size = (results[0] as RecordedDecision).seq + 1234;
        expect(await ledger.verify()).toMatchObject({ ok: true, size });

        // The fresh instance decides on: over the grant recorded last, a renewal.
        const renewed = await ledger.record(grant('late-final', NEWSLETTER));
        expect(renewed).toMatchObject({ state: 'granted', renewal: true, seq: size });
        expect((await ledger.current('late-final')).purposes[NEWSLETTER]).toMatchObject({
          state: 'granted',
          valid: true,
          renewal: true,
          eventId: renewed.eventId,
          dpvStatus: 'dpv:RenewedConsentGiven',
        });
        // Over the refusal recorded just before it, a first grant (no renewal).
        const first = await ledger.record(grant('late-final', AUDIENCE));
        expect(first).toMatchObject({ state: 'granted', renewal: false });
        expect(await ledger.mayProcess('late-final', AUDIENCE)).toBe(true);
        expect(await ledger.verify()).toMatchObject({ ok: true, size: size + 2 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );

  it('shredding a subject with decisions just recorded (on two instances) leaves neither its id, its evidence keys nor its sealed evidence anywhere in the database', async () => {
    const clock = fixedClock(START);
    const {
      database: testDb,
      a,
      b,
    } = await twoInstances({ clock, evidence: { ip: 'full', userAgent: true } });
    const subject = 'shred-me.4c1d@example.org';
    const other = 'keep-me.77ab@example.org';
    const ip = '203.0.113.45';
    const userAgent = 'Mozilla/5.0 (X11; ShredProbe) Gecko/20100101 Probe/7.3';
    const otherEvidence = { ip: '198.51.100.23', userAgent: 'OtherAgent/1.0 (keep)' };
    const evidence = { ip, userAgent };

    const decided = [
      await a.record(grant(subject, NEWSLETTER, { evidence })),
      await a.record(grant(subject, AUDIENCE, { evidence })),
      await a.record(grant(other, NEWSLETTER, { evidence: otherEvidence })),
    ];
    // Before the shred, the other instance answers from A's decisions about the subject.
    expect(await b.mayProcess(subject, NEWSLETTER)).toBe(true);
    expect(await b.mayProcess(subject, AUDIENCE)).toBe(true);
    decided.push(await a.withdraw(subject, AUDIENCE, { evidence }));
    // B's last act before the shred: a decision about the subject of its own.
    decided.push(await b.record(grant(subject, ADS, { evidence })));
    expect(await a.mayProcess(subject, ADS)).toBe(true);
    expect(await a.mayProcess(subject, AUDIENCE)).toBe(false);
    const subjectEvents = [decided[0], decided[1], decided[3], decided[4]].map((d) => d?.eventId);
    expect((await a.history(subject)).map((entry) => [entry.eventId, entry.state, entry.evidence])).toEqual([
      [subjectEvents[0], 'granted', evidence],
      [subjectEvents[1], 'granted', evidence],
      [subjectEvents[2], 'withdrawn', evidence],
      [subjectEvents[3], 'granted', evidence],
    ]);

    // What the shred must destroy, read before it: the evidence keys of the subject's state
    // rows and the sealed evidence of its entries.
    const subjectKey = await a.subjectKey(subject);
    const keyRows = (
      await sql<{
        purpose: string;
        key_material: string | null;
      }>`select purpose, key_material from privacykit_consent_state where subject_key = ${subjectKey} order by purpose`.execute(
        testDb.db,
      )
    ).rows;
    expect(keyRows.map((row) => row.purpose)).toEqual([AUDIENCE, NEWSLETTER, ADS].sort());
    const keys = keyRows.map((row) => row.key_material);
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const keyNeedles = (keys as string[]).flatMap((key) => {
      const bytes = Buffer.from(key, 'base64');
      return [key, bytes.toString('hex'), bytes.toString('base64url')];
    });
    const sealed = (
      await sql<{
        sealed: string;
      }>`select sealed from privacykit_consent_ledger where subject_key = ${subjectKey} and sealed is not null`.execute(
        testDb.db,
      )
    ).rows.map((row) => row.sealed);
    expect(sealed).toHaveLength(4);
    const before = await consentCells(testDb);
    expect(before.tables).toEqual(
      expect.arrayContaining(['privacykit_consent_ledger', 'privacykit_consent_state']),
    );
    // The probes find what is there: the id (state rows) and the keys, before the shred.
    expect(cellsContaining(before.cells, [subject]).length).toBeGreaterThan(0);
    for (const key of keys as string[])
      expect(cellsContaining(before.cells, [key]).length).toBeGreaterThan(0);
    // Evidence is only ever stored sealed.
    expect(cellsContaining(before.cells, [ip, userAgent])).toEqual([]);

    // A's last act before the shred: one more decision about the subject (under the same key).
    decided.push(await a.record(grant(subject, NEWSLETTER, { evidence })));
    const shredded = await a.shredSubject(subject);
    // Both instances go on working after it (whatever either kept back is written by now).
    const probe = await b.record(grant('after-shred-probe', NEWSLETTER));
    await a.record(grant('after-shred-probe', AUDIENCE));

    const after = await consentCells(testDb);
    expect(cellsContaining(after.cells, [subject])).toEqual([]);
    expect(cellsContaining(after.cells, keyNeedles)).toEqual([]);
    expect(cellsContaining(after.cells, sealed)).toEqual([]);
    expect(cellsContaining(after.cells, [ip, userAgent])).toEqual([]);
    // The evidence of the decision recorded just before the shred is erased with the rest.
    const sealedLeft = await sql<{
      n: unknown;
    }>`select count(*) as n from privacykit_consent_ledger where subject_key = ${subjectKey} and sealed is not null`.execute(
      testDb.db,
    );
    expect(Number(sealedLeft.rows[0]?.n)).toBe(0);
    for (const ledger of [a, b]) {
      expect(await countsOf(ledger)).toEqual([
        { purpose: AUDIENCE, state: 'granted', count: 1 },
        { purpose: NEWSLETTER, state: 'granted', count: 2 },
      ]);
    }

    for (const ledger of [a, b]) {
      for (const purpose of PURPOSES) expect(await ledger.mayProcess(subject, purpose), purpose).toBe(false);
      expect(await currentOf(ledger, subject)).toEqual(new Model().expectedCurrent(subject));
      expect(
        (await ledger.history(subject)).map((entry) => [
          entry.eventId,
          entry.kind,
          entry.state,
          entry.evidence,
        ]),
      ).toEqual([
        [subjectEvents[0], 'decision', 'granted', 'unavailable'],
        [subjectEvents[1], 'decision', 'granted', 'unavailable'],
        [subjectEvents[2], 'decision', 'withdrawn', 'unavailable'],
        [subjectEvents[3], 'decision', 'granted', 'unavailable'],
        [decided[5]?.eventId, 'decision', 'granted', 'unavailable'],
        [shredded.eventId, 'subject-shredded', undefined, undefined],
      ]);
      // Nobody else lost anything.
      expect(await ledger.mayProcess(other, NEWSLETTER)).toBe(true);
      expect((await ledger.history(other)).map((entry) => entry.evidence)).toEqual([otherEvidence]);
      expect(await collect(ledger.subjectsWithConsent(NEWSLETTER))).toEqual(
        ['after-shred-probe', other].sort(),
      );
      expect(await ledger.verify()).toMatchObject({ ok: true, size: probe.seq + 2 });
    }
  });

  it('subjectsWithConsent, stats, history and current see a handful of decisions recorded just now, on the instance that recorded them and on another', async () => {
    const clock = fixedClock(START);
    const { a, b } = await twoInstances({ clock });
    const model = new Model();
    /** Every heavier reader of `ledger` against the model, and the histories expected. */
    const check = async (ledger: ConsentLedger, histories: Record<string, unknown[]>) => {
      for (const purpose of PURPOSES) {
        expect(await collect(ledger.subjectsWithConsent(purpose)), purpose).toEqual(model.granted(purpose));
        expect(await collectPages(ledger.subjectPagesWithConsent(purpose, { pageSize: 1 })), purpose).toEqual(
          model.granted(purpose),
        );
      }
      expect(await countsOf(ledger)).toEqual(model.counts());
      for (const [subjectId, expected] of Object.entries(histories)) {
        expect(
          (await ledger.history(subjectId)).map((entry) => [
            entry.purpose,
            entry.state,
            entry.renewal,
            entry.evidence,
          ]),
          subjectId,
        ).toEqual(expected);
      }
      for (const subjectId of model.subjects) {
        expect(await currentOf(ledger, subjectId), subjectId).toEqual(model.expectedCurrent(subjectId));
      }
    };

    // Recorded by A and read by A itself, each reader straight after a write that changes its answer.
    await decide(a, model, 'r-1', NEWSLETTER, 'granted', { ip: '192.0.2.10' });
    await decide(a, model, 'r-2', NEWSLETTER, 'granted');
    await decide(a, model, 'r-2', NEWSLETTER, 'withdrawn');
    await decide(a, model, 'r-3', NEWSLETTER, 'granted');
    expect(await collect(a.subjectsWithConsent(NEWSLETTER))).toEqual(['r-1', 'r-3']);
    await decide(a, model, 'r-3', NEWSLETTER, 'granted'); // a renewal
    await decide(a, model, 'r-1', NEWSLETTER, 'withdrawn');
    expect(await collectPages(a.subjectPagesWithConsent(NEWSLETTER, { pageSize: 1 }))).toEqual(['r-3']);
    await decide(a, model, 'r-4', NEWSLETTER, 'refused');
    expect(await countsOf(a)).toEqual([
      { purpose: NEWSLETTER, state: 'granted', count: 1 },
      { purpose: NEWSLETTER, state: 'refused', count: 1 },
      { purpose: NEWSLETTER, state: 'withdrawn', count: 2 },
    ]);
    await decide(a, model, 'r-5', AUDIENCE, 'granted', { ip: '2001:db8:aa:bb::5' });
    expect((await a.history('r-5')).map((entry) => [entry.purpose, entry.state, entry.evidence])).toEqual([
      [AUDIENCE, 'granted', { ip: '2001:db8:aa::' }],
    ]);
    await decide(a, model, 'r-5', NEWSLETTER, 'granted');
    expect(await currentOf(a, 'r-5')).toEqual(model.expectedCurrent('r-5'));
    await decide(a, model, 'r-5', NEWSLETTER, 'withdrawn');
    expect(await a.mayProcess('r-5', NEWSLETTER)).toBe(false);
    expect(model.granted(NEWSLETTER)).toEqual(['r-3']);
    const firstHistories = {
      'r-1': [
        [NEWSLETTER, 'granted', false, { ip: '192.0.2.0' }],
        [NEWSLETTER, 'withdrawn', false, undefined],
      ],
      'r-2': [
        [NEWSLETTER, 'granted', false, undefined],
        [NEWSLETTER, 'withdrawn', false, undefined],
      ],
      'r-3': [
        [NEWSLETTER, 'granted', false, undefined],
        [NEWSLETTER, 'granted', true, undefined],
      ],
      'r-5': [
        [AUDIENCE, 'granted', false, { ip: '2001:db8:aa::' }],
        [NEWSLETTER, 'granted', false, undefined],
        [NEWSLETTER, 'withdrawn', false, undefined],
      ],
    };
    await check(a, firstHistories);

    // More decisions by A, read first by B.
    await decide(a, model, 'r-1', NEWSLETTER, 'granted');
    await decide(a, model, 'r-4', NEWSLETTER, 'granted', { ip: '192.0.2.44' });
    await decide(a, model, 'r-6', ADS, 'granted', { ip: '198.51.100.66' });
    await decide(a, model, 'r-6', NEWSLETTER, 'refused');
    expect(model.granted(NEWSLETTER)).toEqual(['r-1', 'r-3', 'r-4']);
    const secondHistories = {
      ...firstHistories,
      'r-1': [...firstHistories['r-1'], [NEWSLETTER, 'granted', false, undefined]],
      'r-4': [
        [NEWSLETTER, 'refused', false, undefined],
        [NEWSLETTER, 'granted', false, { ip: '192.0.2.0' }],
      ],
      'r-6': [
        [ADS, 'granted', false, { ip: '198.51.100.0' }],
        [NEWSLETTER, 'refused', false, undefined],
      ],
    };
    await check(b, secondHistories);
    await check(a, secondHistories);
  });

  it('expireDue expires grants recorded just now, on whichever instance runs it, and nothing withdrawn or refused', async () => {
    const clock = fixedClock(START);
    const { a, b } = await twoInstances({ clock, validity: 'P1D' });
    await a.record(grant('e-4', NEWSLETTER));
    await a.withdraw('e-4', NEWSLETTER);
    await a.record(grant('e-5', NEWSLETTER, { state: 'refused' }));
    const e1 = await a.record(grant('e-1', NEWSLETTER));
    await a.record(grant('e-2', NEWSLETTER));
    await a.record(grant('e-3', AUDIENCE));
    expect(e1.expiresAt).toBe('2025-06-02T00:00:00.000Z');

    clock.advance(2 * DAY);
    expect(await a.expireDue()).toBe(3);
    expect(await b.expireDue()).toBe(0);
    for (const ledger of [a, b]) {
      expect((await ledger.current('e-1')).purposes[NEWSLETTER]).toMatchObject({
        state: 'expired',
        valid: false,
        dpvStatus: 'dpv:ConsentExpired',
      });
      expect((await ledger.current('e-3')).purposes[AUDIENCE]?.state).toBe('expired');
      expect((await ledger.current('e-4')).purposes[NEWSLETTER]?.state).toBe('withdrawn');
      expect((await ledger.current('e-5')).purposes[NEWSLETTER]?.state).toBe('refused');
      expect((await ledger.history('e-1')).map((entry) => [entry.kind, entry.state])).toEqual([
        ['decision', 'granted'],
        ['expiry', 'expired'],
      ]);
      expect(await countsOf(ledger)).toEqual([
        { purpose: AUDIENCE, state: 'expired', count: 1 },
        { purpose: NEWSLETTER, state: 'expired', count: 2 },
        { purpose: NEWSLETTER, state: 'refused', count: 1 },
        { purpose: NEWSLETTER, state: 'withdrawn', count: 1 },
      ]);
      expect(await collect(ledger.subjectsWithConsent(NEWSLETTER))).toEqual([]);
    }

    // A grant recorded on A just now, expired by B: a new grant, not a renewal of the expired one.
    const again = await a.record(grant('e-1', NEWSLETTER));
    expect(again.renewal).toBe(false);
    expect(await b.mayProcess('e-1', NEWSLETTER)).toBe(true);
    clock.advance(2 * DAY);
    expect(await b.expireDue()).toBe(1);
    expect(await a.mayProcess('e-1', NEWSLETTER)).toBe(false);
    expect((await a.current('e-1')).purposes[NEWSLETTER]?.state).toBe('expired');
    expect(await a.expireDue()).toBe(0);
    expect(await a.verify()).toMatchObject({ ok: true });
    expect(await b.verify()).toMatchObject({ ok: true });
  });

  it('applyGpc acts on a grant or withdrawal recorded just now, by this instance or another', async () => {
    const clock = fixedClock(START);
    const { a, b } = await twoInstances({ clock });
    const kinds = async (ledger: ConsentLedger, subjectId: string) =>
      (await ledger.history(subjectId)).map((entry) =>
        entry.kind === 'decision' ? `${entry.source}:${entry.state}` : entry.kind,
      );

    // A grant given before the signal: the signal is applied over it.
    const granted = await a.record(grant('g-1', ADS));
    const outcome = await a.applyGpc('g-1', '1');
    expect(outcome.refused.map((event) => [event.purpose, event.state])).toEqual([[ADS, 'refused']]);
    expect(outcome.conflicts).toEqual([
      {
        purpose: ADS,
        grantedEventId: granted.eventId,
        grantedAt: granted.at,
        resolution: 'signal-applied',
        refusedEventId: outcome.refused[0]?.eventId,
      },
    ]);
    expect(outcome.unchanged).toEqual([]);
    for (const ledger of [a, b]) {
      expect(await ledger.mayProcess('g-1', ADS)).toBe(false);
      expect((await ledger.current('g-1')).purposes[ADS]).toMatchObject({
        state: 'refused',
        source: 'gpc',
        eventId: outcome.refused[0]?.eventId,
      });
    }

    // The subject grants again on B after the signal: A keeps that grant and reports it.
    const regranted = await b.record(grant('g-1', ADS));
    const kept = await a.applyGpc('g-1', '1');
    expect(kept.refused).toEqual([]);
    expect(kept.conflicts).toEqual([
      { purpose: ADS, grantedEventId: regranted.eventId, grantedAt: regranted.at, resolution: 'grant-kept' },
    ]);
    for (const ledger of [a, b]) {
      expect(await ledger.mayProcess('g-1', ADS)).toBe(true);
      expect((await ledger.current('g-1')).purposes[ADS]).toMatchObject({
        state: 'granted',
        eventId: regranted.eventId,
        gpcConflict: true,
      });
    }
    expect(await kinds(b, 'g-1')).toEqual([
      'banner:granted',
      'gpc:refused',
      'banner:granted',
      'gpc-conflict',
    ]);

    // Granted on A, withdrawn on B just now: A's signal finds the withdrawal, not the grant.
    await a.record(grant('g-2', ADS));
    await b.withdraw('g-2', ADS);
    const overWithdrawal = await a.applyGpc('g-2', '1');
    expect(overWithdrawal).toMatchObject({ refused: [], conflicts: [], unchanged: [ADS] });
    expect((await b.current('g-2')).purposes[ADS]).toMatchObject({ state: 'withdrawn', source: 'api' });
    expect(await kinds(a, 'g-2')).toEqual(['banner:granted', 'api:withdrawn', 'gpc-signal']);

    // A grant on B, the signal on A straight after: refused on both.
    await b.record(grant('g-3', ADS));
    expect((await a.applyGpc('g-3', '1')).refused).toHaveLength(1);
    expect(await b.mayProcess('g-3', ADS)).toBe(false);
    expect(await a.verify()).toMatchObject({ ok: true });
    expect(await b.verify()).toMatchObject({ ok: true });
  });
});
