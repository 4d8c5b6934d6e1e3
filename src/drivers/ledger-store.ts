import { DEFAULT_TABLE } from '../defaults.js';
import { ConfigError, LedgerConflictError } from '../errors.js';
import type { Scrub } from '../util/secrets.js';
import type { ColumnTypes, Connection, Dialect, Ledger, LedgerRow, LedgerState } from './driver.js';

/**
 * The ledger over any SQL database: one generic store over a session's connection and its
 * dialect. Error text is scrubbed of the URL's secrets before it is stored.
 */
export class LedgerStore implements Ledger {
  readonly #connection: Connection;
  readonly #dialect: Dialect;
  readonly #scrub: Scrub;

  constructor(connection: Connection, dialect: Dialect, scrub: Scrub) {
    this.#connection = connection;
    this.#dialect = dialect;
    this.#scrub = scrub;
  }

  async read(): Promise<LedgerRow[] | null> {
    const d = this.#dialect;
    try {
      const result = await this.#connection.query(`SELECT ${LEDGER_COLUMNS} FROM ${d.ledger.table}`);
      return result.rows.map((r) => fromLedgerRecord(r, d));
    } catch (error) {
      if (d.isUndefinedTable(error)) return null;
      if (d.isUndefinedColumn(error)) throw notALedger(d.ledger.name, (error as Error).message);
      throw error;
    }
  }

  async create(): Promise<void> {
    const query = this.#connection.query.bind(this.#connection);
    await this.#dialect.ledger.prepare?.(query);
    await query(createLedgerSql(this.#dialect.ledger.table, this.#dialect.types));
  }

  async write(written: LedgerRow, expected: LedgerRow | null): Promise<void> {
    const d = this.#dialect;
    const { table, startedAt } = d.ledger;
    const row = { ...written, error: written.error === null ? null : this.#scrub(written.error) };
    const values = ledgerValues({
      ...row,
      startedAt: d.timestamp(row.startedAt),
      finishedAt: row.finishedAt === null ? null : d.timestamp(row.finishedAt),
      error: storableText(row.error, d.ledger.errorBytes),
    });
    let count = 0;
    try {
      const result = await this.#connection.onCleanSession(row.state, () =>
        expected
          ? this.#connection.query(ledgerUpdateSql(table, d.param, startedAt), [
              ...values.slice(1),
              ...this.#expectedValues(expected),
            ])
          : this.#connection.query(ledgerInsertSql(table, d.param), values),
      );
      count = result.rowCount;
    } catch (error) {
      if (!d.isDuplicateKey(error)) throw error;
    }
    if (count === 1) return;
    throw ledgerConflict(row, expected, await this.#currentRow(row.version));
  }

  async delete(expected: LedgerRow): Promise<void> {
    const { table, startedAt } = this.#dialect.ledger;
    const result = await this.#connection.onCleanSession('deleted', () =>
      this.#connection.query(
        ledgerDeleteSql(table, this.#dialect.param, startedAt),
        this.#expectedValues(expected),
      ),
    );
    if (result.rowCount === 1) return;
    const found = await this.#currentRow(expected.version);
    throw ledgerConflict({ version: expected.version, state: 'deleted' }, expected, found);
  }

  #expectedValues(expected: LedgerRow): unknown[] {
    return [
      expected.version,
      expected.state,
      expected.appliedBy,
      this.#dialect.timestamp(expected.startedAt),
    ];
  }

  /** The row as the ledger holds it now, for a conflict's message; undefined if it cannot be read. */
  async #currentRow(version: string): Promise<LedgerRow | null | undefined> {
    if (this.#connection.inFailedTransaction?.()) return undefined;
    const rows = await this.read().catch(() => undefined);
    return rows === undefined ? undefined : (rows?.find((r) => r.version === version) ?? null);
  }
}

/** The ledger's columns, in the order of `ledgerValues`. */
export const LEDGER_COLUMNS =
  'version, name, checksum, state, direction, statements_done, statement_count, started_at, finished_at, duration_ms, applied_by, error';

/** The ledger's CREATE TABLE, the same on every SQL database but for the types. */
function createLedgerSql(table: string, t: ColumnTypes): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  version ${t.key} NOT NULL PRIMARY KEY,
  name ${t.text} NOT NULL,
  checksum ${t.text} NOT NULL,
  state ${t.text} NOT NULL CHECK (state IN ('applied', 'running', 'failed', 'rolled_back')),
  direction ${t.text} NOT NULL DEFAULT 'up' CHECK (direction IN ('up', 'down')),
  statements_done ${t.integer} NOT NULL DEFAULT 0,
  statement_count ${t.integer},
  started_at ${t.timestamp} NOT NULL,
  finished_at ${t.timestamp} NULL,
  duration_ms ${t.integer},
  applied_by ${t.text} NOT NULL,
  error ${t.longText}
)${t.tableOptions ?? ''}`;
}

/**
 * `--table` names a table that exists but lacks the ledger's columns: someone else's table. It is
 * neither read as a ledger nor written to.
 */
function notALedger(table: string, dbMessage: string): ConfigError {
  return new ConfigError(
    `table ${table} exists but is not a lockstep ledger (${dbMessage}); nothing was changed. ` +
      `Pass --table a table of lockstep's own, or a new name (default: ${DEFAULT_TABLE}).`,
  );
}

