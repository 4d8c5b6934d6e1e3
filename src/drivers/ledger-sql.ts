import { ConfigError } from '../core/errors.js';
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
      "Pass --table a table of lockstep's own, or a new name (default: lockstep_migrations).",
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
