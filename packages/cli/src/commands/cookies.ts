import type { Command } from 'commander';
import type { AuditResponse, Classifier, ConsentState, CookieClassification } from '@privacykit/cookies';
import { cliError } from '../errors.js';
import { readTextFile } from '../files.js';
import { positiveIntegerOption } from '../options.js';
import { formatTable } from '../output.js';
import { examples } from '../program.js';
import type { CommandScope, ProgramKit } from '../program.js';

/** Site-owner overrides from the policy's declared cookies, when a config is present. */
async function classifierOf(scope: CommandScope, ocd?: string): Promise<Classifier> {
  const cookies = await import('@privacykit/cookies');
  const config = await scope.config().catch((error: unknown) => {
    // Cookies commands work without a project; only an explicit --config must load.
    if (scope.globals.config) throw error;
    return undefined;
  });
  return cookies.createClassifier({
    ...(config ? { overrides: cookies.overridesFromPolicy(config.policy.cookies) } : {}),
    ...(ocd
      ? {
          openCookieDatabase: cookies.loadOpenCookieDatabase(
            readTextFile(scope.io.cwd, ocd, 'Open Cookie Database CSV'),
          ),
        }
      : {}),
  });
}

function classificationRow(classification: CookieClassification) {
  return {
    name: classification.name,
    category: classification.category,
    consent: classification.consentRequired ? 'required' : `exempt (${classification.exemption ?? ''})`,
    vendor: classification.vendor ?? '',
    confidence: classification.confidence.toFixed(2),
    source: classification.source,
  };
}

function consentOption(text: string): ConsentState {
  if (text === 'none') return {};
  if (text === 'all') return { preferences: true, analytics: true, marketing: true };
  const state: Record<string, boolean> = {};
  for (const item of text.split(',').map((part) => part.trim())) {
    if (!['preferences', 'analytics', 'marketing', 'gpc'].includes(item)) {
      throw cliError(
        'cli/usage',
        `--consent: "${item}" is not none, all, preferences, analytics, marketing or gpc`,
      );
    }
    state[item] = true;
  }
  return state as ConsentState;
}

interface HarFile {
  log: {
    entries: { request?: { url?: string }; response?: { headers?: { name: string; value: string }[] } }[];
  };
}

/** Responses of a HAR file, or of a text file of raw headers (`Set-Cookie: …` lines). */
function responsesOf(text: string, site: string | undefined): { site: string; responses: AuditResponse[] } {
  let har: HarFile | undefined;
  // JSON (a HAR starts with `{`) that does not parse or holds no entries is a broken HAR, not a
  // headers file with no Set-Cookie line: read as one, it passed the audit as clean.
  const looksJson = text.trimStart().startsWith('{');
  try {
    const parsed = JSON.parse(text) as Partial<HarFile>;
    if (parsed && Array.isArray(parsed.log?.entries)) har = parsed as HarFile;
  } catch {
    har = undefined;
  }
  if (looksJson && !har) {
    throw cliError('cli/invalid-file', 'the file is JSON but not a HAR (no log.entries), or is cut short');
  }
  if (har) {
    const responses = har.log.entries.map((entry) => ({
      url: entry.request?.url ?? site ?? '',
      setCookie: (entry.response?.headers ?? [])
        .filter((header) => header.name.toLowerCase() === 'set-cookie')
        .flatMap((header) => header.value.split('\n')),
    }));
    const first = responses.find((response) => response.url)?.url;
    const origin = site ?? first;
    if (!origin) throw cliError('cli/invalid-file', 'the HAR file names no URL: pass --site');
    return { site: origin, responses };
  }
  if (!site) throw cliError('cli/usage', 'a headers file needs --site <url>: which site set these cookies');
  const setCookie = text
    .split(/\r?\n/)
    .filter((line) => /^set-cookie\s*:/i.test(line))
    .map((line) => line.slice(line.indexOf(':') + 1).trim());
  return { site, responses: [{ url: site, setCookie }] };
}

