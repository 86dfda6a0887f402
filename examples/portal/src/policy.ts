import { definePolicy } from '@privacykit/core';

/**
 * The seed privacy policy (OpenDataSoft, updated 5/7/2018) declared as code. Every article that
 * makes a promise is here: the notice at /privacy is rendered from it, retention enforces its
 * Article 10, the consent ledger knows its consent purposes, and the cookie audit checks its
 * Article 12. Article numbers in comments point at the seed text.
 */
export const seedPolicy = definePolicy({
  // The seed text of 5/7/2018, declared a second time: the first declaration left out data and a
  // recipient the text names (Articles 7 and 8). A consent notice whose content changes needs a
  // new version (the ledger refuses grants under a version published with other content), and
  // the subjects who consented to the newsletter on the old one are asked again.
  version: '2018-05-07.2',
  effectiveDate: '2018-05-07',
  language: 'en',
  zone: 'Europe/Paris',
  // Article 2 / Preface.
  controller: {
    name: 'OpenDataSoft',
    address: '130, rue de Lourmel, 75015 PARIS, France',
    registration: 'SAS with a capital of €271,750.00, RCS PARIS 538 168 329',
    website: 'https://www.opendatasoft.com/',
  },
  processorRole:
    'OpenDataSoft acts as the processor of each CLIENT for the data the CLIENT collects through its DOMAIN; each CLIENT is the controller of the data of BENEFICIARIES of its DOMAINS and publishes its own policy there.',
  // Article 3.
  dpo: {
    name: 'Data Protection Officer',
    email: 'cil@opendatasoft.com',
    address: 'OpenDataSoft – Service juridique, 130, rue de Lourmel, 75015 PARIS',
  },
  supervisoryAuthority: {
    name: 'the CNIL (Commission nationale de l’informatique et des libertés)',
    address: '3 Place de Fontenoy, TSA 80715, 75334 PARIS CEDEX 07',
    website: 'https://www.cnil.fr/',
  },
  dataSubjects: [
    { id: 'clients', label: 'Clients (dataset producers subscribed to a service)' },
    { id: 'prospects', label: 'Prospects without a contract' },
    { id: 'users', label: 'Users of the website and platform' },
  ],
  // Article 4: navigation data and public social profiles are the data not provided directly.
  sources: [
    'Data on your navigation of the WEBSITE, collected through cookies and login data (Articles 4 and 12)',
    'Information you made public on your Twitter, Facebook and LinkedIn profiles, when you use their buttons (Article 13)',
  ],
  // Article 10: "security codes are not stored".
  prohibitedCategories: ['payment.card.security-code'],
  // Article 6, with the data of Article 7.
  purposes: [
    {
      id: 'service',
      name: 'Operate and continuously improve the WEBSITE, its functionalities and the SERVICE',
      description:
        'Answer your requests and questions, help and support, tests and satisfaction surveys, and PLATFORM user statistics.',
      activities: [
        'Answers to your requests and questions',
        'Help and support services',
        'Tests and satisfaction surveys on the functionalities provided',
        'Utilizing PLATFORM user statistics',
      ],
      legalBases: [
        {
          basis: 'contract',
          description:
            'Required to execute pre-contractual measures taken at your request, your membership and your contract.',
        },
        {
          basis: 'legitimate-interests',
          legitimateInterest:
            'Ensuring the best experience possible on our PLATFORM and the best quality possible for our SERVICE.',
        },
      ],
      categories: [
        'identity',
        'contact',
        'usage.logs',
        'usage.statistics',
        'usage.traffic',
        'usage.connection',
        'support',
      ],
      dataSubjects: ['clients', 'users'],
      recipients: ['staff', 'crm', 'cloud-storage', 'tracking', 'other-users'],
      retention: ['customer-relationship', 'visitor-statistics', 'traffic-data'],
      tags: ['essential'],
      provision: {
        required: true,
        consequences:
          'Without these data we cannot open your DOMAIN or provide the SERVICES you subscribed to.',
      },
    },
    {
      id: 'payments',
      name: 'Manage payments for SERVICES',
      description:
        'Collect and process payment data to manage payments for the SERVICE provided in the PREMIUM package; OpenDataSoft is the controller of the payment data of CLIENTS subscribed to it.',
      legalBases: [
        {
          basis: 'contract',
          description:
            'Required to execute pre-contractual measures taken at your request, your membership and your contract.',
        },
      ],
      categories: [
        'identity',
        'contact',
        'transaction',
        'usage.logs',
        'account.subscription',
        'payment.card.number',
        'payment.card.expiry',
        'payment.bank-account',
        'payment.cheque',
        'payment.method',
        'billing.payments',
        'billing.invoices',
      ],
      dataSubjects: ['clients'],
      recipients: ['staff', 'payment', 'cloud-storage'],
      retention: ['bank-card', 'invoices'],
      tags: ['essential'],
    },
    {
      id: 'newsletter',
      name: 'Send marketing newsletters',
      description:
        'Newsletters of a marketing nature offering our latest products and, when applicable, those of our partners.',
      legalBases: [{ basis: 'consent' }],
      // Article 7 lists the whole identity block for newsletters and messages: title, names,
      // address, telephone number, email addresses, customer number, date of birth.
      categories: ['identity', 'contact', 'account.subscription', 'marketing.preferences'],
      dataSubjects: ['clients', 'prospects', 'users'],
      recipients: ['staff', 'emailing', 'crm'],
      retention: ['marketing-clients', 'marketing-non-clients', 'marketing-inactive'],
      tags: ['direct-marketing'],
    },
    {
      id: 'service-messages',
      name: 'Send non-marketing messages',
      description:
        'Emails of a non-marketing nature, such as information about the PLATFORM’s operational status.',
      legalBases: [
        {
          basis: 'legitimate-interests',
          legitimateInterest:
            'Keeping our users informed of the operational status of the PLATFORM they rely on.',
        },
      ],
      categories: ['identity', 'contact', 'account.subscription'],
      dataSubjects: ['clients', 'users'],
      recipients: ['staff', 'emailing', 'mail-dispatch'],
      retention: ['customer-relationship'],
    },
    {
      id: 'customer-relations',
      name: 'Manage CLIENTS',
      // Article 6 also names "your consent when it is required by regulations in force,
      // specifically in terms of marketing and cookies" for this purpose: those processings are
      // the consent purposes below (newsletter, audience measurement, targeted advertising), so
      // the notice says so here rather than making client management itself a consent purpose.
      description:
        'Contract, DOMAIN and BACK OFFICE management, the loyalty program, business monitoring, billing, sales statistics and reviews. Where regulations in force require your consent, specifically for marketing and cookies, we ask for it: see the newsletter, audience measurement and targeted advertising purposes.',
      activities: [
        'Contract management',
        'DOMAIN management',
        'BACK OFFICE management',
        'Management of our loyalty program',
        'Business monitoring of the relations',
        'Billing',
        'Compiling sales statistics',
        'Management of reviews on our products, services and content',
      ],
      legalBases: [
        {
          basis: 'legitimate-interests',
          legitimateInterest:
            'Ensuring the best business relationship possible with you and the best quality possible for our services.',
        },
      ],
      categories: [
        'identity',
        'contact',
        'transaction',
        'billing.payments',
        'usage.login-history',
        'support.reviews',
      ],
      dataSubjects: ['clients'],
      recipients: ['staff', 'crm', 'cloud-storage', 'mail-dispatch'],
      retention: ['customer-relationship', 'invoices', 'prospects'],
    },
    {
      // Article 5: B2B offers may be sent without prior consent to people informed and able to object.
      id: 'b2b-prospecting',
      name: 'Send B2B sales offers',
      description:
        'Offers for our B2B products, sent to people who were informed and may object at any time.',
      legalBases: [
        {
          basis: 'legitimate-interests',
          legitimateInterest:
            'Promoting our B2B products to professionals, as the CNIL allows without prior consent.',
        },
      ],
      categories: ['identity', 'contact'],
      dataSubjects: ['clients', 'prospects'],
      recipients: ['staff', 'crm', 'emailing'],
      retention: ['prospects', 'marketing-clients', 'marketing-non-clients', 'marketing-inactive'],
      tags: ['direct-marketing'],
    },
    {
      // Articles 4, 6 ("your consent when required … in terms of marketing and cookies") and 12.
      id: 'audience-measurement',
      name: 'Measure the audience of the WEBSITE with cookies',
      description: 'Visitor traffic analytics and statistics for the WEBSITE, particularly the pages viewed.',
      legalBases: [{ basis: 'consent' }],
      categories: ['device.cookies', 'usage.statistics'],
      dataSubjects: ['users'],
      recipients: ['tracking'],
      retention: ['visitor-statistics'],
      tags: ['analytics'],
    },
    {
      id: 'targeted-advertising',
      name: 'Show interest-based marketing and advertising',
      description:
        'Determine your needs and topics of interest from your navigation, and let third parties install cookies to target our marketing and advertising materials.',
      legalBases: [{ basis: 'consent' }],
      categories: ['device.cookies', 'marketing.interests'],
      dataSubjects: ['users'],
      recipients: ['tracking', 'cookie-partners'],
      retention: ['visitor-statistics'],
      tags: ['cross-context-advertising', 'sharing', 'profiling'],
    },
    {
      id: 'rights-requests',
      name: 'Manage requests to exercise your rights',
      description:
        'Handle requests under the GDPR and the French Computing and Civil Liberties Act, with proof of identity.',
      legalBases: [
        { basis: 'legal-obligation', law: 'GDPR Articles 12 to 22; Loi Informatique et Libertés' },
      ],
      categories: ['identity', 'contact', 'identity.id-document', 'rights-request'],
      dataSubjects: ['clients', 'prospects', 'users'],
      recipients: ['staff'],
      retention: ['id-documents'],
    },
    {
      id: 'litigation',
      name: 'Manage unpaid invoices and litigations',
      description:
        'Pre-litigation procedures for unpaid invoices; preparing, conducting and monitoring legal remedies; executing court rulings.',
      activities: [
        'Managing pre-litigation procedures for unpaid invoices',
        'Preparing, conducting and monitoring legal remedies',
        'Executing any resulting court rulings',
      ],
      legalBases: [
        { basis: 'legal-obligation', law: 'French Code of Commerce and Civil Code' },
        {
          basis: 'legitimate-interests',
          legitimateInterest:
            'Collecting payment for the services provided and, when applicable, handling litigation proceedings.',
        },
      ],
      categories: ['identity', 'contact', 'billing.payments', 'litigation'],
      specialCondition: 'legal-claims',
      dataSubjects: ['clients'],
      recipients: ['staff', 'legal-professionals'],
      retention: ['pre-litigation', 'litigation'],
    },
  ],
  // Article 8.
  recipients: [
    {
      id: 'staff',
      name: 'Authorized OpenDataSoft personnel',
      kind: 'internal',
      description:
        'R&D, marketing, sales, administration, logistics, IT, service improvement, customer relations, client development and quality control.',
      locations: ['FR'],
    },
    {
      id: 'crm',
      name: 'SaaS CRM solutions, including analytical solutions',
      kind: 'processor',
      locations: ['EU', 'US'],
    },
    { id: 'cloud-storage', name: 'Cloud storage providers', kind: 'processor', locations: ['EU', 'US'] },
    {
      id: 'payment',
      name: 'Payment and billing processing solutions',
      kind: 'processor',
      locations: ['EU', 'US'],
    },
    { id: 'tracking', name: 'Tracking solutions', kind: 'processor', locations: ['EU', 'US'] },
    { id: 'emailing', name: 'Emailing solutions', kind: 'processor', locations: ['EU', 'US'] },
    { id: 'mail-dispatch', name: 'Mail dispatch solutions', kind: 'processor', locations: ['EU'] },
    {
      id: 'legal-professionals',
      name: 'Jurisdictions, mediators, accountants, auditors, attorneys, bailiffs and collection agencies',
      kind: 'third-party',
      description: 'If applicable, for the management of unpaid invoices and litigations.',
      locations: ['FR'],
    },
    {
      // Article 8: "Other USERS on the PLATFORM that you select", with what they never see.
      id: 'other-users',
      name: 'Other USERS on the PLATFORM that you select',
      kind: 'third-party',
      description:
        'They never see the email address you gave when creating your BACK OFFICE, your electronic addresses or your telephone numbers; the internal mailbox shows your identity only if you choose to disclose it.',
    },
    {
      id: 'cookie-partners',
      name: 'Third parties installing cookies on your devices when you consent',
      kind: 'controller',
      locations: ['EU', 'US'],
    },
  ],
  // Article 9: "appropriate measures", copies of the contractual guarantees on request to the DPO.
  transfers: [
    {
      id: 'us-service-providers',
      recipients: ['crm', 'cloud-storage', 'payment', 'tracking', 'emailing', 'cookie-partners'],
      destination: 'US',
      safeguard: 'standard-contractual-clauses',
      description:
        'Some personal information is saved on servers located outside the European Economic Area.',
      copyAvailableFrom:
        'cil@opendatasoft.com, or by post to OpenDataSoft – Service juridique, 130, rue de Lourmel, 75015 PARIS',
    },
  ],
  // Article 10, rule by rule (see shared/reference/retention.md).
  retention: [
    {
      id: 'customer-relationship',
      title: 'Customer relationship data',
      summary:
        'Kept for the duration of the contract, then archived for five years for evidentiary purposes.',
      categories: ['identity', 'contact', 'transaction', 'account'],
      purposes: ['customer-relations', 'service'],
      facts: { contractEnd: { label: 'the end of the contract', type: 'date' } },
      phases: [
        { action: 'restrict', due: { from: 'contractEnd' }, reason: 'for evidentiary purposes' },
        { action: 'delete', due: { from: 'contractEnd', after: 'P5Y' } },
      ],
    },
    {
      id: 'invoices',
      title: 'Invoices and accounting data',
      summary: 'Retained for 10 years.',
      categories: ['billing.invoices'],
      purposes: ['payments', 'customer-relations'],
      facts: { invoiceDate: { label: 'the invoice date', type: 'date' } },
      phases: [{ action: 'delete', due: { from: 'invoiceDate', after: 'P10Y' } }],
      keepDespiteErasure: 'legal-obligation',
    },
    {
      id: 'prospects',
      title: 'Prospect data (no contract)',
      summary: 'Kept for three years from collection or from your last contact with us.',
      categories: ['identity', 'contact'],
      purposes: ['customer-relations', 'b2b-prospecting'],
      facts: {
        collectedAt: { label: 'their collection', type: 'date' },
        lastContact: { label: 'your last contact with us', type: 'date' },
      },
      phases: [
        {
          action: 'delete',
          due: {
            latest: [
              { from: 'collectedAt', after: 'P3Y' },
              { from: 'lastContact', after: 'P3Y' },
            ],
          },
        },
      ],
    },
    {
      id: 'bank-card',
      title: 'Bank card data',
      summary:
        'Deleted once the transaction is complete; may be kept as proof for 13 months after the debit date (15 months for deferred debit cards), never past the card’s expiry date. Security codes are never stored.',
      categories: ['payment.card'],
      purposes: ['payments'],
      facts: {
        paymentReceived: { label: 'the receipt of the order payment', type: 'date' },
        debitDate: { label: 'the debit date', type: 'date' },
        cardType: { label: 'the card type', type: 'value' },
        cardExpiry: { label: 'the card expiry date', type: 'month' },
      },
      phases: [
        {
          action: 'restrict',
          due: { from: 'paymentReceived' },
          reason: 'as proof in case the transaction is contested',
        },
        {
          action: 'delete',
          due: {
            earliest: [
              {
                when: [
                  {
                    if: { fact: 'cardType', equals: 'deferred' },
                    then: { from: 'debitDate', after: 'P15M' },
                  },
                ],
                otherwise: { from: 'debitDate', after: 'P13M' },
              },
              { from: 'cardExpiry', endOfMonth: true },
            ],
          },
        },
      ],
    },
    {
      id: 'marketing-clients',
      title: 'Marketing data of clients',
      summary: 'Three years from the end of the business relationship.',
      categories: ['marketing.preferences', 'contact'],
      purposes: ['newsletter', 'b2b-prospecting'],
      facts: { relationshipEnd: { label: 'the end of the business relationship', type: 'date' } },
      phases: [{ action: 'delete', due: { from: 'relationshipEnd', after: 'P3Y' } }],
    },
    {
      id: 'marketing-non-clients',
      title: 'Marketing data of non-clients',
      summary: 'Three years from the date of your last contact.',
      categories: ['marketing.preferences', 'contact'],
      purposes: ['newsletter', 'b2b-prospecting'],
      facts: { lastContact: { label: 'your last contact with us', type: 'date' } },
      phases: [{ action: 'delete', due: { from: 'lastContact', after: 'P3Y' } }],
    },
    {
      id: 'marketing-inactive',
      title: 'Marketing use after inactivity',
      summary:
        'Not used for marketing once you have neither purchased nor used your account for 27 months and are not subscribed to the newsletter; then archived for five years.',
      categories: ['marketing.preferences', 'contact'],
      purposes: ['newsletter', 'b2b-prospecting'],
      facts: {
        lastPurchase: { label: 'your last purchase', type: 'date' },
        lastAccountUse: { label: 'your last use of your account', type: 'date' },
        subscribed: { label: 'a newsletter subscription', type: 'value' },
      },
      phases: [
        {
          action: 'restrict',
          purposes: ['newsletter', 'b2b-prospecting'],
          due: {
            when: [
              {
                if: { not: { fact: 'subscribed', equals: true } },
                then: {
                  latest: [
                    { from: 'lastPurchase', after: 'P27M' },
                    { from: 'lastAccountUse', after: 'P27M' },
                  ],
                },
              },
            ],
          },
        },
        {
          // 27 months + 5 years, counted from the trigger itself (periods are never chained).
          action: 'delete',
          due: {
            when: [
              {
                if: { not: { fact: 'subscribed', equals: true } },
                then: {
                  latest: [
                    { from: 'lastPurchase', after: 'P7Y3M' },
                    { from: 'lastAccountUse', after: 'P7Y3M' },
                  ],
                },
              },
            ],
          },
          reason: 'after five years of archiving for evidentiary reasons',
        },
      ],
    },
    {
      id: 'id-documents',
      title: 'Identification documents supplied with a rights request',
      summary:
        'One year if you exercised your right to access or rectify; three years if you exercised your right to object.',
      categories: ['identity.id-document'],
      purposes: ['rights-requests'],
      facts: {
        requestClosed: { label: 'the closure of your request', type: 'date' },
        requestType: { label: 'the right exercised', type: 'value' },
      },
      phases: [
        {
          action: 'delete',
          due: {
            when: [
              {
                if: { fact: 'requestType', in: ['access', 'rectification'] },
                then: { from: 'requestClosed', after: 'P1Y' },
              },
              {
                if: { fact: 'requestType', equals: 'objection' },
                then: { from: 'requestClosed', after: 'P3Y' },
              },
            ],
          },
        },
      ],
    },
    {
      id: 'visitor-statistics',
      title: 'Visitor analysis statistics',
      summary: '26 months, after which they are deleted or anonymised.',
      categories: ['usage.statistics'],
      purposes: ['audience-measurement', 'service'],
      facts: { collectedAt: { label: 'their collection', type: 'date' } },
      phases: [{ action: 'anonymise', due: { from: 'collectedAt', after: 'P26M' } }],
    },
    {
      id: 'traffic-data',
      title: 'Raw visitor traffic data linked to a username',
      summary: '13 months, after which they are deleted or anonymised.',
      categories: ['usage.traffic', 'usage.logs', 'usage.connection'],
      purposes: ['service'],
      facts: { recordedAt: { label: 'their recording', type: 'date' } },
      phases: [{ action: 'anonymise', due: { from: 'recordedAt', after: 'P13M' } }],
    },
    {
      id: 'pre-litigation',
      title: 'Pre-litigation data',
      summary:
        'Deleted once the dispute has been settled amicably or, failing that, at the limitation of the related lawsuit.',
      categories: ['litigation', 'billing.payments'],
      purposes: ['litigation'],
      facts: {
        settledAt: { label: 'the amicable settlement of the dispute', type: 'date' },
        limitationDate: { label: 'the limitation of the related lawsuit', type: 'date' },
      },
      phases: [
        {
          action: 'delete',
          due: {
            when: [{ if: { fact: 'settledAt', present: true }, then: { from: 'settledAt' } }],
            otherwise: { from: 'limitationDate' },
          },
        },
      ],
      keepDespiteErasure: 'legal-claims',
    },
    {
      id: 'litigation',
      title: 'Litigation data',
      summary:
        'Deleted once all ordinary and extraordinary appeals against the court ruling have been exhausted.',
      categories: ['litigation'],
      purposes: ['litigation'],
      facts: {
        appealsExhausted: { label: 'the exhaustion of all ordinary and extraordinary appeals', type: 'date' },
      },
      phases: [{ action: 'delete', due: { from: 'appealsExhausted' } }],
      keepDespiteErasure: 'legal-claims',
    },
  ],
  // Article 12: technical cookies are exempt; tracking cookies need consent.
  cookies: [
    {
      name: 'pk_session',
      provider: 'OpenDataSoft',
      category: 'necessary',
      purpose: 'service',
      description: 'Keeps you signed in and protects forms against cross-site request forgery.',
      duration: 'session',
      exempt: true,
    },
    {
      name: 'pk_consent',
      provider: 'OpenDataSoft',
      category: 'necessary',
      purpose: 'service',
      description: 'Remembers your cookie choices so the banner is not shown again.',
      duration: 'P6M',
      exempt: true,
    },
    {
      name: '_ga',
      provider: 'Google Analytics',
      category: 'analytics',
      purpose: 'audience-measurement',
      description: 'Distinguishes visitors to measure the audience of the WEBSITE.',
      duration: 'P13M',
    },
    {
      name: '_ga_',
      prefix: true,
      provider: 'Google Analytics',
      category: 'analytics',
      purpose: 'audience-measurement',
      description: 'Keeps the state of a visit for audience measurement.',
      duration: 'P13M',
    },
    {
      name: '_fbp',
      provider: 'Meta',
      firstParty: true,
      category: 'marketing',
      purpose: 'targeted-advertising',
      description: 'Lets Meta deliver and measure interest-based advertising.',
      duration: 'P3M',
    },
  ],
  // Article 11.
  rights: {
    offered: [
      'access',
      'rectification',
      'erasure',
      'restriction',
      'portability',
      'objection',
      'withdraw-consent',
      'post-mortem-directives',
      'complaint',
    ],
    channels: [
      { kind: 'email', value: 'cil@opendatasoft.com' },
      { kind: 'post', value: 'OpenDataSoft – Service juridique, 130, rue de Lourmel, 75015 PARIS' },
      { kind: 'web', value: '/rights' },
    ],
    afterDeath:
      'In the event of death, and in the absence of any instructions from you, we destroy your data unless it proves necessary to retain them for evidentiary purposes or to comply with a legal requirement.',
    notes:
      'If your claim pertains to processing by a CLIENT on its DOMAIN, exercise your rights with that CLIENT at the address provided on each DOMAIN.',
  },
});
