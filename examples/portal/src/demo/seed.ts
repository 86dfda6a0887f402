import type { Kysely } from 'kysely';
import { addDays } from 'date-fns/addDays';
import { addMonths } from 'date-fns/addMonths';
import { format } from 'date-fns/format';
import { subDays } from 'date-fns/subDays';
import { subMonths } from 'date-fns/subMonths';
import type { Clock } from '@privacykit/core';

/** The documented demo identity: file requests as this person to see a full export. */
export const DEMO_IDENTITY = { email: 'ada@example.com', customerNumber: 'C-1815', name: 'Ada Lovelace' };

interface DemoPerson {
  key: string;
  email: string;
  customerNumber: string;
  title: string;
  name: string;
  phone: string;
  address: string;
  dateOfBirth: string;
  /** Months since the account was opened. */
  age: number;
  /** Months since the contract ended; undefined while it runs. */
  endedMonthsAgo?: number;
  plan: string;
  newsletter: boolean;
}

const people: DemoPerson[] = [
  {
    key: 'ada',
    email: DEMO_IDENTITY.email,
    customerNumber: DEMO_IDENTITY.customerNumber,
    title: 'Ms',
    name: DEMO_IDENTITY.name,
    phone: '+44 20 7946 0018',
    address: '12 St James’s Square, London SW1Y 4JH, United Kingdom',
    dateOfBirth: '1815-12-10',
    age: 40,
    plan: 'Premium',
    newsletter: true,
  },
  {
    key: 'grace',
    email: 'grace@example.com',
    customerNumber: 'C-1906',
    title: 'Dr',
    name: 'Grace Hopper',
    phone: '+1 202 555 0143',
    address: '1 Navy Yard, Arlington VA 22202, USA',
    dateOfBirth: '1906-12-09',
    age: 80,
    endedMonthsAgo: 70,
    plan: 'Standard',
    newsletter: false,
  },
  {
    key: 'alan',
    email: 'alan@example.com',
    customerNumber: 'C-1912',
    title: 'Mr',
    name: 'Alan Turing',
    phone: '+44 161 496 0754',
    address: 'Hollymeade, Wilmslow SK9 1QR, United Kingdom',
    dateOfBirth: '1912-06-23',
    age: 30,
    endedMonthsAgo: 8,
    plan: 'Premium',
    newsletter: true,
  },
  {
    key: 'katherine',
    email: 'katherine@example.com',
    customerNumber: 'C-1918',
    title: 'Ms',
    name: 'Katherine Johnson',
    phone: '+1 757 555 0101',
    address: '8 Langley Boulevard, Hampton VA 23681, USA',
    dateOfBirth: '1918-08-26',
    age: 14,
    plan: 'Standard',
    newsletter: false,
  },
  {
    key: 'edsger',
    email: 'edsger@example.com',
    customerNumber: 'C-1930',
    title: 'Prof',
    name: 'Edsger Dijkstra',
    phone: '+31 40 555 0199',
    address: 'Den Dolech 2, 5612 AZ Eindhoven, Netherlands',
    dateOfBirth: '1930-05-11',
    age: 150,
    endedMonthsAgo: 130,
    plan: 'Premium',
    newsletter: false,
  },
];

const day = (date: Date) => format(date, 'yyyy-MM-dd');
const month = (date: Date) => format(date, 'yyyy-MM');

export interface SeedResult {
  seeded: boolean;
  customers: number;
  invoices: number;
}

/**
 * Fills the demo host tables with sample clients, their contracts, invoices, orders, cards on
 * file, logins, tickets and newsletter subscriptions (plus two prospects), with dates around
 * `clock.now()` so the retention pages show rules coming due. Idempotent: does nothing when the
 * demo identity already exists.
 */
