import { z } from 'zod';
import { builtinCategories, categoryCovers, categoryIdSchema, dataCategorySchema } from './categories.js';
import type { DataCategory } from './categories.js';
import { PrivacyKitError, formatIssues } from './errors.js';
import type { PrivacyKitIssue } from './errors.js';
import { legalBasisSchema, specialCategoryConditionSchema } from './legal-basis.js';
import { periodSchema } from './period.js';
import { retentionRuleSchema } from './retention-rule.js';
import type { DueExpression, RetentionCondition } from './retention-rule.js';
import { rightSchema } from './rights.js';
import { DEFAULT_TENANT, tenantIdSchema } from './tenancy.js';
import { timeZoneSchema } from './time-zone.js';
import { isCivilDate } from './civil-date.js';

const idSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'expected a lowercase id such as "newsletter"');

export const addressedPartySchema = z
  .object({
    name: z.string().min(1),
    address: z.string().optional(),
    email: z.string().email().optional(),
    phone: z.string().optional(),
    website: z.string().url().optional(),
    registration: z.string().optional(),
  })
  .strict();
export type AddressedParty = z.infer<typeof addressedPartySchema>;

/** A region or country where a recipient processes data: ISO 3166 alpha-2, or `EU` / `EEA`. */
export const locationSchema = z
  .string()
  .regex(/^(EU|EEA|[A-Z]{2})$/, 'expected EU, EEA or an ISO country code');

/** Countries of the EEA (EU 27 + IS, LI, NO): transfers there need no safeguard. */
export const eeaCountries: ReadonlySet<string> = new Set(
  'AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO'.split(' '),
);
export function isInEea(location: string): boolean {
  return location === 'EU' || location === 'EEA' || eeaCountries.has(location);
}

export const dataSubjectSchema = z
  .object({ id: idSchema, label: z.string().min(1), description: z.string().optional() })
  .strict();
export type DataSubject = z.infer<typeof dataSubjectSchema>;

export const legalBasisEntrySchema = z
  .object({
    basis: legalBasisSchema,
    /** The policy's words for why this basis applies. */
    description: z.string().optional(),
    /** Art 6(1)(f): the interest pursued; required for `legitimate-interests` (Art 13(1)(d)). */
    legitimateInterest: z.string().optional(),
    /** Art 6(1)(c): the law that imposes the obligation. */
    law: z.string().optional(),
  })
  .strict();
export type LegalBasisEntry = z.infer<typeof legalBasisEntrySchema>;

/**
 * Tags that other packages act on: GPC refuses `sale`, `sharing` and
 * `cross-context-advertising`; an Art 21(2) objection stops `direct-marketing` at once.
 */
export const purposeTagSchema = z.enum([
  'sale',
  'sharing',
  'cross-context-advertising',
  'direct-marketing',
  'profiling',
  'analytics',
  'security',
  'essential',
]);
export type PurposeTag = z.infer<typeof purposeTagSchema>;

export const purposeSchema = z
  .object({
    id: idSchema,
    name: z.string().min(1),
    description: z.string().min(1),
    /** What the purpose includes, as the notice lists it. */
    activities: z.array(z.string().min(1)).default([]),
    legalBases: z.array(legalBasisEntrySchema).min(1),
    categories: z.array(categoryIdSchema).min(1),
    dataSubjects: z.array(idSchema).default([]),
    recipients: z.array(idSchema).default([]),
    retention: z.array(idSchema).default([]),
    tags: z.array(purposeTagSchema).default([]),
    /** Art 9(2) / Art 10 condition when the purpose processes special-category data. */
    specialCondition: specialCategoryConditionSchema.optional(),
    /** Art 13(2)(e): whether providing the data is required, and what happens if not. */
    provision: z.object({ required: z.boolean(), consequences: z.string().optional() }).strict().optional(),
    /** Art 13(2)(f): automated decision-making, described; omitted = none. */
    automatedDecisions: z.string().optional(),
  })
  .strict();
export type PurposeInput = z.input<typeof purposeSchema>;
export type Purpose = z.infer<typeof purposeSchema>;

export const recipientSchema = z
  .object({
    id: idSchema,
    name: z.string().min(1),
    kind: z.enum([
      'internal',
      'processor',
      'controller',
      'joint-controller',
      'public-authority',
      'third-party',
    ]),
    description: z.string().optional(),
    locations: z.array(locationSchema).default(['EU']),
    /** Where Art 19 notices (rectification, erasure, restriction) go. */
    contact: z.string().optional(),
  })
  .strict();
