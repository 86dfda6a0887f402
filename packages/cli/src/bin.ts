#!/usr/bin/env node
import { format } from 'node:util';
import { runCli } from './program.js';

// stdout belongs to the command's output (one JSON document with --json). Libraries that log
// through the console (kysely's deprecation notices use console.log) go to stderr instead.
for (const method of ['log', 'info', 'debug', 'warn'] as const) {
  console[method] = (...args: unknown[]) => {
    process.stderr.write(`${format(...args)}\n`);
  };
}

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }).then((code) => {
  process.exitCode = code;
});
