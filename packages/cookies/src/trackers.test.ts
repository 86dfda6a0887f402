import { describe, expect, it } from 'vitest';
import { consentCovers } from './consent-state.js';
import { builtinTrackers, createRequestClassifier, trackerAllowed } from './trackers.js';

describe('tracker requests', () => {
  const trackerOf = createRequestClassifier({
    site: 'https://shop.example/',
    trackingPaths: ['/collect', { path: '/px/', category: 'marketing', vendor: 'Our ad proxy' }],
  });

  it('matches the vendor hosts and their subdomains', () => {
    expect(trackerOf('https://www.google-analytics.com/g/collect?v=2')).toMatchObject({
      vendor: 'Google Analytics',
      category: 'analytics',
      rule: 'host:google-analytics.com',
      source: 'builtin',
    });
    expect(trackerOf('https://www.googletagmanager.com/gtag/js?id=G-1')?.vendor).toBe('Google Tag Manager');
    expect(trackerOf('https://ad.doubleclick.net/x')?.category).toBe('marketing');
    expect(trackerOf('https://connect.facebook.net/en_US/fbevents.js')?.vendor).toBe('Meta Pixel');
    expect(trackerOf('https://bat.bing.com/bat.js')?.category).toBe('marketing');
    expect(trackerOf('https://www.clarity.ms/tag/abc')?.vendor).toBe('Microsoft Clarity');
    expect(trackerOf('https://static.hotjar.com/c/hotjar-1.js')?.vendor).toBe('Hotjar');
    expect(trackerOf('https://snap.licdn.com/li.lms-analytics/insight.min.js')?.category).toBe('marketing');
    expect(trackerOf('https://analytics.tiktok.com/i18n/pixel/events.js')?.vendor).toBe('TikTok Pixel');
    expect(trackerOf('https://static.ads-twitter.com/uwt.js')?.category).toBe('marketing');
  });

  it('path-bound endpoints match only their path; look-alike hosts do not match', () => {
    expect(trackerOf('https://www.facebook.com/tr?id=1&ev=PageView')?.rule).toBe('host:facebook.com/tr');
    expect(trackerOf('https://www.facebook.com/somepage')).toBeUndefined();
    expect(trackerOf('https://notgoogle-analytics.com/collect')).toBeUndefined();
    expect(trackerOf('https://google-analytics.com.evil.example/')).toBeUndefined();
    expect(trackerOf('data:text/plain,x')).toBeUndefined();
  });

  it('declared first-party paths count only on the site itself', () => {
    expect(trackerOf('https://shop.example/collect?e=pv')).toMatchObject({
      source: 'declared',
      category: 'analytics',
      rule: 'declared-path:/collect',
    });
    expect(trackerOf('https://cdn.shop.example/px/1.gif')).toMatchObject({
      category: 'marketing',
      vendor: 'Our ad proxy',
    });
    expect(trackerOf('https://other.example/collect')).toBeUndefined();
    expect(trackerOf('https://shop.example/cart')).toBeUndefined();
  });

  it('a path matches itself and what lies below it, never a longer word that starts the same', () => {
    // The shop's own pages are not tracker requests because their path begins like one.
    expect(trackerOf('https://shop.example/collect')?.rule).toBe('declared-path:/collect');
    expect(trackerOf('https://shop.example/collect/batch')?.rule).toBe('declared-path:/collect');
    expect(trackerOf('https://shop.example/collections/summer')).toBeUndefined();
    expect(trackerOf('https://shop.example/collectibles')).toBeUndefined();
    expect(trackerOf('https://www.facebook.com/translations/x')).toBeUndefined();
    expect(trackerOf('https://www.facebook.com/tr/')?.rule).toBe('host:facebook.com/tr');
    // A declared path ending in `/` matches below it only.
    expect(trackerOf('https://shop.example/px/1.gif')?.vendor).toBe('Our ad proxy');
    expect(trackerOf('https://shop.example/pxl')).toBeUndefined();
  });

  it('consent: analytics needs analytics consent, marketing is refused by GPC', () => {
    const ga = trackerOf('https://www.google-analytics.com/g/collect')!;
    const fb = trackerOf('https://connect.facebook.net/x.js')!;
    expect(trackerAllowed(ga, {})).toBe(false);
    expect(trackerAllowed(ga, { analytics: true })).toBe(true);
    expect(trackerAllowed(fb, { marketing: true })).toBe(true);
    expect(trackerAllowed(fb, { marketing: true, gpc: true })).toBe(false);
    expect(consentCovers({}, 'analytics')).toBe(false);
  });

  it('every built-in endpoint cites vendor documentation and is analytics or marketing', () => {
    expect(builtinTrackers.length).toBeGreaterThan(30);
    for (const tracker of builtinTrackers) {
      expect(tracker.url).toMatch(/^https:\/\//);
      expect(['analytics', 'marketing']).toContain(tracker.category);
      expect(tracker.host).toBe(tracker.host.toLowerCase());
    }
  });
});
