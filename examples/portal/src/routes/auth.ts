import { Router } from 'express';
import type { RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { z } from 'zod';
import { randomToken } from '@privacykit/core';
import type { Clock } from '@privacykit/core';
import type { StaffAudit } from '../audit.js';
import { HttpError } from '../http-error.js';
import { currentStaff, render } from '../render.js';
import { csrfToken, limiter } from '../security.js';
import { destroySession, regenerateSession, saveSession } from '../session.js';
import { normaliseEmail } from '../staff.js';
import type { StaffDirectory, StaffRole } from '../staff.js';
import { parseForm } from '../validation.js';
import { loginView } from '../views/admin/login.js';

const loginSchema = z.object({
  email: z.string().trim().min(3).max(254),
  password: z.string().min(1).max(200),
  next: z
    .string()
    .regex(/^\/admin(\/[A-Za-z0-9/_.-]*)?$/)
    .optional()
    .catch(undefined),
});

/** Only signed-in staff; others are sent to the login page. */
export const requireStaff: RequestHandler = (req, res, next) => {
  if (currentStaff(res)) return next();
  if (req.method === 'GET')
    return res.redirect(303, `/admin/login?next=${encodeURIComponent(req.originalUrl.slice(0, 200))}`);
  next(new HttpError(401, 'Please sign in.'));
};

export function requireRole(...roles: StaffRole[]): RequestHandler {
  return (_req, res, next) => {
    const staff = currentStaff(res);
    if (staff && roles.includes(staff.role)) return next();
    next(new HttpError(403, 'Your role does not allow this action.'));
  };
}

/**
 * Staff sign-in (S04): scrypt-hashed passwords, one generic error whatever was wrong (no
 * enumeration), rate-limited per IP and account and per account from any IP (S02), a new session
 * id on login and logout.
 */
export function authRoutes(options: {
  clock: Clock;
  staff: StaffDirectory;
  audit: StaffAudit;
  loginLimit: number;
  loginAccountLimit: number;
}): Router {
  const router = Router();
  // Counted by the account as sign-in looks it up: " admin@…" or "ADMIN@…\t" is the same one.
  const account = (req: Parameters<RequestHandler>[0]) =>
    normaliseEmail(String((req.body as { email?: unknown })?.email ?? '')).slice(0, 254);
  const loginLimiter = limiter({
    windowMs: 15 * 60_000,
    limit: options.loginLimit,
    key: (req) => `${ipKeyGenerator(req.ip ?? '')}|${account(req)}`,
    message: 'Too many sign-in attempts. Wait a few minutes and try again.',
  });
  // Guesses spread over many addresses (a botnet) still get only so many per account: failed
  // sign-ins from anywhere, per hour, so the owner signing in does not use the allowance up.
  const accountLimiter = limiter({
    windowMs: 60 * 60_000,
    limit: options.loginAccountLimit,
    key: (req) => `account|${account(req)}`,
    failuresOnly: true,
    message: 'Too many sign-in attempts. Wait a few minutes and try again.',
  });

  router.get('/admin/login', (req, res) => {
    const next = typeof req.query.next === 'string' ? req.query.next : undefined;
    render(req, res, { title: 'Staff sign-in', body: loginView({ csrf: csrfToken(req), next }) });
  });

  router.post('/admin/login', loginLimiter, accountLimiter, async (req, res) => {
    const form = parseForm(loginSchema, req.body);
    const member = await options.staff.authenticate(form.email, form.password);
    if (!member) {
      render(req, res, {
        title: 'Staff sign-in',
        status: 401,
        body: loginView({ csrf: csrfToken(req), next: form.next, error: 'Email or password is incorrect.' }),
      });
      return;
    }
    await regenerateSession(req);
    req.session.staffId = member.id;
    req.session.staffSince = options.clock.now().getTime();
    req.session.csrf = randomToken(32);
    await saveSession(req);
    await options.audit.record({ actor: member.email, action: 'staff.login' });
    res.redirect(303, form.next ?? '/admin');
  });

  router.post('/admin/logout', async (req, res) => {
    const member = currentStaff(res);
    if (member) await options.audit.record({ actor: member.email, action: 'staff.logout' });
    await destroySession(req);
    res.clearCookie('pk_session', { path: '/' });
    res.redirect(303, '/admin/login');
  });
  return router;
}
