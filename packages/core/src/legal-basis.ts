import { z } from 'zod';

/** The six lawful bases of GDPR Art 6(1)(a)–(f). */
export const legalBasisSchema = z.enum([
  'consent',
  'contract',
  'legal-obligation',
  'vital-interests',
  'public-task',
  'legitimate-interests',
]);
export type LegalBasis = z.infer<typeof legalBasisSchema>;

/** The point of Art 6(1) each basis is, for notices and records. */
export const legalBasisArticle: Readonly<Record<LegalBasis, string>> = {
  consent: 'Art. 6(1)(a)',
  contract: 'Art. 6(1)(b)',
  'legal-obligation': 'Art. 6(1)(c)',
  'vital-interests': 'Art. 6(1)(d)',
  'public-task': 'Art. 6(1)(e)',
  'legitimate-interests': 'Art. 6(1)(f)',
};

/** Plain-words labels of each basis, as a privacy notice says them. */
export const legalBasisLabel: Readonly<Record<LegalBasis, string>> = {
  consent: 'your consent',
  contract: 'the performance of a contract with you, or steps you asked for before one',
  'legal-obligation': 'a legal obligation we are subject to',
  'vital-interests': 'the protection of your vital interests or those of another person',
  'public-task': 'a task carried out in the public interest',
  'legitimate-interests': 'our legitimate interests',
};

/** Art 9(2) conditions for special categories, when a purpose processes them. */
export const specialCategoryConditionSchema = z.enum([
  'explicit-consent',
  'employment-law',
  'vital-interests',
  'not-for-profit-body',
  'made-public-by-subject',
  'legal-claims',
  'substantial-public-interest',
  'health-care',
  'public-health',
  'archiving-research-statistics',
]);
export type SpecialCategoryCondition = z.infer<typeof specialCategoryConditionSchema>;
