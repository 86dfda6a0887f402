import { createDatabaseKeyStore, evidenceKeyStoreMigrations, verifyReceipt } from '@privacykit/consent';
import type { ConsentReceipt } from '@privacykit/consent';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedPolicy } from '../src/policy.js';
import { Client, STAFF, startPortal } from './harness.js';
import type { Portal } from './harness.js';

describe.each(testEngines())('cookie banner and consent ledger on $engine', (engine) => {
  let portal: Portal;
  beforeAll(async () => {
    portal = await startPortal(engine, {}, { seed: false });
  });
  afterAll(async () => {
    await portal?.close();
  });

  it('shows Accept all and Refuse all side by side on the first layer, and no analytics before a choice', async () => {
    const visitor = new Client(portal.base);
    const page = await visitor.page('/privacy');
    expect(page).toContain('value="accept-all">Accept all</button>');
    expect(page).toContain('value="refuse-all">Refuse all</button>');
    expect(page).not.toContain('/js/analytics.js');
    expect([...visitor.cookies.keys()]).toEqual(['pk_session']);
  });

  it('records a refusal per purpose, keeps analytics out, and gives a verifiable signed receipt', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/privacy');
    const response = await visitor.post('/cookies', { choice: 'refuse-all', return: '/privacy' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/privacy');
    expect(visitor.cookies.has('pk_consent')).toBe(true);
    const page = await visitor.page('/privacy');
    expect(page).not.toContain('/js/analytics.js');
    expect(page).not.toContain('id="banner-title"');

    const consent = await visitor.page('/consent');
    expect(consent).toContain('data-purpose="audience-measurement">refused');
    expect(consent).toContain('data-purpose="targeted-advertising">refused');
    const href = /href="(\/consent\/receipts\/[^"]+)"/.exec(consent)![1]!;
    const receipt = (await (await visitor.get(href)).json()) as ConsentReceipt;
    const key = await (await visitor.get('/consent/public-key')).text();
    expect(verifyReceipt(receipt, key)).toBe(true);

    // Another browser cannot fetch this receipt.
    const stranger = new Client(portal.base);
    expect((await stranger.get(href)).status).toBe(404);
  });

  it('includes the analytics script only after consent, and withdrawing removes it and its cookie', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/privacy');
    const accepted = await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' });
    expect(accepted.status, String(portal.errors[0])).toBe(303);
    expect(await visitor.page('/privacy')).toContain('<script src="/js/analytics.js" defer></script>');
    visitor.cookies.set('_ga', 'GA1.1.1.1');
    const consent = await visitor.page('/consent');
    expect(consent).toContain('data-purpose="audience-measurement">granted');
    const withdrawn = await visitor.post('/withdraw', {});
    expect(withdrawn.status).toBe(303);
    expect(visitor.cookies.has('_ga')).toBe(false);
    expect(await visitor.page('/consent')).toContain('data-purpose="audience-measurement">withdrawn');
    expect(await visitor.page('/privacy')).not.toContain('analytics.js');
  });

  it('saves a granular choice; an unanswered purpose counts as refused', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/cookies');
    const saved = await visitor.post('/cookies', {
      choice: 'save',
      'purpose_audience-measurement': 'granted',
    });
    expect(saved.headers.get('location')).toBe('/cookies?saved=1');
    const consent = await visitor.page('/consent');
    expect(consent).toContain('data-purpose="audience-measurement">granted');
    expect(consent).toContain('data-purpose="targeted-advertising">refused');
  });

  it('honours Sec-GPC: 1 by refusing targeted advertising even on Accept all, with GPC as the source', async () => {
    const visitor = new Client(portal.base, { 'sec-gpc': '1' });
    await visitor.page('/privacy');
    await visitor.post('/cookies', { choice: 'accept-all' });
    const consent = await visitor.page('/consent');
    expect(consent).toContain('data-purpose="audience-measurement">granted');
    expect(consent).toContain('data-purpose="targeted-advertising">refused');
    expect(consent).toMatch(/gpc gpc-signal/);
  });

  it('applies a GPC signal sent after an earlier grant, once per subject, and tells the visitor; a later grant is kept and shown', async () => {
    const visitor = new Client(portal.base);
    await visitor.page('/privacy');
    expect((await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' })).status).toBe(303);
    const gpc = { 'sec-gpc': '1' };
    const entries = async () =>
      Number(
        (
          await portal.t.db
            .selectFrom('privacykit_consent_ledger')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    // The browser turns GPC on and keeps browsing: the advertising grant ends, with GPC as source.
    const first = await visitor.page('/privacy', gpc);
    expect(first).toContain('data-gpc-applied');
    expect(first).toContain('targeted advertising');
    let consent = await visitor.page('/consent', gpc);
    expect(consent).toContain('data-purpose="targeted-advertising">refused');
    expect(consent).toContain('data-purpose="audience-measurement">granted');
    expect(consent).toMatch(/gpc gpc-signal/);
    // Not a ledger write per page view.
    const written = await entries();
    for (const path of ['/privacy', '/consent', '/cookies', '/rights']) await visitor.page(path, gpc);
    expect(await entries()).toBe(written);

    // The visitor, GPC off, agrees to advertising again: their later choice, then GPC comes back.
    await visitor.page('/cookies');
    await visitor.post('/cookies', {
      choice: 'save',
      'purpose_audience-measurement': 'granted',
      'purpose_targeted-advertising': 'granted',
    });
    const kept = await visitor.page('/privacy', gpc);
    expect(kept).toContain('data-gpc-kept');
    expect(kept).not.toContain('data-gpc-applied');
    consent = await visitor.page('/consent', gpc);
    expect(consent).toContain(
      'data-purpose="targeted-advertising">granted (you agreed after your browser’s Global Privacy Control signal',
    );
    // Shown on every page while the signal comes, without asking the ledger again.
    const afterConflict = await entries();
    for (const path of ['/privacy', '/rights'])
      expect(await visitor.page(path, gpc)).toContain('data-gpc-kept');
    expect(await entries()).toBe(afterConflict);
    // Without the signal, nothing is said.
    expect(await visitor.page('/privacy')).not.toContain('data-gpc-kept');
    expect(portal.errors).toEqual([]);
  });

  it('writes nothing to the ledger for a GPC signal over a made-up consent cookie', async () => {
    const count = async (table: string) =>
      Number(
        (
          await portal.t.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await count('privacykit_consent_ledger');
    // A script forging `pk_consent` with a fresh subject on each GET, the signal on: before, each
    // page view appended a refusal to the ledger for ever.
    for (let i = 0; i < 25; i++) {
      const forged = Buffer.from(
        JSON.stringify({
          v: 1,
          s: `forged${String(i).padStart(12, '0')}`,
          p: {},
          n: seedPolicy.version,
          t: '2025-03-10T09:00:00.000Z',
        }),
      ).toString('base64url');
      const response = await fetch(`${portal.base}/privacy`, {
        headers: { 'sec-gpc': '1', cookie: `pk_consent=${forged}` },
      });
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    expect(await count('privacykit_consent_ledger')).toBe(before);
    expect(portal.errors).toEqual([]);
  });

  it('serves /.well-known/gpc.json', async () => {
    const response = await fetch(`${portal.base}/.well-known/gpc.json`);
    expect(await response.json()).toEqual({ gpc: true, lastUpdate: '2018-05-07' });
  });

  it('shows staff the ledger verification and statistics per purpose and notice version', async () => {
    const staff = new Client(portal.base);
    await staff.login(STAFF);
    const page = await staff.page('/admin/consent');
    expect(page).toContain('data-ledger-ok="true"');
    expect(page).toMatch(/Measure the audience[^<]*<\/td><td>2018-05-07\.2<\/td><td>granted<\/td><td>\d+/);
  });
});

describe.each(testEngines())(
  'consent evidence keys in a database of their own on $engine (CONSENT_KEYS_URL)',
  (engine) => {
    let portal: Portal;
    let keys: TestDatabase;
    beforeAll(async () => {
      keys = await createTestDatabase(engine);
      await migrate(keys.db, [evidenceKeyStoreMigrations]);
      portal = await startPortal(
        engine,
        { evidenceKeys: createDatabaseKeyStore({ db: keys.db }) },
        { seed: false },
      );
    });
    afterAll(async () => {
      await portal?.close();
      await keys?.destroy();
    });

    it("seals a banner choice's evidence under keys kept in the key database, none in the portal's", async () => {
      const visitor = new Client(portal.base);
      await visitor.page('/privacy');
      const accepted = await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' });
      expect(accepted.status, String(portal.errors[0])).toBe(303);
      expect(await visitor.page('/consent')).toContain('data-purpose="audience-measurement">granted');
      const stored = await keys.db
        .selectFrom('privacykit_consent_evidence_keys')
        .select(['purpose', 'subject_key'])
        .execute();
      expect(stored.map((row) => row.purpose).sort()).toEqual([
        'audience-measurement',
        'targeted-advertising',
      ]);
      const states = await portal.t.db
        .selectFrom('privacykit_consent_state')
        .select(['subject_key', 'key_material'])
        .execute();
      expect(states.length).toBe(2);
      expect(
        states.every((row) => row.key_material === null && row.subject_key === stored[0]?.subject_key),
      ).toBe(true);
      const sealed = await portal.t.db
        .selectFrom('privacykit_consent_ledger')
        .select('sealed')
        .where('sealed', 'is not', null)
        .execute();
      expect(sealed.length).toBe(2);
    });
  },
);
