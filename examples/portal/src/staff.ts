import { createHash, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import type { Kysely } from 'kysely';
import { engineOf, writeTransaction } from '@privacykit/core/db';
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
  /**
   * The password was chosen by whoever created the account: the member sets their own at their
   * first sign-in, before anything else (a creator who knows it could otherwise act as them).
   */
  mustChangePassword: boolean;
  /**
   * Changes whenever the password does (a digest of its hash, never the hash): a session stores
   * the one it signed in under, and one that no longer matches is signed out, so a password change
   * ends every other session of the member — the creator's among them.
   */
  passwordStamp: string;
  /** When an administrator disabled the account (ISO 8601): it can no longer sign in or act. */
  disabledAt?: string;
}

const TABLE = 'privacykit_portal_staff';
/**
 * The OWASP Password Storage Cheat Sheet minimum for scrypt (ASVS 11.4.2): N = 2^17 (128 MiB),
 * r = 8, p = 1. Hashes stored with weaker parameters are rehashed at the next sign-in.
 */
export const scryptParams = { N: 2 ** 17, r: 8, p: 1, keylen: 32 } as const;
export type ScryptParams = { N: number; r: number; p: number; keylen: number };
// Stored parameters above these are refused rather than computed: a tampered row must not make
// one sign-in allocate gigabytes.
const ceiling = { N: 2 ** 20, r: 16, p: 16 } as const;

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  // Node refuses more than 32 MiB unless told; scrypt needs 128 × N × r bytes (and a little more).
  const maxmem = 2 * 128 * (options.N ?? 0) * (options.r ?? 0);
  return new Promise((resolve, reject) =>
    scryptCallback(password.normalize('NFKC'), salt, keylen, { ...options, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

interface StoredHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

function parseStored(stored: string): StoredHash | undefined {
  const [scheme, n, r, p, salt, key, ...rest] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !key || rest.length > 0) return undefined;
  const [N, R, P] = [n, r, p].map(Number) as [number, number, number];
  const valid = (value: number, max: number) => Number.isSafeInteger(value) && value >= 1 && value <= max;
  // N must be a power of two above 1.
  if (!valid(N, ceiling.N) || N < 2 || (N & (N - 1)) !== 0) return undefined;
  if (!valid(R, ceiling.r) || !valid(P, ceiling.p)) return undefined;
  const parsed = { N, r: R, p: P, salt: Buffer.from(salt, 'base64url'), key: Buffer.from(key, 'base64url') };
  return parsed.salt.length > 0 && parsed.key.length >= 16 ? parsed : undefined;
}

/** `scrypt$N$r$p$salt$key` (base64url): the parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string, params: ScryptParams = scryptParams): Promise<string> {
  const { N, r, p, keylen } = params;
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, keylen, { N, r, p });
  return ['scrypt', N, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const hash = parseStored(stored);
  if (!hash) return false;
  const actual = await scrypt(password, hash.salt, hash.key.length, { N: hash.N, r: hash.r, p: hash.p });
  return actual.length === hash.key.length && timingSafeEqual(actual, hash.key);
}

/** True when a stored hash was made with weaker parameters than {@link scryptParams}. */
export function needsRehash(stored: string, params: ScryptParams = scryptParams): boolean {
  const hash = parseStored(stored);
  return (
    !hash || hash.N < params.N || hash.r < params.r || hash.p < params.p || hash.key.length < params.keylen
  );
}

/** The form of a staff email the directory looks up (and the sign-in limiter counts by). */
/** The {@link StaffMember.passwordStamp} of a stored password hash. */
export function passwordStampOf(passwordHash: string): string {
  return createHash('sha256')
    .update(`privacykit-portal/password-stamp|${passwordHash}`)
    .digest('base64url')
    .slice(0, 22);
}

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
  /**
   * Sets a member's own password when `current` is theirs; clears `mustChangePassword`. False when
   * `current` is wrong. The caller checks the new password's length and that it differs.
   */
  changePassword(id: string, current: string, next: string): Promise<boolean>;
  list(): Promise<StaffMember[]>;
  get(id: string): Promise<StaffMember | undefined>;
  /**
   * Disables an account (`by`: the administrator's id): it signs in no more, and its sessions
   * end at their next request. Refused for one's own account and for the last active
   * administrator (`'self'`, `'last-admin'`); `'unknown'` when there is no such account.
   */
  disable(id: string, options: { by: string }): Promise<StaffMember | 'self' | 'last-admin' | 'unknown'>;
  /** The account with this email (as sign-in normalises it), if any. */
  findByEmail(email: string): Promise<StaffMember | undefined>;
  /** On first start: creates an admin with a generated password and returns it (shown once). */
  ensureInitialAdmin(email?: string): Promise<{ email: string; password: string } | undefined>;
}

export function createStaffDirectory(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
  /**
   * scrypt's N for new password hashes: a power of two, default 2^17 (the OWASP minimum). Lower it
   * only where the hashes protect nothing (a test suite that signs in hundreds of times).
   */
  passwordCost?: number;
}): StaffDirectory {
  const { db, tenant, clock } = options;
  const cost = options.passwordCost ?? scryptParams.N;
  if (!Number.isSafeInteger(cost) || cost < 2 ** 10 || cost > 2 ** 20 || (cost & (cost - 1)) !== 0) {
    throw new Error('passwordCost is a power of two from 2^10 to 2^20');
  }
  const params: ScryptParams = { ...scryptParams, N: cost };
  // Compared against when the email is unknown, so a login for an unknown account costs the same
  // time as one for a known account (no enumeration by timing).
  let decoyHash: Promise<string> | undefined;
  const toMember = (row: Record<string, unknown>): StaffMember => ({
    id: String(row.id),
    email: String(row.email),
    name: String(row.name),
    role: staffRoleSchema.parse(row.role),
    createdAt: String(row.created_at),
    ...(row.created_by ? { createdBy: String(row.created_by) } : {}),
    mustChangePassword: Number(row.password_change_due ?? 0) === 1,
    passwordStamp: passwordStampOf(String(row.password_hash)),
    ...(row.disabled_at ? { disabledAt: String(row.disabled_at) } : {}),
  });

  // A member's row by sign-in address (addresses are compared normalised).
  const rowByEmail = (email: string) =>
    db
      .selectFrom(TABLE)
      .selectAll()
      .where('tenant', '=', tenant)
      .where('email', '=', normaliseEmail(email))
      .executeTakeFirst();
  const directory: StaffDirectory = {
    async create(input, options) {
      const createdAt = clock.now().toISOString();
      const member = {
        id: newId(clock.now()),
        email: normaliseEmail(input.email),
        name: input.name,
        role: input.role,
      };
      const passwordHash = await hashPassword(input.password, params);
      await db
        .insertInto(TABLE)
        .values({
          ...member,
          tenant,
          password_hash: passwordHash,
          created_at: createdAt,
          created_by: options?.by ?? null,
          // Whoever creates an account chooses its first password: its owner replaces it.
          password_change_due: options?.by ? 1 : 0,
        })
        .execute();
      return {
        ...member,
        createdAt,
        ...(options?.by ? { createdBy: options.by } : {}),
        mustChangePassword: Boolean(options?.by),
        passwordStamp: passwordStampOf(passwordHash),
      };
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
      const row = await rowByEmail(email);
      if (!row) {
        decoyHash ??= hashPassword(randomToken(16), params);
        await verifyPassword(password, await decoyHash);
        return undefined;
      }
      const stored = String(row.password_hash);
      if (!(await verifyPassword(password, stored))) return undefined;
      // Checked after the password, so a disabled account answers as slowly as any other.
      if (row.disabled_at) return undefined;
      // The password is at hand only now: raise a legacy hash to the current parameters.
      const rehashed = needsRehash(stored, params) ? await hashPassword(password, params) : undefined;
      await db
        .updateTable(TABLE)
        .set({
          last_login_at: clock.now().toISOString(),
          ...(rehashed ? { password_hash: rehashed } : {}),
        })
        .where('tenant', '=', tenant)
        .where('id', '=', row.id)
        .execute();
      return toMember(rehashed ? { ...row, password_hash: rehashed } : row);
    },
    async changePassword(id, current, next) {
      const row = await db
        .selectFrom(TABLE)
        .select('password_hash')
        .where('tenant', '=', tenant)
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row || !(await verifyPassword(current, String(row.password_hash)))) return false;
      await db
        .updateTable(TABLE)
        .set({ password_hash: await hashPassword(next, params), password_change_due: 0 })
        .where('tenant', '=', tenant)
        .where('id', '=', id)
        .execute();
      return true;
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
    async disable(id, { by }) {
      if (id === by) return 'self';
      // The count of active administrators and the update in one transaction, the admins' rows
      // locked (SQLite: one writer at a time): two administrators disabling each other at once
      // both saw two admins and left none.
      const outcome = await writeTransaction(db, async (trx) => {
        const row = await trx
          .selectFrom(TABLE)
          .select(['role', 'disabled_at'])
          .where('tenant', '=', tenant)
          .where('id', '=', id)
          .executeTakeFirst();
        if (!row) return 'unknown' as const;
        if (row.disabled_at) return 'done' as const;
        if (row.role === 'admin') {
          let admins = trx
            .selectFrom(TABLE)
            .select('id')
            .where('tenant', '=', tenant)
            .where('role', '=', 'admin')
            .where('disabled_at', 'is', null);
          if (engineOf(trx) !== 'sqlite') admins = admins.forUpdate();
          if ((await admins.execute()).length <= 1) return 'last-admin' as const;
        }
        await trx
          .updateTable(TABLE)
          .set({ disabled_at: clock.now().toISOString(), disabled_by: by })
          .where('tenant', '=', tenant)
          .where('id', '=', id)
          .where('disabled_at', 'is', null)
          .execute();
        return 'done' as const;
      });
      if (outcome !== 'done') return outcome;
      return (await directory.get(id)) ?? 'unknown';
    },
    async findByEmail(email) {
      const row = await rowByEmail(email);
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
