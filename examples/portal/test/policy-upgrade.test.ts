import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { definePolicy, fixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { createConsentLedger } from '@privacykit/consent';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { seedPolicy } from '../src/policy.js';
import { migratePortal } from '../src/setup.js';
import { Client } from './harness.js';

/**
 * The declaration the portal shipped before its corrections, under the seed's own version: the
 * newsletter named only the email address of the contact data Article 7 lists for it.
 */
function shippedBefore() {
  const { categoryIndex: _index, ...input } = seedPolicy;
  return definePolicy({
    ...input,
    version: '2018-05-07',
    purposes: input.purposes.map((purpose) =>
      purpose.id === 'newsletter'
        ? {
            ...purpose,
            categories: ['identity', 'contact.email', 'account.subscription', 'marketing.preferences'],
          }
        : purpose,
    ),
  });
}

describe.each(testEngines())('upgrading a deployed portal to the corrected policy on $engine', (engine) => {
  it('publishes the corrected newsletter notice under a new version, so newsletter grants keep working', async () => {
    const t = await createTestDatabase(engine);
    try {
      await migratePortal(t.db);
      const clock = fixedClock('2025-03-10T09:00:00Z');
      const before = createConsentLedger({ db: t.db, policy: shippedBefore(), clock });
      await before.record({
        subjectId: 'email:ada@example.com',
        purpose: 'newsletter',
        state: 'granted',
        source: 'form',
        method: 'form-submit',
      });
      expect((await before.current('email:ada@example.com')).purposes.newsletter?.valid).toBe(true);

      // The same database after the upgrade: the newsletter's notice changed (postal address and
      // telephone number are now listed), which the ledger accepts only under a new version.
      expect(seedPolicy.version).not.toBe('2018-05-07');
      clock.advance(60_000);
      const after = createConsentLedger({ db: t.db, policy: seedPolicy, clock });
      await after.record({
        subjectId: 'email:grace@example.com',
        purpose: 'newsletter',
        state: 'granted',
        source: 'form',
        method: 'form-submit',
      });
      expect((await after.current('email:grace@example.com')).purposes.newsletter?.valid).toBe(true);
      // A grant given on the notice that understated the data is asked again (Art 6(4), 7).
      expect((await after.current('email:ada@example.com')).purposes.newsletter?.valid).toBe(false);
    } finally {
      await t.db.destroy();
      await t.destroy();
    }
  });
});

/** The policy after the controller edits its notice: a new version, one purpose's text changed. */
function editedNotice() {
  const { categoryIndex: _index, ...input } = seedPolicy;
  return definePolicy({
    ...input,
    version: '2019-01-01',
    purposes: input.purposes.map((purpose) =>
      purpose.id === 'audience-measurement'
        ? { ...purpose, description: `${purpose.description} (now also per page)` }
        : purpose,
    ),
  });
}

/** A portal app on `db` listening on 127.0.0.1:0. */
async function serve(app: ReturnType<typeof createApp>): Promise<{ base: string; close(): Promise<void> }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const subjectOf = (client: Client) =>
  (JSON.parse(Buffer.from(client.cookies.get('pk_consent')!, 'base64url').toString('utf8')) as { s: string })
    .s;

describe.each(testEngines())('a visitor’s consent after the notice changes on $engine', (engine) => {
  /** Accepts everything on the portal before the edit, then comes back to the one after it. */
  async function acceptedThenEdited(use: (visitor: Client, subject: string) => Promise<void>) {
    const t = await createTestDatabase(engine);
    const deps = { db: t.db, clock: fixedClock('2025-03-10T09:00:00Z'), sessionSecret: 'test-secret' };
    try {
      await migratePortal(t.db);
      const before = await serve(createApp({ ...deps, policy: seedPolicy }));
      const visitor = new Client(before.base);
      await visitor.page('/privacy');
      expect((await visitor.post('/cookies', { choice: 'accept-all', return: '/privacy' })).status).toBe(303);
      visitor.cookies.set('_ga', 'GA1.1.123.456');
      const subject = subjectOf(visitor);
      await before.close();
      const after = await serve(createApp({ ...deps, policy: editedNotice() }));
      try {
        const back = new Client(after.base);
        for (const [name, value] of visitor.cookies) back.cookies.set(name, value);
        await use(back, subject);
      } finally {
        await after.close();
      }
    } finally {
      await t.db.destroy();
      await t.destroy();
    }
  }

  it('shows the earlier choices and withdraws them: the grants end and their cookies are cleared', async () => {
    await acceptedThenEdited(async (visitor, subject) => {
      // The banner asks again, for the changed notice.
      expect(await visitor.page('/privacy')).toContain('id="banner-title"');
      const consent = await visitor.page('/consent');
      expect(consent).toContain(
        'data-purpose="audience-measurement">granted (notice changed: please choose again)',
      );
      const withdrawn = await visitor.post('/withdraw', {});
      expect(withdrawn.status).toBe(303);
      expect(withdrawn.headers.get('location')).toBe('/consent?withdrawn=1');
      expect(visitor.cookies.has('_ga')).toBe(false);
      expect(subjectOf(visitor)).toBe(subject);
      const after = await visitor.page('/consent');
      expect(after).toContain('data-purpose="audience-measurement">withdrawn');
      expect(after).toContain('data-purpose="targeted-advertising">withdrawn');
      expect(await visitor.page('/privacy')).not.toContain('analytics.js');
    });
  });

  it('keeps the same subject for the re-ask, so refusing it ends the grants made under the old notice', async () => {
    await acceptedThenEdited(async (visitor, subject) => {
      await visitor.page('/privacy');
      expect((await visitor.post('/cookies', { choice: 'refuse-all', return: '/privacy' })).status).toBe(303);
      expect(subjectOf(visitor)).toBe(subject);
      expect(visitor.cookies.has('_ga')).toBe(false);
      const consent = await visitor.page('/consent');
      expect(consent).toContain('data-purpose="audience-measurement">withdrawn');
      expect(consent).toContain('data-purpose="targeted-advertising">withdrawn');
      // One history: the grants and the withdrawals that ended them.
      expect((consent.match(/Download signed receipt/g) ?? []).length).toBe(4);
    });
  });
});
