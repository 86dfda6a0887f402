// Tracker, analytics and advertising endpoints, written from the vendors' own documentation of
// the hosts their tags call (CSP and allow-list guides). Plain data so bundlers drop what is unused.
import type { CookieCategory } from './purpose.js';
import { consentCovers, type ConsentState } from './consent-state.js';
import { normaliseHost, domainMatches, isFirstParty } from './site.js';

export interface TrackerEndpoint {
  /** The host; subdomains match too. */
  host: string;
  /**
   * When only part of the host tracks (`facebook.com/tr`): that path, or a path under it
   * (`/tr`, `/tr/`, `/tr?id=1` — not `/translations`). End it with `/` to match only below it.
   */
  path?: string;
  vendor: string;
  category: Extract<CookieCategory, 'analytics' | 'marketing'>;
  /** The vendor documentation naming the endpoint. */
  url: string;
}

export const analyticsTrackers: readonly TrackerEndpoint[] = [
  {
    host: 'google-analytics.com',
    vendor: 'Google Analytics',
    category: 'analytics',
    url: 'https://developers.google.com/tag-platform/security/guides/csp',
  },
  {
    host: 'analytics.google.com',
    vendor: 'Google Analytics',
    category: 'analytics',
    url: 'https://developers.google.com/tag-platform/security/guides/csp',
  },
  {
    host: 'googletagmanager.com',
    vendor: 'Google Tag Manager',
    category: 'analytics',
    url: 'https://developers.google.com/tag-platform/security/guides/csp',
  },
  {
    host: 'clarity.ms',
    vendor: 'Microsoft Clarity',
    category: 'analytics',
    url: 'https://learn.microsoft.com/en-us/clarity/setup-and-installation/clarity-csp',
  },
  {
    host: 'hotjar.com',
    vendor: 'Hotjar',
    category: 'analytics',
    url: 'https://help.hotjar.com/hc/en-us/articles/115011640307-Content-Security-Policy-CSP',
  },
  {
    host: 'hotjar.io',
    vendor: 'Hotjar',
    category: 'analytics',
    url: 'https://help.hotjar.com/hc/en-us/articles/115011640307-Content-Security-Policy-CSP',
  },
  {
    host: 'mc.yandex.ru',
    vendor: 'Yandex Metrica',
    category: 'analytics',
    url: 'https://yandex.com/support/metrica/code/install-counter-csp.html',
  },
  {
    host: 'cdn.segment.com',
    vendor: 'Segment',
    category: 'analytics',
    url: 'https://segment.com/docs/connections/sources/catalog/libraries/website/javascript/',
  },
  {
    host: 'api.segment.io',
    vendor: 'Segment',
    category: 'analytics',
    url: 'https://segment.com/docs/connections/sources/catalog/libraries/website/javascript/',
  },
  {
    host: 'api-js.mixpanel.com',
    vendor: 'Mixpanel',
    category: 'analytics',
    url: 'https://docs.mixpanel.com/docs/tracking-methods/sdks/javascript',
  },
  {
    host: 'cdn.amplitude.com',
    vendor: 'Amplitude',
    category: 'analytics',
    url: 'https://amplitude.com/docs/sdks/analytics/browser/browser-sdk-2',
  },
  {
    host: 'api2.amplitude.com',
    vendor: 'Amplitude',
    category: 'analytics',
    url: 'https://amplitude.com/docs/sdks/analytics/browser/browser-sdk-2',
  },
  {
    host: 'js.hs-analytics.net',
    vendor: 'HubSpot',
    category: 'analytics',
    url: 'https://knowledge.hubspot.com/domains-and-urls/ssl-and-domain-security-in-hubspot',
  },
  {
    host: 'track.hubspot.com',
    vendor: 'HubSpot',
    category: 'analytics',
    url: 'https://knowledge.hubspot.com/domains-and-urls/ssl-and-domain-security-in-hubspot',
  },
  {
    host: 'cdn.heapanalytics.com',
    vendor: 'Heap',
    category: 'analytics',
    url: 'https://developers.heap.io/docs/web',
  },
  {
    host: 'fullstory.com',
    vendor: 'FullStory',
    category: 'analytics',
    url: 'https://help.fullstory.com/hc/en-us/articles/360020622734',
  },
  {
    host: 'js-agent.newrelic.com',
    vendor: 'New Relic Browser',
    category: 'analytics',
    url: 'https://docs.newrelic.com/docs/browser/new-relic-browser/getting-started/compatibility-requirements-browser-monitoring/',
  },
  {
    host: 'nr-data.net',
    vendor: 'New Relic Browser',
    category: 'analytics',
    url: 'https://docs.newrelic.com/docs/browser/new-relic-browser/getting-started/compatibility-requirements-browser-monitoring/',
  },
];

