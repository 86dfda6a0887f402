import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PrivacyKitError } from '../errors.js';

/**
 * Node.js 24.19 (and 26.4) changed `node::ObjectWrap` in its C++ headers: an addon compiled
 * against them removes an environment cleanup hook whenever a wrapped object is destroyed, and
 * Node aborts the process (`Assertion failed: (env) != nullptr`, SIGABRT) when V8 destroys one
 * while collecting garbage (nodejs/node#63642). better-sqlite3 12 and older wrap every statement
 * and connection that way, so a copy compiled from source against those headers kills its host
 * within seconds of its first queries: at the first garbage collection that frees a statement.
 * Their prebuilt binaries (compiled with older headers) and better-sqlite3 13 (Node-API) are not
 * affected. Such a copy is told apart by its addon importing `RemoveEnvironmentCleanupHook`,
 * which better-sqlite3 ≤ 12 never calls itself (it only ever adds its one cleanup hook).
 */
const objectWrapHook = Buffer.from('RemoveEnvironmentCleanupHook');

const checked = new Map<string, string | undefined>();

/** Why the better-sqlite3 that `specifier` resolves to would abort this process, or undefined. */
export function sqliteDriverHazard(base: string, specifier = 'better-sqlite3'): string | undefined {
  let root: string;
  try {
    root = dirname(createRequire(base).resolve(`${specifier}/package.json`));
  } catch {
    return undefined;
  }
  if (checked.has(root)) return checked.get(root);
  let hazard: string | undefined;
  try {
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string };
    const major = Number.parseInt(String(version), 10);
    if (Number.isInteger(major) && major < 13) {
      for (const build of ['Release', 'Debug']) {
        const addon = join(root, 'build', build, 'better_sqlite3.node');
        if (existsSync(addon) && readFileSync(addon).includes(objectWrapHook)) {
          hazard =
            `better-sqlite3 ${version} (${addon}) was compiled against Node.js headers with which it aborts ` +
            `the process as soon as a prepared statement is garbage-collected (Node.js ≥ 24.19, nodejs/node#63642): ` +
            'install better-sqlite3 13 or later (npm install better-sqlite3@latest), or reinstall ' +
            `${version} from its prebuilt binary`;
          break;
        }
      }
    }
  } catch {
    hazard = undefined;
  }
  checked.set(root, hazard);
  return hazard;
}

/**
 * Throws `database/driver-incompatible` rather than let an affected better-sqlite3 abort the host
 * later. Only Node.js 24 and later (ABI 137+) have such headers, and an addon loads only into the
 * ABI it was compiled for: older runtimes skip reading the ~2 MB addon.
 */
export function assertSqliteDriverSafe(base: string): void {
  if (Number(process.versions.modules) < 137) return;
  const hazard = sqliteDriverHazard(base);
  if (hazard) {
    throw new PrivacyKitError('database/driver-incompatible', hazard, {
      details: { runtime: process.version },
    });
  }
}
