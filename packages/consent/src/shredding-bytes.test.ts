import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedClock } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabaseKeyStore, evidenceKeyStoreMigrations } from './key-store.js';
import { createConsentLedger } from './ledger.js';
import { consentMigrations } from './migrations.js';
import { grant, testPolicy } from './test-fixtures.js';

const clock = fixedClock('2025-03-01T12:00:00.000Z');
const subject = 'subject-zq7xk9-unique';

/** Everything a copy of the SQLite file takes: the database and its write-ahead log. */
function fileBytes(file: string): string {
  return ['', '-wal']
    .filter((suffix) => existsSync(file + suffix))
    .map((suffix) => readFileSync(file + suffix).toString('latin1'))
    .join('');
}

// A backup or copy of the files taken AFTER a shredding (hostile case 21): before, the deleted
// state row (subject id, evidence key) and the nulled sealed evidence sat in the file's free
// space and in its write-ahead log, and the evidence could be decrypted from them.
describe('after shredSubject, a copy of the SQLite files holds nothing of the subject', () => {
  let dir: string;
  const opened: Kysely<any>[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pk-shred-bytes-'));
  });
  afterEach(async () => {
    for (const db of opened.splice(0)) await db.destroy().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  async function open(name: string) {
    const file = join(dir, name);
    const db = await openDatabase(`sqlite:${file}`);
    opened.push(db);
    return { db, file };
  }

  it('without a key store: no subject id, evidence key or sealed evidence in the ledger file', async () => {
    const { db, file } = await open('ledger.db');
    await migrate(db, [consentMigrations]);
    const ledger = createConsentLedger({ db, policy: testPolicy, clock });
    await ledger.record(grant(subject, 'newsletter', { evidence: { ip: '203.0.113.77' }, age: 34 }));
    for (let i = 0; i < 50; i++) await ledger.record(grant(`other-${i}`, 'newsletter'));
    const subjectKey = await ledger.subjectKey(subject);
    const state = await db
      .selectFrom('privacykit_consent_state')
      .select('key_material')
      .where('subject_key', '=', subjectKey)
      .executeTakeFirstOrThrow();
    const sealed = await db
      .selectFrom('privacykit_consent_ledger')
      .select('sealed')
      .where('subject_key', '=', subjectKey)
      .where('sealed', 'is not', null)
      .executeTakeFirstOrThrow();
    expect(fileBytes(file).includes(subject), subject).toBe(true);
    await ledger.shredSubject(subject);
    expect((await ledger.verify()).ok).toBe(true);
    const bytes = fileBytes(file);
    expect(bytes.includes(subject), subject).toBe(false);
    expect(bytes.includes(String(state.key_material)), String(state.key_material)).toBe(false);
    expect(bytes.includes(String(sealed.sealed)), String(sealed.sealed)).toBe(false);
    // Others' evidence is still there.
    expect((await ledger.history('other-1'))[0]?.state).toBe('granted');
  });

  it('with a key store on a file of its own: the destroyed key is in neither file', async () => {
    const { db, file } = await open('ledger.db');
    const keys = await open('keys.db');
    await migrate(db, [consentMigrations]);
    await migrate(keys.db, [evidenceKeyStoreMigrations]);
    const store = createDatabaseKeyStore({ db: keys.db, clock });
    const ledger = createConsentLedger({ db, policy: testPolicy, clock, evidenceKeys: store });
    await ledger.record(grant(subject, 'newsletter', { evidence: { ip: '198.51.100.23' } }));
    await ledger.record(grant('someone-else', 'newsletter', { evidence: { ip: '198.51.100.24' } }));
    const subjectKey = await ledger.subjectKey(subject);
    const stored = await keys.db
      .selectFrom('privacykit_consent_evidence_keys')
      .select('key_material')
      .where('subject_key', '=', subjectKey)
      .executeTakeFirstOrThrow();
    expect(fileBytes(keys.file).includes(String(stored.key_material)), String(stored.key_material)).toBe(
      true,
    );
    await ledger.shredSubject(subject);
    expect(fileBytes(keys.file).includes(String(stored.key_material)), String(stored.key_material)).toBe(
      false,
    );
    expect(fileBytes(file).includes(subject), subject).toBe(false);
    expect((await ledger.history('someone-else'))[0]?.evidence).toEqual({ ip: '198.51.100.0' });
  });
});
