import { fixedClock } from '@privacykit/core';
import { testEngines } from '@privacykit/core/testing';
import type { TestDatabase, TestEngine } from '@privacykit/core/testing';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { migratedDatabase, testPolicy } from './test-fixtures.js';
import { createConsentLedger } from './ledger.js';
import type { ConsentLedger, ConsentLedgerOptions } from './ledger.js';
import { leafHash } from './merkle.js';
import { verifyConsistencyProof } from './proofs.js';

const LEDGER = 'privacykit_consent_ledger';
const HEAD = 'privacykit_consent_head';
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

/** What an attacker saves to roll back to later: the ledger's size and the head row. */
async function snapshotOf(database: TestDatabase) {
  const head = await database.db
    .selectFrom(HEAD)
    .select(['size', 'frontier', 'signed_size', 'signed_at', 'indexed_size'])
    .executeTakeFirstOrThrow();
  return { size: await ledgerSize(database), head };
}

/** Rolls the ledger back to a snapshot: the attacker deletes the tail and restores the head row. */
async function rollBack(
  database: TestDatabase,
  snapshot: Awaited<ReturnType<typeof snapshotOf>>,
): Promise<void> {
  const { size } = snapshot;
  await database.db.deleteFrom(LEDGER).where('seq', '>=', size).execute();
  await database.db.deleteFrom('privacykit_consent_tree_heads').where('size', '>', size).execute();
  await database.db.updateTable(HEAD).set(snapshot.head).execute();
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
    // …and a careful rollback of the head row too is caught against the saved head.
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
    const result = await ledger.verify({
      head: { ...head, rootHash: head.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0')) },
    });
    expect(result.ok).toBe(false);
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