export const advertisingTrackers: readonly TrackerEndpoint[] = [
  {
    host: 'doubleclick.net',
    vendor: 'Google Ads / DoubleClick',
    category: 'marketing',
    url: 'https://developers.google.com/tag-platform/security/guides/csp',
  },
  {
    host: 'googleadservices.com',
    vendor: 'Google Ads',
    category: 'marketing',
    url: 'https://developers.google.com/tag-platform/security/guides/csp',
  },
  {
    host: 'googlesyndication.com',
    vendor: 'Google AdSense',
    category: 'marketing',
    url: 'https://support.google.com/adsense/answer/7072486',
  },
  {
    host: 'connect.facebook.net',
    vendor: 'Meta Pixel',
    category: 'marketing',
    url: 'https://developers.facebook.com/docs/meta-pixel/get-started',
  },
  {
    host: 'facebook.com',
    path: '/tr',
    vendor: 'Meta Pixel',
    category: 'marketing',
    url: 'https://developers.facebook.com/docs/meta-pixel/advanced',
  },
  {
    host: 'bat.bing.com',
    vendor: 'Microsoft Advertising UET',
    category: 'marketing',
    url: 'https://learn.microsoft.com/en-us/advertising/guides/universal-event-tracking',
  },
  {
    host: 'snap.licdn.com',
    vendor: 'LinkedIn Insight Tag',
    category: 'marketing',
    url: 'https://www.linkedin.com/help/lms/answer/a425696',
  },
  {
    host: 'px.ads.linkedin.com',
    vendor: 'LinkedIn Insight Tag',
    category: 'marketing',
    url: 'https://www.linkedin.com/help/lms/answer/a425696',
  },
  {
    host: 'analytics.tiktok.com',
    vendor: 'TikTok Pixel',
    category: 'marketing',
    url: 'https://ads.tiktok.com/help/article/get-started-pixel',
  },
  {
    host: 'static.ads-twitter.com',
    vendor: 'X (Twitter) Pixel',
    category: 'marketing',
    url: 'https://business.x.com/en/help/campaign-measurement-and-analytics/conversion-tracking-for-websites',
  },
  {
    host: 'analytics.twitter.com',
    vendor: 'X (Twitter) Pixel',
    category: 'marketing',
    url: 'https://business.x.com/en/help/campaign-measurement-and-analytics/conversion-tracking-for-websites',
  },
  {
    host: 't.co',
    path: '/i/adsct',
    vendor: 'X (Twitter) Pixel',
    category: 'marketing',
    url: 'https://business.x.com/en/help/campaign-measurement-and-analytics/conversion-tracking-for-websites',
  },
  {
    host: 'ct.pinterest.com',
    vendor: 'Pinterest Tag',
    category: 'marketing',
    url: 'https://help.pinterest.com/en/business/article/install-the-pinterest-tag',
  },
  {
    host: 's.pinimg.com',
    path: '/ct/',
    vendor: 'Pinterest Tag',
    category: 'marketing',
    url: 'https://help.pinterest.com/en/business/article/install-the-pinterest-tag',
  },
  {
    host: 'tr.snapchat.com',
    vendor: 'Snap Pixel',
    category: 'marketing',
    url: 'https://businesshelp.snapchat.com/s/article/pixel-website-install',
  },
  {
    host: 'sc-static.net',
    vendor: 'Snap Pixel',
    category: 'marketing',
    url: 'https://businesshelp.snapchat.com/s/article/pixel-website-install',
  },
  {
    host: 'redditstatic.com',
    path: '/ads/',
    vendor: 'Reddit Pixel',
    category: 'marketing',
    url: 'https://business.reddithelp.com/s/article/reddit-pixel',
  },
  {
    host: 'alb.reddit.com',
    vendor: 'Reddit Pixel',
    category: 'marketing',
    url: 'https://business.reddithelp.com/s/article/reddit-pixel',
  },
  {
    host: 'criteo.com',
    vendor: 'Criteo',
    category: 'marketing',
    url: 'https://help.criteo.com/kb/guide/en/all-criteo-onetag-events-and-parameters-vZbzbEeY86/',
  },
  {
    host: 'criteo.net',
    vendor: 'Criteo',
    category: 'marketing',
    url: 'https://help.criteo.com/kb/guide/en/all-criteo-onetag-events-and-parameters-vZbzbEeY86/',
  },
  {
    host: 'adnxs.com',
    vendor: 'Xandr',
    category: 'marketing',
    url: 'https://learn.microsoft.com/en-us/xandr/',
  },
  {
    host: 'taboola.com',
    vendor: 'Taboola',
    category: 'marketing',
    url: 'https://help.taboola.com/hc/en-us/articles/115006880507',
  },
  {
    host: 'outbrain.com',
    vendor: 'Outbrain',
    category: 'marketing',
    url: 'https://www.outbrain.com/help/advertisers/outbrain-pixel/',
  },
  {
    host: 'quantserve.com',
    vendor: 'Quantcast',
    category: 'marketing',
    url: 'https://help.quantcast.com/hc/en-us/articles/360051794614',
  },
];

