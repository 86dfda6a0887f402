import { describe, expect, it } from 'vitest';
import { statusForCode } from './app.js';

describe('statusForCode', () => {
  it.each([
    ['requests/verification-locked', 429],
    ['requests/verification-throttled', 429],
    ['erasure/plan-locked', 409],
    ['erasure/lease-lost', 409],
    ['requests/intake-conflict', 409],
    ['consent/notice-version-conflict', 409],
    ['requests/not-found', 404],
    ['requests/token-expired', 410],
    ['requests/redacted', 410],
    ['consent/notice-unavailable', 500],
    ['consent/key-store-required', 500],
    ['consent/key-store-failed', 503],
    ['consent/invalid-decision', 400],
  ])('%s → %i', (code, status) => {
    expect(statusForCode(code)).toBe(status);
  });
});
