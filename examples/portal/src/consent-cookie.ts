import type { Request, Response } from 'express';
import { z } from 'zod';
import { randomToken } from '@privacykit/core';
import type { Policy } from '@privacykit/core';

export const CONSENT_COOKIE = 'pk_consent';

/** What `pk_consent` remembers: a pseudonymous subject id for the ledger and one choice per purpose. */
export const consentCookieSchema = z
  .object({
    v: z.literal(1),
    /** Pseudonymous subject id (128-bit random): the key of this browser's ledger entries. */
    s: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
    /** Purpose id → granted. */
    p: z.record(z.string().max(64), z.boolean()),
    /** Notice version the choice was made under (re-ask when it changes). */
    n: z.string().max(64),
    /** When the choice was made (ISO instant). */
    t: z.string().max(40),
    /** The notice version under which this browser's `Sec-GPC: 1` was last applied to the ledger. */
    g: z.string().max(64).optional(),
    /**
     * Purposes the subject granted after GPC had refused them: the later grant is kept, and the
     * visitor is shown the conflict while their browser sends the signal (G03, hostile case 25).
     */
    c: z.array(z.string().max(64)).max(20).optional(),
  })
  .strict();
export type ConsentCookie = z.infer<typeof consentCookieSchema>;

export interface BannerPurpose {
  id: string;
  name: string;
  description: string;
  cookies: string[];
  /** GPC opts this purpose out (sale, sharing, cross-context advertising). */
  gpcSensitive: boolean;
}

/** The purposes the cookie banner asks about: those of the policy's non-exempt cookies (Art 12 of the seed). */
export function bannerPurposes(policy: Policy): BannerPurpose[] {
  const ids = [
    ...new Set(policy.cookies.filter((cookie) => !cookie.exempt && cookie.purpose).map((c) => c.purpose!)),
  ];
  return ids.flatMap((id) => {
    const purpose = policy.purposes.find((candidate) => candidate.id === id);
    if (!purpose) return [];
    return [
      {
        id,
        name: purpose.name,
        description: purpose.description,
        cookies: policy.cookies
          .filter((cookie) => cookie.purpose === id)
          .map((c) => c.name + (c.prefix ? '*' : '')),
        gpcSensitive: purpose.tags.some((tag) =>
          (['sale', 'sharing', 'cross-context-advertising'] as string[]).includes(tag),
        ),
      },
    ];
  });
}

export function readCookies(req: Request): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at < 1) continue;
    const name = part.slice(0, at).trim();
    if (out.has(name)) continue;
    try {
      out.set(name, decodeURIComponent(part.slice(at + 1).trim()));
    } catch {
      // A malformed value is treated as absent.
    }
  }
  return out;
}

/**
 * The visitor's stored choice whatever notice version it was made under; `undefined` when absent
 * or malformed. Its subject id stays this browser's in the ledger across notice changes.
 */
export function readAnyConsentCookie(req: Request): ConsentCookie | undefined {
  const raw = readCookies(req).get(CONSENT_COOKIE);
  if (!raw) return undefined;
  try {
    const parsed = consentCookieSchema.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The visitor's choice under the current notice; `undefined` when absent, malformed, or made under
 * another notice version — then the banner asks again (Art 5(1)(b)), but the visitor is the same
 * subject: see {@link readAnyConsentCookie}.
 */
export function readConsentCookie(req: Request, policy: Policy): ConsentCookie | undefined {
  const cookie = readAnyConsentCookie(req);
  return cookie?.n === policy.version ? cookie : undefined;
}

export function newSubjectId(): string {
  return randomToken(16);
}

/** Stores the choice for six months (the seed's `pk_consent` duration; CNIL re-asks after that). */
export function writeConsentCookie(res: Response, value: ConsentCookie, secure: boolean): void {
  res.cookie(CONSENT_COOKIE, Buffer.from(JSON.stringify(value)).toString('base64url'), {
    httpOnly: true,
    sameSite: 'lax',
    secure,
    path: '/',
    maxAge: 183 * 24 * 3600_000,
    encode: (v: string) => v,
  });
}

/** Expires cookies of purposes now refused, so a withdrawal takes effect in the browser at once. */
export function clearRefusedCookies(
  req: Request,
  res: Response,
  policy: Policy,
  granted: Record<string, boolean>,
): void {
  const present = [...readCookies(req).keys()];
  for (const declared of policy.cookies) {
    if (declared.exempt || !declared.purpose || granted[declared.purpose]) continue;
    for (const name of present) {
      if (declared.prefix ? name.startsWith(declared.name) : name === declared.name) {
        res.clearCookie(name, { path: '/' });
      }
    }
  }
}
