import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import {
  PrivacyKitError,
  accessInformation,
  categoryCovers,
  categoryIdSchema,
  formatIssues,
  normaliseIdentity,
  systemClock,
  toInstant,
  zodIssues,
} from '@privacykit/core';
import type { AccessInformation, Clock, DataMap, Policy } from '@privacykit/core';
import { engineOf, subjectRows } from '@privacykit/core/db';
import type { SubjectIdentities } from '@privacykit/core/db';
import type { Kysely } from 'kysely';
import { ZipFile } from 'yazl';
import { z } from 'zod';
import { csvRecord, csvRow } from './csv.js';
import type { SubjectAccessErrorCode } from './errors.js';
import { renderReport } from './html-report.js';
import type { ReportTable } from './html-report.js';
import { toJsonRow, toJsonValue } from './json-value.js';
import { PORTABILITY_SCHEMA_VERSION, portabilitySchema, portableColumns } from './portability.js';
import { readAhead } from './read-ahead.js';
import { Spool, TextSink, entrySink } from './text-sink.js';
import type { FileDigest } from './text-sink.js';

/** Version of the export package layout (`manifest.json`, file names, JSON forms). */
export const EXPORT_SCHEMA_VERSION = 'privacykit.subject-access/1';

/**
 * `zip` (default): the full Art 15 package — `data/<table>.json`, `csv/<table>.csv`,
 * `report.html`, `information.json`, histories, `manifest.json`. `json`: one JSON document with
 * the same content, unzipped. `portability`: the Art 20 subset as `portability.json` +
 * `csv/<table>.csv` + `schema.json` + `manifest.json`, zipped.
 */
export const exportFormatSchema = z.enum(['zip', 'json', 'portability']);
export type ExportFormat = z.infer<typeof exportFormatSchema>;

/** History records from another package (consent ledger events, rights requests), as plain JSON. */
export type HistorySource = Iterable<unknown> | AsyncIterable<unknown>;

/**
 * Art 15(4): the copy must not adversely affect the rights of others. Called for every row
 * before it is written; return the row (possibly with third parties' data nulled — keep the
 * same columns), or `null` to leave the row out. Anything else (`undefined` from a hook that
 * forgot its last `return row`) fails the export with `subject-access/invalid-input`: rows are
 * only ever withheld on purpose.
 */
export type RowRedactor = (
  row: Record<string, unknown>,
  context: { table: string },
) => Record<string, unknown> | null | Promise<Record<string, unknown> | null>;

export interface ExportSubjectOptions {
  /** The host application's database. */
  db: Kysely<any>;
  dataMap: DataMap;
  policy: Policy;
  /** The verified identities of the subject: `{ email: ['ada@example.com'], customerNumber: ['C-1'] }`. */
  identities: SubjectIdentities;
  format?: ExportFormat;
  /** Only data of these categories (and their sub-categories). */
  categories?: readonly string[];
  clock?: Clock;
  /** Consent ledger records of the subject (e.g. from `@privacykit/consent`), as plain JSON. */
  consentHistory?: HistorySource;
  /**
   * The subject's consent records, one per purpose with its status now (e.g. `consentRecords()`
   * of `@privacykit/consent`: ISO/IEC TS 27560-shaped, DPV statuses), as plain JSON:
   * `consent-records.json` in a zip, `consentRecords` in a JSON export.
   */
  consentRecords?: HistorySource;
  /** Rights requests of the subject and their audit trail (e.g. from `@privacykit/requests`). */
  requestHistory?: HistorySource;
  redact?: RowRedactor;
  /** Rows per table shown in `report.html` (default 200); the files hold all of them. */
  reportRowLimit?: number;
  /**
   * Rows per query of the traversal (default 5000; one more page is read ahead while a page is
   * written). Lower it for very wide rows; higher pages mean fewer keyset queries.
   */
  batchSize?: number;
  /** Where CSV files wait, encrypted, while the JSON of the same table is zipped (default: the OS temp dir). */
  spoolDirectory?: string;
  /** Deflate level 0–9 (default 1: most of the size gain for a fraction of the CPU of level 6). */
  compressionLevel?: number;
}

