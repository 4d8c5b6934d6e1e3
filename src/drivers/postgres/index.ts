import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ConfigError, ConnectFailedError } from '../../errors.js';
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
import { tlsAttempts, tlsFailure } from './tls.js';
import {
  type PostgresTarget,
  parsePostgresUrl,
  runtimeOption,
  searchPathSchemas,
  type TlsPlan,
} from './url.js';

/** Ask the server to notice a vanished client within ~25 s (SPEC guarantee 9). */
const KEEPALIVE_OPTIONS = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';

export function createPostgresDriver(given: string, options: DriverOptions, caller?: CallerHandle): Database {
  // With the caller's client its own settings connect: of its URL only the address and pooler= count.
  const target = parsePostgresUrl(
    caller ? keepParameters(given, (pair) => pair.startsWith('pooler=')) : given,
  );
  const pooler = declaredPooler(target.pooler, options.pooler);
  // lockstep's own parameter: the server (or the pooler) must not see it.
  const url =
    target.pooler !== undefined ? keepParameters(given, (pair) => !pair.startsWith('pooler=')) : given;
  const shown = redactUrl(url);
  const [schema, table] = ledgerName(options.table, target.searchPath, shown);
  const startup = startupOptions(target, pooler, shown);
  const lockKey = createHash('sha256').update(`${schema}.${table}`).digest().readInt32BE(0) & 0x7fffffff;
  const dialect = postgresDialect(schema, table, options.table);
  const lendCaller = caller && callerConnections(caller.client, caller.pool, pooler !== 'transaction');
  // Through a pooler no startup parameter carries search_path: lockstep's lock sets it (postgres/lock.ts, pooled.ts).
  const sessionSearchPath = pooler === 'none' ? undefined : target.searchPath;
  return {
    dialect,
    target: `${shown} (ledger ${schema}.${table}${pooler === 'none' ? '' : `, through a ${pooler}-mode pooler`})`,
    async connect() {
      const { default: pgModule } = await import('pg');
      const open = async (settings: pg.ClientConfig) => {
        const client = new pgModule.Client({
          connectionTimeoutMillis: 10_000,
          ...settings,
          application_name: applicationName(options.runnerId),
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          // A pooler keeps its own keepalives, and may refuse the startup parameter.
          options: [pooler === 'none' ? KEEPALIVE_OPTIONS : '', settings.options ?? '']
            .filter(Boolean)
            .join(' '),
        });
        try {
          await client.connect();
        } catch (error) {
          await client.end().catch(() => {});
          throw error;
        }
        return client;
      };
      // A TLS file that cannot be read is the URL's fault, not the server's.
      const failed = (error: unknown) =>
        error instanceof ConfigError
          ? error
          : new ConnectFailedError(
              `cannot connect to ${shown}: ${connectFailure(error as Error, target.tls)}`,
            );
      const lease = lendCaller
        ? await lendCaller((settings) => open(settings).catch((error) => Promise.reject(failed(error))))
        : ownConnection(
            await connectOwn(target, startup, open).catch((error) => Promise.reject(failed(error))),
          );
      const link = new PostgresLink(lease.connection, options, sessionSearchPath);
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

/** The URL as written, with only the parameters `keep` accepts (`name=value` as written). */
function keepParameters(given: string, keep: (pair: string) => boolean): string {
  const hash = given.indexOf('#');
  const head = hash === -1 ? given : given.slice(0, hash);
  const question = head.indexOf('?');
  if (question === -1) return given;
  const kept = head
    .slice(question + 1)
    .split('&')
    .filter(keep);
  return `${head.slice(0, question)}${kept.length > 0 ? `?${kept.join('&')}` : ''}${hash === -1 ? '' : given.slice(hash)}`;
}

/** The pooler mode: the option, else the URL's `pooler=` parameter; both given must agree. */
function declaredPooler(written: string | undefined, option: PoolerMode | undefined): PoolerMode {
  const inUrl =
    written === undefined
      ? undefined
      : poolerMode(written, `the URL's pooler=${written} is not a pooler mode`);
  if (inUrl !== undefined && option !== undefined && inUrl !== option) {
    throw new ConfigError(`the URL says pooler=${inUrl} but the pooler option says ${option}: give one`);
  }
  return option ?? inUrl ?? 'none';
}

/**
 * The ledger's schema and table: `--table schema.table` as given; an unqualified table lives in
 * the first schema of the URL's search_path (as under dbmate), else in public.
 */
function ledgerName(table: string, searchPath: string | undefined, shown: string): [string, string] {
  if (table.includes('.')) return table.split('.') as [string, string];
  const first = searchPath === undefined ? undefined : searchPathSchemas(searchPath)[0];
  if (first === '$user') {
    throw new ConfigError(
      `PostgreSQL URL "${shown}": search_path starts with $user, which names no one schema for the ledger: qualify it (--table <schema>.${table})`,
    );
  }
  return [first ?? 'public', table];
}

/**
 * The URL's server settings, sent at startup (as lib/pq sends them) so they are the session's
 * defaults: RESET ALL and lockstep's own session handling keep them. Through a pooler no startup
 * parameter but the pooler's own reaches the server: search_path is set by lockstep's statements
 * instead, any other setting is refused.
 */
function startupOptions(target: PostgresTarget, pooler: PoolerMode, shown: string): string | undefined {
  const names = Object.keys(target.runtime);
  if (pooler !== 'none') {
    if (names.length > 0) {
      throw new ConfigError(
        `PostgreSQL URL "${shown}": ${names.join(', ')} cannot reach the server through a ${pooler}-mode pooler ` +
          '(it passes no startup settings): set it on the role (ALTER ROLE … SET) or in the migrations',
      );
    }
    return target.options;
  }
  const settings = Object.entries({
    ...target.runtime,
    ...(target.searchPath !== undefined ? { search_path: target.searchPath } : {}),
  }).map(([name, value]) => runtimeOption(name, value));
  const all = [...settings, ...(target.options ? [target.options] : [])];
  return all.length > 0 ? all.join(' ') : undefined;
}

/**
 * lockstep's own connection to the URL's server, with sslmode's meaning: `prefer` falls back to
 * plaintext when the server refuses TLS, `allow` to TLS when it refuses plaintext.
 */
async function connectOwn(
  target: PostgresTarget,
  startup: string | undefined,
  open: (settings: pg.ClientConfig) => Promise<pg.Client>,
): Promise<pg.Client> {
  const base: pg.ClientConfig = {
    host: target.host,
    port: target.port,
    ...(target.user !== undefined ? { user: target.user } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.database !== undefined ? { database: target.database } : {}),
    ...(target.connectTimeoutMs !== undefined ? { connectionTimeoutMillis: target.connectTimeoutMs } : {}),
    ...(target.clientEncoding !== undefined ? { client_encoding: target.clientEncoding } : {}),
    ...(startup !== undefined ? { options: startup } : {}),
  };
  const attempts = target.tls ? tlsAttempts(target.tls) : { first: false as const };
  try {
    return await open({ ...base, ssl: attempts.first });
  } catch (error) {
    if (!attempts.fallback?.retryOn(error as Error)) throw error;
    return open({ ...base, ssl: attempts.fallback.attempt });
  }
}

/** A pooler that refuses lockstep's keepalive settings says so at connect: say what to do. */
function connectFailure(error: Error, tls: TlsPlan | undefined): string {
  if (!/unsupported startup parameter/i.test(error.message))
    return tls ? tlsFailure(tls, error) : error.message;
  return (
    `${error.message} (a connection pooler such as PgBouncer is in between: add pooler=transaction to the URL ` +
    'for a transaction-mode pooler, pooler=session for a session-mode one; lockstep then sends no such parameter)'
  );
}
