import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ConfigError, ConnectionError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import type { CallerHandle } from '../caller.js';
import type { Database, DriverOptions } from '../driver.js';
import { callerConnections, ownConnection } from './client.js';
import { PostgresConnection } from './connection.js';
import { postgresDialect } from './dialect.js';
import { applicationName, PostgresLink } from './link.js';
import { PostgresLock } from './lock.js';
import { PostgresLongRunning } from './long-running.js';

/** Ask the server to notice a vanished client within ~25 s (SPEC guarantee 9). */
const KEEPALIVE_OPTIONS = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

export function createPostgresDriver(url: string, options: DriverOptions, caller?: CallerHandle): Database {
  try {
    new URL(url);
  } catch {
    throw new ConfigError(
      `malformed PostgreSQL URL "${redactUrl(url)}": expected postgres://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const [schema, table] = options.table.includes('.')
    ? (options.table.split('.') as [string, string])
    : ['public', options.table];
  const lockKey = createHash('sha256').update(`${schema}.${table}`).digest().readInt32BE(0) & 0x7fffffff;
  const dialect = postgresDialect(schema, table, options.table);
  const lendCaller = caller && callerConnections(caller.client, caller.pool);
  return {
    dialect,
    target: `${redactUrl(url)} (ledger ${schema}.${table})`,
    async connect() {
      const { default: pgModule } = await import('pg');
      const open = async (settings: pg.ClientConfig) => {
        const client = new pgModule.Client({
          ...settings,
          application_name: applicationName(options.runnerId),
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          connectionTimeoutMillis: 10_000,
          options: KEEPALIVE_OPTIONS,
        });
        try {
          await client.connect();
        } catch (error) {
          await client.end().catch(() => {});
          throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${(error as Error).message}`);
        }
        return client;
      };
      const lease = lendCaller
        ? await lendCaller(open)
        : ownConnection(await open({ connectionString: url }));
      const link = new PostgresLink(lease.connection, options);
      const lock = new PostgresLock(link, lockKey);
      const connection = new PostgresConnection(link, lock, dialect, lockKey, lease);
      return {
        connection,
        lock,
        longRunning: new PostgresLongRunning(link),
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
