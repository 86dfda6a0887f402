import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import { expect } from 'vitest';

export const cliRoot = fileURLToPath(new URL('..', import.meta.url));
export const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const binPath = fileURLToPath(new URL('../dist/bin.js', import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `privacykit` binary in the fixtures directory, as an operator or cron would. */
export function runBin(
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, DATABASE_URL: undefined, PRIVACYKIT_DEBUG: undefined, ...options.env };
    const child = spawn(process.execPath, [binPath, ...args], {
      cwd: options.cwd ?? fixtures,
      env: Object.fromEntries(
        Object.entries(env).filter(([, value]) => value !== undefined),
      ) as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Parses stdout as exactly one JSON document (fails on anything else, e.g. progress output). */
export function json<T = Record<string, unknown>>(result: RunResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${result.stdout}\n--- stderr:\n${result.stderr}`);
  }
}

export const today = new Date().toISOString().slice(0, 10);

/** The host application's tables of the fixture data map, with rows some of which are due. */
export async function createHostTables(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('customers')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('email', 'varchar(255)')
    .addColumn('name', 'varchar(255)')
    .execute();
  await db.schema
    .createTable('invoices')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('customer_id', 'integer', (col) => col.references('customers.id'))
    .addColumn('amount', 'integer')
    .addColumn('invoice_date', 'varchar(10)')
    .execute();
  await db.schema
    .createTable('logins')
    .addColumn('id', 'integer', (col) => col.primaryKey())
    .addColumn('customer_id', 'integer', (col) => col.references('customers.id'))
    .addColumn('logged_on', 'varchar(10)')
    .addColumn('ip', 'varchar(64)')
    .execute();
  await db
    .insertInto('customers')
    .values([
      { id: 1, email: 'ada@example.com', name: 'Ada Lovelace' },
      { id: 2, email: 'bob@example.com', name: 'Bob Martin' },
    ])
    .execute();
  await db
    .insertInto('invoices')
    .values([
      { id: 1, customer_id: 1, amount: 100, invoice_date: '2005-03-01' },
      { id: 2, customer_id: 1, amount: 250, invoice_date: today },
      { id: 3, customer_id: 2, amount: 75, invoice_date: today },
    ])
    .execute();
  const logins = [];
  for (let id = 1; id <= 25; id++) {
    logins.push({
      id,
      customer_id: id % 2 === 0 ? 2 : 1,
      logged_on: id <= 20 ? `2001-01-${String(id).padStart(2, '0')}` : today,
      ip: `192.0.2.${id}`,
    });
  }
  await db.insertInto('logins').values(logins).execute();
}

/**
 * Runs the program in-process (`runCli` from src, string sinks, no child process): for usage,
 * help and argument checks, where what is tested is the program, not the binary's startup.
 */
export async function runInProcess(
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<RunResult> {
  const { runCli } = await import('../src/program.js');
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    env: { ...options.env },
    cwd: options.cwd ?? fixtures,
  });
  return { code, stdout, stderr };
}

/** Asserts stderr is exactly one `privacykit: …` line, without a stack trace. */
export function expectOneLineError(stderr: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^privacykit: /);
  expect(stderr).not.toMatch(/\n\s+at /);
}
