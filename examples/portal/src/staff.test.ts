import { fixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestEngine } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { migratePortal } from './setup.js';
import { createStaffDirectory, hashPassword, verifyPassword } from './staff.js';
import type { StaffDirectory } from './staff.js';

/** A staff directory on a fresh, migrated database of `engine`, destroyed after `use`. */
async function withStaff(engine: TestEngine, use: (staff: StaffDirectory) => Promise<void>): Promise<void> {
  const t = await createTestDatabase(engine);
  try {
    await migratePortal(t.db);
    await use(
      createStaffDirectory({ db: t.db, tenant: 'default', clock: fixedClock('2025-01-01T00:00:00Z') }),
    );
  } finally {
    await t.destroy();
  }
}

describe('staff accounts', () => {
  it('hashes with scrypt and verifies only the right password', async () => {
    const hash = await hashPassword('correct horse battery staple');
    expect(hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('correct horse battery stapler', hash)).toBe(false);
  });

  it('creates the first administrator once, with a password that signs in', async () => {
    await withStaff(testEngines()[0]!, async (staff) => {
      const first = await staff.ensureInitialAdmin();
      expect(first?.password.length).toBeGreaterThanOrEqual(20);
      expect(await staff.ensureInitialAdmin()).toBeUndefined();
      expect((await staff.authenticate('Admin@example.com', first!.password))?.role).toBe('admin');
      expect(await staff.authenticate('admin@example.com', 'nope')).toBeUndefined();
    });
  });

  it.each(testEngines())(
    'knows who created each account, up to the first admin, on $engine',
    async (engine) => {
      await withStaff(engine, async (staff) => {
        const account = (email: string) => ({
          email,
          name: email,
          role: 'admin' as const,
          password: 'a long passphrase',
        });
        const root = await staff.create(account('root@example.com'));
        const child = await staff.create(account('child@example.com'), { by: root.id });
        const grandchild = await staff.create(account('grandchild@example.com'), { by: child.id });
        expect(grandchild.createdBy).toBe(child.id);
        expect((await staff.get(grandchild.id))?.createdBy).toBe(child.id);
        expect((await staff.creators(grandchild.id)).map((member) => member.email)).toEqual([
          'child@example.com',
          'root@example.com',
        ]);
        expect(await staff.creators(root.id)).toEqual([]);
        expect((await staff.get(root.id))?.createdBy).toBeUndefined();
      });
    },
  );
});
