// @privacykit/erasure — erasure plans from the data map and the policy (Art 17), Art 17(3)
// retention with restriction (Art 18), execution, verification, crypto-shredding and the
// Art 19 recipient outbox.
export { erasureMigrations } from './migrations.js';
export type { ErasureErrorCode } from './errors.js';
export { erasureGroundArticle, getErasureRecord, planErasure, planErasureInputSchema } from './plan.js';
export type {
  ErasureGround,
  ErasurePlan,
  ErasureRecord,
  PlanErasureOptions,
  PlanRecipient,
  RetainedGroup,
  RetentionSource,
  TablePlan,
} from './plan.js';
export { executeErasure } from './execute.js';
export type {
  BatchProgress,
  ErasureReport,
  ExecuteErasureOptions,
  RetainedReport,
  TableReport,
} from './execute.js';
export { verifyErasure } from './verify.js';
export { purgeErasureIdentities } from './purge-identities.js';
export type { PurgeErasureIdentitiesOptions } from './purge-identities.js';
export type { ErasureVerification, Leftover, VerifyErasureOptions, VerifyProgress } from './verify.js';
export type { LeasePurpose } from './plan-lease.js';
export {
  backoffDelay,
  confirmNotification,
  deliverPending,
  httpNotificationSender,
  listNotifications,
  recipientsFor,
} from './outbox.js';
export type {
  Backoff,
  DeliverPendingOptions,
  DeliveryResult,
  ErasureNotification,
  OutboxEntry,
} from './outbox.js';
export {
  columnStrategyNameSchema,
  columnStrategySchema,
  looksMasked,
  maskValue,
  strategiesSchema,
  tableStrategySchema,
} from './strategy.js';
export type {
  ColumnStrategy,
  ColumnStrategyInput,
  ColumnStrategyName,
  ErasureSecrets,
  MaskContext,
  StrategiesInput,
} from './strategy.js';
export { dueDate, retainUntil } from './retain-until.js';
export { rowKey } from './row-key.js';
export type { HeldRow, HoldLookup, HoldSource } from './hold-source.js';
export type { KeyShredder } from './key-shredder.js';
