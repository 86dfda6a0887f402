import type { PackageMigrations } from '@privacykit/core/db';
import { cliError } from './errors.js';

/** The PrivacyKit packages that own tables, in the order `migrate` applies them. */
export const storagePackages = ['consent', 'retention', 'requests', 'subject-access', 'erasure'] as const;
export type StoragePackage = (typeof storagePackages)[number];

/**
 * Each package's in-code migrations, imported lazily so a command only loads what it drives.
 * `undefined` while a package has not shipped migrations.
 */
const loaders: Readonly<Record<StoragePackage, (() => Promise<PackageMigrations>) | undefined>> = {
  consent: async () => (await import('@privacykit/consent')).consentMigrations,
  retention: async () => (await import('@privacykit/retention')).retentionMigrations,
  requests: async () => (await import('@privacykit/requests')).requestMigrations,
  'subject-access': async () => (await import('@privacykit/subject-access')).subjectAccessMigrations,
  erasure: async () => (await import('@privacykit/erasure')).erasureMigrations,
};

export function isStoragePackage(name: string): name is StoragePackage {
  return (storagePackages as readonly string[]).includes(name);
}

/** The migrations of `names` (default: every package that has some), in dependency order. */
export async function migrationsOf(names?: readonly string[]): Promise<PackageMigrations[]> {
  for (const name of names ?? []) {
    if (!isStoragePackage(name)) {
      throw cliError('cli/usage', `unknown package "${name}": expected one of ${storagePackages.join(', ')}`);
    }
  }
  const wanted = storagePackages.filter((name) => !names || names.includes(name));
  const result: PackageMigrations[] = [];
  for (const name of wanted) {
    const load = loaders[name];
    if (load) result.push(await load());
    else if (names) throw cliError('cli/package-missing', `@privacykit/${name} ships no migrations yet`);
  }
  return result;
}