export type Recipient = z.infer<typeof recipientSchema>;

/** Safeguards for a transfer outside the EEA (Art 45–49). */
export const transferSafeguardSchema = z.enum([
  'adequacy-decision',
  'standard-contractual-clauses',
  'binding-corporate-rules',
  'code-of-conduct',
  'certification',
  'derogation',
]);
export type TransferSafeguard = z.infer<typeof transferSafeguardSchema>;

export const transferSchema = z
  .object({
    id: idSchema,
    recipients: z.array(idSchema).min(1),
    destination: locationSchema,
    safeguard: transferSafeguardSchema,
    description: z.string().optional(),
    /** Art 13(1)(f): how to obtain a copy of the safeguards. */
    copyAvailableFrom: z.string().optional(),
  })
  .strict();
export type Transfer = z.infer<typeof transferSchema>;

export const cookieCategorySchema = z.enum(['necessary', 'preferences', 'analytics', 'marketing']);

export const declaredCookieSchema = z
  .object({
    name: z.string().min(1),
    /** `true` when `name` is a prefix (`_ga_` matches `_ga_ABC123`). */
    prefix: z.boolean().default(false),
    provider: z.string().min(1),
    firstParty: z.boolean().default(true),
    category: cookieCategorySchema,
    purpose: idSchema.optional(),
    description: z.string().min(1),
    /** `session`, or a calendar period such as `P13M`. */
    duration: z.union([z.literal('session'), periodSchema]),
    /** ePrivacy Art 5(3) exemption: strictly necessary or for the transmission of the communication. */
    exempt: z.boolean().default(false),
  })
  .strict();
export type DeclaredCookie = z.infer<typeof declaredCookieSchema>;

export const rightsSectionSchema = z
  .object({
    offered: z.array(rightSchema).min(1),
    channels: z
      .array(z.object({ kind: z.enum(['email', 'post', 'web']), value: z.string().min(1) }).strict())
      .min(1),
    /** What the controller does when a subject dies without directives. */
    afterDeath: z.string().optional(),
    notes: z.string().optional(),
  })
  .strict();

export const policySchema = z
  .object({
    tenant: tenantIdSchema.default(DEFAULT_TENANT),
    /** Version of the policy text, e.g. "2018-05-07"; consent and certificates cite it. */
    version: z.string().min(1),
    effectiveDate: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD')
      .refine(isCivilDate, 'expected a date that exists (2024-02-30 does not)'),
    language: z.string().min(2).default('en'),
    /** IANA time zone of the controller: deadlines and due dates are civil dates there. */
    zone: timeZoneSchema.default('UTC'),
    controller: addressedPartySchema,
    representative: addressedPartySchema.optional(),
    dpo: addressedPartySchema.partial({ name: true }).extend({ email: z.string().email() }),
    supervisoryAuthority: addressedPartySchema,
    /** When the controller acts for clients as their processor (the seed's Article 2). */
    processorRole: z.string().optional(),
    dataSubjects: z.array(dataSubjectSchema).default([]),
    categories: z.array(dataCategorySchema).default([]),
    /** Categories that must never be stored (the seed: card security codes). */
    prohibitedCategories: z.array(categoryIdSchema).default([]),
    /** Art 14(2)(f): where data not provided by the subject come from. */
    sources: z.array(z.string().min(1)).default([]),
    purposes: z.array(purposeSchema).min(1),
    recipients: z.array(recipientSchema).default([]),
    transfers: z.array(transferSchema).default([]),
    retention: z.array(retentionRuleSchema).default([]),
    cookies: z.array(declaredCookieSchema).default([]),
    rights: rightsSectionSchema,
  })
  .strict();
export type PolicyInput = z.input<typeof policySchema>;
type ParsedPolicy = z.infer<typeof policySchema>;

/** A validated, cross-checked policy. `category(id)` resolves built-in and declared categories. */
export interface Policy extends ParsedPolicy {
  readonly categoryIndex: ReadonlyMap<string, DataCategory>;
}

