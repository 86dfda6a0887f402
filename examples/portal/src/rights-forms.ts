import { z } from 'zod';
import { looksLikeEmail } from '@privacykit/requests';
import type { SubmitRequestInput } from '@privacykit/requests';

/** A checkbox group arrives as a string (one ticked) or an array (several) or not at all. */
const many = z
  .union([z.string().max(64), z.array(z.string().max(64)).max(20)])
  .optional()
  .transform((value) => (value === undefined ? [] : Array.isArray(value) ? value : [value]));
const optionalText = (max: number) =>
  z
    .string()
    .trim()
    .max(max)
    .optional()
    .transform((value) => (value ? value : undefined));

const identityFields = {
  email: z
    .string()
    .trim()
    .min(3, 'enter your email address')
    .max(254)
    .refine(looksLikeEmail, 'enter a valid email address'),
  customerNumber: optionalText(32),
};

export interface RightForm {
  right: SubmitRequestInput['right'];
  title: string;
  article: string;
  intro: string;
  /** The form's action: erasure posts to `/erase` (hostile case 16 names it). */
  action: string;
}

export const rightForms: RightForm[] = [
  {
    right: 'access',
    title: 'Get a copy of your data',
    article: 'Art 15',
    intro:
      'We send you everything we hold about you, with the purposes, recipients, retention and your rights.',
    action: '/rights/access',
  },
  {
    right: 'portability',
    title: 'Take your data elsewhere',
    article: 'Art 20',
    intro: 'The data you gave us under your contract or consent, in a machine-readable format.',
    action: '/rights/portability',
  },
  {
    right: 'rectification',
    title: 'Correct your data',
    article: 'Art 16',
    intro: 'Tell us what is wrong and what it should say.',
    action: '/rights/rectification',
  },
  {
    right: 'erasure',
    title: 'Erase your data',
    article: 'Art 17',
    intro:
      'We delete your data, except what the law obliges us to keep (for example invoices, 10 years); we tell you what we kept and why.',
    action: '/erase',
  },
  {
    right: 'restriction',
    title: 'Restrict processing',
    article: 'Art 18',
    intro: 'We keep your data but stop using it while a question is settled.',
    action: '/rights/restriction',
  },
  {
    right: 'objection',
    title: 'Object to processing',
    article: 'Art 21',
    intro:
      'Object to direct marketing (always honoured), or to processing based on our legitimate interests.',
    action: '/rights/objection',
  },
  {
    right: 'withdraw-consent',
    title: 'Withdraw your consent',
    article: 'Art 7(3)',
    intro:
      'Withdraw consent you gave us, as easily as you gave it. Cookie choices can also be changed directly on the cookie settings page.',
    action: '/rights/withdraw-consent',
  },
  {
    right: 'post-mortem-directives',
    title: 'Leave directives for after your death',
    article: 'Loi Informatique et Libertés art. 85',
    intro: 'Tell us what to do with your data after your death, and who should see it done.',
    action: '/rights/post-mortem-directives',
  },
];

export const rightFormSchemas = {
  access: z.object({ ...identityFields }),
  portability: z.object({ ...identityFields, format: z.enum(['json', 'csv']).default('json') }),
  rectification: z.object({
    ...identityFields,
    field: z.enum(['name', 'title', 'email', 'phone', 'address', 'date of birth']),
    corrected: z.string().trim().min(1, 'say what it should be').max(2000),
    explanation: optionalText(2000),
  }),
  erasure: z.object({
    ...identityFields,
    grounds: many.pipe(
      z.array(
        z.enum([
          'no-longer-necessary',
          'consent-withdrawn',
          'objection',
          'unlawfully-processed',
          'legal-obligation',
          'child-information-society-service',
        ]),
      ),
    ),
    explanation: optionalText(2000),
  }),
  restriction: z.object({
    ...identityFields,
    ground: z.enum([
      'accuracy-contested',
      'unlawful-processing',
      'needed-for-legal-claims',
      'objection-pending',
    ]),
    explanation: optionalText(2000),
  }),
  objection: z.object({
    ...identityFields,
    kind: z.enum(['direct-marketing', 'particular-situation']),
    grounds: optionalText(2000),
  }),
  'withdraw-consent': z.object({
    ...identityFields,
    purposes: many.pipe(z.array(z.string().regex(/^[a-z0-9-]+$/)).min(1, 'choose at least one purpose')),
  }),
  'post-mortem-directives': z
    .object({
      ...identityFields,
      kind: z.enum(['general', 'particular']),
      instructions: z.string().trim().min(1, 'write your directive').max(2000),
      executorName: optionalText(200),
      executorEmail: optionalText(254).refine(
        (value) => value === undefined || looksLikeEmail(value),
        'enter a valid email address for the person you name, or leave it empty',
      ),
    })
    // The executor proves their address later to act: a name alone, or an address alone, would
    // be a designation nobody can take up (it was dropped without a word).
    .refine((value) => (value.executorName === undefined) === (value.executorEmail === undefined), {
      message:
        'to name the person who carries out your directive, give both their name and their email address',
      path: ['executorEmail'],
    }),
} as const;

type Forms = typeof rightFormSchemas;
export type RightFormValues<R extends keyof Forms> = z.infer<Forms[R]>;

/** Form values → the requests service's input: identities plus the details of the right. */
export function toSubmitInput(right: keyof Forms, values: Record<string, unknown>): SubmitRequestInput {
  const v = values;
  const identities = [{ kind: 'email', value: String(v.email) }];
  if (typeof v.customerNumber === 'string')
    identities.push({ kind: 'customerNumber', value: v.customerNumber });
  // The requests service validates the details again with its own schema for the right.
  return { identities, channel: 'web', right, details: detailsOf(right, v) } as SubmitRequestInput;
}

function detailsOf(right: keyof Forms, v: Record<string, unknown>): unknown {
  switch (right) {
    case 'access':
      return {};
    case 'portability':
      return { format: v.format };
    case 'rectification':
      return { changes: [{ field: v.field, corrected: v.corrected }], explanation: v.explanation };
    case 'erasure':
      return {
        grounds: Array.isArray(v.grounds) && v.grounds.length ? v.grounds : undefined,
        explanation: v.explanation,
      };
    case 'restriction':
      return { ground: v.ground, explanation: v.explanation };
    case 'objection':
      return v.kind === 'direct-marketing'
        ? { kind: 'direct-marketing' }
        : { kind: 'particular-situation', grounds: v.grounds ?? '' };
    case 'withdraw-consent':
      return { purposes: v.purposes };
    case 'post-mortem-directives':
      return {
        action: 'give',
        kind: v.kind,
        instructions: v.instructions,
        executor:
          v.executorName && v.executorEmail ? { name: v.executorName, email: v.executorEmail } : undefined,
      };
  }
}
