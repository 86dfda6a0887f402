// One measured part of the retention bench, in its own process under plain `node` on the built
// packages (no tsx loader in the figures): `node measure.mjs raw|sweep <database url>`.
// Prints one JSON line: elapsed ms, this process's CPU ms (all of the work on SQLite), rows
// handled, RSS when idle (imports loaded, database open) and the process's peak RSS. Spawned by
// run.ts, which creates and drops the tables.
import { fixedClock, retentionRuleSchema } from '@privacykit/core';
import { openDatabase } from '@privacykit/core/db';

import { sql } from 'kysely';

// RETENTION_BENCH_PACKAGE: another build of the package to measure (e.g. an older commit's dist).
const { createRetentionEngine, cutoffFor } = await import(
  process.env.RETENTION_BENCH_PACKAGE ?? '@privacykit/retention'
);

const [part, url] = process.argv.slice(2);
if ((part !== 'raw' && part !== 'sweep') || !url) throw new Error('usage: measure.mjs raw|sweep <url>');
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

/**
 * The baseline: what a careful engineer writes by hand for this one rule, logging into the
 * same (indexed) disposition table so both sides pay for the same log.
 */
async function rawLoop(db, engine) {
  const cutoff = cutoffFor(TODAY, 'P3Y');
  let total = 0;
  let last = 0; // keyset, as the sweep does: never rescan rows already passed over
  for (;;) {
    const n = await db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      if (engine === 'postgres') {
        const result =
          await sql`with batch as materialized (select id, created_at from raw_rows where created_at <= ${cutoff} and last_contact_at is null and id > ${last} order by id limit ${BATCH} for update skip locked),
          gone as (delete from raw_rows r using batch where r.id = batch.id returning r.id, batch.created_at),
          logged as (insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
            select 'raw', 'default', 'prospects', 0, 'delete', 'raw_rows', cast(id as text), created_at, ${now}, 'done' from gone)
          select max(id) as last, count(*) as n from gone`.execute(trx);
        const row = result.rows[0];
        last = Number(row?.last ?? last);
        return Number(row?.n ?? 0);
      }
      const batch = sql`select id from raw_rows where created_at <= ${cutoff} and last_contact_at is null and id > ${last} order by id limit ${BATCH}`;
      const result =
        await sql`insert into privacykit_retention_dispositions (run_id, tenant, rule, phase, action, table_name, row_key, due_date, acted_at, outcome)
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

const engine = url.startsWith('postgres') ? 'postgres' : 'sqlite';
const db = await openDatabase(url);
await sql`select 1`.execute(db);
const idleRss = process.memoryUsage().rss;
const cpuStart = process.cpuUsage();
const start = performance.now();
let rows;
if (part === 'raw') rows = await rawLoop(db, engine);
else {
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
  const result = await retention.sweep({ batchSize: BATCH });
  rows = result.counts.reduce((n, c) => n + c.count, 0);
}
const ms = performance.now() - start;
const cpu = process.cpuUsage(cpuStart);
await db.destroy();
process.stdout.write(
  `${JSON.stringify({ part, ms, cpuMs: (cpu.user + cpu.system) / 1000, rows, idleRss: idleRss / 2 ** 20, peakRss: process.resourceUsage().maxRSS / 1024 })}\n`,
);
