import { rmSync } from 'node:fs';
import { createConsentLedger, consentMigrations } from '@privacykit/consent';
import type { ConsentDecision } from '@privacykit/consent';
import { definePolicy } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
const policy = definePolicy({
  version: '2018-05-07', effectiveDate: '2018-05-07', controller: { name: 'X' }, dpo: { email: 'dpo@example.com' },
  supervisoryAuthority: { name: 'CNIL' },
  purposes: ['newsletter', 'audience-measurement', 'targeted-advertising'].map((id) => ({ id, name: id, description: id, legalBases: [{ basis: 'consent' as const }], categories: ['identity'] })),
  rights: { offered: ['withdraw-consent'], channels: [{ kind: 'web', value: '/privacy' }] },
});
const purposes = ['newsletter', 'audience-measurement', 'targeted-advertising'];
const decision = (i: number): ConsentDecision => ({ subjectId: `user-${i}`, purpose: purposes[i % 3] as string, state: i % 4 === 0 ? 'refused' : 'granted', source: 'banner', method: 'click', evidence: { ip: '203.0.113.77', userAgent: 'Mozilla/5.0 bench' } });
const file = '/tmp/heap-record.db';
for (const s of ['', '-wal', '-shm']) rmSync(file + s, { force: true });
const db = await openDatabase(`sqlite:${file}`);
await migrate(db, [consentMigrations]);
const ledger = createConsentLedger({ db, policy });
await ledger.publicKey();
for (let i = 0; i < 5000; i++) await ledger.record(decision(1_000_000 + i));
const N = 20000;
const before = process.memoryUsage().heapUsed;
const { getHeapStatistics } = await import('node:v8');
const a0 = 0;
const { Session } = await import('node:inspector/promises');
const session = new Session();
session.connect();
await session.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as any);
for (let i = 0; i < N; i++) await ledger.record(decision(i));
const a1 = 0;
const { profile } = (await session.post('HeapProfiler.stopSampling')) as any;
(await import('node:fs')).writeFileSync('/tmp/heap.json', JSON.stringify(profile));
console.log('allocated per record (v8 total_allocated_bytes):', a1 ? ((a1 - a0) / N).toFixed(0) : 'n/a', 'bytes');
await db.destroy();
for (const s of ['', '-wal', '-shm']) rmSync(file + s, { force: true });
