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
    ['requests/invalid-input', 400],
    ['requests/illegal-transition', 409],
    ['subject-access/token-used', 410],
    ['subject-access/token-binding-mismatch', 404],
    // Server-side failures are the portal's, never "bad request": logged as 500.
    ['subject-access/export-corrupt', 500],
    ['database/migration-failed', 500],
    ['database/nested-transaction', 500],
    ['data-map/unreachable-table', 500],
    ['data-map/unknown-table', 500],
    ['policy/invalid', 500],
    ['requests/invalid-options', 500],
    ['erasure/delivery-not-recorded', 500],
    ['retention/needs-pseudonym-key', 500],
    // A code a package adds later is not assumed to be the visitor's fault.
    ['consent/some-future-code', 500],
  ])('%s → %i', (code, status) => {
    expect(statusForCode(code)).toBe(status);
  });
});