const optionsSchema = z.object({
  format: exportFormatSchema.default('zip'),
  identities: z.record(z.string(), z.array(z.string())),
  categories: z
    .array(categoryIdSchema)
    .min(1, 'name at least one category, or leave categories out to export them all')
    .optional(),
  reportRowLimit: z.number().int().min(0).max(100_000).default(200),
  batchSize: z.number().int().min(1).max(100_000).default(5000),
  compressionLevel: z.number().int().min(0).max(9).default(1),
  spoolDirectory: z.string().min(1).optional(),
});

/** One table as the manifest lists it. */
export interface ManifestTable {
  name: string;
  rows: number;
  /** Rows the redaction hook left out. */
  withheld: number;
  categories: string[];
  files: string[];
}

/** `manifest.json`: what the package holds and the SHA-256 of every other file in it. */
export interface ExportManifest {
  schemaVersion: typeof EXPORT_SCHEMA_VERSION;
  format: ExportFormat;
  generatedAt: string;
  tenant: string;
  policyVersion: string;
  controller: string;
  categoriesRequested: string[] | null;
  categoriesFound: string[];
  tables: ManifestTable[];
  files: FileDigest[];
}

interface Prepared {
  db: Kysely<any>;
  dataMap: DataMap;
  policy: Policy;
  identities: SubjectIdentities;
  format: ExportFormat;
  categories?: readonly string[];
  generatedAt: string;
  consentHistory?: HistorySource;
  consentRecords?: HistorySource;
  requestHistory?: HistorySource;
  redact?: RowRedactor;
  reportRowLimit: number;
  batchSize: number;
  spoolDirectory: string;
  compressionLevel: number;
  readAhead: boolean;
  /** Portability: table → the columns it may carry, within the categories asked for. */
  projection?: Map<string, Record<string, string[]>>;
  /** Portability: the categories read (portable, and asked for). */
  projectionCategories?: string[];
}

function fail(message: string, issues: { path: string; message: string }[] = []): never {
  throw new PrivacyKitError<SubjectAccessErrorCode>('subject-access/invalid-input', message, { issues });
}

function prepare(options: ExportSubjectOptions): Prepared {
  const parsed = optionsSchema.safeParse({
    format: options.format,
    identities: options.identities,
    categories: options.categories,
    reportRowLimit: options.reportRowLimit,
    batchSize: options.batchSize,
    compressionLevel: options.compressionLevel,
    spoolDirectory: options.spoolDirectory,
  });
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    fail(`Invalid export options: ${formatIssues(issues)}`, issues);
  }
  const input = parsed.data;
  let usable = 0;
  for (const [kind, values] of Object.entries(input.identities)) {
    if (!Object.hasOwn(options.dataMap.identities, kind)) {
      fail(`unknown identity kind "${kind}"`, [
        { path: `identities.${kind}`, message: 'not in the data map' },
      ]);
    }
    usable += values.filter((value) => normaliseIdentity(options.dataMap, kind, value).length > 0).length;
  }
  if (usable === 0) {
    throw new PrivacyKitError<SubjectAccessErrorCode>(
      'subject-access/no-identity',
      'an export needs at least one verified identity of the subject',
    );
  }
  const unknown = (input.categories ?? []).filter((category) => !options.policy.categoryIndex.has(category));
  if (unknown.length > 0) {
    fail(
      `unknown categories: ${unknown.join(', ')}`,
      unknown.map((category) => ({ path: 'categories', message: `unknown category "${category}"` })),
    );
  }
  for (const key of ['consentRecords', 'consentHistory', 'requestHistory'] as const) {
    const source: unknown = options[key];
    // A promise (a forgotten `await` on the ledger's query) is not iterable: caught here, not
    // once the zip is half written. Text is iterable, but character by character.
    if (source !== undefined && !isHistorySource(source)) {
      fail(`${key} must be an array or (async) iterable of records`, [
        {
          path: key,
          message: isThenable(source)
            ? 'a promise: await it first'
            : `not iterable (${typeof source === 'string' ? 'text' : typeof source})`,
        },
      ]);
    }
  }
  if (options.redact !== undefined && typeof options.redact !== 'function') {
    fail('redact must be a function', [{ path: 'redact', message: 'not a function' }]);
  }
  const projection =
    input.format === 'portability'
      ? portabilityProjection(options.policy, options.dataMap, input.categories)
      : undefined;
  return {
    db: options.db,
    dataMap: options.dataMap,
    policy: options.policy,
    identities: input.identities,
    format: input.format,
    categories: input.categories,
    generatedAt: toInstant((options.clock ?? systemClock).now()),
    consentHistory: options.consentHistory,
    consentRecords: options.consentRecords,
    requestHistory: options.requestHistory,
    redact: options.redact,
    reportRowLimit: input.reportRowLimit,
    batchSize: input.batchSize,
    spoolDirectory: input.spoolDirectory ?? tmpdir(),
    compressionLevel: input.compressionLevel,
    readAhead: engineOf(options.db) !== 'sqlite',
    projection,
    projectionCategories: projection
      ? [...new Set([...projection.values()].flatMap((columns) => Object.values(columns).flat()))].filter(
          (category) => wanted(input.categories, category),
        )
      : undefined,
  };
}

