import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';

export function loginView(options: { csrf: string; next?: string; error?: string }): SafeHtml {
  return html`<h1>Staff sign-in</h1>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="/admin/login" class="stack">
  ${csrfField(options.csrf)}
  ${options.next ? html`<input type="hidden" name="next" value="${options.next}">` : ''}
  <div><label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required></div>
  <div><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required></div>
  <div><button type="submit">Sign in</button></div>
</form>`;
}

/** Set one's own password: forced at the first sign-in of an account someone else created. */
export function passwordView(options: { csrf: string; forced: boolean; error?: string }): SafeHtml {
  return html`<h1>Your password</h1>
${options.forced ? html`<p class="notice" role="status" data-password-forced>Your account was created by another staff member, who chose the password you signed in with. Choose your own before going on: until then the back office is closed to this account.</p>` : ''}
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="/admin/password" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="current">Current password</label><input id="current" name="current" type="password" autocomplete="current-password" required></div>
  <div><label for="password">New password <span class="hint">At least 12 characters, not the one you were given.</span></label><input id="password" name="password" type="password" autocomplete="new-password" minlength="12" required></div>
  <div><label for="confirm">New password again</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required></div>
  <div><button type="submit">Set my password</button></div>
</form>`;
}
