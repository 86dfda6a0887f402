// Start-up of the `privacykit` command, as cron and CI pay it on every call: the built binary's
// wall time per command, against `node -e ''` (Node's own start-up) measured in the same rounds.
// Every round runs the baseline and each command once, in turn, so load on the machine hits all
// of them alike. Run: npm run build && npx tsx bench/cli/run.ts
// Env: CLI_BENCH_NODE (another node binary, e.g. Node 22's), CLI_BENCH_ROUNDS (default 15).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '@privacykit/core/db';
import { sql } from 'kysely';

const node = process.env.CLI_BENCH_NODE ?? process.execPath;
const rounds = Number(process.env.CLI_BENCH_ROUNDS ?? 15);
const bin = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url));
// The CLI's end-to-end fixture: a policy, a data map of three host tables and a schedule.
const config = fileURLToPath(
  new URL('../../packages/cli/test/fixtures/privacykit.config.mjs', import.meta.url),
);

const dir = mkdtempSync(join(tmpdir(), 'privacykit-cli-bench-'));
const db = `sqlite:${join(dir, 'bench.db')}`;

function cli(args: readonly string[]): string[] {
  return [bin, '--config', config, '--db', db, ...args];
}

/** Runs once (outside the figures) and fails loudly when the command itself fails. */
function check(label: string, args: readonly string[], codes: readonly number[] = [0]): void {
  const result = spawnSync(node, args, { encoding: 'utf8' });
  if (!codes.includes(result.status ?? -1)) {
    throw new Error(`${label} exited ${result.status}: ${result.stderr}`);
  }
}

function timed(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(node, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', () => resolve(performance.now() - start));
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

const cases: { label: string; args: string[]; codes?: number[] }[] = [
  { label: "node -e ''", args: ['-e', ''] },
  { label: 'privacykit --help', args: [bin, '--help'] },
  { label: 'privacykit policy check', args: cli(['policy', 'check']) },
  { label: 'privacykit requests due', args: cli(['requests', 'due']) },
  { label: 'privacykit retention sweep', args: cli(['retention', 'sweep']) },
  { label: 'privacykit consent verify', args: cli(['consent', 'verify']) },
];

try {
  const kysely = await openDatabase(db);
  for (const table of ['customers', 'invoices', 'logins']) {
    await sql`create table ${sql.table(table)} (id integer primary key, customer_id integer, email text, name text, amount integer, invoice_date text, logged_on text, ip text)`.execute(
      kysely,
    );
  }
  await kysely.destroy();
  check('migrate', cli(['migrate']));
  for (const { label, args, codes } of cases) check(label, args, codes);

  const times = new Map(cases.map(({ label }) => [label, [] as number[]]));
  for (let round = 0; round < rounds; round++) {
    for (const { label, args } of cases) times.get(label)?.push(await timed(args));
  }
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const baseline = median(times.get("node -e ''") ?? []);
  console.log(`privacykit start-up on Node ${version}, median of ${rounds} rounds (wall time per process)`);
  for (const { label } of cases) {
    const ms = median(times.get(label) ?? []);
    console.log(
      `${label.padEnd(28)} ${ms.toFixed(0).padStart(6)} ms  ${(ms / baseline).toFixed(1).padStart(5)}× node -e ''  (+${(ms - baseline).toFixed(0)} ms)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