function isHistorySource(value: unknown): value is HistorySource {
  if (typeof value !== 'object' || value === null) return false;
  return (
    typeof (value as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function' ||
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

/** Whether `category` is one of those asked for (any, when none were named). */
function wanted(categories: readonly string[] | undefined, category: string): boolean {
  return !categories || categories.some((asked) => categoryCovers(asked, category));
}

/**
 * Portability: each table's portable columns ({@link portableColumns}) within the categories
 * asked for. A table left with no column asked for is dropped, and so are the references to it:
 * a link to a record that is not in the export links nothing.
 */
function portabilityProjection(
  policy: Policy,
  dataMap: DataMap,
  categories: readonly string[] | undefined,
): Map<string, Record<string, string[]>> {
  const portable = portableColumns(policy, dataMap);
  if (!categories) return portable;
  const kept = new Map<string, Record<string, string[]>>();
  for (const [name, columns] of portable) {
    if (Object.values(columns).some((held) => held.some((category) => wanted(categories, category)))) {
      kept.set(name, columns);
    }
  }
  for (const [name, columns] of kept) {
    const definition = dataMap.tables.get(name)!;
    const links = definition.references.filter((reference) => !kept.has(reference.table));
    if (links.length === 0) continue;
    const trimmed = { ...columns };
    for (const reference of links) {
      // Only a link kept for its own sake: a column holding categories, or a record key, stays.
      if (trimmed[reference.column]?.length === 0 && !definition.primaryKey.includes(reference.column)) {
        delete trimmed[reference.column];
      }
    }
    kept.set(name, trimmed);
  }
  return kept;
}

/**
 * A subject's data as a download (Art 15(1), 15(3); Art 20 with `format: 'portability'`): every
 * row reachable from the verified identities through the data map, as exact JSON, CSV safe to
 * open in a spreadsheet, and a readable HTML report, with the Art 15(1)(a)–(h) and 15(2)
 * information derived from the policy, the consent and request histories, and a manifest of
 * SHA-256 digests. Streamed end to end: rows flow from keyset-paginated queries into the zip,
 * so memory stays flat however many rows the subject has.
 *
 * Options are checked before anything runs (a bad option throws a `PrivacyKitError`); a failure
 * while exporting destroys the returned stream with the error.
 */
export function exportSubject(options: ExportSubjectOptions): Readable {
  const input = prepare(options);
  const out = new PassThrough();
  const job = input.format === 'json' ? writeJsonDocument(input, out) : writeZip(input, out);
  job.catch((error: unknown) => {
    out.destroy(error instanceof Error ? error : new Error(String(error)));
  });
  return out;
}

/** Which of a table's exported columns hold which categories, filtered as requested. */
function foundCategories(input: Prepared, table: string, columns: readonly string[]): string[] {
  const definition = input.dataMap.tables.get(table)!;
  const found = new Set<string>();
  for (const column of columns) {
    for (const category of definition.columns[column] ?? []) {
      if (wanted(input.categories, category)) found.add(category);
    }
  }
  return [...found];
}

interface TableVisitor {
  /** The first row of a table arrived (its keys are the table's columns). */
  begin(table: string, columns: string[]): Promise<void>;
  /** Returns a promise only when an output asks to wait (backpressure); await it before the next row. */
  row(row: Record<string, unknown>, index: number): Promise<void> | undefined;
  end(table: string, rows: number): Promise<void>;
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** Walks the subject's tables, parents first, feeding rows (redacted, projected, as JSON) to the visitor. */
async function traverse(input: Prepared, visitor: TableVisitor): Promise<ManifestTable[]> {
  const tables: ManifestTable[] = [];
  const names = input.projection
    ? input.dataMap.order.filter((name) => input.projection!.has(name))
    : input.dataMap.order;
  // Portability reads every table with the same categories, so a reference to a parent that is
  // read too is read with the child (the projection then keeps only what may travel).
  const categories = input.projection ? input.projectionCategories : input.categories;
  for (const name of names) {
    const projection = input.projection?.get(name);
    let count = 0;
    let withheld = 0;
    let columns: string[] = [];
    const rows = subjectRows({
      db: input.db,
      dataMap: input.dataMap,
      identities: input.identities,
      tenant: input.policy.tenant,
      tables: [name],
      categories,
      batchSize: input.batchSize,
    });
    // SQLite answers synchronously: nothing to overlap, so no read-ahead overhead there.
    const source = input.readAhead ? readAhead(rows, input.batchSize) : rows;
    for await (const { row } of source) {
      let value: Record<string, unknown> | null = row;
      if (input.redact) {
        const redacted: unknown = input.redact(row, { table: name });
        const answer: unknown = isThenable(redacted) ? await redacted : redacted;
        if (answer !== null && (typeof answer !== 'object' || Array.isArray(answer))) {
          // Most often `undefined`, from a hook that forgot its last `return row`: withholding
          // every row it did not mean to touch would leave them out of an Art 15 answer unseen.
          fail(
            `the redact hook returned ${answer === undefined ? 'undefined' : Array.isArray(answer) ? 'an array' : typeof answer} for a row of "${name}": return the row (redacted or not), or null to withhold it`,
            [{ path: 'redact', message: `returned ${answer === undefined ? 'undefined' : typeof answer}` }],
          );
        }
        value = answer as Record<string, unknown> | null;
      }
      if (value === null) {
        withheld++;
        continue;
      }
      if (projection) {
        const picked: Record<string, unknown> = {};
        for (const column of Object.keys(value)) if (column in projection) picked[column] = value[column];
        value = picked;
      }
      const json = toJsonRow(value);
      if (count === 0) {
        columns = Object.keys(json);
        await visitor.begin(name, columns);
      }
      const waiting = visitor.row(json, count);
      if (waiting) await waiting;
      count++;
    }
    if (count > 0) await visitor.end(name, count);
    tables.push({
      name,
      rows: count,
      withheld,
      categories: count > 0 ? foundCategories(input, name, columns) : [],
      files: [],
    });
  }
  return tables;
}

/**
 * The exported columns of `table` that link its rows to a column of a table already written
 * (`written`: table → its columns; parents come first), and to which column.
 */
function portabilityReferences(
  dataMap: DataMap,
  table: string,
  columns: readonly string[],
  written: ReadonlyMap<string, readonly string[]>,
): Record<string, { table: string; column: string }> | undefined {
  const links: Record<string, { table: string; column: string }> = {};
  for (const reference of dataMap.tables.get(table)!.references) {
    const column = reference.key ?? dataMap.tables.get(reference.table)!.primaryKey[0];
    if (!columns.includes(reference.column) || column === undefined) continue;
    if (!written.get(reference.table)?.includes(column)) continue;
    links[reference.column] = { table: reference.table, column };
  }
  return Object.keys(links).length > 0 ? links : undefined;
}

function informationFor(input: Prepared, tables: readonly ManifestTable[]): AccessInformation {
  const found = [...new Set(tables.flatMap((table) => table.categories))].sort();
  return accessInformation(input.policy, { categories: found });
}

async function writeHistory(
  sink: TextSink,
  source: HistorySource,
  sample: unknown[],
  limit: number,
): Promise<number> {
  await sink.write('[');
  let count = 0;
  for await (const item of source as AsyncIterable<unknown>) {
    const json = toJsonValue(item);
    await sink.write(`${count === 0 ? '\n' : ',\n'}${JSON.stringify(json)}`);
    if (sample.length < limit) sample.push(json);
    count++;
  }
  await sink.write(count === 0 ? ']\n' : '\n]\n');
  return count;
}

function historyTable(name: string, path: string, rows: number, sample: readonly unknown[]): ReportTable {
  return {
    name,
    rows,
    sample: sample.map((item) =>
      typeof item === 'object' && item !== null && !Array.isArray(item)
        ? (item as Record<string, unknown>)
        : { value: item },
    ),
    files: [path],
  };
}

async function writeZip(input: Prepared, out: PassThrough): Promise<void> {
  const zip = new ZipFile();
  const spools: Spool[] = [];
  const open = new Set<PassThrough>();
  let failed: Error | undefined;
  let done = false;
  // Any failure — a driver error, a spool that does not decrypt, the reader going away — stops
  // everything: open entries are destroyed so writers waiting on backpressure wake up and throw.
  const abort = (error: unknown) => {
    if (failed) return;
    failed = error instanceof Error ? error : new Error(String(error));
    for (const stream of open) stream.destroy();
    for (const spool of spools) spool.remove();
    out.destroy(failed);
  };
  zip.on('error', abort);
  zip.outputStream.on('error', abort);
  out.on('close', () => {
    if (!done) abort(new Error('export stream closed before the end'));
  });
  zip.outputStream.on('end', () => {
    done = true;
  });
  zip.outputStream.pipe(out);
  const entryOptions = { mtime: new Date(input.generatedAt), compressionLevel: input.compressionLevel };
  const digests: FileDigest[] = [];
  const addEntry = (path: string): TextSink => {
    const { sink, stream } = entrySink(path);
    open.add(stream);
    stream.on('end', () => open.delete(stream));
    zip.addReadStream(stream, path, entryOptions);
    return sink;
  };
  const addSpool = (spool: Spool) => {
    zip.addReadStreamLazy(spool.sink.path, entryOptions, (callback) => {
      const stream = spool.open();
      stream.on('error', abort);
      callback(null, stream);
    });
  };
  const addText = async (path: string, text: string) => {
    const sink = addEntry(path);
    await sink.write(text);
    digests.push(await sink.close());
  };

  try {
    const portability = input.format === 'portability';
    const samples = new Map<string, Record<string, unknown>[]>();
    let json: TextSink | undefined;
    let csv: Spool | undefined;
    let header: string[] = [];
    let sample: Record<string, unknown>[] = [];
    let first = true;
    const written = new Map<string, string[]>();
    if (portability) {
      json = addEntry('portability.json');
      const controller: Record<string, string> = { name: input.policy.controller.name };
      if (input.policy.controller.email) controller.email = input.policy.controller.email;
      if (input.policy.controller.website) controller.website = input.policy.controller.website;
      await json.write(
        `{"schemaVersion":${JSON.stringify(PORTABILITY_SCHEMA_VERSION)},"generatedAt":${JSON.stringify(input.generatedAt)},"controller":${JSON.stringify(controller)},"tables":{`,
      );
    }
    const tables = await traverse(input, {
      async begin(table, columns) {
        // Rows are written without waiting while the outputs keep up, so a reader that went away
        // is noticed here, before another entry or spool is created.
        if (failed) throw failed;
        header = columns;
        if (portability) {
          const definition = input.dataMap.tables.get(table)!;
          const declared = Object.fromEntries(
            columns.map((column) => [column, input.projection!.get(table)![column] ?? []]),
          );
          written.set(table, columns);
          const links = portabilityReferences(input.dataMap, table, columns, written);
          await json!.write(
            `${first ? '' : ','}\n${JSON.stringify(table)}:{${definition.description ? `"description":${JSON.stringify(definition.description)},` : ''}"columns":${JSON.stringify(declared)},${links ? `"references":${JSON.stringify(links)},` : ''}"rows":[`,
          );
          first = false;
        } else {
          json = addEntry(`data/${table}.json`);
          await json.write('[');
        }
        csv = new Spool(`csv/${table}.csv`, input.spoolDirectory, abort);
        spools.push(csv);
        await csv.sink.write(csvRecord(columns));
        sample = [];
        samples.set(table, sample);
      },
      row(row, index) {
        json!.write(index === 0 ? '\n' : ',\n');
        const jsonWaits = json!.write(JSON.stringify(row));
        const csvWaits = csv!.sink.write(csvRow(row, header));
        if (sample.length < input.reportRowLimit) sample.push(row);
        return jsonWaits && csvWaits
          ? Promise.all([jsonWaits, csvWaits]).then(() => {})
          : (jsonWaits ?? csvWaits);
      },
      async end() {
        if (failed) throw failed;
        if (portability) {
          await json!.write('\n]}');
          digests.push(await csv!.finish());
        } else {
          await json!.write('\n]\n');
          digests.push(await json!.close());
          digests.push(await csv!.finish());
          addSpool(csv!);
        }
      },
    });
    for (const table of tables) {
      if (table.rows === 0) continue;
      table.files = portability
        ? ['portability.json', `csv/${table.name}.csv`]
        : [`data/${table.name}.json`, `csv/${table.name}.csv`];
    }

    if (portability) {
      await json!.write('\n}}\n');
      digests.push(await json!.close());
      for (const spool of spools) addSpool(spool);
      await addText('schema.json', `${JSON.stringify(portabilitySchema, null, 2)}\n`);
    } else {
      const information = informationFor(input, tables);
      await addText('information.json', `${JSON.stringify(information, null, 2)}\n`);
      const histories: ReportTable[] = [];
      for (const [name, path, source] of [
        ['Consent records', 'consent-records.json', input.consentRecords],
        ['Consent history', 'consent-history.json', input.consentHistory],
        ['Request history', 'request-history.json', input.requestHistory],
      ] as const) {
        if (!source) continue;
        const sink = addEntry(path);
        const sample: unknown[] = [];
        const rows = await writeHistory(sink, source, sample, input.reportRowLimit);
        digests.push(await sink.close());
        histories.push(historyTable(name, path, rows, sample));
      }
      const html = renderReport({
        title: `Your personal data held by ${input.policy.controller.name}`,
        generatedAt: input.generatedAt,
        controller: input.policy.controller.name,
        information,
        tables: tables
          .filter((table) => table.rows > 0)
          .map((table) => ({
            name: table.name,
            description: input.dataMap.tables.get(table.name)?.description,
            rows: table.rows,
            sample: samples.get(table.name) ?? [],
            files: table.files,
          })),
        histories,
      });
      await addText('report.html', html);
    }

    const manifest: ExportManifest = {
      schemaVersion: EXPORT_SCHEMA_VERSION,
      format: input.format,
      generatedAt: input.generatedAt,
      tenant: input.policy.tenant,
      policyVersion: input.policy.version,
      controller: input.policy.controller.name,
      categoriesRequested: input.categories ? [...input.categories] : null,
      categoriesFound: [...new Set(tables.flatMap((table) => table.categories))].sort(),
      tables,
      files: [...digests].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    };
    const manifestStream = new PassThrough();
    zip.addReadStream(manifestStream, 'manifest.json', entryOptions);
    manifestStream.end(`${JSON.stringify(manifest, null, 2)}\n`);
    zip.end();
  } catch (error) {
    abort(error);
    throw failed;
  }
}

async function writeJsonDocument(input: Prepared, out: PassThrough): Promise<void> {
  const sink = new TextSink('export.json', out);
  await sink.write(
    `{"schemaVersion":${JSON.stringify(EXPORT_SCHEMA_VERSION)},"format":"json","generatedAt":${JSON.stringify(input.generatedAt)},"tenant":${JSON.stringify(input.policy.tenant)},"tables":{`,
  );
  let first = true;
  const tables = await traverse(input, {
    async begin(table) {
      await sink.write(`${first ? '' : ','}\n${JSON.stringify(table)}:[`);
      first = false;
    },
    row(row, index) {
      sink.write(index === 0 ? '\n' : ',\n');
      return sink.write(JSON.stringify(row));
    },
    async end() {
      await sink.write('\n]');
    },
  });
  await sink.write('\n}');
  for (const [key, source] of [
    ['consentRecords', input.consentRecords],
    ['consentHistory', input.consentHistory],
    ['requestHistory', input.requestHistory],
  ] as const) {
    if (!source) continue;
    await sink.write(`,\n${JSON.stringify(key)}:`);
    await writeHistory(sink, source, [], 0);
  }
  const summary = {
    categoriesRequested: input.categories ? [...input.categories] : null,
    categoriesFound: [...new Set(tables.flatMap((table) => table.categories))].sort(),
    tables: tables.map(({ files: _files, ...table }) => table),
  };
  await sink.write(`,\n"information":${JSON.stringify(informationFor(input, tables))}`);
  await sink.write(`,\n"summary":${JSON.stringify(summary)}\n}\n`);
  await sink.close();
}
