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
