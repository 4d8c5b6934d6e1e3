import { DEFAULT_TABLE } from '../defaults.js';
import { ConfigError, LedgerConflictError } from '../errors.js';
import type { ColumnTypes, LedgerRow, LedgerState } from './driver.js';

/** The ledger's columns, in the order of `ledgerValues`; shared by the SQL drivers. */
export const LEDGER_COLUMNS =
  'version, name, checksum, state, direction, statements_done, statement_count, started_at, finished_at, duration_ms, applied_by, error';

/** The ledger's CREATE TABLE, the same on every SQL database but for the types. */
export function createLedgerSql(table: string, t: ColumnTypes): string {
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
export function notALedger(table: string, dbMessage: string): ConfigError {
  return new ConfigError(
    `table ${table} exists but is not a lockstep ledger (${dbMessage}); nothing was changed. ` +
      `Pass --table a table of lockstep's own, or a new name (default: ${DEFAULT_TABLE}).`,
  );
}

export function ledgerValues(row: LedgerRow): unknown[] {
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

export function fromLedgerRecord(r: Record<string, unknown>): LedgerRow {
  return {
    version: String(r.version),
    name: String(r.name),
    checksum: String(r.checksum),
    state: r.state as LedgerState,
    direction: r.direction === 'down' ? 'down' : 'up',
    statementsDone: Number(r.statements_done),
    statementCount: r.statement_count === null ? null : Number(r.statement_count),
    startedAt: isoString(r.started_at) as string,
    finishedAt: isoString(r.finished_at),
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    appliedBy: String(r.applied_by),
    error: r.error === null ? null : String(r.error),
  };
}

function isoString(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value.toISOString() : String(value);
}

/** Quotes an identifier the standard way ("..." with doubled quotes). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A LIKE pattern matching text that starts with `prefix` (backslash, `%` and `_` escaped). */
export function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A database setting's name, checked: it is spliced into SET/RESET/PRAGMA statements. */
export function settingName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(name)) {
    throw new ConfigError(
      `invalid database setting name "${name}": use letters, digits and _ (e.g. work_mem)`,
    );
  }
  return name;
}

/** A conditional INSERT: it fails on an existing row (the primary key), never replaces it. */
export function ledgerInsertSql(table: string, param: (index: number) => string): string {
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

/** A conditional UPDATE of every column: parameters `ledgerValues(row)` minus version, then `expectedValues`. */
export function ledgerUpdateSql(
  table: string,
  param: (index: number) => string,
  startedAt = 'started_at',
): string {
  const columns = LEDGER_COLUMNS.split(', ').slice(1);
  const set = columns.map((c, i) => `${c} = ${param(i + 1)}`).join(', ');
  return `UPDATE ${table} SET ${set} WHERE ${numbered(expectedRow(startedAt), param, columns.length)}`;
}

/** A conditional DELETE: parameters `expectedValues`. */
export function ledgerDeleteSql(
  table: string,
  param: (index: number) => string,
  startedAt = 'started_at',
): string {
  return `DELETE FROM ${table} WHERE ${numbered(expectedRow(startedAt), param, 0)}`;
}

export function expectedValues(expected: LedgerRow): unknown[] {
  return [expected.version, expected.state, expected.appliedBy, expected.startedAt];
}

function numbered(condition: string, param: (index: number) => string, after: number): string {
  let i = after;
  return condition.replace(/\?/g, () => param(++i));
}

/** Whether an error is a duplicate primary key: the row the INSERT expected absent exists. */
export function isDuplicateKey(error: unknown): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return code === '23505' || code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/** The conflict a lost conditional write is, described from what the ledger holds now. */
export function ledgerConflict(
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

/** MySQL's TEXT: 65,535 bytes. */
export const MYSQL_TEXT_BYTES = 65_535;

/**
 * Error text as a column can store it: NUL bytes (which Postgres text refuses) shown as `\0`,
 * and cut at a character boundary to `maxBytes` of UTF-8, saying how much was cut.
 */
export function storableText(text: string | null, maxBytes = Number.POSITIVE_INFINITY): string | null {
  if (text === null) return null;
  const clean = text.replaceAll('\u0000', '\\0');
  const bytes = Buffer.from(clean, 'utf8');
  if (bytes.length <= maxBytes) return clean;
  const marker = (cut: number) => ` … [cut: ${cut} bytes more]`;
  let keep = maxBytes - Buffer.byteLength(marker(bytes.length));
  while (keep > 0 && ((bytes[keep] as number) & 0xc0) === 0x80) keep--;
  return bytes.subarray(0, keep).toString('utf8') + marker(bytes.length - keep);
}
