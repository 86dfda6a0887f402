/** A tiny document model rendered to both Markdown and HTML, so the two never drift. */
export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: readonly string[] }
  | { kind: 'table'; head: readonly string[]; rows: readonly (readonly string[])[] };

export const heading = (level: 1 | 2 | 3, text: string): Block => ({ kind: 'heading', level, text });
export const paragraph = (text: string): Block => ({ kind: 'paragraph', text });
export const list = (items: readonly string[]): Block => ({ kind: 'list', items });
export const table = (head: readonly string[], rows: readonly (readonly string[])[]): Block => ({
  kind: 'table',
  head,
  rows,
});

function markdownText(text: string): string {
  // Policy text is data: escape what Markdown would read as markup or raw HTML.
  return text.replace(/([\\`*_[\]<>|#])/g, '\\$1').replace(/\s*\n\s*/g, ' ');
}

export function renderMarkdown(blocks: readonly Block[]): string {
  const parts = blocks.map((block) => {
    switch (block.kind) {
      case 'heading':
        return `${'#'.repeat(block.level)} ${markdownText(block.text)}`;
      case 'paragraph':
        return markdownText(block.text);
      case 'list':
        return block.items.map((item) => `- ${markdownText(item)}`).join('\n');
      case 'table':
        return [
          `| ${block.head.map(markdownText).join(' | ')} |`,
          `| ${block.head.map(() => '---').join(' | ')} |`,
          ...block.rows.map((row) => `| ${row.map(markdownText).join(' | ')} |`),
        ].join('\n');
    }
  });
  return `${parts.join('\n\n')}\n`;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function renderHtml(blocks: readonly Block[], options: { title: string; lang: string }): string {
  const body = blocks.map((block) => {
    switch (block.kind) {
      case 'heading':
        return `<h${block.level}>${escapeHtml(block.text)}</h${block.level}>`;
      case 'paragraph':
        return `<p>${escapeHtml(block.text)}</p>`;
      case 'list':
        return `<ul>\n${block.items.map((item) => `  <li>${escapeHtml(item)}</li>`).join('\n')}\n</ul>`;
      case 'table':
        return [
          '<table>',
          `  <thead><tr>${block.head.map((cell) => `<th scope="col">${escapeHtml(cell)}</th>`).join('')}</tr></thead>`,
          '  <tbody>',
          ...block.rows.map(
            (row) => `    <tr>${row.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`,
          ),
          '  </tbody>',
          '</table>',
        ].join('\n');
    }
  });
  return [
    '<!doctype html>',
    `<html lang="${escapeHtml(options.lang)}">`,
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(options.title)}</title>`,
    '</head>',
    '<body>',
    '<main>',
    ...body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
