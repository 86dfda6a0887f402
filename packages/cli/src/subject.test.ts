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

  it('refuses a miscased kind and a value of the email kind that is no address, instead of matching nobody', () => {
    // Before: "Email:ada@example.com" was taken whole as an email, and an erasure of nobody
    // reported itself complete and verified.
    expect(() => subjectIdentities(['Email:ada@example.com'], twoKinds)).toThrow(
      expect.objectContaining({ code: 'cli/usage', message: expect.stringMatching(/did you mean email:/) }),
    );
    const emailOnly = defineDataMap({
      identities: { email: { normalise: 'email' } },
      tables: { customers: { primaryKey: 'id', identities: { email: 'email' } } },
    });
    for (const raw of ['Email:ada@example.com', 'foo:bar', 'ada']) {
      expect(() => subjectIdentities([raw], emailOnly), raw).toThrow(
        expect.objectContaining({ code: 'cli/usage' }),
      );
    }
    expect(subjectIdentities([' Ada@Example.com '], emailOnly)).toEqual({ email: [' Ada@Example.com '] });
  });
});
