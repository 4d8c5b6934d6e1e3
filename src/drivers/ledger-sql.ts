import type { LedgerRow, LedgerState } from './driver.js';

/** The ledger's columns, in the order of `ledgerValues`; shared by the SQL drivers. */
export const LEDGER_COLUMNS =
  'version, name, checksum, state, direction, statements_done, statement_count, started_at, finished_at, duration_ms, applied_by, error';

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
