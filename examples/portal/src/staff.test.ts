import { randomBytes, scryptSync } from 'node:crypto';
import type { Kysely } from 'kysely';
import { fixedClock } from '@privacykit/core';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestEngine } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';
import { migratePortal } from './setup.js';
import { createStaffDirectory, hashPassword, needsRehash, verifyPassword } from './staff.js';
import type { StaffDirectory } from './staff.js';

/** A staff directory on a fresh, migrated database of `engine`, destroyed after `use`. */
async function withStaff(
  engine: TestEngine,
  use: (staff: StaffDirectory, db: Kysely<any>) => Promise<void>,
): Promise<void> {
  const t = await createTestDatabase(engine);
  try {
    await migratePortal(t.db);
    await use(
      createStaffDirectory({ db: t.db, tenant: 'default', clock: fixedClock('2025-01-01T00:00:00Z') }),
      t.db,
    );
  } finally {
    await t.destroy();
  }
}

describe('staff accounts', () => {
  it('takes a lower scrypt cost only as a power of two from 2^10, for test suites', async () => {
    const base = { db: {} as Kysely<any>, tenant: 'default', clock: fixedClock('2025-01-01T00:00:00Z') };
    for (const passwordCost of [0, 1000, 2 ** 9, 2 ** 21, 1.5, Number.NaN]) {
      expect(() => createStaffDirectory({ ...base, passwordCost })).toThrow(/power of two/);
    }
    expect(() => createStaffDirectory({ ...base, passwordCost: 2 ** 12 })).not.toThrow();
  });

  it('hashes with scrypt at the OWASP minimum (N=2^17, r=8, p=1) and verifies only the right password', async () => {
    const hash = await hashPassword('correct horse battery staple');
    const [scheme, n, r, p] = hash.split('$');
    expect(scheme).toBe('scrypt');
    expect(Number(n)).toBeGreaterThanOrEqual(2 ** 17);
    expect(Number(r)).toBeGreaterThanOrEqual(8);
    expect(Number(p)).toBeGreaterThanOrEqual(1);
    expect(needsRehash(hash)).toBe(false);
    expect(await verifyPassword('correct horse battery staple', hash)).toBe(true);
    expect(await verifyPassword('correct horse battery stapler', hash)).toBe(false);
  });

  it('refuses a malformed or absurd stored hash instead of throwing or computing it', async () => {
    const good = await hashPassword('pw');
    const [, , , , salt, key] = good.split('$');
    for (const stored of [
      '',
      'bcrypt$x',
      `scrypt$abc$8$1$${salt}$${key}`,
      `scrypt$1000$8$1$${salt}$${key}`,
      `scrypt$${2 ** 30}$8$1$${salt}$${key}`,
      `scrypt$16384$8$1$$${key}`,
    ]) {
      expect(await verifyPassword('pw', stored), stored).toBe(false);
    }
  });

  it('rehashes a legacy (weaker) hash with the current parameters at the next sign-in', async () => {
    await withStaff(testEngines()[0]!, async (staff, db) => {
      const member = await staff.create({
        email: 'legacy@example.com',
        name: 'Legacy',
        role: 'privacy-officer',
        password: 'an old but long password',
      });
      // What the portal stored before: N=2^14.
      const salt = randomBytes(16);
      const legacy = [
        'scrypt',
        16384,
        8,
        1,
        salt.toString('base64url'),
        scryptSync('an old but long password'.normalize('NFKC'), salt, 32, { N: 16384, r: 8, p: 1 }).toString(
          'base64url',
        ),
      ].join('$');
      await db
        .updateTable('privacykit_portal_staff')
        .set({ password_hash: legacy })
        .where('id', '=', member.id)
        .execute();
      const stored = async () =>
        String(
          (
            await db
              .selectFrom('privacykit_portal_staff')
              .select('password_hash')
              .where('id', '=', member.id)
              .executeTakeFirstOrThrow()
          ).password_hash,
        );
      expect(needsRehash(await stored())).toBe(true);
      // A wrong password changes nothing.
      expect(await staff.authenticate('legacy@example.com', 'wrong password')).toBeUndefined();
      expect(await stored()).toBe(legacy);
      expect((await staff.authenticate('legacy@example.com', 'an old but long password'))?.id).toBe(
        member.id,
      );
      const upgraded = await stored();
      expect(upgraded).not.toBe(legacy);
      expect(needsRehash(upgraded)).toBe(false);
      expect((await staff.authenticate('legacy@example.com', 'an old but long password'))?.id).toBe(
        member.id,
      );
    });
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
    'two administrators disabling each other at once leave one of them active, on $engine',
    async (engine) => {
      await withStaff(engine, async (staff) => {
        const admin = (email: string) => ({
          email,
          name: email,
          role: 'admin' as const,
          password: 'a long passphrase',
        });
        const a = await staff.create(admin('a@example.com'));
        const b = await staff.create(admin('b@example.com'));
        const results = await Promise.all([
          staff.disable(b.id, { by: a.id }),
          staff.disable(a.id, { by: b.id }),
        ]);
        // Before: both saw two admins, both went through, and nobody could administer any more.
        expect(results.filter((result) => result === 'last-admin')).toHaveLength(1);
        const active = (await staff.list()).filter((member) => member.role === 'admin' && !member.disabledAt);
        expect(active).toHaveLength(1);
        expect(await staff.disable(a.id, { by: a.id })).toBe('self');
        expect(await staff.disable('no-such-id', { by: a.id })).toBe('unknown');
      });
    },
  );

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
