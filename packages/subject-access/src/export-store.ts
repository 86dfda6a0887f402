import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  DEFAULT_TENANT,
  PrivacyKitError,
  newId,
  randomToken,
  systemClock,
  toInstant,
} from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import { constantTimeEqual, sha256Hex } from '@privacykit/core/crypto';
import { engineOf, writeTransaction } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import type { SubjectAccessErrorCode } from './errors.js';

const PACKAGES = 'privacykit_subject_access_packages';
const CHUNKS = 'privacykit_subject_access_chunks';
const TOKENS = 'privacykit_subject_access_tokens';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

export interface ExportStoreOptions {
  db: Kysely<any>;
  clock?: Clock;
  /** The controller whose exports these are (default `default`). */
  tenant?: string;
  /** How long a download token stays valid (default 15 minutes). */
  ttl?: number;
  /** How long a stored package is kept before `purgeExpired` deletes it (default 7 days). */
  retention?: number;
  /**
   * 32-byte key-encryption key (from your secret store or KMS) wrapping each package's own
   * AES-256-GCM key. Without it, package keys sit in the database beside the ciphertext: deleting
   * them still shreds every copy of the chunks, but a dump of the live database can read them.
   */
  keyEncryptionKey?: Uint8Array;
  /** Plaintext bytes per stored chunk (default 256 KiB). */
  chunkSize?: number;
}

export interface StoredExport {
  exportId: string;
  bytes: number;
  sha256: string;
  createdAt: string;
  expiresAt: string;
}

export interface SaveExportOptions {
  filename?: string;
  contentType?: string;
  /** The rights request this export answers, for the back office. */
  requestId?: string;
}

export interface IssuedToken {
  /** Give this to the requester (in a link); only its SHA-256 is stored. */
  token: string;
  expiresAt: string;
}

export interface RedeemedExport {
  exportId: string;
  filename: string;
  contentType: string;
  bytes: number;
  sha256: string;
  /** The package, decrypted as it is read. */
  stream: Readable;
}

export interface PurgeResult {
  packages: number;
  chunks: number;
  tokens: number;
}

/** Stored export packages and their download tokens (Art 15(3), ASVS 14.2.1, 14.3.2, 5.4.1). */
export interface ExportStore {
  /** Stores a finished package (e.g. the stream of `exportSubject`), encrypted, in chunks. */
  save(source: Readable | AsyncIterable<Uint8Array>, options?: SaveExportOptions): Promise<StoredExport>;
  /**
   * A single-use download token bound to the requester (`binding`: the verified session id or
   * requester id the portal will present when redeeming). ≥ 256 bits; stored only as a hash.
   */
  issueToken(exportId: string, options: { binding: string; ttl?: number }): Promise<IssuedToken>;
  /**
   * The package, once: the token must be known, bound to `binding`, unused and unexpired; it is
   * spent by an atomic conditional update, so two concurrent redemptions cannot both succeed.
   */
  redeem(token: string, options: { binding: string }): Promise<RedeemedExport>;
  /** Deletes packages (chunks, key, tokens) whose retention has passed. */
  purgeExpired(): Promise<PurgeResult>;
  /** Deletes one package now (e.g. once the request is closed). */
  delete(exportId: string): Promise<PurgeResult>;
}

function storeError(
  code: SubjectAccessErrorCode,
  message: string,
  options?: { cause?: unknown },
): PrivacyKitError<SubjectAccessErrorCode> {
  return new PrivacyKitError<SubjectAccessErrorCode>(code, message, options);
}

function encrypt(key: Uint8Array, plain: Uint8Array, aad: string): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

function decrypt(key: Uint8Array, sealed: Buffer, aad: string): Buffer {
  const iv = sealed.subarray(0, 12);
  const tag = sealed.subarray(sealed.length - 16);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
}

