import { definePolicy, fixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { createConsentLedger } from '@privacykit/consent';
import { describe, expect, it } from 'vitest';
import { seedPolicy } from '../src/policy.js';
import { migratePortal } from '../src/setup.js';

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
