import type { Connection as MysqlClient } from 'mysql2/promise';
import { ConfigError, ConnectionError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import type { CallerHandle } from '../caller.js';
import type { Database, DriverOptions } from '../driver.js';
import { callerConnections, ownConnection, READ_AS } from './client.js';
import { MysqlConnection } from './connection.js';
import { mysqlDialect } from './dialect.js';
import { MysqlLink } from './link.js';
import { MysqlLock, mysqlLockName } from './lock.js';
import { MysqlLongRunning } from './long-running.js';

export { mysqlLockName } from './lock.js';

export function createMysqlDriver(url: string, options: DriverOptions, caller?: CallerHandle): Database {
  let parsed: URL;
  try {
    parsed = new URL(url.replace(/^mariadb:/i, 'mysql:'));
  } catch {
    throw new ConfigError(
      `malformed MySQL URL "${redactUrl(url)}": expected mysql://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw new ConfigError(
      `MySQL URL "${redactUrl(url)}" names no database: add /<database> (the ledger lives there)`,
    );
  }
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
      const open = async (): Promise<MysqlClient> => {
        try {
          return await mysql.createConnection({
            uri: parsed.href,
            ...READ_AS,
            enableKeepAlive: true,
            keepAliveInitialDelay: 10_000,
            connectTimeout: 10_000,
            multipleStatements: false,
            // mysql2 asks for IGNORE_SPACE by default, which makes function names reserved words
            // (`CREATE TABLE count` fails): parse SQL as the server's own client does.
            flags: ['-IGNORE_SPACE'],
          });
        } catch (error) {
          throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${(error as Error).message}`);
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
