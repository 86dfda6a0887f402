import { canonicalJson, fixedClock } from '@privacykit/core';
import type { JsonValue } from '@privacykit/core';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase, TestEngine } from '@privacykit/core/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { definePolicy } from '@privacykit/core';
import { editedPolicy, migratedDatabase, policyInput, testPolicy } from './test-fixtures.js';
import type { ConsentDecision } from './decision.js';
import { isCanonicalEntry } from './entry-json.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger, ConsentLedgerOptions } from './ledger.js';
import { leafHash } from './merkle.js';
import { verifyConsistencyProof } from './proofs.js';
import { loadSigningKeys, signTreeHead } from './signing.js';

const LEDGER = 'privacykit_consent_ledger';
const HEAD = 'privacykit_consent_head';
const STATE = 'privacykit_consent_state';
const SUBJECT_IX = 'privacykit_consent_subject_ix';
const EVENT_IX = 'privacykit_consent_event_ix';
const NOTICES = 'privacykit_consent_notices';
const purposes = ['newsletter', 'audience-measurement', 'targeted-advertising'] as const;
const states = ['granted', 'refused', 'withdrawn'] as const;

async function open(engine: TestEngine, extra: Partial<ConsentLedgerOptions> = {}) {
  const database = await migratedDatabase(engine);
  const clock = fixedClock('2025-05-01T08:00:00Z');
  const ledger = createConsentLedger({ db: database.db, policy: testPolicy, clock, ...extra });
  return { database, ledger, clock };
}

async function seed(ledger: ConsentLedger, count: number, prefix = 's'): Promise<void> {
  for (let i = 0; i < count; i++) {
    await ledger.record({
      subjectId: `${prefix}${i % 4}`,
      purpose: purposes[i % 3] as string,
      state: states[i % 3] as (typeof states)[number],
      source: 'banner',
      method: 'click',
    });
  }
}

async function rowAt(database: TestDatabase, seq: number) {
  return database.db.selectFrom(LEDGER).selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
}

/** Moves a row to another position (its id, the primary key, and seq), as a reordering attacker would. */
async function moveRow(database: TestDatabase, from: number, to: number): Promise<void> {
  await database.db
    .updateTable(LEDGER)
    .set({ seq: to, id: sql`id + ${to - from}` })
    .where('seq', '=', from)
    .execute();
}

async function swapRows(database: TestDatabase, a: number, b: number): Promise<void> {
  await moveRow(database, a, -1);
  await moveRow(database, b, a);
  await moveRow(database, -1, b);
}

