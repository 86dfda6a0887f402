import { fixedClock } from '@privacykit/core';
import { migrate, openDatabase, sqliteConnectionOf } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { Migrator } from 'kysely';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabaseKeyStore, evidenceKeyStoreMigrations } from './key-store.js';
import type { EvidenceKeyStore } from './key-store.js';
import { createConsentLedger } from './ledger.js';
import { consentMigrations } from './migrations.js';
import { codeOf, grant, migratedDatabase, testPolicy } from './test-fixtures.js';

const clock = fixedClock('2025-03-01T12:00:00.000Z');
const evidence = { ip: '198.51.100.23', userAgent: 'Mozilla/5.0 (key store test)' };
const TABLES = [
  'privacykit_consent_ledger',
  'privacykit_consent_head',
  'privacykit_consent_tree_heads',
  'privacykit_consent_state',
  'privacykit_consent_subject_ix',
  'privacykit_consent_event_ix',
  'privacykit_consent_notices',
];

type Row = Record<string, unknown>;

/** A logical backup of the ledger's tables (what pg_dump or mysqldump would keep). */
async function backup(db: Kysely<any>): Promise<Map<string, Row[]>> {
  const copy = new Map<string, Row[]>();
  for (const table of TABLES) copy.set(table, await db.selectFrom(table).selectAll().execute());
  return copy;
}

/** Puts a backup back: every table emptied, then refilled with the backed-up rows. */
async function restore(db: Kysely<any>, copy: Map<string, Row[]>): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const [table, rows] of copy) {
      await trx.deleteFrom(table).execute();
      for (let i = 0; i < rows.length; i += 50)
        await trx
          .insertInto(table)
          .values(rows.slice(i, i + 50))
          .execute();
    }
  });
}

async function sealedCount(db: Kysely<any>): Promise<number> {
  const rows = await db
    .selectFrom('privacykit_consent_ledger')
    .select('id')
    .where('sealed', 'is not', null)
    .execute();
  return rows.length;
}

async function ledgerSize(db: Kysely<any>): Promise<number> {
  return (await db.selectFrom('privacykit_consent_ledger').select('id').execute()).length;
}

