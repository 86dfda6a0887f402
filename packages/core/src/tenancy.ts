import { z } from 'zod';

/**
 * The tenant a record belongs to: the controller whose data it is. A platform hosting domains
 * for clients (the seed's Article 2) gives each client its own tenant and policy; every stored
 * record carries its tenant and every query filters on it. Single-tenant users get `default`.
 */
export const DEFAULT_TENANT = 'default';
export const tenantIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/,
    'expected a tenant id of letters, digits and . _ : - (max 64)',
  );
export type TenantId = z.infer<typeof tenantIdSchema>;