async function ledgerSize(database: TestDatabase): Promise<number> {
  const row = await database.db
    .selectFrom(LEDGER)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Tables derived from the log, which `verify()` reconciles with it. */
const DERIVED = [STATE, SUBJECT_IX, EVENT_IX] as const;

/**
 * What an attacker saves to roll back to later: the ledger's size, the head row and the tables
 * derived from the log (current state, lookups).
 */
async function snapshotOf(database: TestDatabase) {
  const head = await database.db
    .selectFrom(HEAD)
    .select(['size', 'frontier', 'signed_size', 'signed_at', 'indexed_size'])
    .executeTakeFirstOrThrow();
  const derived = new Map<string, Record<string, unknown>[]>();
  for (const table of DERIVED) derived.set(table, await database.db.selectFrom(table).selectAll().execute());
  return { size: await ledgerSize(database), head, derived };
}

/**
 * Rolls the ledger back to a snapshot: the attacker deletes the tail, restores the head row
 * and, unless told to forget them, the derived tables.
 */
async function rollBack(
  database: TestDatabase,
  snapshot: Awaited<ReturnType<typeof snapshotOf>>,
  options: { derived?: boolean } = {},
): Promise<void> {
  const { size } = snapshot;
  await database.db.deleteFrom(LEDGER).where('seq', '>=', size).execute();
  await database.db.deleteFrom('privacykit_consent_tree_heads').where('size', '>', size).execute();
  await database.db.updateTable(HEAD).set(snapshot.head).execute();
  if (options.derived === false) return;
  for (const [table, rows] of snapshot.derived) {
    await database.db.deleteFrom(table).execute();
    if (rows.length > 0) await database.db.insertInto(table).values(rows).execute();
  }
}

describe.each(testEngines())('tamper evidence on $engine (hostile case 6)', (engine) => {
  let database: TestDatabase | undefined;
  afterEach(async () => {
    await database?.destroy();
    database = undefined;
  });

  it('verifies an untouched ledger', async () => {
    const opened = await open(engine);
    database = opened.database;
    await seed(opened.ledger, 12);
    expect(await opened.ledger.verify()).toMatchObject({ ok: true, size: 15 });
  });

  it('catches a payload edited through SQL (a flipped decision)', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 9);
    const row = await rowAt(db, 6);
    await db.db
      .updateTable(LEDGER)
      .set({
        entry: row.entry.replace(
          /"state":"(\w+)"/,
          (_: string, state: string) => `"state":"${state === 'granted' ? 'refused' : 'granted'}"`,
        ),
      })
      .where('seq', '=', 6)
      .execute();
    expect(await ledger.verify()).toMatchObject({ ok: false, firstBadSeq: 6 });
  });

  it('catches an edit whose leaf hash was recomputed, through the signed heads', async () => {
    const { database: db, ledger } = await open(engine, { signEvery: { appends: 1 } });
    database = db;
    await seed(ledger, 9);
    const row = await rowAt(db, 7);
    const entry = row.entry.replace('"banner"', '"form"');
    expect(entry).not.toBe(row.entry);
    await db.db
      .updateTable(LEDGER)
      .set({ entry, leaf_hash: leafHash(entry).toString('hex') })
      .where('seq', '=', 7)
      .execute();
    const result = await ledger.verify();
    expect(result.ok).toBe(false);
    expect(result.firstBadSeq).toBeLessThanOrEqual(7);
  });

  it('catches a deleted row', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 8);
    await db.db.deleteFrom(LEDGER).where('seq', '=', 5).execute();
    expect(await ledger.verify()).toMatchObject({ ok: false, firstBadSeq: 5 });
  });

  it('catches a row inserted at the end and one inserted in the middle', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 6);
    const size = await ledgerSize(db);
    const template = await rowAt(db, size - 1);
    const forged = template.entry
      .replace(`"seq":${size - 1}`, `"seq":${size}`)
      .replace(`"id":"${template.event_id}"`, '"id":"forged"');
    await db.db
      .insertInto(LEDGER)
      .values({
        ...template,
        id: Number(template.id) + 1,
        seq: size,
        event_id: 'forged',
        entry: forged,
        leaf_hash: leafHash(forged).toString('hex'),
        nodes: null,
      })
      .execute();
    expect(await ledger.verify()).toMatchObject({ ok: false });

    await db.db.deleteFrom(LEDGER).where('seq', '=', size).execute();
    expect((await ledger.verify()).ok).toBe(true);
    // Make room at seq 4 by shifting the tail up, then slip a forged entry in.
    for (let seq = size - 1; seq >= 4; seq--) await moveRow(db, seq, seq + 1);
    const middle = template.entry
      .replace(`"seq":${size - 1}`, '"seq":4')
      .replace(`"id":"${template.event_id}"`, '"id":"forged-2"');
    await db.db
      .insertInto(LEDGER)
      .values({
        ...template,
        id: Number(template.id) - (size - 1) + 4,
        seq: 4,
        event_id: 'forged-2',
        entry: middle,
        leaf_hash: leafHash(middle).toString('hex'),
        nodes: null,
      })
      .execute();
    const result = await ledger.verify();
    expect(result.ok).toBe(false);
    // The forged entry is self-consistent; the first row it displaced gives it away.
    expect(result.firstBadSeq).toBeGreaterThanOrEqual(4);
    expect(result.firstBadSeq).toBeLessThanOrEqual(5);
  });

  it('catches two swapped rows', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 8);
    await swapRows(db, 4, 9);
    expect(await ledger.verify()).toMatchObject({ ok: false, firstBadSeq: 4 });
  });

  it('catches a truncated tail against a saved signed head', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 5);
    const snapshot = await snapshotOf(db);
    await seed(ledger, 4, 't');
    const saved = await ledger.treeHead();
    // Deleting the tail without touching the head row is caught from the database alone…
    await db.db
      .deleteFrom(LEDGER)
      .where('seq', '>=', saved.treeSize - 1)
      .execute();
    expect((await ledger.verify()).ok).toBe(false);
    // …so is a rollback of the head row that leaves the current state pointing past the end…
    await rollBack(db, snapshot, { derived: false });
    expect(await ledger.verify()).toMatchObject({ ok: false, reason: expect.stringMatching(/state/) });
    // …and a careful rollback of the derived tables too is caught against the saved head.
    await rollBack(db, snapshot);
    expect((await ledger.verify()).ok).toBe(true);
    expect(await ledger.verify({ head: saved })).toMatchObject({
      ok: false,
      firstBadSeq: Number(snapshot.size),
    });
  });

  it('catches a fork: history rewritten after a head was handed out, even when re-signed', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 5);
    const snapshot = await snapshotOf(db);
    await seed(ledger, 4, 't');
    const saved = await ledger.treeHead();
    await rollBack(db, snapshot);
    await seed(ledger, 6, 'u');
    const forkHead = await ledger.treeHead();
    expect(forkHead.treeSize).toBeGreaterThan(saved.treeSize);
    expect((await ledger.verify()).ok).toBe(true);
    const result = await ledger.verify({ head: saved });
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/forked|signed head/);
    const proof = await ledger.consistencyProof(saved.treeSize, forkHead.treeSize);
    expect(verifyConsistencyProof(proof, saved, forkHead)).toBe(false);
  });

  it('a consistency proof links an honest old head to the new one', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 5);
    const older = await ledger.treeHead();
    await seed(ledger, 7, 'v');
    const newer = await ledger.treeHead();
    const proof = await ledger.consistencyProof(older.treeSize, newer.treeSize);
    expect(verifyConsistencyProof(proof, older, newer)).toBe(true);
    expect(await ledger.verify({ head: older })).toMatchObject({ ok: true });
  });

  it('rejects a saved head signed by another key', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 3);
    const head = await ledger.treeHead();
    // The very same tree head, signed by a key the ledger does not trust.
    const { signature: _, keyId: __, ...unsigned } = head;
    const forged = signTreeHead(unsigned, loadSigningKeys());
    expect(await ledger.verify({ head: forged })).toMatchObject({
      ok: false,
      reason: `signed head of size ${head.treeSize} has an invalid signature`,
    });
    expect(await ledger.verify({ head })).toMatchObject({ ok: true });
  });

  it('rejects a saved head whose root was altered after signing', async () => {
    const { database: db, ledger } = await open(engine);
    database = db;
    await seed(ledger, 3);
    const head = await ledger.treeHead();
    const result = await ledger.verify({
      head: { ...head, rootHash: head.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0')) },
    });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/invalid signature/) });
  });
});

