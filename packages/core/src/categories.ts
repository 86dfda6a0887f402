import { z } from 'zod';

/**
 * A data category id: dot-separated lowercase segments, most general first
 * (`identity.name`, `payment.card.number`). A category covers its descendants: a purpose
 * declaring `identity` covers `identity.name`. Policies extend the taxonomy with their own ids.
 */
export const categoryIdSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/, 'expected a dotted category id such as "contact.email"');
export type CategoryId = z.infer<typeof categoryIdSchema>;

/**
 * How the controller came to hold data of a category (Art 14(2)(f), Art 20 and WP242):
 * `provided` by the subject, `observed` from their use of the service, `derived` or `inferred`
 * by the controller. Only provided and observed data are portable.
 */
export const dataSourceSchema = z.enum(['provided', 'observed', 'derived', 'inferred', 'third-party']);
export type DataSource = z.infer<typeof dataSourceSchema>;

export const dataCategorySchema = z.object({
  id: categoryIdSchema,
  label: z.string().min(1),
  description: z.string().optional(),
  source: dataSourceSchema.default('provided'),
  /** `art9` special category or `art10` criminal-offence data: needs an extra condition. */
  special: z.enum(['art9', 'art10']).optional(),
});
export type DataCategoryInput = z.input<typeof dataCategorySchema>;
export type DataCategory = z.infer<typeof dataCategorySchema>;

/**
 * The built-in taxonomy: every category a SaaS controller such as the seed policy's collects
 * (Art 7 of the seed), usable by id without declaring it. Policies may add their own.
 */
export const builtinCategories: readonly DataCategory[] = [
  { id: 'identity', label: 'Identity', source: 'provided' },
  { id: 'identity.title', label: 'Title', source: 'provided' },
  { id: 'identity.name', label: 'Last and first names', source: 'provided' },
  { id: 'identity.date-of-birth', label: 'Date of birth', source: 'provided' },
  { id: 'identity.customer-number', label: 'Customer number', source: 'derived' },
  { id: 'identity.username', label: 'Username', source: 'provided' },
  { id: 'identity.id-document', label: 'Copy of an identity document', source: 'provided' },
  { id: 'contact', label: 'Contact details', source: 'provided' },
  { id: 'contact.email', label: 'Email addresses', source: 'provided' },
  { id: 'contact.phone', label: 'Telephone number', source: 'provided' },
  { id: 'contact.postal-address', label: 'Postal address', source: 'provided' },
  { id: 'account', label: 'Account', source: 'provided' },
  { id: 'account.credentials', label: 'Login credentials', source: 'provided' },
  { id: 'account.subscription', label: 'Plan, subscription or offer signed up for', source: 'provided' },
  { id: 'usage', label: 'Use of the service', source: 'observed' },
  { id: 'usage.logs', label: 'Logs and login data', source: 'observed' },
  { id: 'usage.login-history', label: 'Login history', source: 'observed' },
  { id: 'usage.traffic', label: 'Raw traffic data linked to a username', source: 'observed' },
  { id: 'usage.statistics', label: 'Visitor statistics', source: 'observed' },
  {
    id: 'usage.connection',
    label: 'Connection data (date, time, URL, ISP, pages viewed)',
    source: 'observed',
  },
  { id: 'transaction', label: 'Transactions', source: 'provided' },
  { id: 'transaction.number', label: 'Transaction number', source: 'derived' },
  {
    id: 'transaction.details',
    label: 'Details of the purchase, subscription, goods or services',
    source: 'provided',
  },
  { id: 'payment', label: 'Payment data', source: 'provided' },
  { id: 'payment.card', label: 'Bank card data', source: 'provided' },
  { id: 'payment.card.number', label: 'Bank card number', source: 'provided' },
  { id: 'payment.card.expiry', label: 'Bank card expiry date', source: 'provided' },
  { id: 'payment.card.security-code', label: 'Bank card security code (CVV)', source: 'provided' },
  { id: 'payment.bank-account', label: 'Bank account details (RIB/IBAN)', source: 'provided' },
  { id: 'payment.cheque', label: 'Cheque details', source: 'provided' },
  { id: 'payment.method', label: 'Payment methods', source: 'provided' },
  { id: 'billing', label: 'Billing', source: 'derived' },
  { id: 'billing.invoices', label: 'Invoices and accounting data', source: 'derived' },
  {
    id: 'billing.payments',
    label: 'Bill payments, discounts, receipts, balances and outstanding invoices',
    source: 'derived',
  },
  { id: 'marketing', label: 'Marketing', source: 'provided' },
  { id: 'marketing.preferences', label: 'Marketing preferences and subscriptions', source: 'provided' },
  {
    id: 'marketing.interests',
    label: 'Needs and topics of interest inferred from browsing',
    source: 'inferred',
  },
  { id: 'support', label: 'Requests and questions to support', source: 'provided' },
  { id: 'support.reviews', label: 'Reviews of products, services and content', source: 'provided' },
  { id: 'rights-request', label: 'Requests to exercise data protection rights', source: 'provided' },
  { id: 'litigation', label: 'Litigation and pre-litigation data', source: 'derived', special: 'art10' },
  { id: 'device', label: 'Device data', source: 'observed' },
  { id: 'device.identifiers', label: 'Cookies and device identifiers', source: 'observed' },
  { id: 'device.cookies', label: 'Cookies and similar trackers', source: 'observed' },
  { id: 'social', label: 'Public social media profile data', source: 'third-party' },
];

/** True when `category` is `ancestor` or lies under it in the dotted taxonomy. */
export function categoryCovers(ancestor: string, category: string): boolean {
  return category === ancestor || category.startsWith(`${ancestor}.`);
}