/** Every built-in endpoint. */
export const builtinTrackers: readonly TrackerEndpoint[] = [...analyticsTrackers, ...advertisingTrackers];

/** A first-party path the site owner declares as tracking (a self-hosted or proxied tag). */
export interface DeclaredTrackingPath {
  /** A path on the site's own hosts and everything below it, e.g. `/collect` (not `/collections`) or `/metrics/`. */
  path: string;
  /** Default `analytics`. */
  category?: TrackerEndpoint['category'];
  vendor?: string;
}

export interface TrackerMatch {
  vendor: string;
  category: TrackerEndpoint['category'];
  /** `host:google-analytics.com`, `host:facebook.com/tr`, `declared-path:/collect`. */
  rule: string;
  source: 'builtin' | 'declared';
  url?: string;
}

export interface RequestClassifierOptions {
  /** The site scanned (URL or host): declared paths apply to its registrable domain only. */
  site: string;
  /** Replace the built-in list (default `builtinTrackers`). */
  trackers?: readonly TrackerEndpoint[];
  /** First-party request paths the site owner declares as tracking. */
  trackingPaths?: readonly (string | DeclaredTrackingPath)[];
}

/**
 * Returns a function telling whether a request URL goes to a tracker: a built-in endpoint (host
 * or subdomain, path prefix where given) or a declared first-party tracking path. ePrivacy Art 5(3)
 * covers the read and write a tag makes, so such a request needs the same consent as its cookie.
 */
export function createRequestClassifier(
  options: RequestClassifierOptions,
): (url: string) => TrackerMatch | undefined {
  const siteHost = hostOf(options.site) ?? normaliseHost(options.site);
  const trackers = options.trackers ?? builtinTrackers;
  const declared = (options.trackingPaths ?? []).map((entry) =>
    typeof entry === 'string' ? { path: entry } : entry,
  );
  return (url) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return undefined;
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
    const host = normaliseHost(parsed.hostname);
    for (const tracker of trackers) {
      if (domainMatches(host, tracker.host) && (!tracker.path || pathWithin(parsed.pathname, tracker.path))) {
        return {
          vendor: tracker.vendor,
          category: tracker.category,
          rule: `host:${tracker.host}${tracker.path ?? ''}`,
          source: 'builtin',
          url: tracker.url,
        };
      }
    }
    if (isFirstParty(host, siteHost)) {
      for (const entry of declared) {
        if (pathWithin(parsed.pathname, entry.path)) {
          return {
            vendor: entry.vendor ?? 'first-party (declared)',
            category: entry.category ?? 'analytics',
            rule: `declared-path:${entry.path}`,
            source: 'declared',
          };
        }
      }
    }
    return undefined;
  };
}

/** Whether `consent` covers a request to this tracker (GPC refuses marketing whatever the banner said). */
export function trackerAllowed(match: TrackerMatch, consent: ConsentState): boolean {
  return consentCovers(consent, match.category);
}

/**
 * `pathname` is `path` itself or lies below it. A bare prefix test would make `/collect` catch
 * the shop's `/collections/summer` and Meta's `/tr` catch `/translations`: page views reported as
 * tracker requests. The query never reaches here (`URL.pathname`), so `/tr?id=1` is `/tr`.
 */
function pathWithin(pathname: string, path: string): boolean {
  if (!pathname.startsWith(path)) return false;
  return path.endsWith('/') || pathname.length === path.length || pathname[path.length] === '/';
}

function hostOf(value: string): string | undefined {
  try {
    return normaliseHost(new URL(value).hostname);
  } catch {
    return undefined;
  }
}