const grant = (subjectId: string, purpose = 'newsletter', extra: Partial<ConsentDecision> = {}) =>
  ({ subjectId, purpose, state: 'granted', source: 'banner', method: 'click', ...extra }) as ConsentDecision;

/** The state row of a subject × purpose, as stored. */
async function stateRow(database: TestDatabase, ledger: ConsentLedger, subjectId: string, purpose: string) {
  return database.db
    .selectFrom(STATE)
    .selectAll()
    .where('subject_key', '=', await ledger.subjectKey(subjectId))
    .where('purpose', '=', purpose)
    .executeTakeFirstOrThrow();
}

async function setState(
  database: TestDatabase,
  ledger: ConsentLedger,
  target: { subjectId: string; purpose: string },
  values: Record<string, unknown>,
): Promise<void> {
  await database.db
    .updateTable(STATE)
    .set(values)
    .where('subject_key', '=', await ledger.subjectKey(target.subjectId))
    .where('purpose', '=', target.purpose)
    .execute();
}

async function sealedAt(database: TestDatabase, seq: number): Promise<string | null> {
  return (await rowAt(database, seq)).sealed;
}

async function setSealed(database: TestDatabase, seq: number, sealed: string | null): Promise<void> {
  await database.db.updateTable(LEDGER).set({ sealed }).where('seq', '=', seq).execute();
}

