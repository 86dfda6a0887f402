import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { isPrivacyKitError } from '@privacykit/core/errors';
import type { Kysely } from 'kysely';
import { registerConsent } from './commands/consent.js';
import { registerCookies } from './commands/cookies.js';
import { registerErase } from './commands/erase.js';
import { registerExport } from './commands/export.js';
import { registerMigrate } from './commands/migrate.js';
import { registerPolicy } from './commands/policy.js';
import { registerRequests, registerRequestsRedact } from './commands/requests.js';
import { registerRetention } from './commands/retention.js';
import type { LoadedConfig } from './config.js';
import { cliError } from './errors.js';
import { Output } from './output.js';
import type { CliIo, TextStream } from './output.js';

/** Options every command accepts. */
export interface GlobalOptions {
  config?: string;
  db?: string;
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

export interface CreateProgramOptions {
  stdout: TextStream;
  stderr: TextStream;
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
}

// The config (zod) and the database layer (kysely) load only when a command asks for them, so
// `--help`, usage errors and commands without a database start without them.
async function loadConfig(options: { cwd: string; path?: string }): Promise<LoadedConfig> {
  return (await import('./config.js')).loadConfig(options);
}

async function openDatabase(url: string): Promise<Kysely<any>> {
  return (await import('@privacykit/core/db')).openDatabase(url);
}

/** Errors raised while loading the project config, so {@link runCli} exits 2 on them. */
const configErrors = new WeakSet<object>();

/** What an action gets: its command, parsed options, output, and lazily the config and database. */
export class CommandScope {
  readonly command: Command;
  readonly io: CliIo;
  readonly out: Output;
  readonly globals: GlobalOptions;
  #config: Promise<LoadedConfig> | undefined;
  #db: Kysely<any> | undefined;

  constructor(io: CliIo, command: Command) {
    this.io = io;
    this.command = command;
    this.globals = command.optsWithGlobals<GlobalOptions>();
    this.out = new Output(io, { json: this.globals.json, quiet: this.globals.quiet });
  }

  /** The command's own options. */
  options<T extends object>(): T {
    return this.command.opts<T>();
  }

  /** The project config (`--config` or the default file), loaded once. */
  config(): Promise<LoadedConfig> {
    this.#config ??= loadConfig({ cwd: this.io.cwd, path: this.globals.config }).catch((error: unknown) => {
      // Whatever its code (a policy defined at import time throws `policy/invalid` as is), an
      // error loading the config is a configuration error: exit 2, never a finding's exit 1.
      if (typeof error === 'object' && error !== null) configErrors.add(error);
      throw error;
    });
    return this.#config;
  }

  /**
   * The config when there is one: undefined only when none was named and none is in the
   * directory. One named with `--config` that is missing, or any that fails to load, is the error
   * it is (before, `migrate` then migrated every package and exited 0).
   */
  async optionalConfig(): Promise<LoadedConfig | undefined> {
    try {
      return await this.config();
    } catch (error) {
      if (!this.globals.config && isPrivacyKitError(error) && error.code === 'cli/config-not-found')
        return undefined;
      throw error;
    }
  }

  /** The database URL from `--db`, `DATABASE_URL` or the config's `database`. */
  async databaseUrl(): Promise<string> {
    const direct = this.globals.db ?? this.io.env.DATABASE_URL;
    if (direct) return direct;
    const config = await this.optionalConfig();
    if (config?.database) return config.database;
    throw cliError('cli/no-database', 'no database: pass --db <url> or set DATABASE_URL');
  }

  /**
   * Opens the database once per command; closed when the action ends. A SQLite file that does
   * not exist is a configuration error (exit 2) unless `create` (migrate): SQLite created an
   * empty file at a mistyped path, and the command then failed on "no such table" with exit 1,
   * which `consent verify || alert "tampered"` read as tampering.
   */
  async database(options: { create?: boolean } = {}): Promise<Kysely<any>> {
    if (!this.#db) {
      const url = await this.databaseUrl();
      const file = sqliteFileOfUrl(url);
      if (file !== undefined && !options.create && !existsSync(file)) {
        throw cliError(
          'cli/no-database',
          `the SQLite database ${file} does not exist: check --db (or DATABASE_URL), or create it with privacykit migrate`,
        );
      }
      this.#db = await openDatabase(url);
    }
    return this.#db;
  }

  async close(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    if (db) await db.destroy();
  }
}

