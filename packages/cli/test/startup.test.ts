import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binPath } from './helpers.js';

const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** The packages the built file and the files it imports statically load before any code runs. */
function staticImports(file: string, seen = new Set<string>()): Set<string> {
  const found = new Set<string>();
  if (seen.has(file)) return found;
  seen.add(file);
  const code = readFileSync(file, 'utf8');
  for (const match of code.matchAll(/^import\s+(?:[^'"]*?\s+from\s+)?["']([^"']+)["'];?$/gms)) {
    const specifier = match[1] as string;
    if (specifier.startsWith('.')) {
      for (const name of staticImports(resolve(dirname(file), specifier), seen)) found.add(name);
    } else if (!builtins.has(specifier)) {
      found.add(specifier);
    }
  }
  return found;
}

// Cron and CI start the command for every call: what it loads before knowing the command is paid
// each time. zod (the config), kysely (the database), cli-progress (a terminal's bar) and the
// libraries load when a command needs them, so `--help` or a usage error start without them.
describe('privacykit start-up', () => {
  it('loads only commander and the errors of core before a command runs', () => {
    expect([...staticImports(binPath)].sort()).toEqual(['@privacykit/core/errors', 'commander']);
  });
});
