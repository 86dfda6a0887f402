import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessInformation, fixedClock, isPrivacyKitError } from '@privacykit/core';
import { openDatabase, writeTransaction } from '@privacykit/core/db';
import { createTestDatabase, testEngines } from '@privacykit/core/testing';
import type { TestDatabase } from '@privacykit/core/testing';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportSubject } from './export-subject.js';
import type { ExportManifest } from './export-subject.js';
import { collect, createHostSchema, dataMap, hostile, parseCsv, policy, unzip } from './fixtures.js';
import { checkPortabilityDocument, portabilitySchema } from './portability.js';

const clock = fixedClock('2024-06-01T12:00:00.000Z');
const ada = { email: ['ada@example.com'] };

function text(files: Map<string, Buffer>, path: string): string {
  const data = files.get(path);
  if (!data) throw new Error(`${path} missing from the export (has ${[...files.keys()].join(', ')})`);
  return data.toString('utf8');
}

// A consent record as @privacykit/consent's consentRecords() gives it (plain JSON).
const consentRecord = {
  schemaVersion: 'privacykit-consent-record/1',
  purpose: { id: 'ads', legalBasis: 'consent' },
  status: 'dpv:ConsentWithdrawn',
  events: [
    { type: 'decision', status: 'dpv:ConsentGiven' },
    { type: 'decision', status: 'dpv:ConsentWithdrawn' },
  ],
};

