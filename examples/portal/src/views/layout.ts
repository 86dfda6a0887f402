import { html } from './html.js';
import type { SafeHtml } from './html.js';

export interface LayoutOptions {
  title: string;
  body: SafeHtml;
  /** The controller's name, shown in the header. */
  site?: string;
}

/** The page shell: accessible landmarks, a skip link, and styles inline (no external requests). */
export function layout({ title, body, site = 'Privacy centre' }: LayoutOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${site}</title>
<style>
  :root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --accent: #0b57d0; --line: #d0d0d0; }
  body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); margin: 0; }
  header, main, footer { max-width: 60rem; margin: 0 auto; padding: 0 1rem; }
  header { display: flex; gap: 1.5rem; align-items: baseline; border-bottom: 1px solid var(--line); }
  header nav a { margin-right: 1rem; }
  a { color: var(--accent); }
  a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #ffbf47; outline-offset: 2px; }
  .skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .35rem .5rem; vertical-align: top; }
  .muted { color: var(--muted); }
  footer { border-top: 1px solid var(--line); margin-top: 3rem; padding-top: 1rem; color: var(--muted); }
</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header><p><strong>${site}</strong></p><nav aria-label="Main"><a href="/privacy">Privacy notice</a></nav></header>
<main id="main">${body}</main>
<footer><p>Powered by PrivacyKit.</p></footer>
</body>
</html>`.value;
}
