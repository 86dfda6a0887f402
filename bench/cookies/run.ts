// Benchmark for @privacykit/cookies (issue #7). Run: npx tsx bench/cookies/run.ts (after `npm run build -w @privacykit/cookies`).
// 1. Classifying known names vs a bare Map.get loop over the same names (target ≥ 0.25×).
// 2. Loading the Open Cookie Database CSV (target < 100 ms).
// 3. Browser bundle size of the root export (minified, with its dependencies), and of single functions.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { builtinKnowledgeBase, createClassifier, loadOpenCookieDatabase } from '@privacykit/cookies';

const here = dirname(fileURLToPath(import.meta.url));
const csvPath = resolve(here, '../../../shared/data/open-cookie-database.csv');

const names = builtinKnowledgeBase
  .filter((entry) => (entry.match ?? 'exact') === 'exact')
  .map((entry) => entry.name);
const rounds = 2_000;
const total = names.length * rounds;

function time(label: string, body: () => number): number {
  body(); // warm-up
  const start = process.hrtime.bigint();
  const sink = body();
  const ns = Number(process.hrtime.bigint() - start);
  const perSecond = total / (ns / 1e9);
  console.log(
    `${label.padEnd(44)} ${(ns / 1e6).toFixed(1).padStart(8)} ms  ${(perSecond / 1e6).toFixed(2)} M ops/s  (sink ${sink})`,
  );
  return perSecond;
}

const map = new Map(names.map((name) => [name, { category: 'x' }]));
const classifier = createClassifier();
const mapRate = time('baseline: Map.get over the same names', () => {
  let hits = 0;
  for (let r = 0; r < rounds; r++) for (const name of names) if (map.get(name) !== undefined) hits++;
  return hits;
});
const classifyRate = time('classifier.classify({ name }) (KB)', () => {
  let required = 0;
  for (let r = 0; r < rounds; r++)
    for (const name of names) if (classifier.classify({ name }).consentRequired) required++;
  return required;
});
console.log(`ratio classify / Map.get: ${(classifyRate / mapRate).toFixed(3)}× (target ≥ 0.25×)`);

if (existsSync(csvPath)) {
  const csv = readFileSync(csvPath, 'utf8');
  const runs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    loadOpenCookieDatabase(csv);
    runs.push(performance.now() - start);
  }
  const database = loadOpenCookieDatabase(csv);
  const start = performance.now();
  const withDatabase = createClassifier({ openCookieDatabase: database });
  const createMs = performance.now() - start;
  const ocdNames = database.entries.map((entry) => entry.name);
  for (const name of ocdNames) withDatabase.classify({ name });
  const t0 = performance.now();
  for (let r = 0; r < 200; r++) for (const name of ocdNames) withDatabase.classify({ name });
  const perSecond = (ocdNames.length * 200) / ((performance.now() - t0) / 1000);
  console.log(
    `loadOpenCookieDatabase (${database.entries.length} rows): first ${runs[0]!.toFixed(1)} ms, best ${Math.min(...runs).toFixed(1)} ms (target < 100 ms)`,
  );
  console.log(
    `createClassifier with the OCD: ${createMs.toFixed(1)} ms; classify all OCD names: ${(perSecond / 1e6).toFixed(2)} M ops/s`,
  );
} else {
  console.log(`Open Cookie Database CSV not found at ${csvPath}: load benchmark skipped`);
}

// Bundle sizes: what a browser app pays for the root export (zod must stay out of it).
const { build } = await import('esbuild');
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
for (const [label, contents] of [
  ['root export (export *)', `export * from '@privacykit/cookies';`],
  ['classifyCookie', `export { classifyCookie } from '@privacykit/cookies';`],
  ['createRequestClassifier', `export { createRequestClassifier } from '@privacykit/cookies';`],
  ['parseSetCookie', `export { parseSetCookie } from '@privacykit/cookies';`],
] as const) {
  const result = await build({
    stdin: { contents, resolveDir: here, loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    minify: true,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.text;
  console.log(
    `bundle ${label.padEnd(28)} ${kib(code.length).padStart(10)}  gzip ${kib(gzipSync(code).length)}${code.includes('ZodError') ? '  (contains zod!)' : ''}`,
  );
}