describe.each(testEngines())('exportSubject on $engine', (engine) => {
  let test: TestDatabase;
  /** Ada's export from this engine's host database, with `extra` options. */
  const exportAda = (extra: Partial<Parameters<typeof exportSubject>[0]> = {}) =>
    exportSubject({ db: test.db, dataMap, policy, identities: ada, clock, ...extra });
  let files: Map<string, Buffer>;

  beforeAll(async () => {
    test = await createTestDatabase(engine);
    await createHostSchema(test.db);
    const stream = exportAda({
      consentHistory: (async function* () {
        yield { purpose: 'ads', event: 'granted', at: '2024-01-01T00:00:00.000Z' };
        yield { purpose: 'ads', event: 'withdrawn', at: '2024-02-01T00:00:00.000Z' };
      })(),
      consentRecords: [consentRecord],
      requestHistory: [{ id: 'req-1', right: 'access', status: 'in-progress' }],
    });
    files = await unzip(await collect(stream));
  });
  afterAll(async () => {
    await test?.destroy();
  });

  it('writes every table of the subject as JSON that round-trips to exactly the database rows', async () => {
    const expected: Record<string, unknown[]> = {
      customers: await test.db
        .selectFrom('customers')
        .selectAll()
        .where('id', '=', 1)
        .orderBy('id')
        .execute(),
      orders: await test.db
        .selectFrom('orders')
        .selectAll()
        .where('customer_id', '=', 1)
        .orderBy('id')
        .execute(),
      order_lines: await test.db
        .selectFrom('order_lines')
        .selectAll()
        .where('order_id', 'in', [1, 2, 3])
        .orderBy('id')
        .execute(),
      invoices: await test.db.selectFrom('invoices').selectAll().where('customer_id', '=', 1).execute(),
      logs: await test.db.selectFrom('logs').selectAll().where('id', 'in', [1, 4]).orderBy('id').execute(),
    };
    for (const [table, rows] of Object.entries(expected)) {
      expect(rows.length).toBeGreaterThan(0);
      expect(JSON.parse(text(files, `data/${table}.json`)), table).toEqual(rows);
    }
  });

  it("never includes another subject's rows, nor rows matching only by letter case", () => {
    for (const [path, data] of files) {
      const content = data.toString('utf8');
      expect(content, path).not.toMatch(/bob|FR999|someone else/i);
    }
  });

  it('writes CSV per table with RFC 4180 quoting and formula cells neutralised', () => {
    const customers = parseCsv(text(files, 'csv/customers.csv'));
    expect(customers[0]).toEqual(['id', 'email', 'customer_number', 'name', 'note', 'interests']);
    expect(customers[1]![3]).toBe(`'${hostile.formula}`);
    const orders = parseCsv(text(files, 'csv/orders.csv'));
    const comments = orders.slice(1).map((record) => record[4]);
    expect(comments).toEqual([hostile.tricky, hostile.unicode, "'-1+2"]);
    const lines = parseCsv(text(files, 'csv/order_lines.csv'));
    expect(lines.slice(1).map((record) => record[2])).toContain("'@SUM(1)");
    // Numbers are data, not formulas: a negative quantity stays a number.
    expect(lines.slice(1).map((record) => record[3])).toContain('-1');
    const logs = parseCsv(text(files, 'csv/logs.csv'));
    expect(logs.slice(1).map((record) => record[2])).toEqual(['login', "'+cmd|calc"]);
    for (const [path, data] of files) {
      if (!path.endsWith('.csv')) continue;
      for (const record of parseCsv(data.toString('utf8'))) {
        for (const cell of record) {
          // Only a number the database typed as a number may start with '-'.
          if (/^-\d+(\.\d+)?$/.test(cell)) continue;
          expect(cell, path).not.toMatch(/^[=+\-@\t\r]/);
        }
      }
    }
  });

  it('writes a self-contained HTML report with the Art 15 information and escaped data', () => {
    const html = text(files, 'report.html');
    expect(html).not.toContain('<script');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(html).toContain('Shop &lt;SAS&gt;');
    expect(html).not.toMatch(/<(img|link|iframe|object|embed)\b|\bsrc=|url\(/i);
    expect(html).toContain("default-src 'none'");
    // Art 15(1)(c): recipients by name; 15(2): transfer safeguards; (f) complaint.
    expect(html).toContain('Hosting GmbH');
    expect(html).toContain('AdTech Inc');
    expect(html).toContain('standard data protection clauses');
    expect(html).toContain('CNIL');
    expect(html).toContain('order_lines');
  });

  it('attaches the Art 15(1)(a)–(h) and 15(2) information for the categories found', () => {
    const information = JSON.parse(text(files, 'information.json'));
    const manifest = JSON.parse(text(files, 'manifest.json')) as ExportManifest;
    expect(information).toEqual(
      JSON.parse(JSON.stringify(accessInformation(policy, { categories: manifest.categoriesFound }))),
    );
    expect(information.recipients.map((recipient: { name: string }) => recipient.name)).toEqual(
      expect.arrayContaining(['Hosting GmbH', 'Cabinet Comptable', 'AdTech Inc']),
    );
    expect(manifest.categoriesFound).toEqual(
      expect.arrayContaining(['contact.email', 'marketing.interests', 'billing.invoices', 'usage.logs']),
    );
  });

  it('includes consent records, consent and request history when given, and shows the records in the report', () => {
    expect(JSON.parse(text(files, 'consent-records.json'))).toEqual([consentRecord]);
    const html = text(files, 'report.html');
    expect(html).toContain('Consent records');
    expect(html).toContain('dpv:ConsentWithdrawn');
    const consent = JSON.parse(text(files, 'consent-history.json'));
    expect(consent.map((event: { event: string }) => event.event)).toEqual(['granted', 'withdrawn']);
    expect(JSON.parse(text(files, 'request-history.json'))).toEqual([
      { id: 'req-1', right: 'access', status: 'in-progress' },
    ]);
  });

  it('lists every file in the manifest with its exact SHA-256, and the row counts', () => {
    const manifest = JSON.parse(text(files, 'manifest.json')) as ExportManifest;
    expect(manifest.generatedAt).toBe('2024-06-01T12:00:00.000Z');
    expect(manifest.schemaVersion).toBe('privacykit.subject-access/1');
    const listed = manifest.files.map((file) => file.path).sort();
    expect(listed).toEqual([...files.keys()].filter((path) => path !== 'manifest.json').sort());
    for (const file of manifest.files) {
      const data = files.get(file.path)!;
      expect(file.bytes, file.path).toBe(data.length);
      expect(file.sha256, file.path).toBe(createHash('sha256').update(data).digest('hex'));
    }
    const rows = Object.fromEntries(manifest.tables.map((table) => [table.name, table.rows]));
    expect(rows).toEqual({ customers: 1, orders: 3, order_lines: 6, invoices: 1, logs: 2 });
  });

  it('limits the report to the first rows of big tables and says where the rest is', async () => {
    const small = await unzip(await collect(exportAda({ reportRowLimit: 2 })));
    const html = text(small, 'report.html');
    expect(html).toContain('Showing the first 2 of 6 rows');
    expect(html).toContain('<code>data/order_lines.json</code>');
    expect(JSON.parse(text(small, 'data/order_lines.json'))).toHaveLength(6);
  });

  it('filters by category through the traversal', async () => {
    const only = await unzip(
      await collect(
        exportAda({
          categories: ['contact.email'],
        }),
      ),
    );
    expect(JSON.parse(text(only, 'data/customers.json'))).toEqual([{ id: 1, email: 'ada@example.com' }]);
    expect(only.has('data/orders.json')).toBe(false);
    expect(only.has('data/invoices.json')).toBe(false);
    const manifest = JSON.parse(text(only, 'manifest.json')) as ExportManifest;
    expect(manifest.categoriesFound).toEqual(['contact.email']);
    expect(manifest.categoriesRequested).toEqual(['contact.email']);
  });

  it('finds the subject from any verified identity kind', async () => {
    const byNumber = await unzip(
      await collect(
        exportSubject({ db: test.db, dataMap, policy, identities: { customerNumber: ['C-1'] }, clock }),
      ),
    );
    expect(JSON.parse(text(byNumber, 'data/orders.json'))).toHaveLength(3);
    expect(byNumber.has('data/logs.json')).toBe(false);
  });

  it('lets a redaction hook mask or withhold rows (Art 15(4))', async () => {
    const redacted = await unzip(
      await collect(
        exportAda({
          redact: (row, { table }) => {
            if (table === 'logs' && row.event === 'login') return null;
            if (table === 'orders') return { ...row, comment: null };
            return row;
          },
        }),
      ),
    );
    expect(
      JSON.parse(text(redacted, 'data/orders.json')).map((row: { comment: unknown }) => row.comment),
    ).toEqual([null, null, null]);
    const manifest = JSON.parse(text(redacted, 'manifest.json')) as ExportManifest;
    expect(manifest.tables.find((table) => table.name === 'logs')).toMatchObject({ rows: 1, withheld: 1 });
  });

  it('fails the export, typed, when the redaction hook returns undefined instead of the row or null', async () => {
    // A hook that forgot its last `return row`: before, every row it did not touch was withheld,
    // and the package said the controller held nothing of those tables.
    const forgetful = exportAda({
      redact: ((row: Record<string, unknown>, { table }: { table: string }) => {
        if (table === 'orders') return { ...row, comment: null };
      }) as never,
    });
    const failure = await collect(forgetful).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isPrivacyKitError(failure) ? failure.code : failure).toBe('subject-access/invalid-input');
    expect(String((failure as Error).message)).toMatch(/undefined.*"customers"/);
  });

  it('never contains the rows of a transaction open on the same database that then rolls back', async () => {
    type Open = (work: (trx: Kysely<any>) => Promise<void>) => Promise<void>;
    const opens: Open[] = [
      (work) => test.db.transaction().execute(work),
      (work) => writeTransaction(test.db, work),
    ];
    for (const open of opens) {
      let inserted!: () => void;
      const hasInserted = new Promise<void>((resolve) => {
        inserted = resolve;
      });
      let rollBack!: () => void;
      const rollingBack = new Promise<void>((resolve) => {
        rollBack = resolve;
      });
      // The application's transaction: an order of Ada's it has written and will roll back.
      const transaction = open(async (trx) => {
        await trx
          .insertInto('orders')
          .values({ id: 777, customer_id: 1, placed_at: 'x', total_cents: 1, comment: 'ROLLED BACK' })
          .execute();
        inserted();
        await rollingBack;
        throw new Error('rolled back');
      }).catch(() => undefined);
      await hasInserted;
      const exporting = collect(exportAda({ format: 'json' }));
      // PostgreSQL and MySQL read on another pooled connection meanwhile; on SQLite the export
      // shares the transaction's one connection, so it must wait for the transaction to end.
      await Promise.race([exporting, new Promise((resolve) => setTimeout(resolve, 300))]);
      rollBack();
      await transaction;
      const document = JSON.parse((await exporting).toString('utf8'));
      expect(document.tables.orders.map((order: { id: number }) => order.id)).toEqual([1, 2, 3]);
    }
  });

  it('keeps rows linked to their parents: reference columns travel with the tables they point at', async () => {
    // Art 20: order lines that lost their order_id could not be matched to their orders again.
    const portable = await unzip(await collect(exportAda({ format: 'portability' })));
    const document = JSON.parse(text(portable, 'portability.json'));
    expect(checkPortabilityDocument(document)).toEqual([]);
    const { orders, order_lines: lines } = document.tables;
    expect(lines.columns.order_id).toEqual([]);
    expect(lines.references).toEqual({ order_id: { table: 'orders', column: 'id' } });
    expect(orders.references).toEqual({ customer_id: { table: 'customers', column: 'id' } });
    const orderIds = orders.rows.map((order: { id: number }) => order.id);
    expect(lines.rows).toHaveLength(6);
    for (const line of lines.rows) expect(orderIds).toContain(line.order_id);
    for (const order of orders.rows) expect(order.customer_id).toBe(document.tables.customers.rows[0].id);
    const csv = parseCsv(text(portable, 'csv/order_lines.csv'));
    const column = csv[0]!.indexOf('order_id');
    expect(column).toBeGreaterThanOrEqual(0);
    expect(csv.slice(1).map((record) => Number(record[column]))).toEqual(
      lines.rows.map((line: { order_id: number }) => line.order_id),
    );

    // Filtered by category: links to a table in the export stay, links to one left out go.
    for (const format of ['zip', 'portability'] as const) {
      const only = await unzip(await collect(exportAda({ format, categories: ['transaction'] })));
      const tables =
        format === 'zip'
          ? {
              orders: JSON.parse(text(only, 'data/orders.json')),
              order_lines: JSON.parse(text(only, 'data/order_lines.json')),
            }
          : Object.fromEntries(
              Object.entries(JSON.parse(text(only, 'portability.json')).tables).map(([name, table]) => [
                name,
                (table as { rows: unknown[] }).rows,
              ]),
            );
      const ids = tables.orders.map((order: { id: number }) => order.id);
      expect(tables.order_lines.map((line: { order_id: number }) => line.order_id).sort(), format).toEqual([
        1, 1, 2, 2, 3, 3,
      ]);
      expect(ids, format).toEqual([1, 2, 3]);
      expect(Object.keys(tables.orders[0]), format).not.toContain('customer_id');
      expect(only.has('data/customers.json') || only.has('csv/customers.csv'), format).toBe(false);
    }
  });

  it("streams one JSON document with format 'json'", async () => {
    const document = JSON.parse(
      (await collect(exportAda({ format: 'json', consentRecords: [consentRecord] }))).toString('utf8'),
    );
    expect(document.consentRecords).toEqual([consentRecord]);
    expect(document.consentHistory).toBeUndefined();
    expect(document.tables.order_lines).toEqual(JSON.parse(text(files, 'data/order_lines.json')));
    expect(document.information.controller.name).toBe('Shop <SAS>');
    expect(document.summary.tables.find((table: { name: string }) => table.name === 'orders').rows).toBe(3);
  });

  it('exports for portability only provided or observed data processed on consent or contract (hostile case 18)', async () => {
    const portable = await unzip(
      await collect(
        exportAda({ format: 'portability', consentRecords: [consentRecord], consentHistory: [] }),
      ),
    );
    // Records about the subject are not data the subject provided: none go into it.
    expect([...portable.keys()].filter((path) => path.includes('consent'))).toEqual([]);
    const document = JSON.parse(text(portable, 'portability.json'));
    expect(checkPortabilityDocument(document)).toEqual([]);
    expect(JSON.parse(text(portable, 'schema.json'))).toEqual(portabilitySchema);
    expect(Object.keys(document.tables).sort()).toEqual(['customers', 'logs', 'order_lines', 'orders']);
    // Derived (customer number) and inferred (interests) data stay out; invoices are derived and
    // the tax id is held only under a legal obligation; security logs rest on legitimate interests.
    expect(document.tables.customers.rows).toEqual([
      { id: 1, email: 'ada@example.com', name: hostile.formula, note: hostile.script },
    ]);
    expect(Object.keys(document.tables.logs.columns).sort()).toEqual(['email', 'id', 'login_at']);
    expect(document.tables.customers.columns.email).toEqual(['contact.email']);
    expect(document.tables.orders.rows).toHaveLength(3);
    const csv = parseCsv(text(portable, 'csv/customers.csv'));
    expect(csv).toEqual([
      ['id', 'email', 'name', 'note'],
      ['1', 'ada@example.com', `'${hostile.formula}`, hostile.script],
    ]);
    expect([...portable.keys()].some((path) => /invoices|information|report/.test(path))).toBe(false);
    const manifest = JSON.parse(text(portable, 'manifest.json')) as ExportManifest;
    for (const file of manifest.files) {
      expect(file.sha256).toBe(createHash('sha256').update(portable.get(file.path)!).digest('hex'));
    }
  });

  it('fails the stream and leaves no spool file when the database errors mid-export', async () => {
    const spoolDirectory = mkdtempSync(join(tmpdir(), 'pk-spool-'));
    try {
      const broken = { ...dataMap, order: [...dataMap.order, 'missing_table'] };
      (broken as unknown as { tables: Map<string, unknown> }).tables = new Map([
        ...dataMap.tables,
        ['missing_table', { ...dataMap.tables.get('logs')!, name: 'missing_table' }],
      ]);
      const stream = exportSubject({
        db: test.db,
        dataMap: broken as typeof dataMap,
        policy,
        identities: ada,
        clock,
        spoolDirectory,
      });
      // The database's own error about the table, not a mistake of the test's making.
      await expect(collect(stream)).rejects.toThrow(/missing_table/);
      // Cleanup finishes after the error reaches the reader: wait for it, not a fixed time.
      await expect.poll(() => readdirSync(spoolDirectory), { timeout: 5000 }).toEqual([]);
    } finally {
      rmSync(spoolDirectory, { recursive: true, force: true });
    }
  });

  it('fails the stream with the file error, not a crash, when the spool directory cannot be written', async () => {
    const stream = exportAda({
      spoolDirectory: join(tmpdir(), `pk-spool-missing-${process.pid}`, 'nowhere'),
    });
    await expect(collect(stream)).rejects.toThrow(/ENOENT/);
  });

  it('rejects bad input before reading anything', () => {
    const base = { db: test.db, dataMap, policy, clock };
    const code = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return isPrivacyKitError(error) ? error.code : 'other';
      }
      return 'no error';
    };
    expect(code(() => exportSubject({ ...base, identities: { phone: ['1'] } }))).toBe(
      'subject-access/invalid-input',
    );
    // An Object.prototype key is no identity kind either (it gave an empty package before).
    expect(code(() => exportSubject({ ...base, identities: { constructor: ['ada@example.com'] } }))).toBe(
      'subject-access/invalid-input',
    );
    expect(code(() => exportSubject({ ...base, identities: { email: ['  '] } }))).toBe(
      'subject-access/no-identity',
    );
    expect(code(() => exportSubject({ ...base, identities: {} }))).toBe('subject-access/no-identity');
    expect(code(() => exportSubject({ ...base, identities: ada, categories: ['nope.nothing'] }))).toBe(
      'subject-access/invalid-input',
    );
    expect(code(() => exportSubject({ ...base, identities: ada, format: 'xlsx' as never }))).toBe(
      'subject-access/invalid-input',
    );
    // No category at all is a mistake, not a request for an empty package.
    expect(code(() => exportSubject({ ...base, identities: ada, categories: [] }))).toBe(
      'subject-access/invalid-input',
    );
    // A history source that cannot be iterated (a forgotten `await`) is refused at the call, not
    // once half the package is written.
    for (const key of ['consentRecords', 'consentHistory', 'requestHistory'] as const) {
      expect(
        code(() => exportSubject({ ...base, identities: ada, [key]: Promise.resolve([]) as never })),
        key,
      ).toBe('subject-access/invalid-input');
      expect(
        code(() => exportSubject({ ...base, identities: ada, [key]: 'records' as never })),
        key,
      ).toBe('subject-access/invalid-input');
    }
  });
});

