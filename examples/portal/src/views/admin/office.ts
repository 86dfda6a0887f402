import type { AuditEntry } from '../../audit.js';
import type { OutboxMessage } from '../../mailer.js';
import type { StaffMember } from '../../staff.js';
import { html } from '../html.js';
import type { SafeHtml } from '../html.js';
import { csrfField } from '../layout.js';

export function dashboardView(options: { links: { href: string; label: string; text: string }[] }): SafeHtml {
  return html`<h1>Back office</h1>
<ul>${options.links.map((link) => html`<li><a href="${link.href}">${link.label}</a>: ${link.text}</li>`)}</ul>`;
}

export function outboxView(messages: OutboxMessage[]): SafeHtml {
  return html`<h1>Mail outbox</h1>
<p class="muted">In development (no <code>SMTP_URL</code>), mail is not sent: it is kept here.</p>
${messages.length === 0 ? html`<p>No mail yet.</p>` : ''}
${messages.map(
  (message) => html`<article>
  <h2>${message.subject}</h2>
  <p class="muted">To ${message.recipient}, ${message.sentAt}</p>
  <pre>${message.body}</pre>
</article>`,
)}`;
}

export function auditView(entries: AuditEntry[]): SafeHtml {
  return html`<h1>Staff audit trail</h1>
<table><thead><tr><th scope="col">When (UTC)</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">On</th><th scope="col">Detail</th></tr></thead>
<tbody>${entries.map((entry) => html`<tr><td>${entry.at}</td><td>${entry.actor}</td><td>${entry.action}</td><td>${entry.target ?? ''}</td><td>${entry.detail ?? ''}</td></tr>`)}</tbody></table>`;
}

export function staffView(options: { members: StaffMember[]; csrf: string; error?: string }): SafeHtml {
  return html`<h1>Staff accounts</h1>
<table><thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Role</th><th scope="col">Access</th></tr></thead>
<tbody>${options.members.map((member) => html`<tr data-staff="${member.email}"><td>${member.email}</td><td>${member.name}</td><td>${member.role}</td><td>${member.disabledAt ? html`<span data-disabled>disabled ${member.disabledAt}</span>` : html`<form method="post" action="/admin/staff/${member.id}/disable">${csrfField(options.csrf)}<button type="submit" class="secondary">Disable</button></form>`}</td></tr>`)}</tbody></table>
<h2>Add a staff member</h2>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="/admin/staff" class="stack">
  ${csrfField(options.csrf)}
  <div><label for="email">Email</label><input id="email" name="email" type="email" required></div>
  <div><label for="name">Name</label><input id="name" name="name" type="text" required></div>
  <div><label for="role">Role</label><select id="role" name="role"><option value="privacy-officer">Privacy officer</option><option value="admin">Administrator</option></select></div>
  <div><label for="password">Initial password <span class="hint">At least 12 characters. Give it to them safely: they must replace it with their own at their first sign-in.</span></label><input id="password" name="password" type="password" autocomplete="new-password" required></div>
  <div><button type="submit">Create account</button></div>
</form>`;
}