// S10: what the ledger answers from besides the hashed entries — the current state
// (mayProcess, current, subjectsWithConsent), sealed evidence (history), the lookups (history,
// receipts, replay detection) — is reconciled with the log by verify().
describe.each(testEngines())(
  'derived tables reconciled with the log on $engine (S10, hostile case 6)',
  (engine) => {
    let database: TestDatabase | undefined;
    afterEach(async () => {
      await database?.destroy();
      database = undefined;
    });

    it('a ledger used every lawful way verifies: evidence, renewal, withdrawal, GPC, expiry, imports out of order, shredding, a clock behind', async () => {
      const { database: db, ledger, clock } = await open(engine, { signEvery: { appends: 3 } });
      database = db;
      const ip = { evidence: { ip: '203.0.113.7' } };
      await ledger.record(grant('ann', 'newsletter', ip));
      clock.set('2025-05-02T08:00:00Z');
      expect((await ledger.record(grant('ann', 'newsletter', ip))).renewal).toBe(true);
      await ledger.withdraw('ann', 'newsletter', { evidence: { ip: '198.51.100.9' } });
      await ledger.record(grant('ann', 'audience-measurement', ip));
      // GPC: a refusal; a grant given after it, which a later signal leaves in force as a
      // conflict (logged once); a conflict overridden.
      await ledger.applyGpc('bob', '1');
      for (const subject of ['cat', 'dan']) {
        await ledger.applyGpc(subject, '1');
        await ledger.record(grant(subject, 'targeted-advertising'));
        expect((await ledger.applyGpc(subject, '1')).conflicts).toHaveLength(1);
        await ledger.applyGpc(subject, '1');
      }
      await ledger.applyGpc('dan', '1', { override: true, evidence: { ip: '192.0.2.1' } });
      // Imports: the newer decision first; the older one is logged but does not replace it.
      await ledger.import([
        grant('eve', 'newsletter', {
          source: 'import',
          method: 'import',
          eventId: 'crm-2',
          at: '2025-04-01T00:00:00Z',
          ...ip,
        }),
      ]);
      await ledger.import([
        {
          subjectId: 'eve',
          purpose: 'newsletter',
          state: 'refused',
          source: 'import',
          method: 'import',
          eventId: 'crm-1',
          at: '2025-03-01T00:00:00Z',
        },
      ]);
      expect(await ledger.mayProcess('eve', 'newsletter')).toBe(true);
      // Expiry: every grant still in force lapses, the one with a GPC conflict included.
      clock.set('2025-12-01T00:00:00Z');
      expect(await ledger.expireDue()).toBeGreaterThanOrEqual(3);
      // Shredding erases evidence and state; the subject may decide again, an old import too.
      await ledger.shredSubject('ann');
      await ledger.record(grant('ann', 'newsletter', ip));
      await ledger.import([
        grant('ann', 'audience-measurement', {
          source: 'import',
          method: 'import',
          at: '2025-01-01T00:00:00Z',
        }),
      ]);
      await ledger.import([
        { ...grant('ann', 'newsletter', { source: 'import', method: 'import', at: '2025-01-02T00:00:00Z' }) },
      ]);
      // A second instance whose clock is behind withdraws after a grant yet dates it earlier.
      await ledger.record(grant('gus', 'newsletter'));
      const behind = createConsentLedger({
        db: db.db,
        policy: testPolicy,
        clock: fixedClock('2025-11-30T23:59:59Z'),
      });
      await behind.withdraw('gus', 'newsletter');
      expect(await ledger.verify()).toMatchObject({ ok: true });
      expect(await behind.verify()).toMatchObject({ ok: true });
      // All indexed, then not (a tail behind the last checkpoint).
      await ledger.record(grant('hal', 'newsletter'));
      expect(await ledger.verify()).toMatchObject({ ok: true });
    });

    it('decisions, expiries and shreddings recorded while verify() runs are not reported as tampering', async () => {
      const { database: db, ledger, clock } = await open(engine);
      database = db;
      // Many pages of entries (a scan far longer than a few writes), subjects spread over them.
      await ledger.import(
        Array.from({ length: 12000 }, (_, i) =>
          grant(`u${i % 1500}`, purposes[i % 3] as string, {
            source: 'import',
            method: 'import',
            at: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
            ...(i % 7 === 0 ? { evidence: { ip: '203.0.113.7' } } : {}),
          }),
        ),
        { batchSize: 2000 },
      );
      // Writes race a whole scan: on a loaded machine the first round can outlast it, so the
      // race runs again (over a longer ledger) until some writes committed while a scan ran.
      let writtenMeanwhile = 0;
      for (let attempt = 0; attempt < 3 && writtenMeanwhile === 0; attempt++) {
        let verified = false;
        const running = ledger.verify().finally(() => {
          verified = true;
        });
        const writes = (async () => {
          for (let i = 0; i < 30; i++) {
            await ledger.withdraw(`u${i * 37 + attempt}`, purposes[(i * 37) % 3] as string);
            await ledger.record(grant(`late-${attempt}-${i}`));
            if (i % 10 === 5) await ledger.shredSubject(`u${i * 7 + attempt}`);
            // Counted once committed, and only while the scan has not finished.
            if (!verified) writtenMeanwhile++;
          }
          clock.set(`2025-12-0${attempt + 1}T00:00:00Z`);
          await ledger.expireDue({ batchSize: 200 });
        })();
        const [result] = await Promise.all([running, writes]);
        expect(result).toMatchObject({ ok: true });
      }
      // Writes committed while the scan ran (on every engine, most of the 30 rounds).
      expect(writtenMeanwhile).toBeGreaterThan(0);
      expect(await ledger.verify()).toMatchObject({ ok: true });
    });

    describe('the current state', () => {
      it('catches a state row edited to grant what the subject refused', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        await seed(ledger, 6);
        const refused = await ledger.record({ ...grant('ann', 'targeted-advertising'), state: 'refused' });
        await setState(
          db,
          ledger,
          { subjectId: 'ann', purpose: 'targeted-advertising' },
          { state: 'granted' },
        );
        expect(await ledger.mayProcess('ann', 'targeted-advertising')).toBe(true);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: refused.seq,
          reason: expect.stringMatching(/state "granted" but entry \d+ says "refused"/),
        });
      });

      it('catches a state row edited in its notice, dates or source', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        await ledger.record(grant('ann'));
        const row = await stateRow(db, ledger, 'ann', 'newsletter');
        for (const [column, value] of [
          ['expires_at', '2099-01-01T00:00:00.000Z'],
          ['notice_hash', '0'.repeat(64)],
          ['decided_at', '2025-05-02T08:00:00.000Z'],
          ['source', 'form'],
        ] as const) {
          await setState(db, ledger, { subjectId: 'ann', purpose: 'newsletter' }, { [column]: value });
          expect(await ledger.verify()).toMatchObject({
            ok: false,
            reason: expect.stringContaining(`says ${column}`),
          });
          await setState(db, ledger, { subjectId: 'ann', purpose: 'newsletter' }, { [column]: row[column] });
          expect((await ledger.verify()).ok).toBe(true);
        }
      });

      it('catches a state row given another subject id (subjectsWithConsent would hand it out)', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        await ledger.record(grant('ann'));
        await setState(db, ledger, { subjectId: 'ann', purpose: 'newsletter' }, { subject_id: 'mallory' });
        const ids: string[] = [];
        for await (const id of ledger.subjectsWithConsent('newsletter')) ids.push(id);
        expect(ids).toEqual(['mallory']);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          reason: expect.stringMatching(/subject id/),
        });
      });

      it('catches a state row rolled back to an earlier grant, every column as the grant gave it', async () => {
        const { database: db, ledger, clock } = await open(engine);
        database = db;
        const granted = await ledger.record(grant('ann'));
        clock.set('2025-05-02T08:00:00Z');
        const withdrawn = await ledger.withdraw('ann', 'newsletter');
        await setState(
          db,
          ledger,
          { subjectId: 'ann', purpose: 'newsletter' },
          {
            state: 'granted',
            event_id: granted.eventId,
            seq: granted.seq,
            decided_at: granted.at,
            expires_at: granted.expiresAt,
            source: 'banner',
          },
        );
        expect(await ledger.mayProcess('ann', 'newsletter')).toBe(true);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: withdrawn.seq,
          reason: expect.stringMatching(/rolled back/),
        });
      });

      it('catches a state row without an entry: forged for a subject who never decided', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        await seed(ledger, 4);
        await ledger.record(grant('ann'));
        const template = await stateRow(db, ledger, 'ann', 'newsletter');
        const mallory = {
          ...template,
          subject_id: 'mallory',
          subject_key: await ledger.subjectKey('mallory'),
        };
        await db.db.insertInto(STATE).values(mallory).execute();
        expect(await ledger.mayProcess('mallory', 'newsletter')).toBe(true);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: Number(template.seq),
          reason: expect.stringMatching(/another subject or purpose/),
        });
        await setState(db, ledger, { subjectId: 'mallory', purpose: 'newsletter' }, { seq: 1_000_000 });
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: 1_000_000,
          reason: expect.stringMatching(/state row without an entry/),
        });
      });

      it('catches a deleted state row (its evidence key gone without a shredding)', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        const refused = await ledger.record({ ...grant('ann'), state: 'refused' });
        await seed(ledger, 3);
        await db.db
          .deleteFrom(STATE)
          .where('subject_key', '=', await ledger.subjectKey('ann'))
          .execute();
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: refused.seq,
          reason: expect.stringMatching(/no current-state row/),
        });
      });

      it('catches a state row that outlived the shredding of its subject', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        await ledger.record(grant('ann', 'newsletter', { evidence: { ip: '203.0.113.7' } }));
        const saved = await stateRow(db, ledger, 'ann', 'newsletter');
        const shredded = await ledger.shredSubject('ann');
        expect((await ledger.verify()).ok).toBe(true);
        await db.db.insertInto(STATE).values(saved).execute();
        expect(await ledger.mayProcess('ann', 'newsletter')).toBe(true);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: shredded.seq,
          reason: expect.stringMatching(/outlived its shredding/),
        });
      });

      it('catches a GPC conflict flag cleared, and one set that the ledger never logged', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        // A grant given after a GPC refusal, then the signal again: a conflict, the grant kept.
        await ledger.applyGpc('cat', '1');
        await ledger.record(grant('cat', 'targeted-advertising'));
        expect((await ledger.applyGpc('cat', '1')).conflicts).toHaveLength(1);
        await ledger.record(grant('dan', 'targeted-advertising'));
        expect((await ledger.verify()).ok).toBe(true);
        await setState(
          db,
          ledger,
          { subjectId: 'cat', purpose: 'targeted-advertising' },
          { gpc_conflict: 0 },
        );
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          reason: expect.stringMatching(/GPC conflict logged/),
        });
        await setState(
          db,
          ledger,
          { subjectId: 'cat', purpose: 'targeted-advertising' },
          { gpc_conflict: 1 },
        );
        await setState(
          db,
          ledger,
          { subjectId: 'dan', purpose: 'targeted-advertising' },
          { gpc_conflict: 1 },
        );
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          reason: expect.stringMatching(/flags a GPC conflict the ledger never logged/),
        });
      });
    });

    describe('sealed evidence', () => {
      it('catches evidence swapped between two decisions, replaced, or erased without a shredding', async () => {
        const { database: db, ledger, clock } = await open(engine);
        database = db;
        const granted = await ledger.record(grant('ann', 'newsletter', { evidence: { ip: '203.0.113.7' } }));
        clock.set('2025-05-02T08:00:00Z');
        const withdrawn = await ledger.withdraw('ann', 'newsletter', { evidence: { ip: '198.51.100.9' } });
        const [a, b] = [await sealedAt(db, granted.seq), await sealedAt(db, withdrawn.seq)];
        await setSealed(db, granted.seq, b);
        await setSealed(db, withdrawn.seq, a);
        expect((await ledger.history('ann')).map((entry) => entry.evidence)).toEqual([
          { ip: '198.51.100.0' },
          { ip: '203.0.113.0' },
        ]);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: granted.seq,
          reason: expect.stringMatching(
            /sealed evidence of entry \d+ is not the evidence it was recorded with/,
          ),
        });
        await setSealed(db, withdrawn.seq, b);
        await setSealed(db, granted.seq, 'v1.garbage.x.y');
        expect(await ledger.verify()).toMatchObject({ ok: false, firstBadSeq: granted.seq });
        await setSealed(db, granted.seq, null);
        expect((await ledger.history('ann'))[0]?.evidence).toBe('unavailable');
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: granted.seq,
          reason: expect.stringMatching(/erased, but its subject was never shredded/),
        });
        // Erased by shredding, it verifies.
        await ledger.shredSubject('ann');
        expect(await sealedAt(db, withdrawn.seq)).toBeNull();
        expect(await ledger.verify()).toMatchObject({ ok: true });
      });

      it('catches sealed evidence put on an entry recorded without any', async () => {
        const { database: db, ledger } = await open(engine);
        database = db;
        const sealed = await ledger.record(grant('ann', 'newsletter', { evidence: { ip: '203.0.113.7' } }));
        const bare = await ledger.record(grant('bob'));
        await setSealed(db, bare.seq, await sealedAt(db, sealed.seq));
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: bare.seq,
          reason: expect.stringMatching(/sealed evidence it was not recorded with/),
        });
      });
    });

    describe('the notice table', () => {
      // The ledger publishes testPolicy's notices when it starts; then u1 grants the newsletter
      // and an edited newsletter text is published: u1 must consent again.
      async function republished(engine: TestEngine) {
        const opened = await open(engine);
        database = opened.database;
        await opened.ledger.record(grant('u1'));
        await opened.ledger.publishNotice(editedPolicy('2024-01-01'));
        expect(await opened.ledger.mayProcess('u1', 'newsletter')).toBe(false);
        const rows = await opened.database.db
          .selectFrom(NOTICES)
          .selectAll()
          .where('purpose', '=', 'newsletter')
          .orderBy('seq')
          .execute();
        type NoticeRow = { version: string; hash: string; seq: number | string } & Record<string, unknown>;
        const [old, current] = rows as [NoticeRow, NoticeRow];
        expect(current.version).toBe('2024-01-01');
        return { ...opened, old, current };
      }

      /** The ledger's answer once it has reloaded the notice table (at most every 5 s). */
      async function mayProcessAfterReload(opened: Awaited<ReturnType<typeof open>>) {
        opened.clock.advance(6000);
        return opened.ledger.mayProcess('u1', 'newsletter');
      }

      const setNotice = (db: TestDatabase, version: string, values: Record<string, unknown>) =>
        db.db
          .updateTable(NOTICES)
          .set(values)
          .where('purpose', '=', 'newsletter')
          .where('version', '=', version)
          .execute();

      it('verifies a ledger whose notices were published in several versions, by several instances', async () => {
        const { database: db, ledger, clock } = await open(engine);
        database = db;
        await ledger.record(grant('u1'));
        await ledger.publishNotice(editedPolicy('2024-01-01'));
        await ledger.publishNotice(editedPolicy('2024-01-01')); // unchanged: nothing published
        await ledger.record(grant('u1'));
        clock.set('2025-05-02T08:00:00Z');
        const third = definePolicy({
          ...policyInput,
          version: '2025-01-01',
          purposes: (policyInput.purposes ?? []).map((purpose) =>
            purpose.id === 'audience-measurement' || purpose.id === 'newsletter'
              ? { ...purpose, description: `${purpose.description} Kept for a year.` }
              : purpose,
          ),
        });
        expect(await ledger.publishNotice(third)).toMatchObject({
          changed: ['newsletter', 'audience-measurement'],
        });
        // Another instance starting on a newer policy publishes at start-up.
        const other = createConsentLedger({
          db: db.db,
          policy: definePolicy({ ...policyInput, version: '2025-06-01', language: 'fr' }),
          clock: fixedClock('2025-05-03T08:00:00Z'),
        });
        await other.record(grant('u2', 'targeted-advertising'));
        expect(await db.db.selectFrom(NOTICES).selectAll().execute()).toHaveLength(8);
        expect(await ledger.verify()).toMatchObject({ ok: true });
        expect(await other.verify()).toMatchObject({ ok: true });
      });

      it('catches the current notice edited back to the superseded hash (mayProcess granting again)', async () => {
        const opened = await republished(engine);
        await setNotice(opened.database, opened.current.version, { hash: opened.old.hash });
        expect(await mayProcessAfterReload(opened)).toBe(true);
        expect(await opened.ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: Number(opened.current.seq),
          reason: expect.stringMatching(/says hash "[0-9a-f]{64}" but entry \d+, which published it, says/),
        });
      });

      it('catches a notice row edited in its language, publication instant or content', async () => {
        const { database: db, ledger, current } = await republished(engine);
        for (const [column, value, reason] of [
          ['language', 'fr', /says language "fr" but entry \d+, which published it, says "en"/],
          ['published_at', '2025-01-01T00:00:00.000Z', /says published_at/],
          ['content', '{"purpose":"newsletter"}', /content .* does not hash to its notice hash/],
        ] as const) {
          await setNotice(db, current.version, { [column]: value });
          expect(await ledger.verify()).toMatchObject({
            ok: false,
            firstBadSeq: Number(current.seq),
            reason: expect.stringMatching(reason),
          });
          await setNotice(db, current.version, { [column]: current[column] });
          expect(await ledger.verify()).toMatchObject({ ok: true });
        }
      });

      it('catches notice rows whose seqs were swapped (the superseded text made current again)', async () => {
        const opened = await republished(engine);
        const { old, current } = opened;
        await setNotice(opened.database, old.version, { seq: current.seq });
        await setNotice(opened.database, current.version, { seq: old.seq });
        expect(await mayProcessAfterReload(opened)).toBe(true);
        expect(await opened.ledger.verify()).toMatchObject({
          ok: false,
          reason: expect.stringMatching(
            /says version "2018-05-07" but entry \d+, which published it, says "2024-01-01"/,
          ),
        });
        // A row moved onto an entry that published nothing.
        await setNotice(opened.database, old.version, { seq: old.seq });
        await setNotice(opened.database, current.version, { seq: 3 });
        expect(await opened.ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: 3,
          reason: expect.stringMatching(/points at entry 3, which did not publish it/),
        });
      });

      it('catches a deleted notice row', async () => {
        const opened = await republished(engine);
        await opened.database.db
          .deleteFrom(NOTICES)
          .where('purpose', '=', 'newsletter')
          .where('version', '=', opened.current.version)
          .execute();
        expect(await mayProcessAfterReload(opened)).toBe(true);
        expect(await opened.ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: Number(opened.current.seq),
          reason: expect.stringMatching(
            /published notice version "2024-01-01" of "newsletter", which has no row/,
          ),
        });
      });

      it('catches an extra notice row: forged past the end of the log, or copying a publication', async () => {
        const opened = await republished(engine);
        const { old, current } = opened;
        await opened.database.db
          .insertInto(NOTICES)
          .values({ ...old, version: '2099-01-01', seq: 1_000_000 })
          .execute();
        expect(await mayProcessAfterReload(opened)).toBe(true);
        expect(await opened.ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: 1_000_000,
          reason: expect.stringMatching(/points at entry 1000000, which did not publish it/),
        });
        await opened.database.db
          .updateTable(NOTICES)
          .set({ ...current, version: '2099-01-01' })
          .where('version', '=', '2099-01-01')
          .execute();
        expect(await opened.ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: Number(current.seq),
          reason: expect.stringMatching(/points at entry \d+, which did not publish it/),
        });
      });
    });

    describe('the subject and event lookups', () => {
      // Every append checkpoints, so every entry is in the lookups.
      const indexed = { signEvery: { appends: 1 } };

      it('catches entries deleted from the subject lookup (an emptied Art 15 history)', async () => {
        const { database: db, ledger } = await open(engine, indexed);
        database = db;
        const first = await ledger.record(grant('ann'));
        await ledger.withdraw('ann', 'newsletter');
        await ledger.record(grant('bob'));
        await db.db
          .deleteFrom(SUBJECT_IX)
          .where('subject_key', '=', await ledger.subjectKey('ann'))
          .execute();
        expect(await ledger.history('ann')).toEqual([]);
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: first.seq,
          reason: expect.stringMatching(/missing from the subject lookup/),
        });
      });

      it('catches an entry deleted from the event lookup, and the replay it lets in', async () => {
        const { database: db, ledger } = await open(engine, indexed);
        database = db;
        const imported = grant('ann', 'newsletter', {
          source: 'import',
          method: 'import',
          eventId: 'crm-123',
          at: '2025-01-01T00:00:00Z',
        });
        await ledger.import([imported]);
        await ledger.withdraw('ann', 'newsletter');
        const original = (await ledger.history('ann'))[0]?.seq as number;
        await db.db.deleteFrom(EVENT_IX).where('event_id', '=', 'crm-123').execute();
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: original,
          reason: expect.stringMatching(/missing from the event lookup/),
        });
        await ledger.import([imported]);
        const replay = (await ledger.history('ann')).at(-1)?.seq as number;
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: replay,
          reason: `event id crm-123 appears twice in the ledger (entries ${original} and ${replay}): a replayed event`,
        });
      });

      it('catches a misfiled event and a forged lookup row', async () => {
        const { database: db, ledger } = await open(engine, indexed);
        database = db;
        const a = await ledger.record(grant('ann'));
        const b = await ledger.record(grant('bob'));
        await db.db.updateTable(EVENT_IX).set({ seq: b.seq }).where('event_id', '=', a.eventId).execute();
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          firstBadSeq: a.seq,
          reason: expect.stringMatching(/misfiled/),
        });
        await db.db.updateTable(EVENT_IX).set({ seq: a.seq }).where('event_id', '=', a.eventId).execute();
        expect((await ledger.verify()).ok).toBe(true);
        await db.db
          .insertInto(SUBJECT_IX)
          .values({ tenant: ledger.tenant, subject_key: await ledger.subjectKey('ann'), seq: b.seq })
          .execute();
        expect(await ledger.verify()).toMatchObject({
          ok: false,
          reason: expect.stringMatching(/subject lookup holds \d+ rows for \d+ indexed entries/),
        });
      });
    });
  },
);

