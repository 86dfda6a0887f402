// The browser-safe root of @privacykit/cookies: classifier, knowledge base, Open Cookie Database
// loader, Set-Cookie parser and serialiser, audit. The Chromium scan lives on `@privacykit/cookies/scan`,
// the zod schemas of the input shapes on `@privacykit/cookies/schemas` (zod stays out of this entry).
export type { CookiesError, CookiesErrorCode } from './errors.js';
export {
  categoryOfPurposes,
  cookieCategories,
  cookiePurposes,
  defaultPurposes,
  purposeCategory,
} from './purpose.js';
export type { CookieCategory, CookiePurpose } from './purpose.js';
export { classifyCookie, cookieOverrideIssues, createClassifier } from './classifier.js';
export type {
  Classifier,
  ClassifierOptions,
  ClassifyOptions,
  CookieClassification,
  CookieEvidence,
  CookieInput,
  CookieOverride,
  EvidenceSource,
} from './classifier.js';
export { audienceMeasurementConditionsIssues, exemptionVerdict } from './exemption.js';
export type {
  AudienceMeasurementConditions,
  ExemptionContext,
  ExemptionGround,
  ExemptionVerdict,
  PurposeVerdict,
} from './exemption.js';
export {
  analyticsCookies,
  builtinKnowledgeBase,
  chatCookies,
  cmsCookies,
  consentManagementCookies,
  embeddedContentCookies,
  frameworkCookies,
  genericPreferenceCookies,
  infrastructureCookies,
  knowledgeBaseSources,
  marketingCookies,
} from './knowledge-base.js';
export type { KnownCookie } from './knowledge-base.js';
export { namePatterns } from './name-patterns.js';
export type { NamePattern } from './name-patterns.js';
export {
  loadOpenCookieDatabase,
  openCookieDatabasePurposes,
  plausiblePrefix,
} from './open-cookie-database.js';
export type {
  OpenCookieDatabase,
  OpenCookieDatabaseEntry,
  OpenCookieDatabaseMatch,
  OpenCookieDatabaseOptions,
} from './open-cookie-database.js';
export { parseCsv } from './csv.js';
export {
  parseCookieDate,
  parseSetCookie,
  parseSetCookieHeaders,
  safeParseSetCookie,
  serializeSetCookie,
  splitSetCookieString,
} from './set-cookie.js';
export type { SameSite, SetCookie, SetCookieBatch, SetCookieParseResult } from './set-cookie.js';
export { auditSetCookies, violationOf } from './audit.js';
export type {
  AuditOptions,
  AuditResponse,
  AuditedCookie,
  CookieAudit,
  CookieViolation,
  DeclarationMismatch,
} from './audit.js';
export {
  browserGpcEnabled,
  consentCovers,
  consentStateIssues,
  missingConsent,
  fullConsent,
  noConsent,
} from './consent-state.js';
export type { ConsentState } from './consent-state.js';
export { addCalendarMonths, cookieLifetimeSeconds, withinMonths } from './lifetime.js';
export { domainMatches, isFirstParty, registrableDomain } from './site.js';
export { overridesFromPolicy } from './policy-overrides.js';
export {
  advertisingTrackers,
  analyticsTrackers,
  builtinTrackers,
  createRequestClassifier,
  trackerAllowed,
} from './trackers.js';
export type {
  DeclaredTrackingPath,
  RequestClassifierOptions,
  TrackerEndpoint,
  TrackerMatch,
} from './trackers.js';
