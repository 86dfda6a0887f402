// @privacykit/requests — data subject rights requests end to end: intake for every right,
// identity verification through a registered channel, Art 12(3) deadlines and extensions, one
// audited state machine, denial with remedies, and the request history for access exports.
export { createRequestService } from './request-service.js';
export {
  extendInputSchema,
  listFilterSchema,
  submitRequestSchema,
  transitionInputSchema,
  verifyInputSchema,
} from './request-service.js';
export type {
  CodeGuessLimit,
  ExcessiveThreshold,
  ExtendInput,
  ListFilter,
  MailThrottle,
  PostMortemDirective,
  PruneThrottlesOptions,
  RedactionCandidate,
  RedactOptions,
  RedactResult,
  RequestAuditEntry,
  RequestHistory,
  RequestIdentityState,
  RequestOutcome,
  RequestRecord,
  RequestService,
  RequestServiceOptions,
  ResendResult,
  SubmitRequestInput,
  SubmitResult,
  TransitionInput,
  VerifyInput,
  VerifyResult,
} from './request-service.js';
export {
  addCalendarDays,
  addCalendarMonths,
  calendarDaysBetween,
  civilDateIn,
  deadlineFor,
  isValidZone,
  nextWorkingDay,
} from './deadline.js';
export type { CivilDate, DeadlineOptions } from './deadline.js';
export {
  assertTransition,
  canTransition,
  finalStatuses,
  isFinalStatus,
  requestStatusSchema,
  transitions,
} from './state-machine.js';
export type { RequestStatus } from './state-machine.js';
export {
  accessDetailsSchema,
  erasureDetailsSchema,
  erasureGroundSchema,
  executorSchema,
  objectionDetailsSchema,
  portabilityDetailsSchema,
  postMortemDetailsSchema,
  proofSchema,
  rectificationDetailsSchema,
  requestChannelSchema,
  requestDetailsSchemas,
  requestRightSchema,
  restrictionDetailsSchema,
  restrictionGroundSchema,
  withdrawConsentDetailsSchema,
} from './request-details.js';
export type {
  AccessDetails,
  ErasureDetails,
  ObjectionDetails,
  PortabilityDetails,
  PostMortemDetails,
  RectificationDetails,
  RequestChannel,
  RequestDetails,
  RequestDetailsByRight,
  RequestRight,
  RestrictionDetails,
  WithdrawConsentDetails,
} from './request-details.js';
export {
  identityLookupHash,
  looksLikeEmail,
  normaliseRequestIdentity,
  requestIdentitySchema,
} from './identity.js';
export type { RequestIdentity } from './identity.js';
export { nodemailerMailer } from './mailer.js';
export type { MailMessage, Mailer, SendMailTransport } from './mailer.js';
export { describeRemedies, remediesFor } from './remedies.js';
export type { Remedy } from './remedies.js';
export { requestMigrations } from './migrations.js';
export { requestsError } from './errors.js';
export type { RequestsErrorCode } from './errors.js';
