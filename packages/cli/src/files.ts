import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { cliError } from './errors.js';

/** Reads a file named on the command line (relative to the working directory). */
export function readTextFile(cwd: string, path: string, what: string): string {
  const target = resolve(cwd, path);
  if (!existsSync(target)) throw cliError('cli/file-not-found', `${what} ${path} does not exist`);
  return readFileSync(target, 'utf8');
}

/** Reads and parses a JSON file named on the command line. */
export function readJsonFile(cwd: string, path: string, what: string): unknown {
  const text = readTextFile(cwd, path, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw cliError('cli/invalid-file', `${what} ${path} is not JSON: ${(error as Error).message}`);
  }
}

/** A PEM given inline (`-----BEGIN …`) or as a file path. */
export function readPem(cwd: string, value: string, what: string): string {
  return value.trimStart().startsWith('-----BEGIN') ? value : readTextFile(cwd, value, what);
}

/**
 * A public key (PEM text or file), checked: a file that is no key is the operator's to fix
 * (`cli/invalid-file`, exit 2), never a verification that failed (exit 1, "tampered", "altered").
 */
export function readPublicKey(cwd: string, value: string): string {
  const pem = readPem(cwd, value, 'public key');
  try {
    createPublicKey(pem);
  } catch (cause) {
    throw cliError('cli/invalid-file', `${value} is not a PEM public key`, { cause });
  }
  return pem;
}
