import type { SslOptions } from 'mysql2';
import type { Connection as MysqlClient } from 'mysql2/promise';
import { ConfigError, ConnectFailedError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import type { CallerHandle } from '../caller.js';
import type { Database, DriverOptions } from '../driver.js';
import { callerConnections, ownConnection, READ_AS } from './client.js';
import { MysqlConnection } from './connection.js';
import { mysqlDialect } from './dialect.js';
import { MysqlLink } from './link.js';
import { MysqlLock, mysqlLockName } from './lock.js';
import { MysqlLongRunning } from './long-running.js';
import { type MysqlTarget, parseMysqlUrl } from './url.js';

export { mysqlLockName } from './lock.js';

export function createMysqlDriver(url: string, options: DriverOptions, caller?: CallerHandle): Database {
  const target = parseMysqlUrl(url);
  const database = target.database;
  if (options.table.includes('.')) {
    throw new ConfigError(
      `MySQL ledger table "${options.table}" cannot be qualified: the URL's database holds it`,
    );
  }
  const lockName = mysqlLockName(database, options.table);
  const exclusiveLockName = mysqlLockName(database, options.table, 'lockstep-x');
  const dialect = mysqlDialect(database, options.table);
  const lendCaller = caller && callerConnections(caller.client, caller.pool);
  return {
    dialect,
    target: `${redactUrl(url)} (ledger ${database}.${options.table})`,
    async connect() {
      const mysql = await import('mysql2/promise');
      const connect = async (ssl: string | SslOptions | undefined): Promise<MysqlClient> => {
        const client = await mysql.createConnection({
          ...(target.socketPath !== undefined ? { socketPath: target.socketPath } : { host: target.host }),
          ...(target.port !== undefined ? { port: target.port } : {}),
          ...(target.user !== undefined ? { user: target.user } : {}),
          ...(target.password !== undefined ? { password: target.password } : {}),
          database,
          ...(ssl !== undefined ? { ssl } : {}),
          ...(target.charset !== undefined ? { charset: target.charset } : {}),
          ...READ_AS,
          enableKeepAlive: true,
          keepAliveInitialDelay: 10_000,
          connectTimeout: target.connectTimeoutMs ?? 10_000,
          multipleStatements: false,
          // mysql2 asks for IGNORE_SPACE by default, which makes function names reserved words
          // (`CREATE TABLE count` fails): parse SQL as the server's own client does.
          flags: ['-IGNORE_SPACE'],
        });
        const variables = Object.entries(target.variables);
        if (variables.length > 0) {
          // go-sql-driver's meaning of its other parameters: the values are SQL, as written.
          await client
            .query(`SET ${variables.map(([name, value]) => `SESSION ${name} = ${value}`).join(', ')}`)
            .catch(async (error: Error) => {
              await client.end().catch(() => {});
              throw new Error(
                `the URL's system variables (${variables.map(([n]) => n).join(', ')}): ${error.message}`,
              );
            });
        }
        return client;
      };
      const open = async (): Promise<MysqlClient> => {
        const attempt = mysqlTls(target);
        try {
          try {
            return await connect(attempt);
          } catch (error) {
            // tls=preferred: plaintext when the server offers no TLS.
            if (
              target.tls !== 'preferred' ||
              (error as { code?: string }).code !== 'HANDSHAKE_NO_SSL_SUPPORT'
            )
              throw error;
            return await connect(undefined);
          }
        } catch (error) {
          throw new ConnectFailedError(
            `cannot connect to ${redactUrl(url)}: ${tlsFailure(target, error as Error)}`,
          );
        }
      };
      const lease = lendCaller ? await lendCaller(open) : ownConnection(await open());
      const link = new MysqlLink(lease.connection, options);
      const lock = new MysqlLock(link, lockName);
      return {
        connection: new MysqlConnection(link, lock, dialect, exclusiveLockName, lease),
        lock,
        longRunning: new MysqlLongRunning(link),
      };
    },
  };
}

/** mysql2's ssl option for the URL's tls= (or its ssl=, as mysql2 reads it). */
function mysqlTls(target: MysqlTarget): string | SslOptions | undefined {
  if (target.ssl !== undefined) return target.ssl;
  switch (target.tls) {
    case 'none':
      return undefined;
    case 'verify':
      return { rejectUnauthorized: true };
    case 'skip-verify':
    case 'preferred':
      return { rejectUnauthorized: false };
  }
}

/** A server without TLS, asked for TLS: say so, and what to change. */
function tlsFailure(target: MysqlTarget, error: Error): string {
  if ((error as { code?: string }).code !== 'HANDSHAKE_NO_SSL_SUPPORT') return error.message;
  const asked =
    target.ssl !== undefined
      ? "the URL's ssl="
      : `the URL's tls=${target.tls === 'verify' ? 'true' : target.tls}`;
  return `the server does not accept TLS connections, and ${asked} asks for TLS: enable TLS on the server, or use tls=preferred (TLS when offered) or tls=false`;
}