export function registerCookies(program: Command, kit: ProgramKit): void {
  const cookies = program
    .command('cookies')
    .description(
      'classify cookies, audit Set-Cookie headers, scan a site before and after consent (ePrivacy Art 5(3))',
    );

  examples(
    cookies
      .command('classify')
      .description('category, consent verdict, vendor, confidence and evidence of each cookie name')
      .argument('<names...>', 'cookie names')
      .option('--domain <domain>', 'the domain that sets them')
      .option('--third-party', 'they are set by another site than the one visited')
      .option('--ocd <csv>', 'also consult the Open Cookie Database (its CSV file)'),
    [
      'privacykit cookies classify _ga _fbp PHPSESSID',
      'privacykit cookies classify _hjSessionUser_123 --json',
    ],
  ).action(
    kit.action(async (scope) => {
      const [names] = scope.command.processedArgs as [string[]];
      const options = scope.options<{ domain?: string; thirdParty?: boolean; ocd?: string }>();
      const classifier = await classifierOf(scope, options.ocd);
      const results = names.map((name) =>
        classifier.classify({
          name,
          ...(options.domain ? { domain: options.domain } : {}),
          ...(options.thirdParty ? { firstParty: false } : {}),
        }),
      );
      scope.out.result({ cookies: results }, () =>
        formatTable(results.map(classificationRow), [
          { label: 'NAME', value: (row) => row.name },
          { label: 'CATEGORY', value: (row) => row.category },
          { label: 'CONSENT', value: (row) => row.consent },
          { label: 'VENDOR', value: (row) => row.vendor },
          { label: 'CONFIDENCE', value: (row) => row.confidence, align: 'right' },
          { label: 'SOURCE', value: (row) => row.source },
        ]),
      );
      return 0;
    }),
  );

  examples(
    cookies
      .command('audit')
      .description(
        'audit the Set-Cookie headers of a HAR file or a raw headers file; exit 1 on cookies set without the consent they need',
      )
      .argument('<file>', 'a HAR export, or a text file with Set-Cookie: lines')
      .option('--site <url>', 'the site audited (default: the first URL of the HAR)')
      .option(
        '--consent <state>',
        'consent given when the headers were captured: none, all, or a list such as analytics,preferences',
        'none',
      )
      .option('--ocd <csv>', 'also consult the Open Cookie Database (its CSV file)'),
    [
      'privacykit cookies audit homepage.har',
      'privacykit cookies audit headers.txt --site https://shop.example --json',
    ],
  ).action(
    kit.action(async (scope) => {
      const [file] = scope.command.processedArgs as [string];
      const options = scope.options<{ site?: string; consent: string; ocd?: string }>();
      const consent = consentOption(options.consent);
      const { auditSetCookies } = await import('@privacykit/cookies');
      const input = responsesOf(readTextFile(scope.io.cwd, file, 'headers file'), options.site);
      const audit = auditSetCookies({
        ...input,
        consent,
        classifier: await classifierOf(scope, options.ocd),
      });
      scope.out.result({ site: input.site, consent, ...audit }, () => [
        formatTable(audit.cookies, [
          { label: 'NAME', value: (row) => row.cookie.name },
          { label: 'DOMAIN', value: (row) => row.domain },
          { label: 'PARTY', value: (row) => (row.firstParty ? 'first' : 'third') },
          { label: 'CATEGORY', value: (row) => row.classification.category },
          { label: 'CONSENT', value: (row) => (row.classification.consentRequired ? 'required' : 'exempt') },
          {
            label: 'LIFETIME',
            value: (row) => (row.lifetimeSeconds === null ? 'session' : `${row.lifetimeSeconds}s`),
          },
        ]),
        ...audit.violations.map(
          (violation) => `VIOLATION ${violation.name} (${violation.domain}): ${violation.reason}`,
        ),
        `${audit.cookies.length} cookies, ${audit.violations.length} set without the consent they need`,
      ]);
      return audit.violations.length > 0 ? 1 : 0;
    }),
  );

  examples(
    cookies
      .command('scan')
      .description(
        'load a site in headless Chromium: cookies before consent, after refusal, after acceptance; exit 1 on violations',
      )
      .argument('<url>', 'the page to scan')
      .option('--gpc', 'send Sec-GPC: 1 and expose navigator.globalPrivacyControl')
      .option('--accept <selector>', "CSS selector of the banner's accept button")
      .option('--refuse <selector>', "CSS selector of the banner's refuse button")
      .option('--chromium <path>', 'Chromium binary (default: $CHROMIUM_PATH or /usr/bin/chromium)')
      .option('--timeout <ms>', 'per navigation and click', positiveIntegerOption),
    [
      'privacykit cookies scan https://shop.example',
      'privacykit cookies scan http://localhost:3000 --refuse "#reject" --json',
    ],
  ).action(
    kit.action(async (scope) => {
      const [url] = scope.command.processedArgs as [string];
      const options = scope.options<{
        gpc?: boolean;
        accept?: string;
        refuse?: string;
        chromium?: string;
        timeout?: number;
      }>();
      const { scanSite } = await import('@privacykit/cookies/scan');
      scope.out.note(`scanning ${url} …`);
      const result = await scanSite(url, {
        classifier: await classifierOf(scope),
        ...(options.gpc ? { gpc: true } : {}),
        ...(options.accept || options.refuse
          ? {
              banner: {
                ...(options.accept ? { accept: options.accept } : {}),
                ...(options.refuse ? { refuse: options.refuse } : {}),
              },
            }
          : {}),
        ...(options.chromium ? { executablePath: options.chromium } : {}),
        ...(options.timeout ? { timeoutMs: options.timeout } : {}),
      });
      scope.out.result(result, () => [
        ...result.phases.map(
          (phase) =>
            `${phase.phase}: ${phase.cookies.length} cookies, ${phase.storage.length} storage items${phase.bannerClicked === false ? ' (banner button not found)' : ''}`,
        ),
        ...result.violations.map(
          (violation) =>
            `VIOLATION ${violation.kind} ${violation.name} (${violation.domain}, ${violation.category}): ${violation.reason} [${violation.phases.join(', ')}]`,
        ),
        `${result.violations.length} violation${result.violations.length === 1 ? '' : 's'}`,
      ]);
      return result.violations.length > 0 ? 1 : 0;
    }),
  );
}
