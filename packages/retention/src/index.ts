// @privacykit/retention — the seed's Article 10 schedule, enforced to the day (GDPR Art 5(1)(e)).
export type { RetentionErrorCode, RetentionError } from './errors.js';
export {
  addPeriod,
  civilDateOf,
  cutoffFor,
  isCivilDate,
  startOfCivilDay,
} from './civil-date.js';
export type { CivilDate } from './civil-date.js';
export { conditionHolds, currentPhase, dueDate, factDate, planRetention, ruleZone } from './plan.js';
export type { PlanOptions, PlannedPhase, RetentionFacts, RetentionPlan } from './plan.js';
export {
  anonymiseStrategySchema,
  childTableSchema,
  defineSchedule,
  factBindingSchema,
  factFormatSchema,
  scheduleEntrySchema,
} from './schedule.js';
export type {
  AnonymiseStrategy,
  ChildTable,
  DefineScheduleOptions,
  FactColumn,
  FactFormat,
  RetentionSchedule,
  ScheduleEntry,
  ScheduleEntryInput,
} from './schedule.js';
export { duePredicate } from './due-predicate.js';
export type { Cutoff } from './due-predicate.js';
export { candidateQuery } from './candidates.js';
export type { CandidateScope, Candidates } from './candidates.js';
export { holdScopeSchema, placeHoldSchema, releaseHoldSchema } from './holds.js';
export type { HoldScope, LegalHold, PlaceHoldInput, ReleaseHoldInput } from './holds.js';
export { createRetentionEngine } from './engine.js';
export type {
  BacklogEntry,
  CertificateCheck,
  DispositionCount,
  DispositionRecord,
  DryRunPhase,
  RetentionEngine,
  RetentionEngineOptions,
  ReviewItem,
  RunCertificate,
  SweepOptions,
  SweepResult,
} from './engine.js';
export { retentionMigrations } from './migrations.js';
export { renderSchedule } from './render.js';
export type { RenderedSchedule } from './render.js';
