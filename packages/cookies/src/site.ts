// Multi-label public suffixes common enough to matter; without them `a.co.uk` and `b.co.uk`
// would look like one site. Not the full Public Suffix List, which is too big for a browser bundle.
const multiLabelSuffixes = new Set([
  'co.uk',
  'org.uk',
  'ac.uk',
  'gov.uk',
  'me.uk',
  'ltd.uk',
  'plc.uk',
  'com.au',
  'net.au',
  'org.au',
  'edu.au',
  'gov.au',
  'co.nz',
  'org.nz',
  'co.jp',
  'ne.jp',
  'or.jp',
  'co.kr',
  'co.in',
  'co.za',
  'com.br',
  'com.mx',
  'com.ar',
  'com.tr',
  'com.cn',
  'com.hk',
  'com.sg',
  'com.tw',
  'co.il',
  'com.pl',
  'github.io',
  'herokuapp.com',
  'vercel.app',
  'netlify.app',
  'pages.dev',
  'workers.dev',
  'azurewebsites.net',
  'cloudfront.net',
  'appspot.com',
  'blogspot.com',
  'myshopify.com',
  'wixsite.com',
  'web.app',
  'firebaseapp.com',
]);

const ipAddress = /^(\d{1,3}(\.\d{1,3}){3}|\[?[0-9a-f:]+\]?)$/i;

/** The host without a leading dot, lower-cased. */
export function normaliseHost(host: string): string {
  return host.trim().replace(/^\./, '').toLowerCase();
}

/** The registrable domain ("site") of a host: `www.shop.example.co.uk` → `example.co.uk`. IPs stay whole. */
export function registrableDomain(host: string): string {
  const normalised = normaliseHost(host);
  if (ipAddress.test(normalised) || !normalised.includes('.')) return normalised;
  const labels = normalised.split('.');
  const lastTwo = labels.slice(-2).join('.');
  const take = multiLabelSuffixes.has(lastTwo) ? 3 : 2;
  return labels.slice(-take).join('.');
}

/** True when a cookie for `cookieDomain` belongs to the same site as the page at `siteHost`. */
export function isFirstParty(cookieDomain: string, siteHost: string): boolean {
  return registrableDomain(cookieDomain) === registrableDomain(siteHost);
}

/** True when `host` is `domain` or one of its subdomains. */
export function domainMatches(host: string, domain: string): boolean {
  const h = normaliseHost(host);
  const d = normaliseHost(domain);
  return h === d || h.endsWith(`.${d}`);
}
