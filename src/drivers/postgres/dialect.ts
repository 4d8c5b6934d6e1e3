import type { SplitDialect } from '../../sql/split.js';
import type { ColumnTypes, Connection, Dialect } from '../driver.js';
import { isoFromDate, quoteIdentifier } from '../sql-helpers.js';

const syntax: SplitDialect = {
  dollarQuotes: true,
  backslashEscapes: 'e-prefix',
  hashComments: false,
  nestedBlockComments: true,
  backticks: false,
  brackets: false,
  bodies: 'begin-atomic',
  parenthesesHoldSemicolons: true,
};

const types: ColumnTypes = {
  key: 'text',
  text: 'text',
  longText: 'text',
  integer: 'integer',
  bigint: 'bigint',
  real: 'double precision',
  timestamp: 'timestamptz',
  autoId: 'bigserial PRIMARY KEY',
};

/** started_at as a JS Date reads it back: a row written with microseconds still matches. */
const STARTED_AT = "date_trunc('milliseconds', started_at)";

const codeOf = (error: unknown) => (error as { code?: string }).code;

/** PostgreSQL's dialect, for a ledger `table` in `schema`. */
export function postgresDialect(schema: string, table: string, name: string): Dialect {
  return {
    name: 'postgres',
    syntax,
    transactionalDdl: true,
    param: (index) => `$${index}`,
    quote: (identifier) => identifier.split('.').map(quoteIdentifier).join('.'),
    table: (name) => `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`,
    types,
    timestamp: (iso) => iso,
    readTimestamp: isoFromDate,
    asText: (expression) => `(${expression})::text`,
    cancellable: true,
    // undefined table / schema
    isUndefinedTable: (error) => codeOf(error) === '42P01' || codeOf(error) === '3F000',
    isUndefinedColumn: (error) => codeOf(error) === '42703',
    isDuplicateKey: (error) => codeOf(error) === '23505',
    ledger: {
      table: `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`,
      name,
      startedAt: STARTED_AT,
      async prepare(query: Connection['query']) {
        const found = await query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
        if (found.rowCount === 0) await query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
      },
    },
  };
}