export async function seedDemo(options: {
  db: Kysely<any>;
  tenant: string;
  clock: Clock;
}): Promise<SeedResult> {
  const { db, tenant, clock } = options;
  const now = clock.now();
  const existing = await db
    .selectFrom('customers')
    .select('id')
    .where('tenant', '=', tenant)
    .where('email', '=', DEMO_IDENTITY.email)
    .executeTakeFirst();
  if (existing) return { seeded: false, customers: 0, invoices: 0 };

  let invoices = 0;
  await db.transaction().execute(async (trx) => {
    for (const person of people) {
      const id = `cus_${person.key}`;
      const opened = subMonths(now, person.age);
      const ended = person.endedMonthsAgo === undefined ? undefined : subMonths(now, person.endedMonthsAgo);
      const lastActive = ended ?? subDays(now, 3);
      await trx
        .insertInto('customers')
        .values({
          id,
          tenant,
          email: person.email,
          customer_number: person.customerNumber,
          title: person.title,
          name: person.name,
          phone: person.phone,
          address: person.address,
          date_of_birth: person.dateOfBirth,
          created_on: day(opened),
          contract_end: ended ? day(ended) : null,
          last_contact: day(lastActive),
          last_purchase: day(subMonths(lastActive, 1)),
          last_account_use: day(lastActive),
        })
        .execute();
      await trx
        .insertInto('contracts')
        .values({
          id: `con_${person.key}`,
          tenant,
          customer_id: id,
          plan: person.plan,
          started_on: day(opened),
          ended_on: ended ? day(ended) : null,
        })
        .execute();

      // One invoice a year, from the opening to the end of the contract.
      let n = 0;
      for (let at = addMonths(opened, 1); at <= lastActive; at = addMonths(at, 12)) {
        n += 1;
        invoices += 1;
        await trx
          .insertInto('invoices')
          .values({
            id: `inv_${person.key}_${n}`,
            tenant,
            customer_id: id,
            billing_email: person.email,
            billing_name: person.name,
            number: `${format(at, 'yyyy')}-${person.customerNumber.slice(2)}-${n}`,
            invoice_date: day(at),
            amount_cents: person.plan === 'Premium' ? 1_200_000 : 480_000,
            currency: 'EUR',
          })
          .execute();
        await trx
          .insertInto('orders')
          .values({
            id: `ord_${person.key}_${n}`,
            tenant,
            customer_id: id,
            ordered_on: day(subDays(at, 2)),
            description: `${person.plan} plan, 12 months`,
            amount_cents: person.plan === 'Premium' ? 1_200_000 : 480_000,
            payment_received_on: day(addDays(at, 5)),
          })
          .execute();
      }

      const debit = subMonths(lastActive, 1);
      await trx
        .insertInto('payment_cards')
        .values({
          id: `card_${person.key}`,
          tenant,
          customer_id: id,
          masked_number: `•••• •••• •••• ${person.customerNumber.slice(-4)}`,
          expiry_month: month(addMonths(lastActive, person.endedMonthsAgo ? -2 : 20)),
          debit_date: day(debit),
          card_type: person.key === 'alan' ? 'deferred' : 'immediate',
          payment_received_on: day(addDays(debit, 1)),
        })
        .execute();

      for (let i = 0; i < 3; i += 1) {
        const at = subDays(lastActive, i * 9);
        await trx
          .insertInto('logins')
          .values({
            id: `log_${person.key}_${i}`,
            tenant,
            customer_id: id,
            at: at.toISOString(),
            ip_address: `203.0.113.${i * 40 + 7}`.replace(/\.\d+$/, '.0'),
            user_agent: i % 2 ? 'Firefox/128.0 (X11; Linux x86_64)' : 'Safari/17.4 (Macintosh)',
            recorded_on: day(at),
          })
          .execute();
      }

      await trx
        .insertInto('support_tickets')
        .values({
          id: `tic_${person.key}`,
          tenant,
          customer_id: id,
          opened_on: day(subMonths(lastActive, 4)),
          closed_on: day(subMonths(lastActive, 4)),
          subject: 'Custom domain for our portal',
          body: `Hello, could you point data.${person.key}.example to our DOMAIN? Thanks, ${person.name}`,
          rating: 5,
        })
        .execute();

      if (person.newsletter) {
        await trx
          .insertInto('newsletter_subscriptions')
          .values({
            id: `nl_${person.key}`,
            tenant,
            email: person.email,
            topics: 'product news, open data events',
            subscribed_on: day(opened),
            unsubscribed_on: null,
            last_contact: day(subDays(now, 20)),
          })
          .execute();
      }
    }
    // Prospects: newsletter subscribers without a contract.
    for (const [key, email, monthsAgo] of [
      ['p1', 'prospect.linus@example.com', 10],
      ['p2', 'prospect.barbara@example.com', 40],
    ] as const) {
      await trx
        .insertInto('newsletter_subscriptions')
        .values({
          id: `nl_${key}`,
          tenant,
          email,
          topics: 'open data events',
          subscribed_on: day(subMonths(now, monthsAgo)),
          unsubscribed_on: null,
          last_contact: day(subMonths(now, monthsAgo)),
        })
        .execute();
    }
  });
  return { seeded: true, customers: people.length, invoices };
}
