export { engineOf } from './engine.js';
export type { Engine } from './engine.js';
export { backgroundCheckpoints } from './checkpoints.js';
export type { BackgroundCheckpointOptions, CheckpointMode } from './checkpoints.js';
export { engineOfUrl, openDatabase, sqliteConnectionOf, truncateSqliteLog } from './open.js';
export type { OpenDatabaseOptions, SqliteConnection, SqliteStatement } from './open.js';
export { autoIncrementColumn, columnType, migrate } from './migrate.js';
export type { MigrateResult, PackageMigrations } from './migrate.js';
export {
  countSubjectRows,
  selectExact,
  subjectCondition,
  subjectRows,
  subjectRowsQuery,
} from './traversal.js';
export type { SubjectIdentities, SubjectRow, SubjectRowsOptions, SubjectScope } from './traversal.js';
export {
  isWriteConflict,
  retryWriteConflicts,
  tryBeginImmediate,
  writeStatement,
  writeTransaction,
} from './write-transaction.js';
export type { RetryWriteConflictsOptions } from './write-transaction.js';
export { isPlainInsert, openWriterThread } from './writer-thread.js';
export type { WriterThread, WriterThreadOptions } from './writer-thread.js';