function ledgerValues(
  row: Omit<LedgerRow, 'startedAt' | 'finishedAt'> & { startedAt: unknown; finishedAt: unknown },
): unknown[] {
  return [
    row.version,
    row.name,
    row.checksum,
    row.state,
    row.direction,
    row.statementsDone,
    row.statementCount,
    row.startedAt,
    row.finishedAt,
    row.durationMs,
    row.appliedBy,
    row.error,
  ];
}

function fromLedgerRecord(r: Record<string, unknown>, dialect: Dialect): LedgerRow {
  return {
    version: String(r.version),
    name: String(r.name),
    checksum: String(r.checksum),
    state: r.state as LedgerState,
    direction: r.direction === 'down' ? 'down' : 'up',
    statementsDone: Number(r.statements_done),
    statementCount: r.statement_count === null ? null : Number(r.statement_count),
    startedAt: dialect.readTimestamp(r.started_at) as string,
    finishedAt: dialect.readTimestamp(r.finished_at),
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    appliedBy: String(r.applied_by),
    error: r.error === null ? null : String(r.error),
  };
}

/** A conditional INSERT: it fails on an existing row (the primary key), never replaces it. */
function ledgerInsertSql(table: string, param: (index: number) => string): string {
  const columns = LEDGER_COLUMNS.split(', ');
  return `INSERT INTO ${table} (${LEDGER_COLUMNS}) VALUES (${columns.map((_, i) => param(i + 1)).join(', ')})`;
}

/**
 * The row as expected, by who wrote it and when: what a conditional write compares. `startedAt`
 * is the column as read back (Postgres: to the millisecond, as a JS Date holds it).
 */
function expectedRow(startedAt: string): string {
  return `version = ? AND state = ? AND applied_by = ? AND ${startedAt} = ?`;
}

/** A conditional UPDATE of every column: parameters `ledgerValues(row)` minus version, then the expected row. */
function ledgerUpdateSql(table: string, param: (index: number) => string, startedAt = 'started_at'): string {
  const columns = LEDGER_COLUMNS.split(', ').slice(1);
  const set = columns.map((c, i) => `${c} = ${param(i + 1)}`).join(', ');
  return `UPDATE ${table} SET ${set} WHERE ${numbered(expectedRow(startedAt), param, columns.length)}`;
}

/** A conditional DELETE: parameters the expected row (version, state, applied_by, started_at). */
function ledgerDeleteSql(table: string, param: (index: number) => string, startedAt = 'started_at'): string {
  return `DELETE FROM ${table} WHERE ${numbered(expectedRow(startedAt), param, 0)}`;
}

function numbered(condition: string, param: (index: number) => string, after: number): string {
  let i = after;
  return condition.replace(/\?/g, () => param(++i));
}

/** The conflict a lost conditional write is, described from what the ledger holds now. */
function ledgerConflict(
  row: LedgerRow | { version: string; state: 'deleted' },
  expected: LedgerRow | null,
  found: LedgerRow | null | undefined,
): LedgerConflictError {
  const wanted =
    row.state === 'deleted'
      ? 'its removal'
      : `"${row.state}"${row.error ? ` with the error: ${row.error.slice(0, 500)}` : ''}`;
  return new LedgerConflictError({
    version: row.version,
    expected: describeRow(expected),
    found: found === undefined ? 'a different row' : describeRow(found),
    wanted,
  });
}

function describeRow(row: LedgerRow | null): string {
  if (!row) return 'no row';
  return `"${row.state}" by ${row.appliedBy} (started ${row.startedAt})`;
}

/**
 * Error text as a column can store it: NUL bytes (which Postgres text refuses) shown as `\0`,
 * and cut at a character boundary to `maxBytes` of UTF-8, saying how much was cut.
 */
function storableText(text: string | null, maxBytes = Number.POSITIVE_INFINITY): string | null {
  if (text === null) return null;
  const clean = text.replaceAll('\u0000', '\\0');
  const bytes = Buffer.from(clean, 'utf8');
  if (bytes.length <= maxBytes) return clean;
  const marker = (cut: number) => ` … [cut: ${cut} bytes more]`;
  let keep = maxBytes - Buffer.byteLength(marker(bytes.length));
  while (keep > 0 && ((bytes[keep] as number) & 0xc0) === 0x80) keep--;
  return bytes.subarray(0, keep).toString('utf8') + marker(bytes.length - keep);
}
