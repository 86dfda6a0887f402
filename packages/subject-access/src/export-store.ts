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
import { engineOf, writeStatement, writeTransaction } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import type { SubjectAccessErrorCode } from './errors.js';

const PACKAGES = 'privacykit_subject_access_packages';
const CHUNKS = 'privacykit_subject_access_chunks';
const TOKENS = 'privacykit_subject_access_tokens';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * The largest chunk: its base64 (4/3 of the sealed chunk, ~5.6 MB) stays well under what every
 * engine takes in one value and one statement — MySQL's `mediumtext` column (16 MiB) and
 * MariaDB's default `max_allowed_packet` (16 MiB), which the insert carrying it must fit in.
 */
const MAX_CHUNK_SIZE = 4 * 1024 * 1024;
const MIN_CHUNK_SIZE = 1024;

/** What the store's columns hold, in characters (`varchar(255)`, `varchar(64)`), on every engine. */
const MAX_FILENAME = 255;
const MAX_CONTENT_TYPE = 255;
const MAX_REQUEST_ID = 64;

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
  /** Plaintext bytes per stored chunk (default 256 KiB; from 1 KiB to 4 MiB). */
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
  /** The name the download is saved under (default `personal-data.zip`; at most 255 characters). */
  filename?: string;
  /** Default `application/zip`; at most 255 characters. */
  contentType?: string;
  /** The rights request this export answers, for the back office (at most 64 characters). */
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
  /**
   * Stores a finished package (e.g. the stream of `exportSubject`), encrypted, in chunks. When
   * it fails — bad options (`subject-access/invalid-input`, before anything is written), the
   * database, the source — nothing of it is kept, and a source stream is destroyed, so an
   * export feeding it stops and gives back its temporary files and connection.
   */
  save(
    source: Readable | AsyncIterable<Uint8Array> | Uint8Array,
    options?: SaveExportOptions,
  ): Promise<StoredExport>;
  /**
   * A single-use download token bound to the requester (`binding`: the verified session id or
   * requester id the portal will present when redeeming). ≥ 256 bits; stored only as a hash.
   * It expires after `ttl` (default: the store's), or with the package if that comes first.
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

function invalid(message: string, path: string): PrivacyKitError<SubjectAccessErrorCode> {
  return new PrivacyKitError<SubjectAccessErrorCode>('subject-access/invalid-input', message, {
    issues: [{ path, message }],
  });
}

/** A positive, finite number of milliseconds, or a typed error naming the option. */
function duration(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(`${name} must be a positive number of milliseconds, got ${String(value)}`, name);
  }
  return value;
}

/** Text of at most `max` characters (code points: what `varchar(n)` counts on every engine). */
function boundedText(value: unknown, name: string, max: number): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(`${name} must be non-empty text`, name);
  }
  let length = 0;
  for (const _ of value) length++;
  if (length > max) throw invalid(`${name} must be at most ${max} characters, got ${length}`, name);
  return value;
}

/**
 * Stops a source `save` will not read to its end: a stream is destroyed (without an error, which
 * nobody may be listening for), so an export writing into it fails its pending write, removes
 * its spool files and releases the connection its cursor holds.
 */
