import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sqliteDriverHazard } from './sqlite-driver.js';

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A project whose node_modules holds a better-sqlite3 of `version` with `addon` as its compiled binary. */
function project(version: string, addon?: string, build = 'Release'): string {
  const root = mkdtempSync(join(tmpdir(), 'privacykit-sqlite-driver-'));
  roots.push(root);
  const pkg = join(root, 'node_modules', 'better-sqlite3');
  mkdirSync(join(pkg, 'build', build), { recursive: true });
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ name: 'better-sqlite3', version, main: 'index.js' }),
  );
  if (addon !== undefined) writeFileSync(join(pkg, 'build', build, 'better_sqlite3.node'), addon);
  return join(root, 'index.js');
}

// What the compiled addons import, as `nm -D` shows it: 12.x compiled against Node.js 20 or
// 22 headers adds its one cleanup hook; compiled against Node.js ≥ 24.19 it also removes one
// from every statement's and connection's destructor (the inlined node::ObjectWrap).
const olderHeaders = '\0_ZN4node25AddEnvironmentCleanupHookEPN2v87IsolateEPFvPvES3_\0';
const newerHeaders = `${olderHeaders}_ZN4node28RemoveEnvironmentCleanupHookEPN2v87IsolateEPFvPvES3_\0`;

describe('sqliteDriverHazard', () => {
  it('names a better-sqlite3 12 compiled against headers that abort on garbage collection', () => {
    const hazard = sqliteDriverHazard(project('12.11.1', newerHeaders));
    expect(hazard).toMatch(
      /^better-sqlite3 12\.11\.1 \(.*better_sqlite3\.node\) was compiled against Node\.js headers/,
    );
    expect(hazard).toContain('install better-sqlite3 13 or later');
    expect(sqliteDriverHazard(project('11.10.0', newerHeaders, 'Debug'))).toMatch(
      /^better-sqlite3 11\.10\.0/,
    );
  });

  it('accepts a build with older headers, better-sqlite3 13 (Node-API), and a copy it cannot find or read', () => {
    expect(sqliteDriverHazard(project('12.11.1', olderHeaders))).toBeUndefined();
    expect(sqliteDriverHazard(project('13.2.0', newerHeaders))).toBeUndefined();
    expect(sqliteDriverHazard(project('12.11.1'))).toBeUndefined();
    expect(sqliteDriverHazard(join(tmpdir(), 'no-such-project', 'index.js'))).toBeUndefined();
  });
});
