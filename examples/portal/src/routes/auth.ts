import { Router } from 'express';
import type { RequestHandler } from 'express';
import { ipKeyGenerator } from 'express-rate-limit';
import { z } from 'zod';
import type { Clock } from '@privacykit/core';
import type { StaffAudit } from '../audit.js';
import type { HashGate } from '../hash-gate.js';
import { HttpError } from '../http-error.js';
import { currentStaff, render } from '../render.js';
import { csrfToken, limiter } from '../security.js';
import { destroySession, regenerateSession, saveSession } from '../session.js';
import { normaliseEmail } from '../staff.js';
import type { StaffDirectory, StaffRole } from '../staff.js';
import { parseForm } from '../validation.js';
import { loginView, passwordView } from '../views/admin/login.js';

const loginSchema = z.object({
  email: z.string().trim().min(3).max(254),
  password: z.string().min(1).max(200),
  next: z
    .string()
    .regex(/^\/admin(\/[A-Za-z0-9/_.-]*)?$/)
    .optional()
    .catch(undefined),
});

const passwordSchema = z
  .object({
    current: z.string().min(1).max(200),
    password: z.string().min(12, 'use at least 12 characters').max(200),
    confirm: z.string().max(200),
  })
  .refine((form) => form.password === form.confirm, {
    message: 'the two new passwords differ',
    path: ['confirm'],
  })
  .refine((form) => form.password !== form.current, {
    message: 'choose a password other than the one you were given',
    path: ['password'],
  });

/**
 * Only signed-in staff; others are sent to the login page. A member still holding the password
 * their account's creator chose is sent to set their own first, and may do nothing else.
 */
export const requireStaff: RequestHandler = (req, res, next) => {
  const staff = currentStaff(res);
  if (staff?.mustChangePassword) {
    if (req.method === 'GET') return res.redirect(303, '/admin/password');
    return next(
      new HttpError(
        403,
        'Set your own password first (your account’s creator chose the one you signed in with).',
      ),
    );
  }
  if (staff) return next();
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
  loginAddressLimit: number;
  /** Bounds the scrypt work of sign-ins and password changes running at once. */
  hashGate: HashGate;
}): Router {
  const router = Router();
  const { hashGate } = options;
  // Counted by the account as sign-in looks it up: " admin@…" or "ADMIN@…\t" is the same one.
  const account = (req: Parameters<RequestHandler>[0]) =>
    normaliseEmail(String((req.body as { email?: unknown })?.email ?? '')).slice(0, 254);
  const loginLimiter = limiter({
    windowMs: 15 * 60_000,
    limit: options.loginLimit,
    key: (req) => `${ipKeyGenerator(req.ip ?? '')}|${account(req)}`,
    message: 'Too many sign-in attempts. Wait a few minutes and try again.',
  });
  // One address trying a new email every time passes the two limits above: failed sign-ins
  // per address, whatever the account (each one costs a scrypt hash, known account or not).
  const addressLimiter = limiter({
    windowMs: 15 * 60_000,
    limit: options.loginAddressLimit,
    key: (req) => `address|${ipKeyGenerator(req.ip ?? '')}`,
    failuresOnly: true,
    message: 'Too many sign-in attempts from your connection. Wait a few minutes and try again.',
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

  // The current-password check is a password guess like a sign-in: limited the same way, per
  // member (failed tries) and per address (before, unlimited for any signed-in session).
  const passwordLimiter = limiter({
    windowMs: 15 * 60_000,
    limit: options.loginLimit,
    key: (req) => `password|${req.session.staffId ?? ''}`,
    failuresOnly: true,
    message: 'Too many wrong passwords. Wait a few minutes and try again.',
  });
  const passwordAddressLimiter = limiter({
    windowMs: 15 * 60_000,
    limit: options.loginAddressLimit,
    key: (req) => `password-address|${ipKeyGenerator(req.ip ?? '')}`,
    failuresOnly: true,
    message: 'Too many wrong passwords from your connection. Wait a few minutes and try again.',
  });

  router.get('/admin/login', (req, res) => {
    const next = typeof req.query.next === 'string' ? req.query.next : undefined;
    render(req, res, { title: 'Staff sign-in', body: loginView({ csrf: csrfToken(req), next }) });
  });

  router.post('/admin/login', addressLimiter, loginLimiter, accountLimiter, async (req, res) => {
    const form = parseForm(loginSchema, req.body);
    const member = await hashGate.run(() => options.staff.authenticate(form.email, form.password));
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
    req.session.staffStamp = member.passwordStamp;
    await saveSession(req);
    await options.audit.record({ actor: member.email, action: 'staff.login' });
    res.redirect(303, member.mustChangePassword ? '/admin/password' : (form.next ?? '/admin'));
  });

  // The member's own password: at the first sign-in of an account someone else created (forced,
  // see requireStaff), or whenever they choose. Four eyes rests on it: an account whose password
  // its creator still knows is a second pair of the creator's own eyes.
  router
    .route('/admin/password')
    .get((req, res) => {
      const member = currentStaff(res);
      if (!member) return res.redirect(303, '/admin/login?next=%2Fadmin%2Fpassword');
      render(req, res, {
        title: 'Your password',
        body: passwordView({ csrf: csrfToken(req), forced: member.mustChangePassword }),
      });
    })
    .post(passwordAddressLimiter, passwordLimiter, async (req, res) => {
      const member = currentStaff(res);
      if (!member) throw new HttpError(401, 'Please sign in.');
      const form = parseForm(passwordSchema, req.body);
      const changed = await hashGate.run(() =>
        options.staff.changePassword(member.id, form.current, form.password),
      );
      if (!changed) {
        render(req, res, {
          title: 'Your password',
          status: 400,
          body: passwordView({
            csrf: csrfToken(req),
            forced: member.mustChangePassword,
            error: 'Your current password is not right.',
          }),
        });
        return;
      }
      // This session carries the new password's stamp; every other one of the member ends.
      const updated = await options.staff.get(member.id);
      await regenerateSession(req);
      if (updated) req.session.staffStamp = updated.passwordStamp;
      await saveSession(req);
      await options.audit.record({ actor: member.email, action: 'staff.password-changed' });
      res.redirect(303, '/admin');
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
