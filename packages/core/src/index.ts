// The browser-safe root of @privacykit/core: schemas, policy-as-code, data map, derivations,
// errors, clock, ids and canonical JSON. Database plumbing lives on `@privacykit/core/db`,
// node:crypto helpers on `@privacykit/core/crypto`, test helpers on `@privacykit/core/testing`.
export { PrivacyKitError, formatIssues, isPrivacyKitError } from './errors.js';
export type { CoreErrorCode, PrivacyKitErrorOptions, PrivacyKitIssue } from './errors.js';
export { fixedClock, systemClock, toInstant } from './clock.js';
export type { Clock, FixedClock } from './clock.js';
export { newId, randomDigits, randomToken } from './ids.js';
export { canonicalJson } from './canonical-json.js';
export { CivilDay, formatCivilDate, isCivilDate, parseCivilDate } from './civil-date.js';
export type { CivilDate } from './civil-date.js';
export type { JsonValue } from './canonical-json.js';
export { DEFAULT_TENANT, tenantIdSchema } from './tenancy.js';
export { isTimeZone, timeZoneSchema } from './time-zone.js';
export type { TimeZone } from './time-zone.js';
export type { TenantId } from './tenancy.js';
export {
  legalBasisArticle,
  legalBasisLabel,
  legalBasisSchema,
  specialCategoryConditionSchema,
} from './legal-basis.js';
export type { LegalBasis, SpecialCategoryCondition } from './legal-basis.js';
export {
  builtinCategories,
  categoryCovers,
  categoryIdSchema,
  dataCategorySchema,
  dataSourceSchema,
} from './categories.js';
export type { CategoryId, DataCategory, DataCategoryInput, DataSource } from './categories.js';
export { rightArticle, rightLabel, rightSchema } from './rights.js';
export type { Right } from './rights.js';
export { describePeriod, parsePeriod, periodSchema } from './period.js';
export type { Period } from './period.js';
export {
  dueExpressionSchema,
  retentionActionSchema,
  retentionConditionSchema,
  retentionFactSchema,
  retentionPhaseSchema,
  retentionRuleSchema,
} from './retention-rule.js';
export type {
  DueExpression,
  FactValue,
  RetentionAction,
  RetentionCondition,
  RetentionPhase,
  RetentionRule,
  RetentionRuleInput,
} from './retention-rule.js';
export {
  addressedPartySchema,
  consentPurposes,
  cookieCategorySchema,
  dataSubjectSchema,
  declaredCookieSchema,
  definePolicy,
  eeaCountries,
  factsOf,
  isInEea,
  legalBasisEntrySchema,
  locationSchema,
  policySchema,
  purposeSchema,
  purposeTagSchema,
  recipientSchema,
  rightsSectionSchema,
  transferSafeguardSchema,
  transferSchema,
  zodIssues,
} from './policy.js';
export type {
  AddressedParty,
  DataSubject,
  DeclaredCookie,
  LegalBasisEntry,
  Policy,
  PolicyInput,
  Purpose,
  PurposeInput,
  PurposeTag,
  Recipient,
  Transfer,
  TransferSafeguard,
} from './policy.js';
export {
  dataMapSchema,
  dataMapTableSchema,
  defineDataMap,
  identityKindSchema,
  normaliseIdentity,
  tableCategories,
  tableReferenceSchema,
} from './data-map.js';
export type { DataMap, DataMapInput, DataMapTable, DataMapTableInput, TableReference } from './data-map.js';
export {
  accessInformation,
  describeDue,
  describeRetentionRule,
  privacyNotice,
  recordOfProcessing,
  transferSafeguardLabel,
} from './notice.js';
export type {
  AccessInformation,
  NoticeLegalBasis,
  NoticePurpose,
  NoticeTransfer,
  PrivacyNotice,
  ProcessingActivity,
  RecordOfProcessing,
  RetentionDescription,
} from './notice.js';
