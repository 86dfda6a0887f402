// Test helpers (not exported from the package): where the shared Open Cookie Database CSV lives.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** `<repo>/../shared/data/open-cookie-database.csv`: the project never commits a copy. */
export const openCookieDatabasePath = resolve(packageDir, '../../../shared/data/open-cookie-database.csv');
export const openCookieDatabaseAvailable = existsSync(openCookieDatabasePath);
export const skipWithoutDatabase = openCookieDatabaseAvailable
  ? ''
  : `Open Cookie Database CSV not found at ${openCookieDatabasePath}: OCD tests skipped`;
if (skipWithoutDatabase) console.warn(skipWithoutDatabase);

export function readOpenCookieDatabase(): string {
  return readFileSync(openCookieDatabasePath, 'utf8');
}
