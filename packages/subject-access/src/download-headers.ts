/**
 * HTTP headers for serving an export download (OWASP ASVS 14.2.1, 14.3.2, 14.2.7; hostile case
 * 13): never cached by the browser or a proxy, never leaking the link through `Referer`, always
 * saved as a file rather than rendered. The portal sends these; the library never speaks HTTP.
 */
export function downloadHeaders(
  filename: string,
  options: { contentType?: string; bytes?: number } = {},
): Record<string, string> {
  const safe = filename.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 120) || 'export';
  const headers: Record<string, string> = {
    'Content-Type': options.contentType ?? 'application/zip',
    'Content-Disposition': `attachment; filename="${safe}"; filename*=UTF-8''${rfc5987(filename)}`,
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'Referrer-Policy': 'no-referrer',
    'X-Content-Type-Options': 'nosniff',
  };
  if (options.bytes !== undefined) headers['Content-Length'] = String(options.bytes);
  return headers;
}

/** RFC 5987 `value-chars`: percent-encoded UTF-8, `'`, `(`, `)` and `*` included (not `attr-char`s). */
function rfc5987(value: string): string {
  return encodeURIComponent(value).replace(
    /['()*]/g,
    (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}
