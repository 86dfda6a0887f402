export { engineOf } from './engine.js';
export type { Engine } from './engine.js';
export { engineOfUrl, openDatabase, sqliteConnectionOf } from './open.js';
export type { OpenDatabaseOptions, SqliteConnection, SqliteStatement } from './open.js';
export { autoIncrementColumn, columnType, migrate } from './migrate.js';
export type { MigrateResult, PackageMigrations } from './migrate.js';
export { countSubjectRows, subjectCondition, subjectRows, subjectRowsQuery } from './traversal.js';
export type { SubjectIdentities, SubjectRow, SubjectRowsOptions, SubjectScope } from './traversal.js';
