import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ConfigError, ConnectionError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import type { CallerHandle } from '../caller.js';
import { type Database, type DriverOptions, type PoolerMode, poolerMode } from '../driver.js';
import { callerConnections, ownConnection } from './client.js';
import { PostgresConnection } from './connection.js';
import { postgresDialect } from './dialect.js';
import { applicationName, PostgresLink } from './link.js';
import { PostgresLock } from './lock.js';
import { PostgresLongRunning } from './long-running.js';
import { PooledConnection, TransactionLock } from './pooled.js';

/** Ask the server to notice a vanished client within ~25 s (SPEC guarantee 9). */
const KEEPALIVE_OPTIONS = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

export function createPostgresDriver(given: string, options: DriverOptions, caller?: CallerHandle): Database {
  let parsed: URL;
  try {
    parsed = new URL(given);
  } catch {
    throw new ConfigError(
      `malformed PostgreSQL URL "${redactUrl(given)}": expected postgres://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const pooler = declaredPooler(parsed, options.pooler);
  // lockstep's own parameter: the server (or the pooler) must not see it.
  const url = parsed.searchParams.has('pooler') ? withoutPoolerParameter(parsed) : given;
  const [schema, table] = options.table.includes('.')
    ? (options.table.split('.') as [string, string])
    : ['public', options.table];
  const lockKey = createHash('sha256').update(`${schema}.${table}`).digest().readInt32BE(0) & 0x7fffffff;
  const dialect = postgresDialect(schema, table, options.table);
  const lendCaller = caller && callerConnections(caller.client, caller.pool, pooler !== 'transaction');
  return {
    dialect,
    target: `${redactUrl(url)} (ledger ${schema}.${table}${pooler === 'none' ? '' : `, through a ${pooler}-mode pooler`})`,
    async connect() {
      const { default: pgModule } = await import('pg');
      const open = async (settings: pg.ClientConfig) => {
        const client = new pgModule.Client({
          ...settings,
          application_name: applicationName(options.runnerId),
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          connectionTimeoutMillis: 10_000,
          // A pooler keeps its own keepalives, and may refuse the startup parameter.
          ...(pooler === 'none' ? { options: KEEPALIVE_OPTIONS } : {}),
        });
        try {
          await client.connect();
        } catch (error) {
          await client.end().catch(() => {});
          throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${connectFailure(error as Error)}`);
        }
        return client;
      };
      const lease = lendCaller
        ? await lendCaller(open)
        : ownConnection(await open({ connectionString: url }));
      const link = new PostgresLink(lease.connection, options);
      const longRunning = new PostgresLongRunning(link);
      if (pooler === 'transaction') {
        const lock = new TransactionLock(link, lockKey);
        return { connection: new PooledConnection(link, lock, dialect, lease), lock, longRunning };
      }
      const lock = new PostgresLock(link, lockKey, pooler);
      const connection = new PostgresConnection(link, lock, dialect, lockKey, lease);
      return {
        connection,
        lock,
        longRunning,
        leftovers: async () => {
          const result = await link.query(
            `SELECT i.indexrelid::regclass::text AS name FROM pg_index i
              JOIN pg_class c ON c.oid = i.indexrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
          );
          return result.rows.map(
            (r) => `INVALID index ${r.name} (drop it with DROP INDEX CONCURRENTLY ${r.name})`,
          );
        },
      };
    },
  };
}

function withoutPoolerParameter(url: URL): string {
  url.searchParams.delete('pooler');
  return url.href;
}

/** The pooler mode: the option, else the URL's `pooler=` parameter; both given must agree. */
function declaredPooler(url: URL, option: PoolerMode | undefined): PoolerMode {
  const written = url.searchParams.get('pooler');
  const inUrl =
    written === null ? undefined : poolerMode(written, `the URL's pooler=${written} is not a pooler mode`);
  if (inUrl !== undefined && option !== undefined && inUrl !== option) {
    throw new ConfigError(`the URL says pooler=${inUrl} but the pooler option says ${option}: give one`);
  }
  return option ?? inUrl ?? 'none';
}

/** A pooler that refuses lockstep's keepalive settings says so at connect: say what to do. */
function connectFailure(error: Error): string {
  if (!/unsupported startup parameter/i.test(error.message)) return error.message;
  return (
    `${error.message} (a connection pooler such as PgBouncer is in between: add pooler=transaction to the URL ` +
    'for a transaction-mode pooler, pooler=session for a session-mode one; lockstep then sends no such parameter)'
  );
}
