// @privacykit/cli — the `privacykit` command for operators, and its program for embedding/tests.
export { CommandScope, createProgram, errorLine, examples, runCli } from './program.js';
export type { Action, CreateProgramOptions, GlobalOptions, ProgramKit } from './program.js';
export { checkConfigValues, defaultConfigFiles, defineConfig, findConfigFile, loadConfig } from './config.js';
export type { ConfigCheck, LoadedConfig, PrivacyKitConfig } from './config.js';
export { Output, formatTable } from './output.js';
export type { CliIo, Progress, TableColumn, TextStream } from './output.js';
export { parseDuration, parsePositiveInteger } from './duration.js';
export type { CliErrorCode } from './errors.js';
export { storagePackages } from './packages.js';
export type { StoragePackage } from './packages.js';
