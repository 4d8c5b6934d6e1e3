import type { SplitDialect } from '../../sql/split.js';
import type { ColumnTypes, Dialect } from '../driver.js';
import { isoFromDate, quoteIdentifier } from '../sql-helpers.js';

const syntax: SplitDialect = {
  dollarQuotes: false,
  backslashEscapes: 'never',
  hashComments: false,
  nestedBlockComments: false,
  backticks: true,
  brackets: true,
  bodies: 'sqlite-trigger',
};

const types: ColumnTypes = {
  key: 'TEXT',
  text: 'TEXT',
  longText: 'TEXT',
  integer: 'INTEGER',
  bigint: 'INTEGER',
  real: 'REAL',
  timestamp: 'TEXT',
  autoId: 'INTEGER PRIMARY KEY',
};

const messageOf = (error: unknown) => (error as { message?: string }).message ?? '';

/** SQLite's dialect, for the ledger `table`. */
export function sqliteDialect(table: string): Dialect {
  return {
    name: 'sqlite',
    syntax,
    transactionalDdl: true,
    param: () => '?',
    quote: (identifier) => quoteIdentifier(identifier),
    table: (name) => quoteIdentifier(name),
    types,
    timestamp: (iso) => iso,
    readTimestamp: isoFromDate,
    asText: (expression) => `CAST(${expression} AS TEXT)`,
    // better-sqlite3 runs a statement synchronously: nothing can interrupt or time-limit it.
    cancellable: false,
    isUndefinedTable: (error) => /no such table/.test(messageOf(error)),
    isUndefinedColumn: (error) => /no such column/.test(messageOf(error)),
    isDuplicateKey: (error) => (error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY',
    ledger: { table: quoteIdentifier(table), name: table },
  };
}
