// @privacykit/subject-access: a subject's data from the data map as a streamed package (JSON,
// CSV, HTML report, Art 15 information), the Art 20 portability subset, and stored exports
// delivered through single-use, session-bound download tokens.
export type { SubjectAccessErrorCode } from './errors.js';
export {
  EXPORT_SCHEMA_VERSION,
  exportFormatSchema,
  exportSubject,
} from './export-subject.js';
export type {
  ExportFormat,
  ExportManifest,
  ExportSubjectOptions,
  HistorySource,
  ManifestTable,
  RowRedactor,
} from './export-subject.js';
export {
  PORTABILITY_SCHEMA_VERSION,
  checkPortabilityDocument,
  isPortableCategory,
  portabilitySchema,
  portableColumns,
} from './portability.js';
export { checkJsonSchema } from './json-schema-check.js';
export type { JsonSchema, JsonType } from './json-schema-check.js';
export { csvCell, csvRecord, neutralise } from './csv.js';
export { toJsonRow, toJsonValue } from './json-value.js';
export { escapeHtml, renderReport } from './html-report.js';
export type { ReportInput, ReportTable } from './html-report.js';
export type { FileDigest } from './text-sink.js';
export { createExportStore } from './export-store.js';
export type {
  ExportStore,
  ExportStoreOptions,
  IssuedToken,
  PurgeResult,
  RedeemedExport,
  SaveExportOptions,
  StoredExport,
} from './export-store.js';
export { subjectAccessMigrations } from './migrations.js';
export { downloadHeaders } from './download-headers.js';
