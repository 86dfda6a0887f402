import type { Kysely } from 'kysely';
import { migrate } from '@privacykit/core/db';
import type { PackageMigrations } from '@privacykit/core/db';
import { consentMigrations } from '@privacykit/consent';
import { erasureMigrations } from '@privacykit/erasure';
import { retentionMigrations } from '@privacykit/retention';
import { requestMigrations } from '@privacykit/requests';
import { subjectAccessMigrations } from '@privacykit/subject-access';
import { portalMigrations } from './migrations.js';

/** Every migration set the portal runs on start: its own tables, the demo schema, then each package's. */
export const allMigrations: PackageMigrations[] = [
  portalMigrations,
  consentMigrations,
  requestMigrations,
  subjectAccessMigrations,
  erasureMigrations,
  retentionMigrations,
];

/** Brings the database up to date (idempotent; safe on every start). */
export async function migratePortal(db: Kysely<any>): Promise<void> {
  await migrate(db, allMigrations);
}
