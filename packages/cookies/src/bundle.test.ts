// The root export must run in browsers: no node: imports, no require() of built-ins, and the
// knowledge base must drop out of a bundle that only needs the Set-Cookie parser.
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { skipWithout } from '@privacykit/core/testing';
import { describe, expect, it } from 'vitest';

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const builtins = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

async function bundle(contents: string, external: string[] = []): Promise<string> {
  const result = await build({
    external,
    stdin: { contents, resolveDir: packageDir, loader: 'ts', sourcefile: 'entry.ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    minify: true,
    treeShaking: true,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

function nodeImports(code: string): string[] {
  const found: string[] = [];
  for (const match of code.matchAll(/(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']([^"']+)["']/g)) {
    if (match[1]!.startsWith('node:') || builtins.has(match[1]!)) found.push(match[1]!);
  }
  return found;
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

describe('browser bundle of the root export', () => {
  it('bundles for the browser with no node built-ins, and reports its size', async () => {
    const code = await bundle(`export * from './src/index.ts';`);
    expect(nodeImports(code)).toEqual([]);
    console.log(
      `[bundle] root export, minified with zod and core: ${kb(code.length)}, gzip ${kb(gzipSync(code).length)}`,
    );
    const own = await bundle(`export * from './src/index.ts';`, ['zod', '@privacykit/core']);
    expect(nodeImports(own)).toEqual([]);
    console.log(
      `[bundle] root export without zod and core: ${kb(own.length)}, gzip ${kb(gzipSync(own).length)}`,
    );
  });

  it('leaves zod and the root of core out: only core/errors is imported', async () => {
    const code = await bundle(`export * from './src/index.ts';`, [
      'zod',
      '@privacykit/core',
      '@privacykit/core/*',
    ]);
    const imports = [...code.matchAll(/from\s*["']([^"']+)["']/g)].map((match) => match[1]);
    expect(imports).toEqual(['@privacykit/core/errors']);
    // zod's schemas are still offered, on their own entry.
    const schemas = await bundle(`export * from './src/schemas.ts';`, ['zod']);
    expect(schemas).toMatch(/from\s*["']zod["']/);
  });

  it('tree-shakes the knowledge base away when only the parser is used', async () => {
    const parserOnly = await bundle(`export { parseSetCookie, serializeSetCookie } from './src/index.ts';`);
    expect(parserOnly).not.toContain('hubspotutk');
    expect(parserOnly).not.toContain('OptanonConsent');
    expect(parserOnly).not.toContain('ads-twitter');
    const trackers = await bundle(`export { createRequestClassifier } from './src/index.ts';`);
    expect(trackers).toContain('ads-twitter');
    expect(trackers).not.toContain('hubspotutk');
    const classifier = await bundle(`export { classifyCookie } from './src/index.ts';`);
    expect(classifier).toContain('hubspotutk');
    console.log(
      `[bundle] parseSetCookie alone: ${kb(parserOnly.length)} (gzip ${kb(gzipSync(parserOnly).length)}); classifyCookie: ${kb(classifier.length)} (gzip ${kb(gzipSync(classifier).length)})`,
    );
  });

  const dist = resolve(packageDir, 'dist/index.js');
  it.skipIf(skipWithout(existsSync(dist), `the build at ${dist} (npm run build)`))(
    'the built dist/index.js (and its chunks) import no node built-ins',
    () => {
      let code = readFileSync(dist, 'utf8');
      for (const match of code.matchAll(/from "\.\/([^"]+)"/g))
        code += readFileSync(resolve(packageDir, 'dist', match[1]!), 'utf8');
      expect(nodeImports(code)).toEqual([]);
      expect(code).not.toMatch(/\brequire\(/);
      console.log(
        `[bundle] dist/index.js: ${kb(code.length)}, gzip ${kb(gzipSync(code).length)} (with its chunks; dependencies external)`,
      );
    },
  );
});
