import express from 'express';
import type { ErrorRequestHandler, Express } from 'express';
import type { Kysely } from 'kysely';
import { isPrivacyKitError, systemClock } from '@privacykit/core';
import type { Clock, Policy } from '@privacykit/core';
import { privacyRoutes } from './routes/privacy.js';
import { html } from './views/html.js';
import { layout } from './views/layout.js';

/** What the portal needs from the outside world; `server.ts` wires the real ones, tests their own. */
export interface AppDeps {
  db: Kysely<any>;
  policy: Policy;
  clock?: Clock;
  /** Called for unexpected errors (the response never shows them). */
  logError?: (error: unknown) => void;
}

/**
 * The reference privacy centre as an Express 5 app. It never listens: `server.ts` does, and tests
 * drive the returned app on an ephemeral port.
 */
export function createApp(deps: AppDeps): Express {
  const { db, policy, logError = (error) => console.error(error) } = deps;
  const clock = deps.clock ?? systemClock;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  app.get('/', (_req, res) => res.redirect(303, '/privacy'));
  app.get('/healthz', async (_req, res) => {
    await db.selectNoFrom((eb) => eb.lit(1).as('ok')).execute();
    res.json({ status: 'ok', time: clock.now().toISOString(), policyVersion: policy.version });
  });
  app.use(privacyRoutes(policy));

  app.use((_req, res) => {
    res
      .status(404)
      .type('html')
      .send(
        layout({
          title: 'Not found',
          body: html`<h1>Page not found</h1><p><a href="/privacy">Read the privacy notice</a>.</p>`,
        }),
      );
  });

  const onError: ErrorRequestHandler = (error, _req, res, _next) => {
    const status = isPrivacyKitError(error)
      ? 400
      : typeof error?.status === 'number' && error.status >= 400 && error.status < 500
        ? error.status
        : 500;
    if (status === 500) logError(error);
    const message =
      status === 500
        ? 'Something went wrong on our side. Please try again later.'
        : isPrivacyKitError(error)
          ? error.message
          : 'The request could not be understood.';
    res
      .status(status)
      .type('html')
      .send(
        layout({
          title: status === 500 ? 'Error' : 'Bad request',
          body: html`<h1>${status === 500 ? 'Sorry' : 'Bad request'}</h1><p>${message}</p>`,
        }),
      );
  };
  app.use(onError);
  return app;
}
