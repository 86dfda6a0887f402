import { defineDataMap } from '@privacykit/core';
import { describe, expect, it } from 'vitest';
import { subjectIdentities } from './subject.js';

const twoKinds = defineDataMap({
  identities: { email: { normalise: 'email' }, customerNumber: {} },
  tables: { customers: { primaryKey: 'id', identities: { email: 'email', customerNumber: 'number' } } },
});

describe('subjectIdentities', () => {
  it('reads kind:value, and a bare email as the email kind', () => {
    expect(subjectIdentities(['customerNumber:C:1', 'ada@example.com'], twoKinds)).toEqual({
      customerNumber: ['C:1'],
      email: ['ada@example.com'],
    });
  });

  it('refuses a value whose kind it cannot tell, naming the kinds', () => {
    expect(() => subjectIdentities(['C-1'], twoKinds)).toThrow(
      expect.objectContaining({
        code: 'cli/usage',
        message: expect.stringMatching(/kinds are email, customerNumber/),
      }),
    );
    expect(() => subjectIdentities(['phone:123'], twoKinds)).toThrow(
      expect.objectContaining({
        code: 'cli/usage',
        message: expect.stringMatching(/cannot tell the identity kind/),
      }),
    );
  });
});
