// Test helpers (not exported from the package): where the shared Open Cookie Database CSV lives.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skipWithout } from '@privacykit/core/testing';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** `<repo>/../shared/data/open-cookie-database.csv`: the project never commits a copy. */
export const openCookieDatabasePath = resolve(packageDir, '../../../shared/data/open-cookie-database.csv');
export const openCookieDatabaseAvailable = existsSync(openCookieDatabasePath);
/** True (the OCD suites skip) when the CSV is not there on a developer's machine; an error under CI. */
export const skipWithoutDatabase = skipWithout(
  openCookieDatabaseAvailable,
  `the Open Cookie Database CSV at ${openCookieDatabasePath}`,
);

export function readOpenCookieDatabase(): string {
  return readFileSync(openCookieDatabasePath, 'utf8');
}
