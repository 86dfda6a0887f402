import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { autoIncrementColumn, columnType, engineOf } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';

/** Long free text (request details, outcomes): `mediumtext` on MySQL, whose `text` stops at 64 KB. */
function longText(db: Kysely<any>) {
  return engineOf(db) === 'mysql' ? sql`mediumtext` : columnType.text;
}

/**
 * The tables of `@privacykit/requests`, applied with core's `migrate(db, [requestMigrations])`.
 * Every table carries `tenant`; instants are ISO-8601 UTC text, deadlines civil dates.
 */
export const requestMigrations: PackageMigrations = {
  name: 'requests',
  migrations: {
    '0001_init': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_requests_requests')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_right', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('details', longText(db), (col) => col.notNull())
          .addColumn('channel', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('received_at', columnType.instant, (col) => col.notNull())
          .addColumn('received_date', columnType.civilDate, (col) => col.notNull())
          .addColumn('status', sql`varchar(32)`, (col) => col.notNull())
          .addColumn('deadline', columnType.civilDate, (col) => col.notNull())
          .addColumn('extension_months', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('extension_reasons', columnType.json, (col) => col.notNull())
          .addColumn('extended_deadline', columnType.civilDate)
          .addColumn('pause_while_verifying', columnType.flag, (col) => col.notNull().defaultTo(0))
          .addColumn('paused_days', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('effective_deadline', columnType.civilDate, (col) => col.notNull())
          .addColumn('assignee', columnType.shortText)
          .addColumn('outcome', longText(db))
          .addColumn('duplicate_of', columnType.id)
          .addColumn('excessive', columnType.flag, (col) => col.notNull().defaultTo(0))
          .addColumn('verification_failures', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('verification_locked', columnType.flag, (col) => col.notNull().defaultTo(0))
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('updated_at', columnType.instant, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_requests_requests_due')
          .on('privacykit_requests_requests')
          .columns(['tenant', 'status', 'effective_deadline'])
          .execute();

        await db.schema
          .createTable('privacykit_requests_identities')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) =>
            col.notNull().references('privacykit_requests_requests.id').onDelete('cascade'),
          )
          .addColumn('position', 'integer', (col) => col.notNull())
          .addColumn('kind', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('value', columnType.text, (col) => col.notNull())
          .addColumn('lookup_hash', columnType.hash, (col) => col.notNull())
          .addColumn('channel', columnType.text)
          .addColumn('verified_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_requests_identities_lookup')
          .on('privacykit_requests_identities')
          .columns(['tenant', 'lookup_hash'])
          .execute();
        await db.schema
          .createIndex('privacykit_requests_identities_request')
          .on('privacykit_requests_identities')
          .columns(['request_id'])
          .execute();

        await db.schema
          .createTable('privacykit_requests_challenges')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) =>
            col.notNull().references('privacykit_requests_requests.id').onDelete('cascade'),
          )
          .addColumn('identity_id', columnType.id, (col) => col.notNull())
          .addColumn('code_hash', columnType.hash, (col) => col.notNull())
          .addColumn('token_hash', columnType.hash, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('expires_at', columnType.instant, (col) => col.notNull())
          .addColumn('consumed_at', columnType.instant)
          .execute();
        await db.schema
          .createIndex('privacykit_requests_challenges_token')
          .on('privacykit_requests_challenges')
          .columns(['tenant', 'token_hash'])
          .execute();
        await db.schema
          .createIndex('privacykit_requests_challenges_request')
          .on('privacykit_requests_challenges')
          .columns(['request_id'])
          .execute();

        await autoIncrementColumn(db, db.schema.createTable('privacykit_requests_audit'), 'seq')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) => col.notNull())
          .addColumn('occurred_at', columnType.instant, (col) => col.notNull())
          .addColumn('actor', columnType.shortText, (col) => col.notNull())
          .addColumn('action', sql`varchar(64)`, (col) => col.notNull())
          .addColumn('from_status', sql`varchar(32)`)
          .addColumn('to_status', sql`varchar(32)`)
          .addColumn('reason', columnType.text)
          .addColumn('data', columnType.json)
          .execute();
        await db.schema
          .createIndex('privacykit_requests_audit_request')
          .on('privacykit_requests_audit')
          .columns(['tenant', 'request_id'])
          .execute();

        await db.schema
          .createTable('privacykit_requests_intake')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('lookup_hash', columnType.hash, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) => col.notNull())
          .addColumn('received_at', columnType.instant, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_requests_intake_identity')
          .on('privacykit_requests_intake')
          .columns(['tenant', 'lookup_hash', 'received_at'])
          .execute();

        await db.schema
          .createTable('privacykit_requests_directives')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) => col.notNull())
          .addColumn('kind', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('instructions', longText(db), (col) => col.notNull())
          .addColumn('executor', columnType.json)
          .addColumn('executor_hash', columnType.hash)
          .addColumn('subject_hashes', columnType.json, (col) => col.notNull())
          .addColumn('status', sql`varchar(16)`, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .addColumn('revoked_at', columnType.instant)
          .addColumn('revoked_by_request', columnType.id)
          .execute();

        await db.schema
          .createTable('privacykit_requests_secrets')
          .addColumn('tenant', columnType.tenant, (col) => col.primaryKey())
          .addColumn('secret', columnType.shortText, (col) => col.notNull())
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .execute();
      },
      async down(db: Kysely<any>) {
        for (const table of [
          'privacykit_requests_secrets',
          'privacykit_requests_directives',
          'privacykit_requests_intake',
          'privacykit_requests_audit',
          'privacykit_requests_challenges',
          'privacykit_requests_identities',
          'privacykit_requests_requests',
        ]) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    '0002_intake_dedupe': {
      /**
       * One open request per tenant, right and identity, held by the database rather than by a
       * read-then-insert: an identity row carries the right it holds the intake slot for
       * (`dedupe_right`), under a unique index, so two identical submissions arriving at once
       * cannot both create a request. Existing databases get the slot given to the request the
       * duplicate check already answers with: the oldest open one for that right and identity.
       * Open requests that duplicate it (created by concurrent submissions before this migration)
       * are kept as they are — they are the subject's requests, with their own audit and deadline,
       * for staff to close — but hold no slot; closed requests hold none either.
       */
      async up(db: Kysely<any>) {
        await db.schema
          .alterTable('privacykit_requests_identities')
          .addColumn('dedupe_right', sql`varchar(32)`)
          .execute();

        // The statuses after which a request is closed, as they were when this migration was written.
        const closed = ['completed', 'denied', 'cancelled'];
        const open = (await db
          .selectFrom('privacykit_requests_identities as i')
          .innerJoin('privacykit_requests_requests as r', 'r.id', 'i.request_id')
          .select(['i.id', 'i.tenant', 'i.lookup_hash', 'r.request_right'])
          .whereRef('r.tenant', '=', 'i.tenant')
          .where('r.status', 'not in', closed)
          .orderBy('r.received_at')
          .orderBy('r.id')
          .orderBy('i.id')
          .execute()) as { id: string; tenant: string; lookup_hash: string; request_right: string }[];
        const holders = new Map<string, { id: string; right: string }>();
        for (const row of open) {
          const key = `${row.tenant}\u0000${row.lookup_hash}\u0000${row.request_right}`;
          if (!holders.has(key)) holders.set(key, { id: row.id, right: row.request_right });
        }
        const byRight = new Map<string, string[]>();
        for (const { id, right } of holders.values()) {
          const ids = byRight.get(right) ?? [];
          ids.push(id);
          byRight.set(right, ids);
        }
        for (const [right, ids] of byRight) {
          for (let start = 0; start < ids.length; start += 500) {
            await db
              .updateTable('privacykit_requests_identities')
              .set({ dedupe_right: right })
              .where('id', 'in', ids.slice(start, start + 500))
              .execute();
          }
        }

        await db.schema
          .createIndex('privacykit_requests_identities_dedupe')
          .on('privacykit_requests_identities')
          .columns(['tenant', 'lookup_hash', 'dedupe_right'])
          .unique()
          .execute();
      },
      async down(db: Kysely<any>) {
        const drop = db.schema.dropIndex('privacykit_requests_identities_dedupe');
        await (engineOf(db) === 'mysql' ? drop.on('privacykit_requests_identities') : drop).execute();
        await db.schema.alterTable('privacykit_requests_identities').dropColumn('dedupe_right').execute();
      },
    },
    '0003_duplicate_links': {
      /**
       * `duplicate_of` is carried by a request that duplicates another one and names it (the back
       * office shows "Duplicate of …"). Since 0002 a duplicate submission creates no request, so the
       * only requests it fits are the open ones that concurrent submissions created before intake
       * was atomic, which 0002 kept for staff to close. Each gets the link the duplicate check
       * would have made when it was created: to the first open request (by receipt, then id) for
       * the same right sharing one of its identities that existed by then and was received within
       * the default duplicate window before it. The link is audited on the request it is set on.
       */
      async up(db: Kysely<any>) {
        const closed = ['completed', 'denied', 'cancelled'];
        const windowMs = 7 * 86_400_000;
        const rows = (await db
          .selectFrom('privacykit_requests_identities as i')
          .innerJoin('privacykit_requests_requests as r', 'r.id', 'i.request_id')
          .select([
            'r.id',
            'r.tenant',
            'r.request_right',
            'r.received_at',
            'r.created_at',
            'r.duplicate_of',
            'i.lookup_hash',
          ])
          .whereRef('r.tenant', '=', 'i.tenant')
          .where('r.status', 'not in', closed)
          .execute()) as {
          id: string;
          tenant: string;
          request_right: string;
          received_at: string;
          created_at: string;
          duplicate_of: string | null;
          lookup_hash: string;
        }[];
        const requests = new Map<string, (typeof rows)[number] & { hashes: string[] }>();
        const slotOf = (row: { tenant: string; request_right: string }, hash: string) =>
          `${row.tenant}\u0000${hash}\u0000${row.request_right}`;
        const bySlot = new Map<string, string[]>();
        for (const row of rows) {
          const request = requests.get(row.id) ?? { ...row, hashes: [] };
          request.hashes.push(row.lookup_hash);
          requests.set(row.id, request);
          const ids = bySlot.get(slotOf(row, row.lookup_hash)) ?? [];
          if (!ids.includes(row.id)) ids.push(row.id);
          bySlot.set(slotOf(row, row.lookup_hash), ids);
        }
        const byReceipt = (a: { received_at: string; id: string }, b: { received_at: string; id: string }) =>
          a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : a.id < b.id ? -1 : 1;
        const at = new Date().toISOString();
        for (const request of [...requests.values()].sort(byReceipt)) {
          if (request.duplicate_of !== null) continue;
          const since = new Date(Date.parse(request.created_at) - windowMs).toISOString();
          const candidates = new Set<string>();
          for (const hash of request.hashes) {
            for (const id of bySlot.get(slotOf(request, hash)) ?? []) candidates.add(id);
          }
          const original = [...candidates]
            .map((id) => requests.get(id) as (typeof rows)[number])
            .filter(
              (other) =>
                other.id !== request.id &&
                // Created before this one (same instant: the lower id), so links never loop.
                (other.created_at < request.created_at ||
                  (other.created_at === request.created_at && other.id < request.id)) &&
                other.received_at >= since,
            )
            .sort(byReceipt)[0];
          if (!original) continue;
          const linked = await db
            .updateTable('privacykit_requests_requests')
            .set({ duplicate_of: original.id })
            .where('tenant', '=', request.tenant)
            .where('id', '=', request.id)
            .where('duplicate_of', 'is', null)
            .executeTakeFirst();
          if (Number(linked.numUpdatedRows) !== 1) continue;
          await db
            .insertInto('privacykit_requests_audit')
            .values({
              tenant: request.tenant,
              request_id: request.id,
              occurred_at: at,
              actor: 'system',
              action: 'marked-duplicate',
              from_status: null,
              to_status: null,
              reason: 'created while an open request for the same right and identity existed',
              data: JSON.stringify({ duplicateOf: original.id }),
            })
            .execute();
        }
      },
      async down(db: Kysely<any>) {
        const marked = (await db
          .selectFrom('privacykit_requests_audit')
          .select(['tenant', 'request_id'])
          .where('actor', '=', 'system')
          .where('action', '=', 'marked-duplicate')
          .execute()) as { tenant: string; request_id: string }[];
        for (const { tenant, request_id } of marked) {
          await db
            .updateTable('privacykit_requests_requests')
            .set({ duplicate_of: null })
            .where('tenant', '=', tenant)
            .where('id', '=', request_id)
            .execute();
        }
        await db
          .deleteFrom('privacykit_requests_audit')
          .where('actor', '=', 'system')
          .where('action', '=', 'marked-duplicate')
          .execute();
      },
    },
    '0004_amendments': {
      /**
       * `amendment` is set on a challenge mailed for a duplicate submission that would add to the
       * open request (new corrections, more purposes): the details it would add, which join the
       * request only when that code or link is used. An unverified submission proves nothing, so
       * until then they are only in the audit.
       */
      async up(db: Kysely<any>) {
        await db.schema
          .alterTable('privacykit_requests_challenges')
          .addColumn('amendment', longText(db))
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('privacykit_requests_challenges').dropColumn('amendment').execute();
      },
    },
    '0005_mail_throttle': {
      /**
       * One row per identity (its keyed lookup hash) counting the challenge mails sent to it in
       * the current window (`mail_window_start`, the first mail of the window): unverified
       * submissions naming an address must not turn the service into a mail cannon aimed at it.
       * A row, not a log, so taking a mail from the budget is one conditional update that
       * concurrent submissions cannot overrun.
       */
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_requests_identity_limits')
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('lookup_hash', columnType.hash, (col) => col.notNull())
          .addColumn('mail_window_start', columnType.instant)
          .addColumn('mails', 'integer', (col) => col.notNull().defaultTo(0))
          .addPrimaryKeyConstraint('privacykit_requests_identity_limits_pk', ['tenant', 'lookup_hash'])
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('privacykit_requests_identity_limits').ifExists().execute();
      },
    },
    '0006_code_guess_limit': {
      /**
       * Wrong one-time codes per identity across all its requests, in the current window
       * (`failure_window_start`, the first wrong code of the window): a request locks after a few
       * wrong codes, but a fresh submission for the same identity would otherwise bring a fresh
       * set of guesses.
       */
      async up(db: Kysely<any>) {
        await db.schema
          .alterTable('privacykit_requests_identity_limits')
          .addColumn('failure_window_start', columnType.instant)
          .execute();
        await db.schema
          .alterTable('privacykit_requests_identity_limits')
          .addColumn('failures', 'integer', (col) => col.notNull().defaultTo(0))
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.alterTable('privacykit_requests_identity_limits').dropColumn('failures').execute();
        await db.schema
          .alterTable('privacykit_requests_identity_limits')
          .dropColumn('failure_window_start')
          .execute();
      },
    },
    '0007_submissions': {
      /**
       * One row per submission, the handle its submitter verifies through (`verify({ submissionId,
       * code })`). A duplicate submission is answered with the open request, perhaps someone
       * else's: wrong codes sent through its handle count against the handle, which locks alone,
       * never against the request its subject is verifying.
       */
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_requests_submissions')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) =>
            col.notNull().references('privacykit_requests_requests.id').onDelete('cascade'),
          )
          .addColumn('duplicate', columnType.flag, (col) => col.notNull())
          .addColumn('verification_failures', 'integer', (col) => col.notNull().defaultTo(0))
          .addColumn('verification_locked', columnType.flag, (col) => col.notNull().defaultTo(0))
          .addColumn('created_at', columnType.instant, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_requests_submissions_request')
          .on('privacykit_requests_submissions')
          .columns(['request_id'])
          .execute();
      },
      async down(db: Kysely<any>) {
        await db.schema.dropTable('privacykit_requests_submissions').ifExists().execute();
      },
    },
    '0008_drop_intake': {
      /**
       * `privacykit_requests_intake` held one row per submission with the keyed hash of each
       * identity it named, for an Art 12(5) count that since 0005 reads verified requests instead.
       * Nothing reads it: an identifier kept per submission for no purpose, with no end (Art
       * 5(1)(c), (e)). Dropped with what it holds; down recreates it as 0001 made it, empty.
       */
      async up(db: Kysely<any>) {
        const drop = db.schema.dropIndex('privacykit_requests_intake_identity');
        await (engineOf(db) === 'mysql' ? drop.on('privacykit_requests_intake') : drop).execute();
        await db.schema.dropTable('privacykit_requests_intake').execute();
      },
      async down(db: Kysely<any>) {
        await db.schema
          .createTable('privacykit_requests_intake')
          .addColumn('id', columnType.id, (col) => col.primaryKey())
          .addColumn('tenant', columnType.tenant, (col) => col.notNull())
          .addColumn('lookup_hash', columnType.hash, (col) => col.notNull())
          .addColumn('request_id', columnType.id, (col) => col.notNull())
          .addColumn('received_at', columnType.instant, (col) => col.notNull())
          .execute();
        await db.schema
          .createIndex('privacykit_requests_intake_identity')
          .on('privacykit_requests_intake')
          .columns(['tenant', 'lookup_hash', 'received_at'])
          .execute();
      },
    },
    '0009_redaction': {
      /**
       * The request log's own retention (Art 5(1)(e)): `closed_at`, when a request reached a final
       * status, and `redacted_at`, when `redact` stripped its personal data and kept the skeleton
       * as evidence (Art 5(2)). Closed requests get `closed_at` from the audit's closing
       * transition (the last one, should there be several), or from `updated_at` when no such
       * audit row exists (data older than the audit, or imported).
       */
      async up(db: Kysely<any>) {
        await db.schema
          .alterTable('privacykit_requests_requests')
          .addColumn('closed_at', columnType.instant)
          .execute();
        await db.schema
          .alterTable('privacykit_requests_requests')
          .addColumn('redacted_at', columnType.instant)
          .execute();
        // The statuses after which a request is closed, as they were when this migration was written.
        const closed = ['completed', 'denied', 'cancelled'];
        await db
          .updateTable('privacykit_requests_requests')
          .set((eb) => ({
            closed_at: eb
              .selectFrom('privacykit_requests_audit as a')
              .select((sb) => sb.fn.max('a.occurred_at').as('at'))
              .whereRef('a.tenant', '=', 'privacykit_requests_requests.tenant')
              .whereRef('a.request_id', '=', 'privacykit_requests_requests.id')
              .where('a.action', '=', 'transition')
              .where('a.to_status', 'in', closed),
          }))
          .where('status', 'in', closed)
          .execute();
        await db
          .updateTable('privacykit_requests_requests')
          .set((eb) => ({ closed_at: eb.ref('updated_at') }))
          .where('status', 'in', closed)
          .where('closed_at', 'is', null)
          .execute();
        await db.schema
          .createIndex('privacykit_requests_requests_redaction')
          .on('privacykit_requests_requests')
          .columns(['tenant', 'redacted_at', 'id'])
          .execute();
      },
      async down(db: Kysely<any>) {
        const drop = db.schema.dropIndex('privacykit_requests_requests_redaction');
        await (engineOf(db) === 'mysql' ? drop.on('privacykit_requests_requests') : drop).execute();
        await db.schema.alterTable('privacykit_requests_requests').dropColumn('redacted_at').execute();
        await db.schema.alterTable('privacykit_requests_requests').dropColumn('closed_at').execute();
      },
    },
  },
};
