import { z } from 'zod';
import { looksLikeEmail } from './identity.js';

/** The rights a request can exercise: core's rights minus `complaint`, which goes to the authority. */
export const requestRightSchema = z.enum([
  'access',
  'portability',
  'rectification',
  'erasure',
  'restriction',
  'objection',
  'withdraw-consent',
  'post-mortem-directives',
]);
export type RequestRight = z.infer<typeof requestRightSchema>;

const text = z.string().trim().min(1).max(2000);
const purposeId = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a purpose id of the policy');

/** Art 15: optionally narrowed to data categories. */
export const accessDetailsSchema = z.object({ categories: z.array(z.string().min(1)).optional() }).strict();

/** Art 20: the portability subset, in JSON or CSV. */
export const portabilityDetailsSchema = z
  .object({
    categories: z.array(z.string().min(1)).optional(),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .strict();

/** Art 16: each field the subject says is wrong, and what it should say. */
export const rectificationDetailsSchema = z
  .object({
    changes: z
      .array(
        z
          .object({
            field: z.string().trim().min(1).max(200),
            current: z.string().max(2000).optional(),
            corrected: z.string().max(2000),
          })
          .strict(),
      )
      .min(1, 'name at least one field to correct')
      .max(100, 'at most 100 corrections in one request'),
    explanation: text.optional(),
  })
  .strict();

/** Art 17(1)(a)–(f) grounds; optional, since the controller checks them anyway. */
export const erasureGroundSchema = z.enum([
  'no-longer-necessary',
  'consent-withdrawn',
  'objection',
  'unlawfully-processed',
  'legal-obligation',
  'child-information-society-service',
]);
export const erasureDetailsSchema = z
  .object({ grounds: z.array(erasureGroundSchema).optional(), explanation: text.optional() })
  .strict();

/** Art 18(1)(a)–(d). */
export const restrictionGroundSchema = z.enum([
  'accuracy-contested',
  'unlawful-processing',
  'needed-for-legal-claims',
  'objection-pending',
]);
export const restrictionDetailsSchema = z
  .object({ ground: restrictionGroundSchema, explanation: text.optional() })
  .strict();

/**
 * Art 21. An objection to direct marketing (21(2)) is absolute and needs no grounds; an objection
 * to processing on legitimate interests or public task (21(1)) states the subject's grounds.
 */
export const objectionDetailsSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('direct-marketing'), purposes: z.array(purposeId).optional() }).strict(),
  z
    .object({
      kind: z.literal('particular-situation'),
      purposes: z.array(purposeId).optional(),
      grounds: text,
    })
    .strict(),
]);

/** Art 7(3): the consent-based purposes to withdraw. */
export const withdrawConsentDetailsSchema = z
  .object({ purposes: z.array(purposeId).min(1, 'name at least one purpose') })
  .strict();

/** Who carries out a directive (LIL art. 85-I: a person designated by the subject). */
export const executorSchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    // The executor later proves this address to act on the directive: it must be one.
    email: z.string().trim().min(3).max(320).refine(looksLikeEmail, 'expected an email address'),
  })
  .strict();

/** A document reference recorded as proof (the document itself stays out of this library). */
export const proofSchema = z
  .object({ kind: z.string().trim().min(1).max(100), reference: z.string().trim().min(1).max(500) })
  .strict();

/**
 * Post-mortem directives (Loi Informatique et Libertés art. 84–85): the subject gives a general
 * or particular directive (with an optional executor) or revokes one; after the death an executor
 * or an heir asks for one to be carried out — heirs and executors always with proof of death, heirs
 * also with proof of their standing.
 */
export const postMortemDetailsSchema = z.discriminatedUnion('action', [
  z
    .object({
      action: z.literal('give'),
      kind: z.enum(['general', 'particular']),
      instructions: text,
      executor: executorSchema.optional(),
    })
    .strict(),
  z.object({ action: z.literal('revoke'), directiveId: z.string().min(1).max(64) }).strict(),
  z
    .object({
      action: z.literal('execute'),
      /** The directive to carry out; omitted when an heir acts without one (LIL art. 85-II). */
      directiveId: z.string().min(1).max(64).optional(),
      requester: z.enum(['executor', 'heir']),
      /** The deceased's identity, as registered. */
      deceased: z.object({ kind: z.string().min(1).max(64), value: z.string().min(1).max(320) }).strict(),
      proofOfDeath: proofSchema.optional(),
      proofOfStanding: proofSchema.optional(),
    })
    .strict(),
]);

export const requestDetailsSchemas = {
  access: accessDetailsSchema,
  portability: portabilityDetailsSchema,
  rectification: rectificationDetailsSchema,
  erasure: erasureDetailsSchema,
  restriction: restrictionDetailsSchema,
  objection: objectionDetailsSchema,
  'withdraw-consent': withdrawConsentDetailsSchema,
  'post-mortem-directives': postMortemDetailsSchema,
} as const satisfies Record<RequestRight, z.ZodType>;

