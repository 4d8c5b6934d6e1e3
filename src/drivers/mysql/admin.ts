import type { Connection } from 'mysql2/promise';
import { ConfigError, ConnectFailedError, DatabaseCommandError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import { type DatabaseAdmin, databaseName } from '../admin.js';

/** MySQL / MariaDB: create, drop and look up over a connection to no database, as dbmate does. */
export function mysqlAdmin(given: string): DatabaseAdmin {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new ConfigError(`malformed MySQL URL "${redactUrl(given)}"`);
  }
  const name = databaseName(url, 'create');
  const server = new URL(url.href);
  server.pathname = '/';
  if (server.protocol === 'mariadb:') server.protocol = 'mysql:';
  const quoted = `\`${name.replaceAll('`', '``')}\``;
  const onServer = async <T>(work: (c: Connection) => Promise<T>): Promise<T> => {
    const mysql = await import('mysql2/promise');
    let connection: Connection;
    try {
      connection = await mysql.createConnection({ uri: server.href, connectTimeout: 10_000 });
    } catch (error) {
      throw new ConnectFailedError(
        `cannot connect to ${redactUrl(server.href)}: ${(error as Error).message}`,
      );
    }
    try {
      return await work(connection);
    } finally {
      await connection.end().catch(() => {});
    }
  };
  const exists = async (c: Connection) => {
    const [rows] = await c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [name]);
    return (rows as unknown[]).length > 0;
  };
  const refuse = (action: 'create' | 'drop', error: unknown) =>
    new DatabaseCommandError({
      database: name,
      action,
      message:
        (error as { errno?: number }).errno === 1007
          ? `database "${name}" already exists: nothing was changed (\`lockstep up\` creates it only when missing)`
          : `cannot ${action} database "${name}": ${(error as Error).message}. Nothing was changed`,
    });
  return {
    name,
    exists: () => onServer(exists),
    create: ({ ifMissing }) =>
      onServer(async (c) => {
        try {
          await c.query(`CREATE DATABASE ${ifMissing ? 'IF NOT EXISTS ' : ''}${quoted}`);
        } catch (error) {
          throw refuse('create', error);
        }
      }),
    drop: () =>
      onServer(async (c) => {
        const existed = await exists(c);
        try {
          await c.query(`DROP DATABASE IF EXISTS ${quoted}`);
        } catch (error) {
          throw refuse('drop', error);
        }
        return existed;
      }),
    ping: () => onServer(async () => {}),
  };
}
