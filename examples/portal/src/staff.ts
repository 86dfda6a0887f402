import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { newId, randomToken } from '@privacykit/core';
import type { Clock } from '@privacykit/core';

export const staffRoleSchema = z.enum(['admin', 'privacy-officer']);
export type StaffRole = z.infer<typeof staffRoleSchema>;

export interface StaffMember {
  id: string;
  email: string;
  name: string;
  role: StaffRole;
  /** When the account was created (ISO 8601). */
  createdAt: string;
  /** The id of the staff member who created the account, when one did (not the first admin). */
  createdBy?: string;
}

const TABLE = 'privacykit_portal_staff';
const params = { N: 16384, r: 8, p: 1, keylen: 32 } as const;

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scryptCallback(password.normalize('NFKC'), salt, keylen, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$salt$key` (base64url): the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, params.keylen, { N: params.N, r: params.r, p: params.p });
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join(
    '$',
  );
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

// Compared against when the email is unknown, so a login for an unknown account costs the same
// time as one for a known account (no enumeration by timing).
let decoyHash: Promise<string> | undefined;

/** The form of a staff email the directory looks up (and the sign-in limiter counts by). */
export function normaliseEmail(email: string): string {
  return email.trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
}

export interface StaffDirectory {
  /** Creates an account; `by` is the id of the staff member creating it. */
  create(
    input: { email: string; name: string; role: StaffRole; password: string },
    options?: { by?: string },
  ): Promise<StaffMember>;
  /**
   * The staff who created this account, nearest first: its creator, the creator's creator, and on
   * to an account nobody in the directory created.
   */
  creators(id: string): Promise<StaffMember[]>;
  /** The staff member when email and password match; `undefined` otherwise, whichever was wrong. */
  authenticate(email: string, password: string): Promise<StaffMember | undefined>;
  list(): Promise<StaffMember[]>;
  get(id: string): Promise<StaffMember | undefined>;
  /** On first start: creates an admin with a generated password and returns it (shown once). */
  ensureInitialAdmin(email?: string): Promise<{ email: string; password: string } | undefined>;
}

export function createStaffDirectory(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
}): StaffDirectory {
  const { db, tenant, clock } = options;
  const toMember = (row: Record<string, unknown>): StaffMember => ({
    id: String(row.id),
    email: String(row.email),
    name: String(row.name),
    role: staffRoleSchema.parse(row.role),
    createdAt: String(row.created_at),
    ...(row.created_by ? { createdBy: String(row.created_by) } : {}),
  });

  const directory: StaffDirectory = {
    async create(input, options) {
      const createdAt = clock.now().toISOString();
      const member = {
        id: newId(clock.now()),
        email: normaliseEmail(input.email),
        name: input.name,
        role: input.role,
      };
      await db
        .insertInto(TABLE)
        .values({
          ...member,
          tenant,
          password_hash: await hashPassword(input.password),
          created_at: createdAt,
          created_by: options?.by ?? null,
        })
        .execute();
      return { ...member, createdAt, ...(options?.by ? { createdBy: options.by } : {}) };
    },
    async creators(id) {
      const chain: StaffMember[] = [];
      const seen = new Set([id]);
      let next = (await directory.get(id))?.createdBy;
      while (next && !seen.has(next)) {
        seen.add(next);
        const creator = await directory.get(next);
        if (!creator) break;
        chain.push(creator);
        next = creator.createdBy;
      }
      return chain;
    },
    async authenticate(email, password) {
      const row = await db
        .selectFrom(TABLE)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('email', '=', normaliseEmail(email))
        .executeTakeFirst();
      if (!row) {
        decoyHash ??= hashPassword(randomToken(16));
        await verifyPassword(password, await decoyHash);
        return undefined;
      }
      if (!(await verifyPassword(password, String(row.password_hash)))) return undefined;
      await db
        .updateTable(TABLE)
        .set({ last_login_at: clock.now().toISOString() })
        .where('id', '=', row.id)
        .execute();
      return toMember(row);
    },
    async list() {
      const rows = await db
        .selectFrom(TABLE)
        .selectAll()
        .where('tenant', '=', tenant)
        .orderBy('email')
        .execute();
      return rows.map(toMember);
    },
    async get(id) {
      const row = await db
        .selectFrom(TABLE)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? toMember(row) : undefined;
    },
    async ensureInitialAdmin(email = 'admin@example.com') {
      const existing = await db
        .selectFrom(TABLE)
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant', '=', tenant)
        .executeTakeFirstOrThrow();
      if (Number(existing.n) > 0) return undefined;
      const password = randomToken(18);
      await directory.create({ email, name: 'Administrator', role: 'admin', password });
      return { email, password };
    },
  };
  return directory;
}