export type AccessDetails = z.infer<typeof accessDetailsSchema>;
export type PortabilityDetails = z.infer<typeof portabilityDetailsSchema>;
export type RectificationDetails = z.infer<typeof rectificationDetailsSchema>;
export type ErasureDetails = z.infer<typeof erasureDetailsSchema>;
export type RestrictionDetails = z.infer<typeof restrictionDetailsSchema>;
export type ObjectionDetails = z.infer<typeof objectionDetailsSchema>;
export type WithdrawConsentDetails = z.infer<typeof withdrawConsentDetailsSchema>;
export type PostMortemDetails = z.infer<typeof postMortemDetailsSchema>;

/** The details a request carries, by right. */
export interface RequestDetailsByRight {
  access: AccessDetails;
  portability: PortabilityDetails;
  rectification: RectificationDetails;
  erasure: ErasureDetails;
  restriction: RestrictionDetails;
  objection: ObjectionDetails;
  'withdraw-consent': WithdrawConsentDetails;
  'post-mortem-directives': PostMortemDetails;
}
export type RequestDetails = RequestDetailsByRight[RequestRight];

/** How the request reached the controller (any channel is valid: Art 12(2), EDPB 01/2022 ¶52). */
export const requestChannelSchema = z.enum(['web', 'email', 'post', 'phone', 'in-person', 'api']);
export type RequestChannel = z.infer<typeof requestChannelSchema>;

/**
 * What a duplicate submission adds to the open request it is a duplicate of, or `undefined`
 * when it adds nothing the open request does not already carry. Corrections (Art 16) merge by
 * field, the newer statement of a field replacing the older; purposes to withdraw (Art 7(3)) or
 * object to (Art 21) merge as a union, for an objection of the same kind. Other details are not
 * merged (a second directive, another restriction ground): the caller keeps them in the audit.
 */
export function mergeDuplicateDetails(
  right: RequestRight,
  stored: RequestDetails,
  incoming: RequestDetails,
): RequestDetails | undefined {
  const union = (a: readonly string[] = [], b: readonly string[] = []) => [...new Set([...a, ...b])];
  switch (right) {
    case 'rectification': {
      const before = stored as RectificationDetails;
      const after = incoming as RectificationDetails;
      const byField = new Map(before.changes.map((change) => [change.field, change]));
      let added = false;
      for (const change of after.changes) {
        const known = byField.get(change.field);
        if (known && JSON.stringify(known) === JSON.stringify(change)) continue;
        byField.set(change.field, change);
        added = true;
      }
      const explanation = before.explanation ?? after.explanation;
      if (!added && explanation === before.explanation) return undefined;
      return { changes: [...byField.values()], ...(explanation ? { explanation } : {}) };
    }
    case 'withdraw-consent': {
      const before = stored as WithdrawConsentDetails;
      const purposes = union(before.purposes, (incoming as WithdrawConsentDetails).purposes);
      return purposes.length === before.purposes.length ? undefined : { purposes };
    }
    case 'objection': {
      const before = stored as ObjectionDetails;
      const after = incoming as ObjectionDetails;
      // No purposes means every purpose of that kind: nothing widens it; it widens a narrower one.
      if (before.kind !== after.kind || !before.purposes) return undefined;
      if (!after.purposes) {
        const { purposes: _narrower, ...everyPurpose } = before;
        return everyPurpose;
      }
      const purposes = union(before.purposes, after.purposes);
      return purposes.length === before.purposes.length ? undefined : { ...before, purposes };
    }
    default:
      return undefined;
  }
}

/**
 * What a duplicate submission would add, in one line for the mail that asks the subject to
 * confirm it: how many corrections, or which purposes (ids the policy declares), never text the
 * sender typed. The sender may not be the subject: a field name would carry their words ("your
 * account is locked, sign in at …") into a mail sent in the controller's name.
 */
export function amendmentSummary(right: RequestRight, details: RequestDetails): string {
  switch (right) {
    case 'rectification': {
      const count = (details as RectificationDetails).changes.length;
      return `${count} correction${count === 1 ? '' : 's'} (shown on your request page once you confirm)`;
    }
    case 'withdraw-consent':
      return `withdrawing consent to ${(details as WithdrawConsentDetails).purposes.join(', ')}`;
    case 'objection': {
      const objection = details as ObjectionDetails;
      return `an objection (${objection.kind}) to ${objection.purposes ? objection.purposes.join(', ') : 'every purpose'}`;
    }
    default:
      return `a ${right} request`;
  }
}
