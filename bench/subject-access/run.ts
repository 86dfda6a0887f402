// Benchmark: exportSubject (full zip: JSON + CSV + HTML + manifest) for one subject with 100,000
// rows across 10 tables, against raw SELECTs of the same rows written as JSON to a file, in the
// same run, on SQLite and (when PRIVACYKIT_TEST_POSTGRES_URL is set) PostgreSQL.
// Each side runs in its own child process so peak RSS growth is measured cleanly.
//
//   npm run build -w @privacykit/core -w @privacykit/subject-access
//   npx tsx bench/subject-access/run.ts
//
// Targets (issue 5): export time ≤ 3× the baseline, export peak memory growth < 100 MB.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { defineDataMap, definePolicy, fixedClock } from '@privacykit/core';
import type { DataMap, DataMapInput } from '@privacykit/core';
import { openDatabase, subjectRows } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import { exportSubject } from '@privacykit/subject-access';
import type { Kysely } from 'kysely';

const SUBJECT = 'ada@example.com';
/** Rows of the subject per table: 100,000 in all. */
const plan: { table: string; parent?: string; fk?: string; identity?: boolean; rows: number }[] = [
  { table: 'customers', identity: true, rows: 1 },
  { table: 'addresses', parent: 'customers', fk: 'customer_id', rows: 5_000 },
  { table: 'orders', parent: 'customers', fk: 'customer_id', rows: 10_000 },
  { table: 'order_lines', parent: 'orders', fk: 'order_id', rows: 20_000 },
  { table: 'invoices', parent: 'customers', fk: 'customer_id', rows: 10_000 },
  { table: 'payments', parent: 'invoices', fk: 'invoice_id', rows: 10_000 },
  { table: 'tickets', parent: 'customers', fk: 'customer_id', rows: 10_000 },
  { table: 'messages', parent: 'tickets', fk: 'ticket_id', rows: 9_999 },
  { table: 'logs', identity: true, rows: 15_000 },
  { table: 'sessions', identity: true, rows: 10_000 },
];
/** Rows of other subjects per subject row, so the queries have something to skip. */
const NOISE = 0.25;

const policy = definePolicy({
  version: 'bench',
  effectiveDate: '2024-01-01',
  controller: { name: 'Bench SAS' },
  dpo: { email: 'dpo@bench.example' },
  supervisoryAuthority: { name: 'CNIL' },
  purposes: [
    {
      id: 'contract',
      name: 'Contract',
      description: 'Everything.',
      legalBases: [{ basis: 'contract' }],
      categories: ['identity', 'contact', 'transaction', 'support', 'usage', 'billing'],
    },
  ],
  rights: { offered: ['access'], channels: [{ kind: 'email', value: 'dpo@bench.example' }] },
});

function dataMapInput(): DataMapInput {
  const tables: DataMapInput['tables'] = {};
  for (const entry of plan) {
    tables[entry.table] = {
      primaryKey: 'id',
      identities: entry.identity ? { email: 'email' } : {},
      references: entry.parent ? [{ column: entry.fk!, table: entry.parent }] : [],
      columns: entry.identity
        ? { email: 'contact.email', label: 'support', detail: 'usage.logs', amount: 'transaction.details' }
        : {
            label: 'support',
            detail: 'transaction.details',
            amount: 'transaction.details',
            created_at: 'transaction',
          },
    };
  }
  return { identities: { email: { normalise: 'email' } }, tables };
}
const dataMap: DataMap = defineDataMap(dataMapInput(), { policy });

