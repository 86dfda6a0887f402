import { z } from 'zod';

/**
 * The data subject rights (GDPR Art 15–22 and 7(3)) plus the French post-mortem directives
 * (Loi Informatique et Libertés art. 84–85) and the right to complain (Art 77).
 */
export const rightSchema = z.enum([
  'access',
  'rectification',
  'erasure',
  'restriction',
  'portability',
  'objection',
  'withdraw-consent',
  'post-mortem-directives',
  'complaint',
]);
export type Right = z.infer<typeof rightSchema>;

export const rightArticle: Readonly<Record<Right, string>> = {
  access: 'Art. 15',
  rectification: 'Art. 16',
  erasure: 'Art. 17',
  restriction: 'Art. 18',
  portability: 'Art. 20',
  objection: 'Art. 21',
  'withdraw-consent': 'Art. 7(3)',
  'post-mortem-directives': 'Loi Informatique et Libertés art. 85',
  complaint: 'Art. 77',
};

export const rightLabel: Readonly<Record<Right, string>> = {
  access: 'access the personal data we hold about you and receive a copy',
  rectification: 'have inaccurate data corrected and incomplete data completed',
  erasure: 'have your data erased',
  restriction: 'have the processing of your data restricted',
  portability:
    'receive the data you provided in a machine-readable format, or have it sent to another controller',
  objection: 'object to processing based on our legitimate interests, and to direct marketing at any time',
  'withdraw-consent': 'withdraw your consent at any time, as easily as you gave it',
  'post-mortem-directives': 'give directives on what happens to your data after your death',
  complaint: 'lodge a complaint with a supervisory authority',
};
