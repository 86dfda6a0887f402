// Retention sweep vs a hand-written raw SQL loop doing the same deletes and log inserts.
//   npx tsx bench/retention/run.ts
// Env: RETENTION_BENCH_ROWS (default 1000000; half are due), RETENTION_BENCH_BATCH (default 1000),
// PRIVACYKIT_TEST_POSTGRES_URL to add PostgreSQL. Run from the repo root after `npm run build`.
import { fixedClock, retentionRuleSchema } from '@privacykit/core';
import { migrate, openDatabase } from '@privacykit/core/db';
import { createTestDatabase } from '@privacykit/core/testing';
import type { TestEngine } from '@privacykit/core/testing';
import { createRetentionEngine, cutoffFor, retentionMigrations } from '@privacykit/retention';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

const ROWS = Number(process.env.RETENTION_BENCH_ROWS ?? 1_000_000);
const BATCH = Number(process.env.RETENTION_BENCH_BATCH ?? 1000);
const TODAY = '2025-03-01';

const rule = retentionRuleSchema.parse({
  id: 'prospects',
  title: 'Prospect data (no contract)',
  zone: 'Europe/Paris',
  facts: { collectedAt: { label: 'collection' }, lastContact: { label: 'last contact' } },
  phases: [
    {
      action: 'delete',
      due: {
        latest: [
          { from: 'collectedAt', after: 'P3Y' },
          { from: 'lastContact', after: 'P3Y' },
        ],
      },
    },
  ],
});

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

/**
 * The baseline: what a careful engineer writes by hand for this one rule, logging into the
 * same (indexed) disposition table so both sides pay for the same log.
 */
async function rawLoop(db: Kysely<any>, engine: string): Promise<number> {
  const cutoff = cutoffFor(TODAY, 'P3Y');
  let total = 0;
  let last = 0; // keyset, as the sweep does: never rescan rows already passed over
  for (;;) {
    const n = await db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      if (engine === 'postgres') {
        const result = await sql<{
          last: number | null;
          n: number;
        }>`with batch as materialized (select id, created_at from raw_rows where created_at <= ${cutoff} and last_contact_at is null and id > ${last} order by id limit ${BATCH} for update skip locked),
          gone as (delete from raw_rows r using batch where r.id = batch.id returning r.id, batch.created_at),
          logged as (insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
            select 'raw', 'default', 'prospects', 0, 'delete', 'raw_rows', cast(id as text), created_at, ${now}, 'done' from gone)
          select max(id) as last, count(*) as n from gone`.execute(trx);
        const row = result.rows[0];
        last = Number(row?.last ?? last);
        return Number(row?.n ?? 0);
      }
      const batch = sql`select id from raw_rows where created_at <= ${cutoff} and last_contact_at is null and id > ${last} order by id limit ${BATCH}`;
      const result = await sql<{
        row_key: string;
      }>`insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
        select 'raw', 'default', 'prospects', 0, 'delete', 'raw_rows', cast(id as text), created_at, ${now}, 'done' from raw_rows where id in (${batch}) returning row_key`.execute(
        trx,
      );
      await sql`delete from raw_rows where id in (${batch})`.execute(trx);
      for (const row of result.rows) last = Math.max(last, Number(row.row_key));
      return result.rows.length;
    });
    total += n;
    if (n < BATCH) return total;
  }
}

// Core's destroy() can race PostgreSQL's `drop database … with (force)`: close, wait, then drop.
async function dropDatabase(engine: TestEngine, database: Awaited<ReturnType<typeof createTestDatabase>>) {
  if (database.engine === 'sqlite') return database.destroy();
  await database.db.destroy();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const admin = await openDatabase({ url: engine.url, poolSize: 1 });
  await sql`drop database if exists ${sql.id(new URL(database.url).pathname.slice(1))}`.execute(admin);
  await admin.destroy();
}

function rssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

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

    const rssBefore = rssMb();
    let start = performance.now();
    const rawCount = await rawLoop(db, engine.engine);
    const rawMs = performance.now() - start;

    const retention = createRetentionEngine({
      db,
      schedule: [
        {
          rule,
          table: 'swept_rows',
          key: 'id',
          facts: { collectedAt: 'created_at', lastContact: 'last_contact_at' },
        },
      ],
      clock: fixedClock(`${TODAY}T10:00:00.000Z`),
    });
    start = performance.now();
    const result = await retention.sweep({ batchSize: BATCH });
    const sweepMs = performance.now() - start;
    const swept = result.counts.reduce((n, c) => n + c.count, 0);
    if (swept !== rawCount) throw new Error(`sweep disposed ${swept}, raw loop ${rawCount}`);
    console.log(
      `${engine.engine}: raw loop ${rawCount} rows in ${(rawMs / 1000).toFixed(2)} s; sweep ${swept} rows in ${(sweepMs / 1000).toFixed(2)} s; ratio ${(sweepMs / rawMs).toFixed(2)}×; peak RSS ${rssMb().toFixed(0)} MB (${rssBefore.toFixed(0)} MB before the runs)`,
    );
  } finally {
    await dropDatabase(engine, database);
  }
}

const engines: TestEngine[] = [{ engine: 'sqlite', url: 'sqlite' }];
if (process.env.PRIVACYKIT_TEST_POSTGRES_URL)
  engines.push({ engine: 'postgres', url: process.env.PRIVACYKIT_TEST_POSTGRES_URL });
console.log(
  `retention bench: ${ROWS} rows, ${ROWS / 2} due, batches of ${BATCH}; RSS at start ${rssMb().toFixed(0)} MB`,
);
for (const engine of engines) await bench(engine);
