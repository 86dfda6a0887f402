// Retention sweep vs a hand-written raw SQL loop doing the same deletes and log inserts.
//   npx tsx bench/retention/run.ts
// This script creates the tables; each measured part runs in its own child process under plain
// `node` on the built packages (measure.mjs), so the figures carry neither the tsx loader nor the
// setup. Memory is the sweep process's peak RSS, and its growth over the idle process.
// Env: RETENTION_BENCH_ROWS (default 1000000; half are due), RETENTION_BENCH_BATCH (default 1000),
// PRIVACYKIT_TEST_POSTGRES_URL to add PostgreSQL, RETENTION_BENCH_PACKAGE to measure another build of
// the package (a path to its dist/index.js). Run from the repo root after `npm run build`.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { migrate } from '@privacykit/core/db';
import { createTestDatabase } from '@privacykit/core/testing';
import type { TestEngine } from '@privacykit/core/testing';
import { retentionMigrations } from '@privacykit/retention';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

const measureScript = fileURLToPath(new URL('./measure.mjs', import.meta.url));

const ROWS = Number(process.env.RETENTION_BENCH_ROWS ?? 1_000_000);
const BATCH = Number(process.env.RETENTION_BENCH_BATCH ?? 1000);
async function createTable(db: Kysely<any>, engine: string, table: string): Promise<void> {
  await db.schema
    .createTable(table)
    .addColumn('id', 'bigint', (c) => c.primaryKey())
    .addColumn('email', sql`varchar(64)`)
    .addColumn('created_at', sql`varchar(10)`)
    .addColumn('last_contact_at', sql`varchar(10)`)
    .execute();
  // Every other row is due: collected in 2020 (due 2023) vs 2024 (due 2027).
  if (engine === 'postgres') {
    await sql`insert into ${sql.table(table)} select i, 'p' || i || '@example.com', case when i % 2 = 0 then '2020-01-15' else '2024-06-15' end, null from generate_series(1, ${ROWS}::bigint) as i`.execute(
      db,
    );
  } else {
    await sql`with recursive s(i) as (select 1 union all select i + 1 from s where i < ${ROWS}) insert into ${sql.table(table)} select i, 'p' || i || '@example.com', case when i % 2 = 0 then '2020-01-15' else '2024-06-15' end, null from s`.execute(
      db,
    );
  }
  await db.schema.createIndex(`${table}_created`).on(table).column('created_at').execute();
  // Fresh statistics, or PostgreSQL's planner may walk the date index and sort every batch.
  await sql`analyze ${sql.table(table)}`.execute(db);
}

interface Measured {
  part: 'raw' | 'sweep';
  ms: number;
  /** This process's CPU time: on SQLite all of the work, so it stays fair on a busy machine. */
  cpuMs: number;
  rows: number;
  /** MB: RSS with modules loaded and the database open, before any work. */
  idleRss: number;
  /** MB: the process's peak RSS. */
  peakRss: number;
}

/** Runs one measured part in a child under plain `node` on the built packages (no tsx in the RSS). */
function measure(part: Measured['part'], url: string): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [measureScript, part, url], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += String(chunk);
    });
    child.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as Measured);
      else reject(new Error(`measure ${part} exited ${code}`));
    });
  });
}

const mb = (value: number) => `${value.toFixed(0)} MB`;

async function bench(engine: TestEngine) {
  const database = await createTestDatabase(engine);
  const { db } = database;
  try {
    await migrate(db, [retentionMigrations]);
    const setup = Date.now();
    await createTable(db, engine.engine, 'raw_rows');
    await createTable(db, engine.engine, 'swept_rows');
    console.log(
      `${engine.engine}: ${ROWS} rows × 2 tables ready in ${((Date.now() - setup) / 1000).toFixed(1)} s`,
    );
    // Both parts start from the same state: an empty, analysed log and the setup's writes
    // flushed (SQLite: WAL checkpointed; PostgreSQL: checkpoint), so neither pays for the other.
    const settle = async () => {
      await sql`delete from privacykit_retention_dispositions where run_id = 'raw'`.execute(db);
      if (engine.engine === 'sqlite') await sql`pragma wal_checkpoint(truncate)`.execute(db);
      else {
        await sql`vacuum analyze privacykit_retention_dispositions`.execute(db);
        await sql`checkpoint`.execute(db);
      }
    };
    await settle();
    const raw = await measure('raw', database.url);
    await settle();
    const sweep = await measure('sweep', database.url);
    if (sweep.rows !== raw.rows) throw new Error(`sweep disposed ${sweep.rows}, raw loop ${raw.rows}`);
    console.log(
      `${engine.engine}: raw loop ${raw.rows} rows in ${(raw.ms / 1000).toFixed(2)} s; sweep ${sweep.rows} rows in ${(sweep.ms / 1000).toFixed(2)} s; ratio ${(sweep.ms / raw.ms).toFixed(2)}×${engine.engine === 'sqlite' ? ` (CPU ${(raw.cpuMs / 1000).toFixed(2)} s vs ${(sweep.cpuMs / 1000).toFixed(2)} s: ${(sweep.cpuMs / raw.cpuMs).toFixed(2)}×)` : ''}`,
    );
    console.log(
      `${engine.engine}: sweep process RSS ${mb(sweep.idleRss)} idle → peak ${mb(sweep.peakRss)} (+${mb(sweep.peakRss - sweep.idleRss)}); raw loop process ${mb(raw.idleRss)} → ${mb(raw.peakRss)}`,
    );
  } finally {
    await database.destroy();
  }
}

const engines: TestEngine[] = [{ engine: 'sqlite', url: 'sqlite' }];
if (process.env.PRIVACYKIT_TEST_POSTGRES_URL)
  engines.push({ engine: 'postgres', url: process.env.PRIVACYKIT_TEST_POSTGRES_URL });
console.log(`retention bench: ${ROWS} rows, ${ROWS / 2} due, batches of ${BATCH}`);
for (const engine of engines) await bench(engine);
