import { fixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { createApprovals } from './approvals.js';
import { migratePortal } from './setup.js';
import { createStaffDirectory } from './staff.js';

describe.each(testEngines())(
  'four eyes when every account descends from the first admin on $engine',
  (engine) => {
    it('what nobody could ever approve is refused when asked (409), not left waiting; a sibling can approve for a sibling', async () => {
      const t = await createTestDatabase(engine);
      try {
        await migratePortal(t.db);
        const clock = fixedClock('2025-01-01T00:00:00Z');
        const staff = createStaffDirectory({ db: t.db, tenant: 'default', clock, passwordCost: 2 ** 10 });
        const approvals = createApprovals({ db: t.db, tenant: 'default', clock, staff });
        const account = (email: string) => ({
          email,
          name: email,
          role: 'admin' as const,
          password: 'a long passphrase',
        });
        const root = await staff.create(account('root@example.com'));
        const officer = await staff.create(account('officer@example.com'), { by: root.id });
        const ask = (by: string, target: string) =>
          approvals.request({ action: 'export.release', target, by: `staff:${by}` }).then(
            () => 'asked',
            (error: { status?: number }) => error.status,
          );
        // Only the first admin and an account they made: neither can ever approve for the other.
        expect(await ask(root.email, 'e-1')).toBe(409);
        expect(await ask(officer.email, 'e-2')).toBe(409);
        await expect(approvals.assertApprovable(`staff:${root.email}`)).rejects.toMatchObject({
          status: 409,
        });
        // A second account the admin made: the two officers approve for each other, the admin still
        // has nobody (before, the admin's export waited for an approval no account could give).
        const colleague = await staff.create(account('colleague@example.com'), { by: root.id });
        expect(await ask(officer.email, 'e-3')).toBe('asked');
        await expect(
          approvals.approve({
            action: 'export.release',
            target: 'e-3',
            by: `staff:${colleague.email}`,
            approver: colleague,
          }),
        ).resolves.toMatchObject({ approvedBy: `staff:${colleague.email}` });
        expect(await ask(root.email, 'e-4')).toBe(409);
        expect(await approvals.latest('export.release', 'e-1')).toBeUndefined();
      } finally {
        await t.destroy();
      }
    });
  },
);
