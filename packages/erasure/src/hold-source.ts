/**
 * A row under legal hold, as the hold source reports it. `until` is the civil date the hold is
 * expected to end (`YYYY-MM-DD`), when known.
 */
export interface HeldRow {
  key: string;
  reason?: string;
  until?: string;
}

/**
 * Where legal holds come from (the retention package's holds, a case-management system, …).
 * Erasure asks it, table by table, which of the subject's rows are held; held rows are kept
 * untouched under the Art 17(3)(e) ground (legal claims) and restricted to storage.
 *
 * Keys are the row keys erasure uses everywhere: the primary-key value as text for a
 * single-column key, a JSON array of the values as text for a composite key (see `rowKey`).
 */
export interface HoldSource {
  heldRows(request: {
    tenant: string;
    table: string;
    keys: readonly string[];
  }): Promise<Iterable<string | HeldRow>>;
}

/** The short form: a function from a table and candidate keys to the held ones. */
export type HoldLookup = (table: string, keys: readonly string[]) => Promise<Iterable<string | HeldRow>>;

export function holdSourceOf(holds: HoldSource | HoldLookup | undefined): HoldSource | undefined {
  if (!holds) return undefined;
  if (typeof holds === 'function') return { heldRows: ({ table, keys }) => holds(table, keys) };
  return holds;
}