/** Converts zod issues into PrivacyKit issues with `a.b[2].c` paths. */
export function zodIssues(error: z.ZodError, prefix = ''): PrivacyKitIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.reduce<string>(
      (path, key) =>
        typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${String(key)}` : String(key),
      prefix,
    ),
    message: issue.message,
  }));
}

/**
 * Validates a whole privacy policy declared as code and cross-checks every reference: a purpose
 * naming an undeclared category, recipient, data subject or retention rule; a recipient outside
 * the EEA with no transfer safeguard (Art 44–46); a legitimate interest left unstated
 * (Art 13(1)(d)); special-category data without an Art 9(2)/10 condition; a prohibited category
 * that a purpose processes. Every problem is reported at once, each with where it is.
 *
 * @throws PrivacyKitError `policy/invalid` (shape) or `policy/unknown-reference` /
 *   `policy/duplicate-id` (cross-checks), with `issues` listing each problem.
 */
export function definePolicy(input: PolicyInput): Policy {
  const parsed = policySchema.safeParse(input);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new PrivacyKitError('policy/invalid', `Invalid policy: ${formatIssues(issues)}`, { issues });
  }
  const policy = parsed.data;
  const issues: PrivacyKitIssue[] = [];
  let code: 'policy/unknown-reference' | 'policy/duplicate-id' = 'policy/unknown-reference';

  const unique = <T extends { id: string }>(items: readonly T[], path: string): Set<string> => {
    const seen = new Set<string>();
    items.forEach((item, i) => {
      if (seen.has(item.id)) {
        issues.push({ path: `${path}[${i}].id`, message: `duplicate id "${item.id}"` });
        code = 'policy/duplicate-id';
      }
      seen.add(item.id);
    });
    return seen;
  };

  const categoryIndex = new Map<string, DataCategory>();
  for (const category of builtinCategories) categoryIndex.set(category.id, category);
  policy.categories.forEach((category, i) => {
    if (categoryIndex.has(category.id) && policy.categories.findIndex((c) => c.id === category.id) !== i) {
      issues.push({ path: `categories[${i}].id`, message: `duplicate id "${category.id}"` });
      code = 'policy/duplicate-id';
    }
    // Declared again without its flag, a built-in Art 9/10 category passed as ordinary data.
    const builtin = builtinCategories.find((known) => known.id === category.id);
    if (builtin?.special && category.special !== builtin.special) {
      issues.push({
        path: `categories[${i}].special`,
        message: `"${category.id}" is ${builtin.special === 'art9' ? 'special-category (Art 9)' : 'criminal-offence (Art 10)'} data: declared again, it keeps special: '${builtin.special}'`,
      });
    }
    categoryIndex.set(category.id, category);
  });
  /**
   * The Art 9/10 class of the data a listed category stands for: its own, an ancestor's (a child
   * of `litigation` is criminal-offence data too), or a descendant's it covers (`health` lists
   * `health.diagnosis` with it).
   */
  const specialOf = (id: string): DataCategory['special'] => {
    for (
      let at: string | undefined = id;
      at;
      at = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : undefined
    ) {
      const special = categoryIndex.get(at)?.special;
      if (special) return special;
    }
    for (const [other, category] of categoryIndex) {
      if (category.special && categoryCovers(id, other)) return category.special;
    }
    return undefined;
  };
  const purposeIds = unique(policy.purposes, 'purposes');
  const recipientIds = unique(policy.recipients, 'recipients');
  const subjectIds = unique(policy.dataSubjects, 'dataSubjects');
  const ruleIds = unique(policy.retention, 'retention');
  unique(policy.transfers, 'transfers');

  const checkCategory = (id: string, path: string) => {
    if (!categoryIndex.has(id)) {
      issues.push({
        path,
        message: `unknown category "${id}": declare it in categories or use a built-in one`,
      });
    }
  };
  const checkRef = (set: Set<string>, kind: string, id: string, path: string) => {
    if (!set.has(id)) issues.push({ path, message: `unknown ${kind} "${id}"` });
  };

  policy.prohibitedCategories.forEach((id, i) => checkCategory(id, `prohibitedCategories[${i}]`));

  policy.purposes.forEach((purpose, p) => {
    const at = `purposes[${p}]`;
    purpose.categories.forEach((id, i) => {
      checkCategory(id, `${at}.categories[${i}]`);
      // Any prohibited entry that covers it, wherever it is listed (`payment.card` under a
      // prohibited `payment` passed when `payment.card.security-code` came first).
      const prohibited = policy.prohibitedCategories.find((bad) => categoryCovers(bad, id));
      if (prohibited) {
        issues.push({ path: `${at}.categories[${i}]`, message: `"${id}" is a prohibited category` });
      }
      const special = specialOf(id);
      if (special && !purpose.specialCondition) {
        issues.push({
          path: `${at}.specialCondition`,
          message: `"${id}" is or covers ${special === 'art9' ? 'special-category (Art 9)' : 'criminal-offence (Art 10)'} data: state the condition that allows it`,
        });
      }
    });
    purpose.recipients.forEach((id, i) => checkRef(recipientIds, 'recipient', id, `${at}.recipients[${i}]`));
    purpose.dataSubjects.forEach((id, i) =>
      checkRef(subjectIds, 'data subject', id, `${at}.dataSubjects[${i}]`),
    );
    purpose.retention.forEach((id, i) => checkRef(ruleIds, 'retention rule', id, `${at}.retention[${i}]`));
    purpose.legalBases.forEach((basis, i) => {
      // Blank counts as unstated: "   " passed as the interest pursued.
      if (basis.basis === 'legitimate-interests' && !basis.legitimateInterest?.trim()) {
        issues.push({
          path: `${at}.legalBases[${i}].legitimateInterest`,
          message: 'a legitimate-interests basis must state the interest pursued (Art 13(1)(d))',
        });
      }
    });
  });

  policy.transfers.forEach((transfer, t) => {
    transfer.recipients.forEach((id, i) =>
      checkRef(recipientIds, 'recipient', id, `transfers[${t}].recipients[${i}]`),
    );
    if (isInEea(transfer.destination)) {
      issues.push({
        path: `transfers[${t}].destination`,
        message: `${transfer.destination} is inside the EEA`,
      });
    }
  });
  policy.recipients.forEach((recipient, r) => {
    recipient.locations.forEach((location, l) => {
      if (isInEea(location)) return;
      const covered = policy.transfers.some(
        (transfer) => transfer.destination === location && transfer.recipients.includes(recipient.id),
      );
      if (!covered) {
        issues.push({
          path: `recipients[${r}].locations[${l}]`,
          message: `"${recipient.id}" receives data in ${location}, outside the EEA, but no transfer declares its safeguard`,
        });
      }
    });
  });

  policy.retention.forEach((rule, r) => {
    rule.categories.forEach((id, i) => checkCategory(id, `retention[${r}].categories[${i}]`));
    rule.purposes.forEach((id, i) => checkRef(purposeIds, 'purpose', id, `retention[${r}].purposes[${i}]`));
    rule.phases.forEach((phase, p) => {
      for (const fact of factsOf(phase.due)) {
        if (!Object.hasOwn(rule.facts, fact)) {
          issues.push({
            path: `retention[${r}].phases[${p}].due`,
            message: `fact "${fact}" is not declared in facts`,
          });
        }
      }
      phase.purposes?.forEach((id, i) =>
        checkRef(purposeIds, 'purpose', id, `retention[${r}].phases[${p}].purposes[${i}]`),
      );
    });
  });

  policy.cookies.forEach((cookie, c) => {
    if (!cookie.purpose) return;
    checkRef(purposeIds, 'purpose', cookie.purpose, `cookies[${c}].purpose`);
    const purpose = policy.purposes.find((candidate) => candidate.id === cookie.purpose);
    if (purpose && !cookie.exempt && !purpose.legalBases.some((basis) => basis.basis === 'consent')) {
      issues.push({
        path: `cookies[${c}]`,
        message: `"${cookie.name}" is not exempt, so it needs consent, but purpose "${purpose.id}" has no consent basis`,
      });
    }
  });

  if (issues.length > 0) {
    throw new PrivacyKitError(code, `Invalid policy: ${formatIssues(issues)}`, { issues });
  }
  return Object.freeze({ ...policy, categoryIndex });
}

/** Every fact name a due expression reads, conditions included. */
export function factsOf(expression: DueExpression): string[] {
  if ('from' in expression) return [expression.from];
  if ('earliest' in expression) return expression.earliest.flatMap(factsOf);
  if ('latest' in expression) return expression.latest.flatMap(factsOf);
  return [
    ...expression.when.flatMap((branch) => [...conditionFacts(branch.if), ...factsOf(branch.then)]),
    ...(expression.otherwise ? factsOf(expression.otherwise) : []),
  ];
}

function conditionFacts(condition: RetentionCondition): string[] {
  if ('fact' in condition) return [condition.fact];
  if ('all' in condition) return condition.all.flatMap(conditionFacts);
  if ('any' in condition) return condition.any.flatMap(conditionFacts);
  return conditionFacts(condition.not);
}

/** Purposes of the policy that rest on consent (Art 6(1)(a)): the ones a consent ledger records. */
export function consentPurposes(policy: Policy): Purpose[] {
  return policy.purposes.filter((purpose) => purpose.legalBases.some((basis) => basis.basis === 'consent'));
}
