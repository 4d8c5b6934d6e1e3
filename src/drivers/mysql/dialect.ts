import type { SplitDialect } from '../../sql/split.js';
import type { ColumnTypes, Dialect } from '../driver.js';

const syntax: SplitDialect = {
  dollarQuotes: false,
  backslashEscapes: 'always',
  hashComments: true,
  nestedBlockComments: false,
  backticks: true,
  brackets: false,
  bodies: 'mysql-routine',
  dashCommentNeedsSpace: true,
  versionedComments: true,
  delimiterCommand: true,
};

/** Statements that MySQL runs inside a transaction; anything else (DDL) commits implicitly. */
const TRANSACTIONAL = /^\s*(INSERT|UPDATE|DELETE|REPLACE|SELECT|WITH|VALUES)\b/i;

const types: ColumnTypes = {
  key: 'varchar(64)',
  text: 'varchar(255)',
  longText: 'text',
  integer: 'int',
  bigint: 'bigint',
  real: 'double',
  timestamp: 'datetime(3)',
  autoId: 'bigint NOT NULL AUTO_INCREMENT PRIMARY KEY',
  tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
};

/** MySQL's TEXT: 65,535 bytes. */
const TEXT_BYTES = 65_535;

const codeOf = (error: unknown) => (error as { code?: string }).code;

export function quote(identifier: string): string {
  return `\`${identifier.replaceAll('`', '``')}\``;
}

/** MySQL's dialect, for a ledger `table` in `database`. */
export function mysqlDialect(database: string, table: string): Dialect {
  return {
    name: 'mysql',
    syntax,
    transactionalDdl: false,
    isTransactionalStatement: (sql) => TRANSACTIONAL.test(sql),
    param: () => '?',
    quote: (identifier) => identifier.split('.').map(quote).join('.'),
    table: (name) => `${quote(database)}.${quote(name)}`,
    types,
    timestamp: (iso) => toDatetime(iso),
    readTimestamp: fromDatetime,
    asText: (expression) => `CAST(${expression} AS CHAR)`,
    cancellable: true,
    isUndefinedTable: (error) => codeOf(error) === 'ER_NO_SUCH_TABLE',
    isUndefinedColumn: (error) => codeOf(error) === 'ER_BAD_FIELD_ERROR',
    isDuplicateKey: (error) => codeOf(error) === 'ER_DUP_ENTRY',
    // Qualified, so a migration's `USE other_db` never redirects the ledger writes.
    ledger: { table: `${quote(database)}.${quote(table)}`, name: table, errorBytes: TEXT_BYTES },
  };
}

/** ISO 8601 → MySQL DATETIME(3) in UTC. */
function toDatetime(iso: string): string {
  return iso.replace('T', ' ').replace(/Z$/, '');
}

/**
 * A DATETIME as mysql2 returns it (`dateStrings`: `YYYY-MM-DD HH:MM:SS.fff`, in UTC) → ISO 8601.
 * The one place that reads mysql2's format: the ledger and the long-running migrations' store.
 */
function fromDatetime(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  const text = String(value);
  return /^\d{4}-\d\d-\d\d \d/.test(text)
    ? `${text.replace(' ', 'T')}${/Z|[+-]\d\d:?\d\d$/.test(text) ? '' : 'Z'}`
    : text;
}
