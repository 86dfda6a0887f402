import { columnType, engineOf, truncateSqliteLog } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { PrivacyKitError } from '@privacykit/core';
import { sql } from 'kysely';
import type { Kysely, RawBuilder } from 'kysely';
import type { ConsentErrorCode } from './errors.js';
import { pooledRandomBytes } from './random-pool.js';

/** A subject × purpose pair of a tenant, whose evidence is sealed under one key. */
export interface EvidenceKeyRef {
  /** The subject's pseudonym (the ledger's HMAC of the subject id), never the raw id. */
  subjectKey: string;
  purpose: string;
}

/** A pair's 32-byte AES-256-GCM key. */
export interface EvidenceKey extends EvidenceKeyRef {
  key: Buffer;
}

/**
 * Where a consent ledger keeps the keys its evidence (IP, user agent, age, parental
 * authorisation) is sealed under, when they must not live in the database beside the sealed
 * evidence. Without one, each key sits in its subject's state row: shredding deletes it from the
 * live database, but a backup taken before the shredding still holds key and ciphertext together.
 * With a store outside those backups (its own database, a KMS, a vault), shredding destroys the
 * key where it lives, and a restored backup of the ledger's database holds evidence nobody can
 * open (hostile case 21) — the ledger still verifies, its entries hold only digests.
 *
 * Every method takes the ledger's tenant; an implementation keeps tenants apart.
 */
export interface EvidenceKeyStore {
  /** The keys of those pairs that have one, in no particular order; pairs without one are left out. */
  get(tenant: string, pairs: readonly EvidenceKeyRef[]): Promise<readonly EvidenceKey[]>;
  /**
   * Every pair's key, a fresh random one where it has none yet. An existing key always wins: two
   * writers asking at once for a new pair's key get the same key back.
   */
  obtain(tenant: string, pairs: readonly EvidenceKeyRef[]): Promise<readonly EvidenceKey[]>;
  /** Destroys every key of the subject, whatever the purpose; succeeds when there is none. */
  destroy(tenant: string, subjectKey: string): Promise<void>;
}

const T_KEYS = 'privacykit_consent_evidence_keys';

/** The database a {@link createDatabaseKeyStore} store writes to, for the ledger's check. */
export const keyStoreDatabase: unique symbol = Symbol('privacykit.consent.keyStoreDatabase');

/** MySQL and MariaDB compare text case-insensitively by default: the key columns compare bytes. */
function keyText(db: Kysely<any>, length: number): RawBuilder<unknown> {
  return engineOf(db) === 'mysql'
    ? sql`varchar(${sql.raw(String(length))}) character set utf8mb4 collate utf8mb4_bin`
    : sql`varchar(${sql.raw(String(length))})`;
}

/**
 * The table of {@link createDatabaseKeyStore}, applied with core's
 * `migrate(keyDb, [evidenceKeyStoreMigrations])` on the key store's own database:
 * `privacykit_consent_evidence_keys` (tenant, subject key, purpose → key), keyed by subject first
 * so a shredding deletes one key range.
 */
export const evidenceKeyStoreMigrations: PackageMigrations = {
  name: 'consent_keys',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        let table = db.schema
          .createTable(T_KEYS)
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('subject_key', keyText(db, 128), (col) => col.notNull())
          .addColumn('purpose', keyText(db, 100), (col) => col.notNull())
          .addColumn('key_material', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addPrimaryKeyConstraint('privacykit_consent_evidence_keys_pk', [
            'tenant',
            'subject_key',
            'purpose',
          ]);
        if (engineOf(db) === 'sqlite') table = table.modifyEnd(sql`without rowid`);
        await table.execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable(T_KEYS).ifExists().execute();
      },
    },
  },
};

/** Pairs per statement: well under every engine's bound-parameter limit. */
const CHUNK = 200;

function invalid(message: string): PrivacyKitError<ConsentErrorCode> {
  return new PrivacyKitError<ConsentErrorCode>('consent/invalid-options', message);
}

function checkPairs(pairs: readonly EvidenceKeyRef[]): void {
  if (!Array.isArray(pairs))
    throw invalid('an evidence key store takes an array of { subjectKey, purpose } pairs');
  for (const pair of pairs) {
    if (typeof pair?.subjectKey !== 'string' || pair.subjectKey === '' || typeof pair.purpose !== 'string') {
      throw invalid('an evidence key pair is { subjectKey: string, purpose: string }');
    }
  }
}