/** The file of a SQLite URL as openDatabase reads it; undefined for other engines and :memory:. */
function sqliteFileOfUrl(url: string): string | undefined {
  if (!/^(sqlite|file):/i.test(url) && !/\.(db|sqlite3?)$/i.test(url)) return undefined;
  if (/^(postgres(ql)?|mysql|mariadb):\/\//i.test(url)) return undefined;
  const path = url.replace(/^sqlite:(\/\/)?/i, '').replace(/^file:(\/\/)?/i, '');
  return path === '' || path === ':memory:' ? undefined : resolve(path);
}

/** An action body: returns the exit code (0 when nothing is returned). */
export type Action = (scope: CommandScope) => Promise<number | undefined>;

/** Shared by the command registrations: wraps actions and adds help examples. */
export interface ProgramKit {
  io: CliIo;
  action(run: Action): (...params: unknown[]) => Promise<void>;
}

/** Appends an "Examples:" block to a command's `--help`. */
export function examples(command: Command, lines: readonly string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`);
}

function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

interface ProgramState {
  exitCode: number;
}

const states = new WeakMap<Command, ProgramState>();

/**
 * Builds the `privacykit` commander program writing to the given streams. The binary passes
 * the process streams; tests pass string sinks and run it in-process with {@link runCli}.
 */
export function createProgram(options: CreateProgramOptions): Command {
  const io: CliIo = {
    stdout: options.stdout,
    stderr: options.stderr,
    env: options.env ?? process.env,
    cwd: options.cwd ?? process.cwd(),
  };
  const state: ProgramState = { exitCode: 0 };
  const program = new Command('privacykit');
  states.set(program, state);
  program
    .description(
      'Run the GDPR promises your privacy policy makes, and prove it: migrations, policy checks, retention sweeps, consent ledger verification, request deadlines, cookie audits, export and erasure.',
    )
    .version(packageVersion(), '-V, --version')
    .option('-c, --config <path>', 'project config module (default: privacykit.config.{mjs,js,ts})')
    .option('--db <url>', 'database URL: sqlite:<file>, postgres://… or mysql://… (default: $DATABASE_URL)')
    .option('--json', 'print one JSON document on stdout, nothing else')
    .option('-q, --quiet', 'no progress or notes on stderr')
    .option('--debug', 'print stack traces of errors')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      // One line, like every other error: commander's suggestions ("(Did you mean …?)") folded in.
      outputError: (text, write) =>
        write(
          `privacykit: ${text
            .replace(/^error: /, '')
            .trim()
            .replace(/\s*\n\s*/g, ' ')}\n`,
        ),
    })
    .exitOverride();
  examples(program, [
    'privacykit migrate --db sqlite:privacy.db',
    'privacykit policy check privacykit.config.mjs',
    'privacykit retention sweep --json > sweep.json',
    'privacykit requests due --within 7d',
  ]);
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok; 1 findings (policy check problems, tampering, failures, overdue items) or a failed run; 2 usage or configuration error (a missing or invalid config, invalid package options, an unknown time zone).\n',
  );

  const kit: ProgramKit = {
    io,
    action:
      (run) =>
      async (...params) => {
        const command = params[params.length - 1] as Command;
        const scope = new CommandScope(io, command);
        try {
          state.exitCode = (await run(scope)) ?? 0;
        } finally {
          await scope.close();
        }
      },
  };
  registerMigrate(program, kit);
  registerPolicy(program, kit);
  registerRetention(program, kit);
  registerConsent(program, kit);
  registerRequests(program, kit);
  registerRequestsRedact(program, kit);
  registerCookies(program, kit);
  registerExport(program, kit);
  registerErase(program, kit);
  return program;
}

const usageCodes = new Set([
  'cli/usage',
  'cli/config-not-found',
  'cli/config-invalid',
  'cli/config-load-failed',
  'cli/no-database',
  'cli/file-not-found',
  'cli/invalid-file',
  'database/invalid-url',
  'database/driver-missing',
  'database/driver-incompatible',
]);

/**
 * Exit 2 for a usage or configuration error: cron's `privacykit requests due || alert` must not
 * report a misconfiguration (bad package options such as `requests.codeDigits`, an unknown time
 * zone, an invalid config) as an overdue request.
 */
function isUsageOrConfigError(error: unknown): boolean {
  if (typeof error === 'object' && error !== null && configErrors.has(error)) return true;
  if (!isPrivacyKitError(error)) return false;
  // A library's refusal of what the command was given (an option, a file, the config's
  // schedule) is a usage error too: `retention backlog || alert` must not read it as lateness.
  return usageCodes.has(error.code) || /\/invalid-(options|zone|input|schedule)$/.test(error.code);
}

/** One line, whatever the error: the message with newlines folded, and its code. */
export function errorLine(error: unknown): string {
  if (isPrivacyKitError(error)) {
    return `privacykit: ${error.message.replace(/\s*\n\s*/g, ' ')} (${error.code})`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `privacykit: ${message.replace(/\s*\n\s*/g, ' ')}`;
}

/**
 * Runs the program on `argv` (without `node` and the script) and resolves to the exit code:
 * 0 ok, 1 findings or a failed run, 2 usage or configuration errors (`cli/config-*`,
 * `*\/invalid-options`, `*\/invalid-zone`, or anything raised while loading the config). Never
 * throws and never prints a stack trace unless `--debug` is given.
 */
export async function runCli(argv: readonly string[], options: CreateProgramOptions): Promise<number> {
  const program = createProgram(options);
  const state = states.get(program) as ProgramState;
  const debug = argv.includes('--debug') || Boolean((options.env ?? process.env).PRIVACYKIT_DEBUG);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return 0;
      if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync') return 2;
      return error.exitCode === 0 ? 0 : 2;
    }
    options.stderr.write(`${errorLine(error)}\n`);
    if (debug && error instanceof Error && error.stack) options.stderr.write(`${error.stack}\n`);
    return isUsageOrConfigError(error) ? 2 : 1;
  }
}