async function seed(db: Kysely<any>): Promise<void> {
  const ids = new Map<string, number[]>();
  for (const entry of plan) {
    await db.schema
      .createTable(entry.table)
      .addColumn('id', 'integer', (col) => col.primaryKey())
      .addColumn(entry.identity ? 'email' : (entry.fk ?? 'none'), entry.identity ? 'varchar(255)' : 'integer')
      .addColumn('label', 'varchar(255)')
      .addColumn('detail', 'text')
      .addColumn('amount', 'integer')
      .addColumn('created_at', 'varchar(32)')
      .execute();
    const column = entry.identity ? 'email' : entry.fk!;
    await db.schema.createIndex(`${entry.table}_${column}`).on(entry.table).column(column).execute();
    const noise = Math.ceil(entry.rows * NOISE);
    const parentIds = entry.parent ? ids.get(entry.parent)! : [];
    const mine: number[] = [];
    let id = 0;
    const batch: Record<string, unknown>[] = [];
    const flush = async () => {
      if (batch.length > 0) await db.insertInto(entry.table).values(batch.splice(0)).execute();
    };
    for (let i = 0; i < entry.rows + noise; i++) {
      id++;
      const subject = i < entry.rows;
      if (subject) mine.push(id);
      const row: Record<string, unknown> = {
        id,
        label: i % 97 === 0 ? `=cmd|' /C calc'!A0 row ${i}` : `${entry.table} label ${i}`,
        detail: `Some free text about ${entry.table} ${i}, with "quotes", commas and ünïcode — ${'x'.repeat(i % 40)}`,
        amount: (i * 37) % 100_000,
        created_at: new Date(Date.UTC(2024, 0, 1) + i * 60_000).toISOString(),
      };
      if (entry.identity) row.email = subject ? SUBJECT : `other${i}@example.com`;
      else row[entry.fk!] = subject ? parentIds[i % parentIds.length] : -1 - (i % 1000);
      batch.push(row);
      if (batch.length === 500) await flush();
    }
    await flush();
    ids.set(entry.table, mine);
  }
  // Planner statistics, as any production database has them.
  const { sql } = await import('kysely');
  await sql`analyze`.execute(db);
}

/** The baseline: what a developer would write by hand — one SELECT per table, rows to a JSON file. */
async function baseline(db: Kysely<any>, file: string): Promise<number> {
  const out = createWriteStream(file);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  let count = 0;
  const subjectIds = (table: string): string => {
    const entry = plan.find((candidate) => candidate.table === table)!;
    if (entry.identity) return `select id from ${table} where email = '${SUBJECT}'`;
    return `select id from ${table} where ${entry.fk} in (${subjectIds(entry.parent!)})`;
  };
  await write('{');
  for (const [i, entry] of plan.entries()) {
    const { sql } = await import('kysely');
    const where = entry.identity ? `email = '${SUBJECT}'` : `${entry.fk} in (${subjectIds(entry.parent!)})`;
    const result = await sql
      .raw<Record<string, unknown>>(`select * from ${entry.table} where ${where}`)
      .execute(db);
    await write(`${i === 0 ? '' : ','}"${entry.table}":${JSON.stringify(result.rows)}`);
    count += result.rows.length;
  }
  await write('}');
  out.end();
  await once(out, 'finish');
  return count;
}

async function exporter(db: Kysely<any>, file: string): Promise<number> {
  const stream = exportSubject({
    db,
    dataMap,
    policy,
    identities: { email: [SUBJECT] },
    clock: fixedClock('2024-06-01T00:00:00.000Z'),
    ...(process.env.BENCH_LEVEL ? { compressionLevel: Number(process.env.BENCH_LEVEL) } : {}),
    ...(process.env.BENCH_BATCH ? { batchSize: Number(process.env.BENCH_BATCH) } : {}),
  });
  await pipeline(stream, createWriteStream(file));
  return statSync(file).size;
}

/** Core's traversal alone, rows discarded: how much of the export's time is reading. */
async function traversal(db: Kysely<any>): Promise<number> {
  let count = 0;
  const batchSize = process.env.BENCH_BATCH ? Number(process.env.BENCH_BATCH) : 5000;
  for await (const _ of subjectRows({ db, dataMap, identities: { email: [SUBJECT] }, batchSize })) count++;
  return count;
}

/** Child: run one side, sampling RSS every 5 ms; print JSON figures. */
async function child(side: string, url: string, file: string): Promise<void> {
  const db = await openDatabase(url);
  await db.selectFrom('customers').select('id').limit(1).execute(); // connect before measuring
  globalThis.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const result =
    side === 'baseline'
      ? await baseline(db, file)
      : side === 'traversal'
        ? await traversal(db)
        : await exporter(db, file);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  await db.destroy();
  process.stdout.write(
    `${JSON.stringify({ side, ms, cpuMs, growthMb: (peak - start) / 2 ** 20, result })}\n`,
  );
}