describe('canonical entries (the check verify() makes of every entry)', () => {
  const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }));
  const decision = fc.record(
    {
      v: fc.constant(1),
      kind: fc.constant('decision'),
      seq: fc.nat(),
      id: text,
      tenant: text,
      subject: text,
      purpose: text,
      state: fc.constantFrom('granted', 'refused', 'withdrawn'),
      renewal: fc.boolean(),
      notice: fc.record({ id: text, version: text, hash: text, language: text }),
      source: text,
      method: text,
      jurisdiction: text,
      at: text,
      expiresAt: text,
      evidence: text,
      age: fc.record({ threshold: fc.integer({ min: 13, max: 16 }), belowThreshold: fc.boolean() }),
      extra: fc.oneof(text, fc.integer(), fc.constant(null)),
    },
    {
      requiredKeys: ['v', 'kind', 'seq', 'id', 'tenant', 'subject', 'purpose', 'state', 'renewal', 'notice'],
    },
  );
  // Canonical, key order as built, indented, one value retyped.
  const writing = fc.constantFrom('canonical', 'insertion', 'spaced', 'retyped');

  it('accepts exactly the texts that are canonicalJson of what they parse to', () => {
    fc.assert(
      fc.property(decision, writing, (entry, how) => {
        const value: Record<string, unknown> =
          how === 'retyped' ? { ...entry, seq: String(entry.seq) } : entry;
        const written =
          how === 'insertion'
            ? JSON.stringify(value)
            : how === 'spaced'
              ? JSON.stringify(JSON.parse(canonicalJson(value as JsonValue)), null, 1)
              : canonicalJson(value as JsonValue);
        const parsed = JSON.parse(written) as Record<string, JsonValue>;
        expect(isCanonicalEntry(written, parsed)).toBe(canonicalJson(parsed) === written);
        if (how === 'canonical') expect(isCanonicalEntry(written, parsed)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('ledger properties (fast-check, SQLite)', () => {
  const sqlite = testEngines().find((engine) => engine.engine === 'sqlite') as TestEngine;
  const decision = fc.record({
    subject: fc.integer({ min: 0, max: 5 }),
    purpose: fc.constantFrom(...purposes),
    state: fc.constantFrom(...states),
  });
  const mutation = fc.constantFrom('edit', 'delete', 'swap', 'append', 'truncate');

  it('any sequence of decisions verifies; any single mutation is caught', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(decision, { minLength: 2, maxLength: 14 }),
        mutation,
        fc.nat(),
        async (decisions, kind, pick) => {
          const { database: db, ledger } = await open(sqlite);
          try {
            for (const d of decisions) {
              await ledger.record({
                subjectId: `p${d.subject}`,
                purpose: d.purpose,
                state: d.state,
                source: 'form',
                method: 'form-submit',
              });
            }
            expect((await ledger.verify()).ok).toBe(true);
            const saved = await ledger.treeHead();
            const size = saved.treeSize;
            const at = pick % size;
            switch (kind) {
              case 'edit': {
                const row = await rowAt(db, at);
                await db.db
                  .updateTable(LEDGER)
                  .set({ entry: row.entry.replace('"v":1', '"v":2') })
                  .where('seq', '=', at)
                  .execute();
                break;
              }
              case 'delete':
                await db.db.deleteFrom(LEDGER).where('seq', '=', at).execute();
                break;
              case 'swap':
                await swapRows(db, at, (at + 1 + (pick % (size - 1))) % size);
                break;
              case 'append': {
                const row = await rowAt(db, size - 1);
                await db.db
                  .insertInto(LEDGER)
                  .values({ ...row, id: Number(row.id) + 1, seq: size, event_id: 'extra' })
                  .execute();
                break;
              }
              case 'truncate':
                await db.db.deleteFrom(LEDGER).where('seq', '>=', Math.max(at, 1)).execute();
                await db.db
                  .updateTable(HEAD)
                  .set({ size: Math.max(at, 1) })
                  .execute();
                break;
            }
            expect((await ledger.verify({ head: saved })).ok).toBe(false);
          } finally {
            await db?.destroy();
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
