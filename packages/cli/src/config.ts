import { existsSync } from 'node:fs';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PrivacyKitError, defineDataMap, definePolicy, isPrivacyKitError } from '@privacykit/core';
import type { DataMap, DataMapInput, Policy, PolicyInput, PrivacyKitIssue } from '@privacykit/core';
import { cliError } from './errors.js';

/**
 * What a project's `privacykit.config.mjs` exports (as named exports or one default object).
 * Only `policy` is required; each command reads the parts it needs and says so when one is
 * missing. Values may be already-defined (`definePolicy(...)`) or raw inputs.
 */
export interface PrivacyKitConfig {
  policy: Policy | PolicyInput;
  dataMap?: DataMap | DataMapInput;
  /** The retention schedule handed to `@privacykit/retention` (rules bound to tables). */
  schedule?: unknown;
  /** Default database URL when neither `--db` nor `DATABASE_URL` is given. */
  database?: string;
  /**
   * The subject's ids in the consent ledger, for `export` (default: `email:<address>` for each
   * email identity). Return `undefined` when the subject has none.
   */
  consentSubject?: (
    identities: Readonly<Record<string, readonly string[]>>,
  ) => string | readonly string[] | undefined | Promise<string | readonly string[] | undefined>;
  /** Other package settings (consent keys, erasure strategies, …), read by their commands. */
  [key: string]: unknown;
}

/** Identity helper that types a config module: `export default defineConfig({ policy, ... })`. */
export function defineConfig<T extends PrivacyKitConfig>(config: T): T {
  return config;
}

export interface LoadedConfig {
  /** Absolute path of the module the config came from. */
  path: string;
  policy: Policy;
  dataMap?: DataMap;
  schedule?: unknown;
  database?: string;
  /** Everything the module exported, for package-specific settings. */
  values: Readonly<Record<string, unknown>>;
}

export const defaultConfigFiles = ['privacykit.config.mjs', 'privacykit.config.js', 'privacykit.config.ts'];

/** The config module's path: `--config` when given, else the first default file in `cwd`. */
export function findConfigFile(cwd: string, explicit?: string): string {
  if (explicit) {
    const path = isAbsolute(explicit) ? explicit : resolve(cwd, explicit);
    if (!existsSync(path)) throw cliError('cli/config-not-found', `config file ${explicit} does not exist`);
    return path;
  }
  for (const name of defaultConfigFiles) {
    const path = resolve(cwd, name);
    if (existsSync(path)) return path;
  }
  throw cliError(
    'cli/config-not-found',
    `no ${defaultConfigFiles.join(', ')} in ${cwd}: create one or pass --config <path>`,
  );
}

/**
 * Imports a project module. `.mjs`/`.js` (ESM) are imported directly; `.ts`/`.mts` are imported
 * natively when Node can strip types, and otherwise through tsx's `tsImport` when tsx is
 * installed in the project.
 */
export async function importModule(path: string, cwd: string): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  const typescript = /^\.(ts|mts|cts)$/.test(extname(path));
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if (!typescript || !isUnknownExtension(error)) throw loadFailure(path, error);
  }
  let tsx: { tsImport(specifier: string, parent: string): Promise<unknown> };
  try {
    const specifier = 'tsx/esm/api';
    tsx = (await import(specifier)) as typeof tsx;
  } catch (cause) {
    throw cliError(
      'cli/config-load-failed',
      `${path} is TypeScript: install tsx (npm i -D tsx) or use a .mjs config`,
      { cause },
    );
  }
  try {
    return (await tsx.tsImport(url, pathToFileURL(`${cwd}/`).href)) as Record<string, unknown>;
  } catch (error) {
    throw loadFailure(path, error);
  }
}

function isUnknownExtension(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'ERR_UNKNOWN_FILE_EXTENSION'
  );
}

function loadFailure(path: string, error: unknown): unknown {
  // A policy that fails `definePolicy` at import time is the user's answer, not a load failure.
  if (isPrivacyKitError(error)) return error;
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return cliError('cli/config-load-failed', `cannot load ${path}: ${message}`, { cause: error });
}

/** The module's exports, or its default export when that is the config object. */
export function configValues(module: Record<string, unknown>): Record<string, unknown> {
  const fallback = module.default;
  if (!('policy' in module) && typeof fallback === 'object' && fallback !== null) {
    return fallback as Record<string, unknown>;
  }
  return module;
}

function isPolicy(value: unknown): value is Policy {
  return typeof value === 'object' && value !== null && (value as Policy).categoryIndex instanceof Map;
}

function isDataMap(value: unknown): value is DataMap {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as DataMap).tables instanceof Map &&
    Array.isArray((value as DataMap).order)
  );
}

/** Validation problems of a config, each prefixed with where it is (`policy.purposes[1]…`). */
export interface ConfigCheck {
  policy?: Policy;
  dataMap?: DataMap;
  issues: (PrivacyKitIssue & { code: string })[];
}

/**
 * Validates the policy and the data map of a config's values and gathers every problem of both,
 * rather than stopping at the first.
 */
export function checkConfigValues(values: Readonly<Record<string, unknown>>): ConfigCheck {
  const issues: ConfigCheck['issues'] = [];
  const collect = (prefix: string, error: unknown) => {
    if (!isPrivacyKitError(error)) throw error;
    const found = error.issues.length > 0 ? error.issues : [{ path: '', message: error.message }];
    for (const issue of found) {
      issues.push({
        code: error.code,
        path: issue.path ? `${prefix}.${issue.path}` : prefix,
        message: issue.message,
      });
    }
  };
  let policy: Policy | undefined;
  if (values.policy === undefined) {
    issues.push({ code: 'cli/config-invalid', path: 'policy', message: 'the module exports no policy' });
  } else {
    try {
      policy = isPolicy(values.policy) ? values.policy : definePolicy(values.policy as PolicyInput);
    } catch (error) {
      collect('policy', error);
    }
  }
  let dataMap: DataMap | undefined;
  if (values.dataMap !== undefined) {
    try {
      dataMap = isDataMap(values.dataMap)
        ? values.dataMap
        : defineDataMap(values.dataMap as DataMapInput, policy ? { policy } : {});
    } catch (error) {
      collect('dataMap', error);
    }
  }
  return { policy, dataMap, issues };
}

/**
 * Loads and validates the project config.
 *
 * @throws PrivacyKitError `cli/config-not-found`, `cli/config-load-failed`, or the first
 *   validation error of the policy or data map (with every issue listed).
 */
export async function loadConfig(options: { cwd: string; path?: string }): Promise<LoadedConfig> {
  const path = findConfigFile(options.cwd, options.path);
  const values = configValues(await importModule(path, options.cwd));
  const check = checkConfigValues(values);
  if (check.issues.length > 0 || !check.policy) {
    const first = check.issues[0];
    throw new PrivacyKitError(
      'cli/config-invalid',
      `${path}: ${check.issues.length} problem${check.issues.length === 1 ? '' : 's'}, first ${first?.path}: ${first?.message} (run privacykit policy check ${path})`,
      { issues: check.issues },
    );
  }
  return {
    path,
    policy: check.policy,
    dataMap: check.dataMap,
    schedule: values.schedule,
    database: typeof values.database === 'string' ? values.database : undefined,
    values,
  };
}
