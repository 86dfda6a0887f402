// Benchmark: ExportStore.save() of the same 16 MiB package arriving in one piece and in 64 KiB
// pieces, on SQLite, in the same run. Chunking copies each byte once whatever the piece size,
// so the ratio stays near 1× (before, a chunk taken from a large piece copied the rest of the
// piece again: one 16 MiB piece took ~12× as long as the same bytes in 64 KiB pieces).
//
//   npm run build -w @privacykit/core -w @privacykit/subject-access
//   npx tsx bench/subject-access/save-pieces.ts
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { createExportStore, subjectAccessMigrations } from '@privacykit/subject-access';

const engine = testEngines().find((candidate) => candidate.engine === 'sqlite');
if (!engine) throw new Error('no SQLite test engine');
const test = await createTestDatabase(engine);
try {
  await migrate(test.db, [subjectAccessMigrations]);
  const store = createExportStore({ db: test.db, chunkSize: 16 * 1024 });
  const plain = randomBytes(16 * 1024 * 1024);
  const pieces: Buffer[] = [];
  for (let i = 0; i < plain.length; i += 64 * 1024) pieces.push(plain.subarray(i, i + 64 * 1024));
  const timed = async (source: Buffer[]) => {
    const start = performance.now();
    await store.save(Readable.from(source));
    return performance.now() - start;
  };
  // Alternating rounds, best of each: the machine is shared.
  const best = { pieces: Number.POSITIVE_INFINITY, whole: Number.POSITIVE_INFINITY };
  for (let round = 0; round < 3; round++) {
    best.pieces = Math.min(best.pieces, await timed(pieces));
    best.whole = Math.min(best.whole, await timed([plain]));
  }
  const ratio = best.whole / best.pieces;
  console.log(`save() 16 MiB in 64 KiB pieces: ${best.pieces.toFixed(0)} ms`);
  console.log(`save() 16 MiB in one piece:     ${best.whole.toFixed(0)} ms`);
  console.log(
    `one piece / 64 KiB pieces = ${ratio.toFixed(2)}× (target ≤ 2×: ${ratio <= 2 ? 'ok' : 'MISSED'})`,
  );
  if (ratio > 2) process.exitCode = 1;
} finally {
  await test.destroy();
}