/**
 * An {@link EvidenceKeyStore} in a database of its own — SQLite, PostgreSQL or MySQL/MariaDB,
 * migrated with {@link evidenceKeyStoreMigrations}. Keep that database out of the ledger
 * database's backups (or back it up on a much shorter rotation): that separation is what makes a
 * shredding outlive a restore.
 */
export function createDatabaseKeyStore(options: {
  db: Kysely<any>;
  clock?: { now(): Date };
}): EvidenceKeyStore {
  const db = options?.db;
  if (!db || typeof db.selectFrom !== 'function') {
    throw invalid(
      'createDatabaseKeyStore takes { db }: a Kysely instance with evidenceKeyStoreMigrations applied',
    );
  }
  const engine = engineOf(db);
  const now = () => (options.clock ?? { now: () => new Date() }).now().toISOString();

  async function get(tenant: string, pairs: readonly EvidenceKeyRef[]): Promise<EvidenceKey[]> {
    checkPairs(pairs);
    const bySubject = new Map<string, Set<string>>();
    for (const { subjectKey, purpose } of pairs) {
      const purposes = bySubject.get(subjectKey) ?? new Set<string>();
      purposes.add(purpose);
      bySubject.set(subjectKey, purposes);
    }
    const subjects = [...bySubject.keys()];
    const found: EvidenceKey[] = [];
    for (let i = 0; i < subjects.length; i += CHUNK) {
      const rows = (await db
        .selectFrom(T_KEYS)
        .select(['subject_key', 'purpose', 'key_material'])
        .where('tenant', '=', tenant)
        .where('subject_key', 'in', subjects.slice(i, i + CHUNK))
        .execute()) as { subject_key: string; purpose: string; key_material: string }[];
      for (const row of rows) {
        if (!bySubject.get(row.subject_key)?.has(row.purpose)) continue;
        found.push({
          subjectKey: row.subject_key,
          purpose: row.purpose,
          key: Buffer.from(row.key_material, 'base64'),
        });
      }
    }
    return found;
  }

  const store: EvidenceKeyStore & { [keyStoreDatabase]: Kysely<any> } = {
    [keyStoreDatabase]: db,
    get,
    async obtain(tenant, pairs) {
      const found = await get(tenant, pairs);
      const have = new Set(found.map((k) => `${k.subjectKey}\u0000${k.purpose}`));
      const missing = new Map<string, EvidenceKeyRef>();
      for (const pair of pairs) {
        const id = `${pair.subjectKey}\u0000${pair.purpose}`;
        if (!have.has(id)) missing.set(id, { subjectKey: pair.subjectKey, purpose: pair.purpose });
      }
      if (missing.size === 0) return found;
      const createdAt = now();
      // In key order: two writers inserting overlapping pairs lock them in the same order.
      const rows = [...missing.values()]
        .sort((a, b) =>
          a.subjectKey === b.subjectKey
            ? a.purpose < b.purpose
              ? -1
              : 1
            : a.subjectKey < b.subjectKey
              ? -1
              : 1,
        )
        .map((pair) => ({
          tenant,
          subject_key: pair.subjectKey,
          purpose: pair.purpose,
          key_material: pooledRandomBytes(32).toString('base64'),
          created_at: createdAt,
        }));
      for (let i = 0; i < rows.length; i += CHUNK) {
        const insert = db.insertInto(T_KEYS).values(rows.slice(i, i + CHUNK));
        // A key another writer created meanwhile is kept, and read back below.
        if (engine === 'mysql') await insert.ignore().execute();
        else await insert.onConflict((oc) => oc.doNothing()).execute();
      }
      return [...found, ...(await get(tenant, [...missing.values()]))];
    },
    async destroy(tenant, subjectKey) {
      if (typeof subjectKey !== 'string' || subjectKey === '') throw invalid('destroy takes a subject key');
      await db
        .deleteFrom(T_KEYS)
        .where('tenant', '=', tenant)
        .where('subject_key', '=', subjectKey)
        .execute();
      // Gone from the file (secure_delete) and from its write-ahead log: a copy of the store
      // taken after the shredding held the destroyed key byte for byte.
      await truncateSqliteLog(db);
    },
  };
  return store;
}