function chunkAad(tenant: string, exportId: string, seq: number, last: boolean): string {
  // Binding each chunk to its package, place and finality: chunks cannot be swapped, reordered or cut off.
  return `privacykit-export:${tenant}:${exportId}:${seq}:${last ? 'last' : 'more'}`;
}

const tokenShape = /^[A-Za-z0-9_-]{22,256}$/;

/**
 * Stores finished export packages in the database — encrypted at rest with AES-256-GCM under a
 * key of their own, in chunks any node of the cluster can read — and hands them out through
 * download tokens that are single-use, short-lived and bound to the verified requester (GDPR
 * Art 15(3), Art 32; OWASP ASVS 14.2.1, 14.3.2, 5.4.1; hostile cases 13–14). Packages are
 * deleted by `purgeExpired` once their retention (default 7 days) has passed.
 *
 * Tables come from {@link subjectAccessMigrations}.
 */
export function createExportStore(options: ExportStoreOptions): ExportStore {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const tenant = options.tenant ?? DEFAULT_TENANT;
  const ttl = options.ttl ?? 15 * MINUTE;
  const retention = options.retention ?? 7 * DAY;
  const chunkSize = options.chunkSize ?? 256 * 1024;
  const kek = options.keyEncryptionKey;
  if (kek && kek.length !== 32) throw new RangeError('keyEncryptionKey must be 32 bytes');
  if (!(ttl > 0) || !(retention > 0) || !(chunkSize >= 1024)) {
    throw new RangeError('ttl and retention must be positive, chunkSize at least 1024');
  }

  const wrapKey = (key: Buffer, exportId: string): string =>
    kek
      ? `kek:${encrypt(kek, key, `privacykit-export-key:${tenant}:${exportId}`).toString('base64')}`
      : `raw:${key.toString('base64')}`;
  const unwrapKey = (stored: string, exportId: string): Buffer => {
    if (stored.startsWith('raw:')) return Buffer.from(stored.slice(4), 'base64');
    if (!kek) throw storeError('subject-access/export-corrupt', 'this package needs the key-encryption key');
    try {
      return decrypt(
        kek,
        Buffer.from(stored.slice(4), 'base64'),
        `privacykit-export-key:${tenant}:${exportId}`,
      );
    } catch (error) {
      throw storeError(
        'subject-access/export-corrupt',
        `the key of export ${exportId} does not open with this key-encryption key (another key, or an altered record)`,
        { cause: error },
      );
    }
  };

  async function remove(ids: readonly string[]): Promise<PurgeResult> {
    const result: PurgeResult = { packages: 0, chunks: 0, tokens: 0 };
    for (const id of ids) {
      await writeTransaction(db, async (trx) => {
        // The export first: it is what `issueToken` locks, so a token being issued is either
        // committed before this (and deleted below) or refused after it.
        const packages = await trx
          .deleteFrom(PACKAGES)
          .where('tenant', '=', tenant)
          .where('id', '=', id)
          .executeTakeFirst();
        const tokens = await trx
          .deleteFrom(TOKENS)
          .where('tenant', '=', tenant)
          .where('package_id', '=', id)
          .executeTakeFirst();
        const chunks = await trx
          .deleteFrom(CHUNKS)
          .where('tenant', '=', tenant)
          .where('package_id', '=', id)
          .executeTakeFirst();
        result.tokens += Number(tokens.numDeletedRows);
        result.chunks += Number(chunks.numDeletedRows);
        result.packages += Number(packages.numDeletedRows);
      });
    }
    return result;
  }

  return {
    async save(source, saveOptions = {}) {
      const now = clock.now();
      const exportId = newId(now);
      const key = randomBytes(32);
      const createdAt = toInstant(now);
      const expiresAt = toInstant(new Date(now.getTime() + retention));
      await db
        .insertInto(PACKAGES)
        .values({
          id: exportId,
          tenant,
          status: 'writing',
          filename: saveOptions.filename ?? 'personal-data.zip',
          content_type: saveOptions.contentType ?? 'application/zip',
          request_id: saveOptions.requestId ?? null,
          created_at: createdAt,
          expires_at: expiresAt,
          data_key: wrapKey(key, exportId),
        })
        .execute();
      const hash = createHash('sha256');
      let bytes = 0;
      let seq = 0;
      // One chunk is held back so the final one can be sealed as final.
      let held: Buffer | undefined;
      let buffered: Buffer[] = [];
      let bufferedLength = 0;
      const put = async (plain: Buffer, last: boolean) => {
        const data = encrypt(key, plain, chunkAad(tenant, exportId, seq, last)).toString('base64');
        await db.insertInto(CHUNKS).values({ package_id: exportId, seq, tenant, data }).execute();
        seq++;
      };
      const push = async (chunk: Buffer) => {
        if (held) await put(held, false);
        held = chunk;
      };
      try {
        for await (const piece of source as AsyncIterable<Uint8Array | string>) {
          const data = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : Buffer.from(piece);
          hash.update(data);
          bytes += data.length;
          buffered.push(data);
          bufferedLength += data.length;
          while (bufferedLength >= chunkSize) {
            const all = Buffer.concat(buffered);
            await push(all.subarray(0, chunkSize));
            buffered = [all.subarray(chunkSize)];
            bufferedLength = all.length - chunkSize;
          }
        }
        if (bufferedLength > 0) await push(Buffer.concat(buffered));
        await put(held ?? Buffer.alloc(0), true);
        const sha256 = hash.digest('hex');
        await db
          .updateTable(PACKAGES)
          .set({ status: 'ready', bytes, sha256, chunk_count: seq })
          .where('tenant', '=', tenant)
          .where('id', '=', exportId)
          .execute();
        return { exportId, bytes, sha256, createdAt, expiresAt };
      } catch (error) {
        await remove([exportId]).catch(() => undefined);
        throw error;
      }
    },

    async issueToken(exportId, tokenOptions) {
      if (typeof tokenOptions?.binding !== 'string' || tokenOptions.binding.length === 0) {
        throw storeError('subject-access/invalid-input', 'a token must be bound to the requester (binding)');
      }
      const lifetime = tokenOptions.ttl ?? ttl;
      if (!(lifetime > 0) || lifetime > retention) {
        throw storeError(
          'subject-access/invalid-input',
          'token ttl must be positive and within the retention',
        );
      }
      const now = clock.now();
      const token = randomToken(32);
      const expiresAt = toInstant(new Date(now.getTime() + lifetime));
      // The export is locked while its token is written: a deletion or purge running at the same
      // time either finishes first (and the export is unknown here) or waits and deletes the
      // token with the export. Never a token left behind for an export that is gone.
      await writeTransaction(db, async (trx) => {
        let query = trx
          .selectFrom(PACKAGES)
          .select(['id'])
          .where('tenant', '=', tenant)
          .where('id', '=', exportId)
          .where('status', '=', 'ready')
          .where('expires_at', '>', toInstant(now));
        if (engineOf(trx) !== 'sqlite') query = query.forUpdate();
        const found = await query.executeTakeFirst();
        if (!found) throw storeError('subject-access/export-unknown', 'no such export');
        await trx
          .insertInto(TOKENS)
          .values({
            token_hash: sha256Hex(token),
            tenant,
            package_id: exportId,
            binding_hash: sha256Hex(tokenOptions.binding),
            issued_at: toInstant(now),
            expires_at: expiresAt,
            used_at: null,
          })
          .execute();
      });
      return { token, expiresAt };
    },

    async redeem(token, redeemOptions) {
      if (typeof token !== 'string' || !tokenShape.test(token)) {
        throw storeError('subject-access/token-unknown', 'unknown download link');
      }
      const tokenHash = sha256Hex(token);
      const row = await db
        .selectFrom(TOKENS)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      if (!row) throw storeError('subject-access/token-unknown', 'unknown download link');
      const binding = typeof redeemOptions?.binding === 'string' ? redeemOptions.binding : '';
      if (!constantTimeEqual(sha256Hex(binding), String(row.binding_hash))) {
        throw storeError(
          'subject-access/token-binding-mismatch',
          'this download link belongs to another session',
        );
      }
      if (row.used_at !== null && row.used_at !== undefined) {
        throw storeError('subject-access/token-used', 'this download link has already been used');
      }
      const now = toInstant(clock.now());
      if (String(row.expires_at) <= now) {
        throw storeError('subject-access/token-expired', 'this download link has expired');
      }
      const pkg = await db
        .selectFrom(PACKAGES)
        .selectAll()
        .where('tenant', '=', tenant)
        .where('id', '=', String(row.package_id))
        .where('status', '=', 'ready')
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (!pkg) throw storeError('subject-access/export-unknown', 'the export is no longer available');
      const exportId = String(pkg.id);
      // Before the token is spent: a store configured with the wrong key must not use up the link.
      const key = unwrapKey(String(pkg.data_key), exportId);
      // Spend the token: only the one caller whose update finds it unused wins.
      const spent = await db
        .updateTable(TOKENS)
        .set({ used_at: now })
        .where('tenant', '=', tenant)
        .where('token_hash', '=', tokenHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(spent.numUpdatedRows) !== 1) {
        throw storeError('subject-access/token-used', 'this download link has already been used');
      }
      const count = Number(pkg.chunk_count);
      const expected = String(pkg.sha256);
      async function* chunks(): AsyncGenerator<Buffer> {
        const hash = createHash('sha256');
        for (let seq = 0; seq < count; seq++) {
          const chunk = await db
            .selectFrom(CHUNKS)
            .select('data')
            .where('tenant', '=', tenant)
            .where('package_id', '=', exportId)
            .where('seq', '=', seq)
            .executeTakeFirst();
          if (!chunk) {
            // Deleted (or purged at its expiry) while this download ran: gone, not damaged.
            const still = await db
              .selectFrom(PACKAGES)
              .select('id')
              .where('tenant', '=', tenant)
              .where('id', '=', exportId)
              .executeTakeFirst();
            if (!still) {
              throw storeError(
                'subject-access/export-unknown',
                `export ${exportId} was deleted while it was being downloaded`,
              );
            }
          }
          let plain: Buffer;
          try {
            if (!chunk) throw new Error(`chunk ${seq} missing`);
            plain = decrypt(
              key,
              Buffer.from(String(chunk.data), 'base64'),
              chunkAad(tenant, exportId, seq, seq === count - 1),
            );
          } catch (cause) {
            throw new PrivacyKitError<SubjectAccessErrorCode>(
              'subject-access/export-corrupt',
              `export ${exportId} is damaged`,
              { cause },
            );
          }
          hash.update(plain);
          if (plain.length > 0) yield plain;
        }
        if (hash.digest('hex') !== expected) {
          throw storeError('subject-access/export-corrupt', `export ${exportId} does not match its digest`);
        }
      }
      return {
        exportId,
        filename: String(pkg.filename),
        contentType: String(pkg.content_type),
        bytes: Number(pkg.bytes),
        sha256: expected,
        stream: Readable.from(chunks(), { objectMode: false }),
      };
    },

    async purgeExpired() {
      const now = toInstant(clock.now());
      const total: PurgeResult = { packages: 0, chunks: 0, tokens: 0 };
      for (;;) {
        const due = await db
          .selectFrom(PACKAGES)
          .select('id')
          .where('tenant', '=', tenant)
          .where('expires_at', '<=', now)
          .orderBy('expires_at')
          .limit(100)
          .execute();
        if (due.length === 0) return total;
        const done = await remove(due.map((row) => String(row.id)));
        total.packages += done.packages;
        total.chunks += done.chunks;
        total.tokens += done.tokens;
      }
    },

    async delete(exportId) {
      return remove([exportId]);
    },
  };
}
