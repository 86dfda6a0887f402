/**
 * Crypto-shredding (Art 17, ICO guidance; requirement S11): destroys the subject's key in the
 * consent ledger's key store, so ledger entries stay verifiable while the personal data they
 * encrypt become unreadable. `@privacykit/consent` exposes a `shredSubject` that fits; any key
 * store with the same method works. Must be idempotent: shredding a key already gone succeeds.
 */
export interface KeyShredder {
  shredSubject(subjectId: string): Promise<void>;
}