interface Figures {
  side: string;
  ms: number;
  cpuMs: number;
  growthMb: number;
  result: number;
}

function runChild(side: string, url: string, file: string): Figures {
  const self = fileURLToPath(import.meta.url);
  const run = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', self, 'child', side, url, file],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  if (run.status !== 0) throw new Error(`${side} child failed (${run.status})`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Figures;
}

async function main(): Promise<void> {
  const engines = testEngines().filter((engine) => engine.engine !== 'mysql');
  const dir = mkdtempSync(join(tmpdir(), 'pk-bench-sa-'));
  let failed = false;
  try {
    for (const engine of engines) {
      const test = await createTestDatabase(engine);
      try {
        const s0 = performance.now();
        // Seed through a connection of our own, closed before the database is dropped.
        const seeding = await openDatabase({ url: test.url, poolSize: 1 });
        await seed(seeding);
        await seeding.destroy();
        console.log(`\n[${engine.engine}] seeded in ${((performance.now() - s0) / 1000).toFixed(1)} s`);
        const runs: Record<string, Figures[]> = { baseline: [], traversal: [], export: [] };
        for (let round = 0; round < 3; round++) {
          for (const side of ['baseline', 'traversal', 'export'] as const) {
            runs[side]!.push(runChild(side, test.url, join(dir, `${engine.engine}-${side}.out`)));
          }
        }
        const best = (side: string) => runs[side]!.reduce((a, b) => (a.ms <= b.ms ? a : b));
        const bestCpu = (side: string) => Math.min(...runs[side]!.map((run) => run.cpuMs));
        const worstMem = (side: string) => Math.max(...runs[side]!.map((run) => run.growthMb));
        const base = best('baseline');
        const exp = best('export');
        const ratio = exp.ms / base.ms;
        console.log(
          `[${engine.engine}] baseline (raw SELECT → JSON file): ${base.ms.toFixed(0)} ms, ${base.result} rows, peak RSS growth ${worstMem('baseline').toFixed(1)} MB`,
        );
        console.log(
          `[${engine.engine}] exportSubject (zip: JSON+CSV+HTML+manifest): ${exp.ms.toFixed(0)} ms, ${(exp.result / 2 ** 20).toFixed(1)} MB zip, peak RSS growth ${worstMem('export').toFixed(1)} MB`,
        );
        console.log(
          `[${engine.engine}] of which core subjectRows alone (rows discarded): ${best('traversal').ms.toFixed(0)} ms = ${(best('traversal').ms / base.ms).toFixed(2)}× baseline`,
        );
        console.log(
          `[${engine.engine}] client CPU (user+sys, best of 3): baseline ${bestCpu('baseline').toFixed(0)} ms, export ${bestCpu('export').toFixed(0)} ms = ${(bestCpu('export') / bestCpu('baseline')).toFixed(2)}×`,
        );
        const timeOk = ratio <= 3;
        const memOk = worstMem('export') < 100;
        console.log(
          `[${engine.engine}] time ratio export/baseline = ${ratio.toFixed(2)}× (target ≤ 3×: ${timeOk ? 'ok' : 'MISSED'}); memory growth ${worstMem('export').toFixed(1)} MB (target < 100 MB: ${memOk ? 'ok' : 'MISSED'}); memory ratio ${(worstMem('export') / Math.max(worstMem('baseline'), 0.1)).toFixed(2)}×`,
        );
        failed ||= !timeOk || !memOk;
      } finally {
        await test.destroy();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

if (process.argv[2] === 'seed') {
  // Leaves a seeded database behind for profiling a child by hand.
  const test = await createTestDatabase(testEngines().find((engine) => engine.engine === process.argv[3])!);
  const seeding = await openDatabase({ url: test.url, poolSize: 1 });
  await seed(seeding);
  await seeding.destroy();
  await test.db.destroy();
  console.log(test.url);
} else if (process.argv[2] === 'child') {
  await child(process.argv[3]!, process.argv[4]!, process.argv[5]!);
} else {
  await main();
}
