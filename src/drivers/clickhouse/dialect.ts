import type { SplitDialect } from '../../sql/split.js';
import type { ColumnTypes, Dialect, LedgerSpelling } from '../driver.js';
import { codeOf } from './errors.js';

/** As current servers read it: heredocs ($$…$$), nested comments, `#` comments, `\`` in names. */
const syntax: SplitDialect = {
  dollarQuotes: true,
  backslashEscapes: 'always',
  hashComments: true,
  nestedBlockComments: true,
  backticks: true,
  backticksTakeBackslash: true,
  brackets: false,
  bodies: 'none',
};

/** Tables lockstep would create on ClickHouse itself (its ledger lives in the coordinator). */
const types: ColumnTypes = {
  key: 'String',
  text: 'String',
  longText: 'String',
  integer: 'Int32',
  bigint: 'Int64',
  real: 'Float64',
  timestamp: "DateTime64(3, 'UTC')",
  autoId: 'UInt64',
  tableOptions: ' ENGINE = MergeTree ORDER BY tuple()',
};

export function quote(identifier: string): string {
  return `\`${identifier.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``;
}

/** A ClickHouse string literal: backslash and quote escaped (18.16 takes no query parameters). */
export function literal(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/** Server error codes, as ClickHouse numbers them. */
export const CODES = {
  UNKNOWN_IDENTIFIER: '47',
  NO_SUCH_COLUMN_IN_TABLE: '16',
  UNKNOWN_TABLE: '60',
  UNKNOWN_DATABASE: '81',
} as const;

/**
 * ClickHouse's dialect. The ledger lives in the coordinator: `ledger` is the coordinator's
 * spelling of it, for messages.
 */
export function clickhouseDialect(database: string, ledger: LedgerSpelling): Dialect {
  return {
    name: 'clickhouse',
    syntax,
    transactionalDdl: false,
    isTransactionalStatement: () => false,
    param: () => '?',
    quote: (identifier) => identifier.split('.').map(quote).join('.'),
    table: (name) => `${quote(database)}.${quote(name)}`,
    types,
    timestamp: (iso) => iso.replace('T', ' ').replace(/Z$/, ''),
    readTimestamp: (value) =>
      value === null || value === undefined ? null : `${String(value).replace(' ', 'T')}Z`,
    asText: (expression) => `toString(${expression})`,
    noTransactions: true,
    cancellable: true,
    isUndefinedTable: (error) =>
      [CODES.UNKNOWN_TABLE, CODES.UNKNOWN_DATABASE].includes(codeOf(error) as never),
    isUndefinedColumn: (error) =>
      [CODES.UNKNOWN_IDENTIFIER, CODES.NO_SUCH_COLUMN_IN_TABLE].includes(codeOf(error) as never),
    isDuplicateKey: () => false,
    ledger,
  };
}
