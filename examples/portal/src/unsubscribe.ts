import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

/**
 * One-click unsubscribe tokens for newsletter mail (Art 7(3), 21(2); RFC 8058): the token names
 * the ledger subject (`email:<address>`) and is good for one thing only — withdrawing that
 * subject's `newsletter` consent — so it can sit in every mail without an expiry, and works in any
 * browser, long after the session that signed up has ended. It grants nothing and reads nothing.
 *
 * The subject is encrypted (AES-256-GCM), not only signed: the link lands in web-server and proxy
 * logs, mail-scanner reports and browser history, and a base64 of `email:<address>` put the
 * address in all of them. The GCM tag authenticates it as the MAC did.
 */
export interface UnsubscribeLinks {
  /** The opaque token for a subject: base64url of IV (12 bytes), ciphertext and GCM tag (16 bytes). */
  token(subjectId: string): string;
  /** The subject a token was made for; `undefined` for anything not made with these secrets. */
  read(token: string): string | undefined;
}

const PURPOSE = 'newsletter';
const IV_BYTES = 12;
const TAG_BYTES = 16;
// The subject is bound to its use: a token of another purpose or version does not open as this one.
const AAD = Buffer.from(`unsubscribe|v2|${PURPOSE}`);

/**
 * `secrets`: the first encrypts, all decrypt — the session secrets, so rotating them (`[new, old]`)
 * keeps the links already mailed working while the old one is listed. A random per-start secret
 * (no `SESSION_SECRET`) breaks them at the next restart.
 */
export function createUnsubscribeLinks(secrets: readonly string[]): UnsubscribeLinks {
  // Domain-separated from every other use of the secrets (sessions, CSRF, return codes).
  const keys = secrets.map((secret) =>
    createHmac('sha256', secret).update('privacykit-portal/unsubscribe/aes-256-gcm').digest(),
  );
  return {
    token(subjectId) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keys[0]!, iv).setAAD(AAD);
      const sealed = Buffer.concat([cipher.update(subjectId, 'utf8'), cipher.final()]);
      return Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url');
    },
    read(token) {
      if (!/^[A-Za-z0-9_-]{40,900}$/.test(token)) return undefined;
      const raw = Buffer.from(token, 'base64url');
      if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
      const iv = raw.subarray(0, IV_BYTES);
      const sealed = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
      const tag = raw.subarray(raw.length - TAG_BYTES);
      for (const key of keys) {
        try {
          const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
            .setAAD(AAD)
            .setAuthTag(tag);
          return Buffer.concat([decipher.update(sealed), decipher.final()]).toString('utf8');
        } catch {
          // Not this key (or not a token at all): try the next.
        }
      }
      return undefined;
    },
  };
}