describe.each(testEngines())('a large subject on $engine', (engine) => {
  let test: TestDatabase;
  beforeAll(async () => {
    test = await createTestDatabase(engine);
    // Megabytes of rows: far more than the stream and the zip entries buffer ahead of a reader.
    await createHostSchema(test.db, { orders: 20_000 });
  });
  afterAll(async () => {
    await test?.destroy();
  });

  it('stops mid-export and removes its spool files when the reader goes away', async () => {
    const spoolDirectory = mkdtempSync(join(tmpdir(), 'pk-spool-'));
    // One connection only (PostgreSQL, MySQL): an export still holding its cursor would keep it.
    const db = await openDatabase({ url: test.url, poolSize: 1 });
    try {
      const stream = exportSubject({ db, dataMap, policy, identities: ada, clock, spoolDirectory });
      // The reader takes the first bytes, then stops reading: the export runs until it must wait.
      await new Promise<void>((resolve) =>
        stream.once('data', () => {
          stream.pause();
          resolve();
        }),
      );
      await expect.poll(() => readdirSync(spoolDirectory).length, { timeout: 5000 }).toBeGreaterThan(0);
      expect(stream.readableEnded).toBe(false);
      stream.destroy();
      await expect.poll(() => readdirSync(spoolDirectory), { timeout: 5000 }).toEqual([]);
      const answered = db.selectFrom('customers').select('id').where('id', '=', 1).execute();
      const late = new Promise((resolve) => setTimeout(() => resolve('no connection'), 5000));
      expect(await Promise.race([answered, late])).toEqual([{ id: 1 }]);
    } finally {
      await db.destroy();
      rmSync(spoolDirectory, { recursive: true, force: true });
    }
  });
});