function discard(source: unknown): void {
  // null, a number…: nothing to stop, and the caller's typed error must not become a TypeError.
  if (typeof source !== 'object' || source === null) return;
  const stream = source as { destroy?: unknown; destroyed?: boolean };
  if (typeof stream.destroy === 'function' && !stream.destroyed) (stream.destroy as () => void)();
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
  const ttl = duration(options.ttl ?? 15 * MINUTE, 'ttl');
  const retention = duration(options.retention ?? 7 * DAY, 'retention');
  const chunkSize = options.chunkSize ?? 256 * 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw invalid(
      `chunkSize must be a whole number of bytes from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}, got ${String(chunkSize)}`,
      'chunkSize',
    );
  }
  const kek = options.keyEncryptionKey;
  if (kek !== undefined && (!(kek instanceof Uint8Array) || kek.length !== 32)) {
    throw invalid('keyEncryptionKey must be 32 bytes (a Uint8Array or Buffer)', 'keyEncryptionKey');
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

  async function saveAll(
    source: Readable | AsyncIterable<Uint8Array> | Uint8Array,
    saveOptions: SaveExportOptions,
  ): Promise<StoredExport> {
    // Checked before the first write: a value the columns cannot hold fails here, typed, the same
    // way on every engine (PostgreSQL and MySQL would refuse it, SQLite keep it).
    const filename = boundedText(saveOptions.filename, 'filename', MAX_FILENAME) ?? 'personal-data.zip';
    const contentType =
      boundedText(saveOptions.contentType, 'contentType', MAX_CONTENT_TYPE) ?? 'application/zip';
    const requestId = boundedText(saveOptions.requestId, 'requestId', MAX_REQUEST_ID) ?? null;
    // The bytes themselves (a Buffer of a collected export): iterated, they gave numbers.
    if (source instanceof Uint8Array)
      return saveAll([source] as unknown as AsyncIterable<Uint8Array>, saveOptions);
    const iterable = source as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown } | null;
    if (
      typeof iterable?.[Symbol.asyncIterator] !== 'function' &&
      (typeof iterable?.[Symbol.iterator] !== 'function' || typeof source === 'string')
    ) {
      throw invalid('save needs a stream or (async) iterable of bytes', 'source');
    }
    const now = clock.now();
    const exportId = newId(now);
    const key = randomBytes(32);
    const createdAt = toInstant(now);
    const expiresAt = toInstant(new Date(now.getTime() + retention));
    // Each write on its own, through writeStatement: on SQLite it waits for the write lock off the
    // thread, so another connection of this process holding it across an await can commit.
    await writeStatement(db, (on) =>
      on
        .insertInto(PACKAGES)
        .values({
          id: exportId,
          tenant,
          status: 'writing',
          filename,
          content_type: contentType,
          request_id: requestId,
          created_at: createdAt,
          expires_at: expiresAt,
          data_key: wrapKey(key, exportId),
        })
        .execute(),
    );
    const hash = createHash('sha256');
    let bytes = 0;
    let seq = 0;
    // One chunk is held back so the final one can be sealed as final.
    let held: Buffer | undefined;
    // Pieces are copied into the chunk being filled, each byte once, whatever their size.
    let filling = Buffer.allocUnsafe(chunkSize);
    let filled = 0;
    const put = async (plain: Buffer, last: boolean) => {
      const data = encrypt(key, plain, chunkAad(tenant, exportId, seq, last)).toString('base64');
      await writeStatement(db, (on) =>
        on.insertInto(CHUNKS).values({ package_id: exportId, seq, tenant, data }).execute(),
      );
      seq++;
    };
    const push = async (chunk: Buffer) => {
      if (held) await put(held, false);
      held = chunk;
    };
    try {
      for await (const piece of source as AsyncIterable<Uint8Array | string>) {
        if (typeof piece !== 'string' && !(piece instanceof Uint8Array)) {
          throw invalid(
            `save takes pieces of bytes (Uint8Array, Buffer) or text, got ${piece === null ? 'null' : typeof piece}`,
            'source',
          );
        }
        const data =
          typeof piece === 'string'
            ? Buffer.from(piece, 'utf8')
            : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        hash.update(data);
        bytes += data.length;
        for (let offset = 0; offset < data.length; ) {
          const taken = Math.min(chunkSize - filled, data.length - offset);
          data.copy(filling, filled, offset, offset + taken);
          filled += taken;
          offset += taken;
          if (filled === chunkSize) {
            await push(filling);
            filling = Buffer.allocUnsafe(chunkSize);
            filled = 0;
          }
        }
      }
      if (filled > 0) await push(filling.subarray(0, filled));
      await put(held ?? Buffer.alloc(0), true);
      const sha256 = hash.digest('hex');
      await writeStatement(db, (on) =>
        on
          .updateTable(PACKAGES)
          .set({ status: 'ready', bytes, sha256, chunk_count: seq })
          .where('tenant', '=', tenant)
          .where('id', '=', exportId)
          .execute(),
      );
      return { exportId, bytes, sha256, createdAt, expiresAt };
    } catch (error) {
      await remove([exportId]).catch(() => undefined);
      throw error;
    }
  }

  return {
    async save(source, saveOptions = {}) {
      try {
        return await saveAll(source, saveOptions ?? {});
      } catch (error) {
        discard(source);
        throw error;
      }
    },

    async issueToken(exportId, tokenOptions) {
      if (typeof tokenOptions?.binding !== 'string' || tokenOptions.binding.length === 0) {
        throw storeError('subject-access/invalid-input', 'a token must be bound to the requester (binding)');
      }
      const lifetime = tokenOptions.ttl ?? ttl;
      // A number: "60000" passed the comparison and then made an invalid date (a RangeError).
      if (typeof lifetime !== 'number' || !(lifetime > 0) || lifetime > retention) {
        throw storeError(
          'subject-access/invalid-input',
          'token ttl must be positive and within the retention',
        );
      }
      const now = clock.now();
      const token = randomToken(32);
      const wanted = toInstant(new Date(now.getTime() + lifetime));
      // The export is locked while its token is written: a deletion or purge running at the same
      // time either finishes first (and the export is unknown here) or waits and deletes the
      // token with the export. Never a token left behind for an export that is gone.
      const expiresAt = await writeTransaction(db, async (trx) => {
        let query = trx
          .selectFrom(PACKAGES)
          .select(['id', 'expires_at'])
          .where('tenant', '=', tenant)
          .where('id', '=', exportId)
          .where('status', '=', 'ready')
          .where('expires_at', '>', toInstant(now));
        if (engineOf(trx) !== 'sqlite') query = query.forUpdate();
        const found = await query.executeTakeFirst();
        if (!found) throw storeError('subject-access/export-unknown', 'no such export');
        // A link never outlives its package: past the package's expiry it would only ever
        // answer export-unknown, while the requester was told it was still valid.
        const packageExpiry = String(found.expires_at);
        const expiresAt = wanted < packageExpiry ? wanted : packageExpiry;
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
        return expiresAt;
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
      const spent = await writeStatement(db, (on) =>
        on
          .updateTable(TOKENS)
          .set({ used_at: now })
          .where('tenant', '=', tenant)
          .where('token_hash', '=', tokenHash)
          .where('used_at', 'is', null)
          .executeTakeFirst(),
      );
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
