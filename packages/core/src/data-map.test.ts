import { describe, expect, it } from 'vitest';
import { defineDataMap, normaliseIdentity } from './data-map.js';
import type { DataMapInput } from './data-map.js';
import { PrivacyKitError } from './errors.js';
import { definePolicy } from './policy.js';
import { samplePolicyInput } from './test-fixtures.js';

const base = (): DataMapInput => ({
  identities: { email: { normalise: 'email' }, customerNumber: {} },
  tables: {
    customers: {
      primaryKey: 'id',
      identities: { email: 'email', customerNumber: 'customer_no' },
      columns: { email: 'contact.email', name: 'identity.name' },
    },
    orders: { primaryKey: 'id', references: [{ column: 'customer_id', table: 'customers' }] },
    order_lines: { primaryKey: 'id', references: [{ column: 'order_id', table: 'orders' }] },
  },
});

function errorOf(input: DataMapInput, policy?: ReturnType<typeof definePolicy>): PrivacyKitError {
  try {
    defineDataMap(input, { policy });
  } catch (error) {
    if (error instanceof PrivacyKitError) return error;
    throw error;
  }
  throw new Error('accepted');
}

describe('defineDataMap', () => {
  it('orders tables parents first', () => {
    const input = base();
    // Declared children-first on purpose.
    input.tables = {
      order_lines: input.tables.order_lines!,
      orders: input.tables.orders!,
      customers: input.tables.customers!,
    };
    expect(defineDataMap(input).order).toEqual(['customers', 'orders', 'order_lines']);
  });

  it('names every table that cannot be reached from a subject identity', () => {
    const input = base();
    input.tables.audit = { primaryKey: 'id', columns: { ip: 'usage.logs' } };
    input.tables.audit_lines = { primaryKey: 'id', references: [{ column: 'audit_id', table: 'audit' }] };
    const error = errorOf(input);
    expect(error.code).toBe('data-map/unreachable-table');
    expect(error.issues.map((issue) => issue.path)).toEqual(['tables.audit', 'tables.audit_lines']);
  });

  it('refuses references to unknown tables and reference cycles', () => {
    const input = base();
    input.tables.orders!.references = [{ column: 'customer_id', table: 'clients' }];
    expect(errorOf(input).code).toBe('data-map/unknown-table');
    const cyclic = base();
    cyclic.tables.customers!.references = [{ column: 'last_line', table: 'order_lines' }];
    expect(errorOf(cyclic).code).toBe('data-map/cycle');
  });

  it('refuses a column mapped to a category the policy prohibits, and unknown categories', () => {
    const policy = definePolicy(samplePolicyInput());
    const input = base();
    input.tables.orders!.columns = { cvv: 'payment.card.security-code' };
    const error = errorOf(input, policy);
    expect(error.code).toBe('data-map/prohibited-category');
    expect(error.issues[0]?.path).toBe('tables.orders.columns.cvv');
    const unknown = base();
    unknown.tables.orders!.columns = { shoe_size: 'body.shoe-size' };
    expect(errorOf(unknown, policy).code).toBe('data-map/unknown-category');
  });

  it('normalises emails without Unicode case folding', () => {
    const map = defineDataMap(base());
    expect(normaliseIdentity(map, 'email', '  Alice@Example.COM ')).toBe('alice@example.com');
    // Kelvin sign and dotted capital I would fold to ASCII with toLowerCase(): they must not.
    expect(normaliseIdentity(map, 'email', '\u212Aate@example.com')).toBe('\u212Aate@example.com');
    expect(normaliseIdentity(map, 'email', '\u0130nes@example.com')).toBe('\u0130nes@example.com');
    expect(normaliseIdentity(map, 'customerNumber', ' C-1 ')).toBe(' C-1 ');
  });
});