describe.each(testEngines())('evidence key store on $engine (S11, hostile case 21)', (engine) => {
  let data: TestDatabase;
  let keyDb: TestDatabase;
  let store: EvidenceKeyStore;

  beforeAll(async () => {
    data = await migratedDatabase(engine);
    keyDb = await createTestDatabase(engine);
    await migrate(keyDb.db, [evidenceKeyStoreMigrations]);
    store = createDatabaseKeyStore({ db: keyDb.db });
  });
  afterAll(async () => {
    await data?.destroy();
    await keyDb?.destroy();
  });

  const storedKeys = async (subjectKey?: string) => {
    let query = keyDb.db
      .selectFrom('privacykit_consent_evidence_keys')
      .select(['subject_key', 'purpose', 'tenant']);
    if (subjectKey) query = query.where('subject_key', '=', subjectKey);
    return query.execute();
  };

  it('keeps the keys in the store, none in the state rows, and opens the evidence with them', async () => {
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    await ledger.record(grant('ks-ada', 'newsletter', { evidence }));
    await ledger.record(grant('ks-ada', 'newsletter', { evidence: { ip: '198.51.100.99' } }));
    await ledger.withdraw('ks-ada', 'newsletter', { evidence: { ip: '198.51.100.7' } });
    await ledger.import([
      grant('ks-ada', 'audience-measurement', { source: 'import', method: 'import', evidence }),
      grant('ks-bob', 'newsletter', { source: 'import', method: 'import', evidence }),
    ]);
    await ledger.applyGpc('ks-ada', '1', { evidence });
    const subjectKey = await ledger.subjectKey('ks-ada');
    // One key per subject × purpose, each decision of the pair sealed under it.
    const keys = await storedKeys(subjectKey);
    expect(keys.map((k) => k.purpose).sort()).toEqual([
      'audience-measurement',
      'newsletter',
      'targeted-advertising',
    ]);
    expect(keys.every((k) => k.tenant === ledger.tenant)).toBe(true);
    const inState = await data.db
      .selectFrom('privacykit_consent_state')
      .select('key_material')
      .where('key_material', 'is not', null)
      .execute();
    expect(inState).toEqual([]);
    const history = await ledger.history('ks-ada');
    const opened = history.filter((entry) => entry.kind === 'decision').map((entry) => entry.evidence);
    expect(opened).toEqual([
      { ip: '198.51.100.0' },
      { ip: '198.51.100.0' },
      { ip: '198.51.100.0' },
      { ip: '198.51.100.0' },
      { ip: '198.51.100.0' },
    ]);
    expect((await ledger.history('ks-bob'))[0]?.evidence).toEqual({ ip: '198.51.100.0' });
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('a backup restored after a shredding gives back ciphertext nobody can open, and the ledger still verifies', async () => {
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    await ledger.record(grant('ks-carol', 'newsletter', { evidence }));
    await ledger.record(grant('ks-carol', 'audience-measurement', { evidence }));
    await ledger.record(grant('ks-dan', 'newsletter', { evidence }));
    const carol = await ledger.subjectKey('ks-carol');
    const taken = await backup(data.db);
    const sealedBefore = await sealedCount(data.db);

    await ledger.shredSubject('ks-carol');
    expect(await storedKeys(carol)).toEqual([]);
    expect(
      (await ledger.history('ks-carol')).filter((e) => e.evidence !== undefined).map((e) => e.evidence),
    ).toEqual(['unavailable', 'unavailable']);

    await restore(data.db, taken);
    // The restored database holds the ciphertext again, and nothing that opens it.
    expect(await sealedCount(data.db)).toBe(sealedBefore);
    const restored = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    const history = await restored.history('ks-carol');
    expect(history.map((e) => e.evidence)).toEqual(['unavailable', 'unavailable']);
    // Another subject of the same backup is untouched.
    expect((await restored.history('ks-dan'))[0]?.evidence).toEqual({ ip: '198.51.100.0' });
    expect(await restored.verify()).toMatchObject({ ok: true });
  });

  it('without a key store, the same restore opens the shredded evidence again (why the store exists)', async () => {
    const own = await migratedDatabase(engine);
    try {
      const ledger = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await ledger.record(grant('ks-erin', 'newsletter', { evidence }));
      const taken = await backup(own.db);
      await ledger.shredSubject('ks-erin');
      expect((await ledger.history('ks-erin'))[0]?.evidence).toBe('unavailable');
      await restore(own.db, taken);
      const restored = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      expect((await restored.history('ks-erin'))[0]?.evidence).toEqual({ ip: '198.51.100.0' });
    } finally {
      await own.destroy();
    }
  });

  it('keeps using a key already in a state row for its pair; new pairs get theirs from the store', async () => {
    const own = await migratedDatabase(engine);
    try {
      const before = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await before.record(grant('ks-fay', 'newsletter', { evidence }));
      const after = createConsentLedger({ db: own.db, policy: testPolicy, clock, evidenceKeys: store });
      await after.record(grant('ks-fay', 'newsletter', { evidence: { ip: '203.0.113.5' } }));
      await after.record(grant('ks-fay', 'audience-measurement', { evidence }));
      const fay = await after.subjectKey('ks-fay');
      expect((await storedKeys(fay)).map((k) => k.purpose)).toEqual(['audience-measurement']);
      expect((await after.history('ks-fay')).map((e) => e.evidence)).toEqual([
        { ip: '198.51.100.0' },
        { ip: '203.0.113.0' },
        { ip: '198.51.100.0' },
      ]);
      // Shredding destroys both kinds of key.
      await after.shredSubject('ks-fay');
      expect(await storedKeys(fay)).toEqual([]);
      const inState = await own.db
        .selectFrom('privacykit_consent_state')
        .select('key_material')
        .where('subject_key', '=', fay)
        .execute();
      expect(inState).toEqual([]);
    } finally {
      await own.destroy();
    }
  });

  it('a store that fails stops grants, imports, histories and shreddings with consent/key-store-failed, writing nothing; refusals and withdrawals go on without their evidence', async () => {
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    await ledger.record(grant('ks-gus', 'newsletter', { evidence }));
    const down = new Error('connect ECONNREFUSED 127.0.0.1:8200');
    let failing = true;
    const flaky: EvidenceKeyStore = {
      get: (tenant, pairs) => (failing ? Promise.reject(down) : store.get(tenant, pairs)),
      obtain: (tenant, pairs) => (failing ? Promise.reject(down) : store.obtain(tenant, pairs)),
      destroy: (tenant, subjectKey) => (failing ? Promise.reject(down) : store.destroy(tenant, subjectKey)),
    };
    const shaky = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: flaky });
    const size = await ledgerSize(data.db);
    expect(await codeOf(shaky.record(grant('ks-gus', 'audience-measurement', { evidence })))).toBe(
      'consent/key-store-failed',
    );
    expect(
      await codeOf(
        shaky.import([grant('ks-hal', 'newsletter', { source: 'import', method: 'import', evidence })]),
      ),
    ).toBe('consent/key-store-failed');
    expect(await codeOf(shaky.history('ks-gus'))).toBe('consent/key-store-failed');
    expect(await codeOf(shaky.shredSubject('ks-gus'))).toBe('consent/key-store-failed');
    expect(await ledgerSize(data.db)).toBe(size);
    expect(await shaky.mayProcess('ks-gus', 'newsletter')).toBe(true);
    // A decision that seals nothing needs no key, so the store's outage does not stop it.
    await shaky.record(grant('ks-gus', 'audience-measurement'));
    // Nor does it stop saying no (Art 7(3), GPC): recorded, without the evidence it cannot seal.
    await shaky.withdraw('ks-gus', 'audience-measurement', { evidence });
    await shaky.record({ ...grant('ks-gus', 'targeted-advertising', { evidence }), state: 'refused' });
    expect((await shaky.applyGpc('ks-gus', '1', { evidence })).unchanged).toEqual(['targeted-advertising']);
    expect(await shaky.mayProcess('ks-gus', 'audience-measurement')).toBe(false);
    expect(await ledgerSize(data.db)).toBe(size + 4);
    failing = false;
    const after = (await shaky.history('ks-gus')).slice(1);
    expect(after.map((entry) => [entry.state, entry.evidence])).toEqual([
      ['granted', undefined],
      ['withdrawn', undefined],
      ['refused', undefined],
      [undefined, undefined],
    ]);
    // Once the store answers, the shredding goes through whole.
    await shaky.shredSubject('ks-gus');
    expect(await storedKeys(await ledger.subjectKey('ks-gus'))).toEqual([]);
    expect(await shaky.mayProcess('ks-gus', 'newsletter')).toBe(false);
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('refuses what is not a key from the store, writing nothing', async () => {
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock });
    const size = await ledgerSize(data.db);
    const answers: unknown[] = [
      [{ subjectKey: 'x', purpose: 'newsletter', key: Buffer.alloc(16) }],
      'not an array',
      [],
    ];
    for (const answer of answers) {
      const odd: EvidenceKeyStore = {
        get: async () => [],
        obtain: async (_tenant, pairs) =>
          (answer === answers[0]
            ? pairs.map((pair) => ({ ...pair, key: Buffer.alloc(16) }))
            : answer) as never,
        destroy: async () => {},
      };
      const shaky = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: odd });
      expect(await codeOf(shaky.record(grant('ks-ivy', 'newsletter', { evidence })))).toBe(
        'consent/key-store-failed',
      );
    }
    expect(await ledgerSize(data.db)).toBe(size);
    expect(await ledger.mayProcess('ks-ivy', 'newsletter')).toBe(false);
    expect(() => createConsentLedger({ db: data.db, policy: testPolicy, evidenceKeys: {} as never })).toThrow(
      expect.objectContaining({ code: 'consent/invalid-options' }),
    );
    // A store in the ledger's own database would protect nothing.
    expect(() =>
      createConsentLedger({
        db: data.db,
        policy: testPolicy,
        evidenceKeys: createDatabaseKeyStore({ db: data.db }),
      }),
    ).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
  });

  it('gives two writers asking at once for a new pair the same key, and keeps tenants apart', async () => {
    const pair = { subjectKey: 'ab'.repeat(32), purpose: 'newsletter' };
    const [one, two] = await Promise.all([store.obtain('t-one', [pair]), store.obtain('t-one', [pair])]);
    expect(one).toHaveLength(1);
    expect(one[0]?.key.length).toBe(32);
    expect(two[0]?.key.equals(one[0]?.key as Buffer)).toBe(true);
    const other = await store.obtain('t-two', [pair]);
    expect(other[0]?.key.equals(one[0]?.key as Buffer)).toBe(false);
    // Purpose ids and subject keys compare exactly (MySQL's default collation would not).
    expect(await store.get('t-one', [{ ...pair, purpose: 'Newsletter' }])).toEqual([]);
    await store.destroy('t-two', pair.subjectKey);
    expect(await store.get('t-two', [pair])).toEqual([]);
    expect((await store.get('t-one', [pair]))[0]?.key.equals(one[0]?.key as Buffer)).toBe(true);
    await store.destroy('t-two', pair.subjectKey); // idempotent
    expect(await codeOf(store.get('t-one', [{ subjectKey: '', purpose: 'x' }]))).toBe(
      'consent/invalid-options',
    );
  });

  it('an import the store fails part-way says how many decisions it recorded before', async () => {
    let calls = 0;
    const tired: EvidenceKeyStore = {
      get: (tenant, pairs) => store.get(tenant, pairs),
      obtain: (tenant, pairs) =>
        ++calls > 1 ? Promise.reject(new Error('quota exceeded')) : store.obtain(tenant, pairs),
      destroy: (tenant, subjectKey) => store.destroy(tenant, subjectKey),
    };
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: tired });
    const size = await ledgerSize(data.db);
    const decisions = Array.from({ length: 30 }, (_, i) =>
      grant(`ks-imp-${i}`, 'newsletter', { source: 'import', method: 'import', evidence }),
    );
    const error = await ledger.import(decisions, { batchSize: 10 }).catch((failure: unknown) => failure);
    expect(error).toMatchObject({ code: 'consent/key-store-failed', details: { imported: 10 } });
    expect(await ledgerSize(data.db)).toBe(size + 10);
  });

  it('a decision whose key was taken just before a shredding of its subject commits under a fresh key, and the shredding leaves no key of the decisions before it', async () => {
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    const other = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    await ledger.record(grant('ks-kim', 'newsletter', { evidence }));
    const kim = await ledger.subjectKey('ks-kim');
    const [before] = await store.get(ledger.tenant, [{ subjectKey: kim, purpose: 'audience-measurement' }]);
    expect(before).toBeUndefined();
    // The shredding lands between the writer's taking its key and its transaction.
    let shreddings = 0;
    const racing: EvidenceKeyStore = {
      get: (tenant, pairs) => store.get(tenant, pairs),
      async obtain(tenant, pairs) {
        const keys = await store.obtain(tenant, pairs);
        if (shreddings++ === 0) await other.shredSubject('ks-kim');
        return keys;
      },
      destroy: (tenant, subjectKey) => store.destroy(tenant, subjectKey),
    };
    const writer = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: racing });
    const taken = await store.get(ledger.tenant, [{ subjectKey: kim, purpose: 'newsletter' }]);
    expect(taken).toHaveLength(1);
    await writer.record(grant('ks-kim', 'audience-measurement', { evidence: { ip: '203.0.113.9' } }));
    expect(shreddings).toBe(2);
    // The decision came after the shredding: its evidence opens, under a key that survived it.
    const history = await ledger.history('ks-kim');
    expect(history.map((entry) => entry.kind)).toEqual(['decision', 'subject-shredded', 'decision']);
    expect(history.map((entry) => entry.evidence)).toEqual(['unavailable', undefined, { ip: '203.0.113.0' }]);
    const keys = await store.get(ledger.tenant, [
      { subjectKey: kim, purpose: 'newsletter' },
      { subjectKey: kim, purpose: 'audience-measurement' },
    ]);
    expect(keys.map((key) => key.purpose)).toEqual(['audience-measurement']);
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it('never calls the store while the ledger holds its append lock (SQLite: no transaction open on the connection)', async () => {
    const connection = sqliteConnectionOf(data.db);
    const seen: boolean[] = [];
    const watched: EvidenceKeyStore = {
      get: (tenant, pairs) => {
        seen.push(Boolean(connection?.inTransaction));
        return store.get(tenant, pairs);
      },
      obtain: (tenant, pairs) => {
        seen.push(Boolean(connection?.inTransaction));
        return store.obtain(tenant, pairs);
      },
      destroy: (tenant, subjectKey) => store.destroy(tenant, subjectKey),
    };
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: watched });
    await ledger.record(grant('ks-lou', 'newsletter', { evidence }));
    await ledger.import([
      grant('ks-lou', 'audience-measurement', { source: 'import', method: 'import', evidence }),
    ]);
    await ledger.applyGpc('ks-lou', '1', { evidence });
    await ledger.history('ks-lou');
    expect(seen.length).toBe(4);
    expect(seen.every((inside) => !inside)).toBe(true);
  });

  it("a store whose destroy() goes through the ledger's own database instance: SQLite's one connection makes the shredding give up after 10 s with consent/key-store-failed, rolled back whole, instead of waiting forever; pooled engines shred", {
    timeout: 60_000,
  }, async () => {
    let destroyed = 0;
    const sameDb: EvidenceKeyStore = {
      get: (tenant, pairs) => store.get(tenant, pairs),
      obtain: (tenant, pairs) => store.obtain(tenant, pairs),
      async destroy(tenant, subjectKey) {
        // A host's own bookkeeping, through the instance it gave the ledger.
        await data.db.selectFrom('privacykit_consent_head').select('tenant').execute();
        await store.destroy(tenant, subjectKey);
        destroyed++;
      },
    };
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: sameDb });
    await ledger.record(grant('ks-nia', 'newsletter', { evidence }));
    const nia = await ledger.subjectKey('ks-nia');
    const size = await ledgerSize(data.db);
    if (engine.engine !== 'sqlite') {
      await ledger.shredSubject('ks-nia');
      expect(destroyed).toBe(1);
      expect((await ledger.history('ks-nia')).map((entry) => entry.kind)).toEqual([
        'decision',
        'subject-shredded',
      ]);
      expect(await storedKeys(nia)).toEqual([]);
      return;
    }
    const error = (await ledger.shredSubject('ks-nia').catch((failure: unknown) => failure)) as Error & {
      code?: string;
    };
    expect(error.code).toBe('consent/key-store-failed');
    expect(error.message).toMatch(/did not finish within 10 s .* database of its own/);
    // Rolled back: no shredding entry, the state row and the sealed evidence are still there.
    expect(await ledgerSize(data.db)).toBe(size);
    const state = await data.db
      .selectFrom('privacykit_consent_state')
      .select('subject_key')
      .where('subject_key', '=', nia)
      .execute();
    expect(state).toHaveLength(1);
    // Once the connection is free the store's call ends, its keys gone (as the message says).
    for (let i = 0; i < 100 && destroyed === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(destroyed).toBe(1);
    expect(await storedKeys(nia)).toEqual([]);
    // A retry through a store of its own finishes the shredding, and the ledger verifies.
    const retry = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    await retry.shredSubject('ks-nia');
    expect((await retry.history('ks-nia')).map((entry) => entry.kind)).toEqual([
      'decision',
      'subject-shredded',
    ]);
    expect(await retry.verify()).toMatchObject({ ok: true });
  });

  it('opens evidence sealed under a state-row key before the store came, and the store-sealed evidence after it', async () => {
    const own = await migratedDatabase(engine);
    try {
      const before = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await before.record(grant('ks-max', 'newsletter', { evidence: { ip: '198.51.100.1' } }));
      const withStore = createConsentLedger({ db: own.db, policy: testPolicy, clock, evidenceKeys: store });
      await withStore.record(grant('ks-max', 'audience-measurement', { evidence: { ip: '192.0.2.1' } }));
      // The pair keeps its state-row key; the new pair's key is the store's.
      await withStore.record(grant('ks-max', 'newsletter', { evidence: { ip: '203.0.113.1' } }));
      expect((await withStore.history('ks-max')).map((entry) => entry.evidence)).toEqual([
        { ip: '198.51.100.0' },
        { ip: '192.0.2.0' },
        { ip: '203.0.113.0' },
      ]);
      expect((await storedKeys(await withStore.subjectKey('ks-max'))).map((k) => k.purpose)).toEqual([
        'audience-measurement',
      ]);
    } finally {
      await own.destroy();
    }
  });

  it('an instance without the store, on a ledger whose keys live in one, shreds nothing and seals no grant; refusals and withdrawals go on without their evidence', async () => {
    const own = await migratedDatabase(engine);
    try {
      // Started before any instance with the store ran: each learns of the store under the lock.
      const started = async () => {
        const ledger = createConsentLedger({ db: own.db, policy: testPolicy, clock });
        expect(await ledger.mayProcess('ks-kim', 'newsletter')).toBe(false);
        return ledger;
      };
      const early = await started();
      const earlyGrant = await started();
      const earlyImport = await started();
      const earlyGpc = await started();
      const withStore = createConsentLedger({ db: own.db, policy: testPolicy, clock, evidenceKeys: store });
      await withStore.record(grant('ks-kim', 'newsletter', { evidence }));
      const subjectKey = await withStore.subjectKey('ks-kim');
      expect(await storedKeys(subjectKey)).toHaveLength(1);
      const size = await ledgerSize(own.db);

      const bare = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      expect(await codeOf(bare.shredSubject('ks-kim'))).toBe('consent/key-store-required');
      expect(await codeOf(early.shredSubject('ks-kim'))).toBe('consent/key-store-required');
      expect(await codeOf(bare.record(grant('ks-kim', 'audience-measurement', { evidence })))).toBe(
        'consent/key-store-required',
      );
      expect(
        await codeOf(
          bare.import([grant('ks-lee', 'newsletter', { source: 'import', method: 'import', evidence })]),
        ),
      ).toBe('consent/key-store-required');
      expect(await codeOf(earlyGrant.record(grant('ks-kim', 'audience-measurement', { evidence })))).toBe(
        'consent/key-store-required',
      );
      expect(
        await codeOf(
          earlyImport.import([
            grant('ks-lee', 'newsletter', { source: 'import', method: 'import', evidence }),
          ]),
        ),
      ).toBe('consent/key-store-required');
      expect(await ledgerSize(own.db)).toBe(size);
      expect(await storedKeys(subjectKey)).toHaveLength(1);
      await earlyGpc.applyGpc('ks-gus', '1', { evidence });
      expect((await withStore.history('ks-gus')).map((entry) => [entry.state, entry.evidence])).toEqual([
        ['refused', undefined],
      ]);

      // A grant with nothing to seal, a withdrawal and a GPC refusal are recorded (the last two
      // without the evidence they came with), and no key lands in a state row.
      await bare.record(grant('ks-kim', 'audience-measurement'));
      await bare.withdraw('ks-kim', 'newsletter', { evidence });
      await bare.applyGpc('ks-kim', '1', { evidence });
      const kinds = (await withStore.history('ks-kim')).map((entry) =>
        entry.kind === 'decision' ? [entry.purpose, entry.state, entry.evidence ?? null] : [entry.kind],
      );
      expect(kinds).toEqual([
        ['newsletter', 'granted', { ip: '198.51.100.0' }],
        ['audience-measurement', 'granted', null],
        ['newsletter', 'withdrawn', null],
        ['targeted-advertising', 'refused', null],
      ]);
      const inState = await own.db
        .selectFrom('privacykit_consent_state')
        .select('key_material')
        .where('key_material', 'is not', null)
        .execute();
      expect(inState).toEqual([]);

      await withStore.shredSubject('ks-kim');
      expect(await storedKeys(subjectKey)).toEqual([]);
      expect(await withStore.verify()).toMatchObject({ ok: true });
    } finally {
      await own.destroy();
    }
  });

  it('an instance without the store started before it: its next grant is refused even on the synchronous path, and a later batch of its import too', async () => {
    const own = await migratedDatabase(engine);
    try {
      const early = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      await early.record(grant('ks-ann', 'newsletter')); // it remembers the ledger's head
      const importer = createConsentLedger({ db: own.db, policy: testPolicy, clock });
      expect(await importer.mayProcess('ks-ann', 'newsletter')).toBe(true); // started, appending nothing
      // The store's instance marks the tenant at start-up, appending nothing.
      const withStore = createConsentLedger({ db: own.db, policy: testPolicy, clock, evidenceKeys: store });
      await withStore.publicKey();
      const size = await ledgerSize(own.db);
      expect(await codeOf(early.record(grant('ks-ann', 'targeted-advertising', { evidence })))).toBe(
        'consent/key-store-required',
      );
      expect(await ledgerSize(own.db)).toBe(size);
      // Batches of one: the first (a refusal, sorted first by pseudonym) is recorded without its
      // evidence; the grant's batch is refused, saying how many went before it.
      // import() orders its batches by pseudonym: the refusal goes to the subject sorted first.
      const ids = ['ks-imp-1', 'ks-imp-2'];
      const keys = await Promise.all(ids.map((id) => importer.subjectKey(id)));
      const [first, second] = (keys[0] as string) < (keys[1] as string) ? ids : [...ids].reverse();
      const decisions = [
        {
          ...grant(first as string, 'newsletter', { source: 'import', method: 'import', evidence }),
          state: 'refused' as const,
        },
        grant(second as string, 'newsletter', { source: 'import', method: 'import', evidence }),
      ];
      const failure = await importer.import(decisions, { batchSize: 1 }).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'consent/key-store-required', details: { imported: 1 } });
      const inState = await own.db
        .selectFrom('privacykit_consent_state')
        .select('subject_id')
        .where('key_material', 'is not', null)
        .execute();
      expect(inState).toEqual([]);
      expect((await withStore.history(decisions[0]!.subjectId)).map((e) => [e.state, e.evidence])).toEqual([
        ['refused', undefined],
      ]);
      expect(await withStore.history(decisions[1]!.subjectId)).toEqual([]);
    } finally {
      await own.destroy();
    }
  });

  it('a database not migrated to 0005 gets a typed error telling to migrate, with or without a store', async () => {
    const own = await migratedDatabase(engine);
    try {
      const migrator = new Migrator({
        db: own.db,
        provider: { getMigrations: async () => ({ ...consentMigrations.migrations }) },
        migrationTableName: 'privacykit_consent_migrations',
        migrationLockTableName: 'privacykit_consent_migrations_lock',
      });
      expect((await migrator.migrateTo('0004_binary_keys')).error).toBeUndefined();
      for (const evidenceKeys of [undefined, store]) {
        const ledger = createConsentLedger({ db: own.db, policy: testPolicy, clock, evidenceKeys });
        const error = await ledger.record(grant('ks-old', 'newsletter')).catch((caught: unknown) => caught);
        expect(error).toMatchObject({ code: 'consent/invalid-options' });
        expect((error as Error).message).toContain('0005_key_store_marker');
      }
      await migrate(own.db, [consentMigrations]);
      const ledger = createConsentLedger({ db: own.db, policy: testPolicy, clock, evidenceKeys: store });
      await ledger.record(grant('ks-old', 'newsletter', { evidence }));
      expect(await ledger.verify()).toMatchObject({ ok: true });
    } finally {
      await own.destroy();
    }
  });

  it('two ledgers on connections of their own deciding for one new pair at once seal under one key, both readable', async () => {
    const second = await openDatabase(data.url);
    const keys2 = await openDatabase(keyDb.url);
    try {
      const one = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
      const two = createConsentLedger({
        db: second,
        policy: testPolicy,
        clock,
        evidenceKeys: createDatabaseKeyStore({ db: keys2 }),
      });
      for (let round = 0; round < 5; round++) {
        const subject = `ks-pair-${round}`;
        await Promise.all([
          one.record(grant(subject, 'newsletter', { evidence: { ip: '192.0.2.10' } })),
          two.record(grant(subject, 'newsletter', { evidence: { ip: '198.51.100.10' } })),
        ]);
        const opened = (await one.history(subject)).map((entry) => entry.evidence);
        expect(opened).toHaveLength(2);
        expect(opened).toEqual(expect.arrayContaining([{ ip: '192.0.2.0' }, { ip: '198.51.100.0' }]));
        expect(await storedKeys(await one.subjectKey(subject))).toHaveLength(1);
      }
      expect(await one.verify()).toMatchObject({ ok: true });
    } finally {
      await second.destroy();
      await keys2.destroy();
    }
  });

  it('gives up with consent/write-conflict, the decision unwritten, when shreddings keep invalidating its key', async () => {
    const ledger = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    const shredder = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: store });
    const relentless: EvidenceKeyStore = {
      get: (tenant, pairs) => store.get(tenant, pairs),
      async obtain(tenant, pairs) {
        const keys = await store.obtain(tenant, pairs);
        await shredder.shredSubject('ks-ned');
        return keys;
      },
      destroy: (tenant, subjectKey) => store.destroy(tenant, subjectKey),
    };
    const writer = createConsentLedger({ db: data.db, policy: testPolicy, clock, evidenceKeys: relentless });
    expect(await codeOf(writer.record(grant('ks-ned', 'newsletter', { evidence })))).toBe(
      'consent/write-conflict',
    );
    const error = await writer
      .import([grant('ks-ned', 'newsletter', { source: 'import', method: 'import', evidence })])
      .catch((failure: unknown) => failure);
    expect(error).toMatchObject({ code: 'consent/write-conflict', details: { imported: 0 } });
    const history = await ledger.history('ks-ned');
    expect(history.filter((entry) => entry.kind === 'decision')).toEqual([]);
    expect(await ledger.verify()).toMatchObject({ ok: true });
  });

  it("refuses, at its first call, a key store whose database holds the ledger's tables (its own database reached another way)", async () => {
    const derived = data.db.withPlugin({
      transformQuery: (args) => args.node,
      transformResult: async (args) => args.result,
    });
    const make = () =>
      createConsentLedger({
        db: data.db,
        policy: testPolicy,
        clock,
        evidenceKeys: createDatabaseKeyStore({ db: derived }),
      });
    if (engine.engine === 'sqlite') {
      // A SQLite instance derived from openDatabase's is known as its database at once.
      expect(make).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
      return;
    }
    const ledger = make();
    expect(await codeOf(ledger.record(grant('ks-oz', 'newsletter', { evidence })))).toBe(
      'consent/invalid-options',
    );
    expect(await codeOf(ledger.mayProcess('ks-oz', 'newsletter'))).toBe('consent/invalid-options');
  });

  if (engine.engine === 'sqlite') {
    it("refuses a key store on another connection to the ledger's own SQLite file", async () => {
      const again = await openDatabase(data.url);
      try {
        expect(() =>
          createConsentLedger({
            db: data.db,
            policy: testPolicy,
            evidenceKeys: createDatabaseKeyStore({ db: again }),
          }),
        ).toThrow(expect.objectContaining({ code: 'consent/invalid-options' }));
      } finally {
        await again.destroy();
      }
    });
  }
});
