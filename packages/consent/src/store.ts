import type { Engine } from '@privacykit/core/db';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';

export const T = {
  ledger: 'privacykit_consent_ledger',
  head: 'privacykit_consent_head',
  treeHeads: 'privacykit_consent_tree_heads',
  state: 'privacykit_consent_state',
  notices: 'privacykit_consent_notices',
  subjectIx: 'privacykit_consent_subject_ix',
  eventIx: 'privacykit_consent_event_ix',
} as const;

export interface HeadRow {
  tenant: string;
  size: number | string;
  frontier: string;
  signed_size: number | string;
  signed_at: string | null;
  pseudonym_secret: string | null;
  signing_key: string | null;
  updated_at: string;
  /** The tenant's number: its entries have ids `no · SEQ_SPAN + seq`. */
  no: number | string;
  /** Entries below this seq are in the subject and event lookup tables. */
  indexed_size: number | string;
  /** `'store'` once an instance with an `evidenceKeys` store ran on the tenant (0005). */
  evidence_keys?: string | null;
}

export interface StateRow {
  tenant: string;
  subject_key: string;
  purpose: string;
  subject_id: string;
  state: string;
  renewal: number;
  event_id: string;
  seq: number;
  notice_version: string;
  notice_hash: string;
  source: string;
  decided_at: string;
  expires_at: string | null;
  gpc_conflict: number;
  /** The AES-256-GCM key (base64) sealing this subject's evidence for this purpose. */
  key_material: string | null;
}

/** The current-state table's columns, in the order the ledger writes them. */
export const stateColumns = [
  'tenant',
  'subject_key',
  'purpose',
  'subject_id',
  'state',
  'renewal',
  'event_id',
  'seq',
  'notice_version',
  'notice_hash',
  'source',
  'decided_at',
  'expires_at',
  'gpc_conflict',
  'key_material',
] as const;

const keyColumns: readonly string[] = ['tenant', 'subject_key', 'purpose'];
// An upsert rewrites the decision's columns: not the key, not the evidence key (kept once set),
// and decided_at last (MySQL assigns left to right and the other columns compare it).
const stateUpdateColumns = stateColumns.filter(
  (column) => !keyColumns.includes(column) && column !== 'key_material' && column !== 'decided_at',
);

/**
 * Which decision a state row keeps when a subject × purpose already has one:
 * - `ledger`: the one appended last. Live decisions (record, withdraw, GPC, expiry) are
 *   serialised by the append lock, so the later append is the later decision — whatever the
 *   clocks of the instances that wrote them say (a withdrawal from an instance whose clock is
 *   behind must still win).
 * - `decided`: the one decided last (`decided_at`), for `import()`: an imported decision older
 *   than the current one is logged but cannot undo a later choice (`at` is never in the future).
 */
export type StateOrder = 'ledger' | 'decided';

/**
 * Inserts or updates current-state rows (see {@link StateOrder}). The evidence key is kept
 * either way: a row's key, once set, never changes (evidence sealed under it stays readable).
 */
export async function upsertStates(
  trx: Kysely<any>,
  engine: Engine,
  rows: readonly StateRow[],
  order: StateOrder = 'ledger',
): Promise<void> {
  if (rows.length === 0) return;
  await upsertStatesQuery(trx, engine, rows, order).execute();
}

export function upsertStatesQuery(
  trx: Kysely<any>,
  engine: Engine,
  rows: readonly Record<keyof StateRow, unknown>[],
  order: StateOrder = 'ledger',
) {
  const insert = trx.insertInto(T.state).values(rows as StateRow[]);
  if (engine === 'mysql') {
    const newer = sql`values(decided_at) >= decided_at`;
    const set: Record<string, unknown> = {
      key_material: sql`coalesce(key_material, values(key_material))`,
    };
    // MySQL applies assignments left to right: decided_at must change last.
    for (const column of [...stateUpdateColumns, 'decided_at']) {
      const incoming = sql`values(${sql.ref(column)})`;
      set[column] = order === 'ledger' ? incoming : sql`if(${newer}, ${incoming}, ${sql.ref(column)})`;
    }
    return insert.onDuplicateKeyUpdate(set);
  }
  const current = (column: string) => sql.ref(`${T.state}.${column}`);
  const newer = sql`${current('decided_at')} <= excluded.decided_at`;
  return insert.onConflict((oc) =>
    oc.columns(['tenant', 'subject_key', 'purpose']).doUpdateSet(() => {
      const set: Record<string, unknown> = {
        key_material: sql`coalesce(${current('key_material')}, excluded.key_material)`,
      };
      for (const column of [...stateUpdateColumns, 'decided_at']) {
        const incoming = sql.ref(`excluded.${column}`);
        set[column] =
          order === 'ledger'
            ? incoming
            : sql`case when ${newer} then ${incoming} else ${current(column)} end`;
      }
      return set;
    }),
  );
}

/** Inserts rows, ignoring those whose key already exists. */
export async function insertIgnore(
  db: Kysely<any>,
  engine: Engine,
  table: string,
  values: Record<string, unknown>,
): Promise<void> {
  const insert = db.insertInto(table).values(values);
  if (engine === 'mysql') await insert.ignore().execute();
  else await insert.onConflict((oc) => oc.doNothing()).execute();
}
