import type pg from 'pg';
import { ConfigError, ConnectFailedError, DatabaseCommandError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import { type DatabaseAdmin, databaseName } from '../admin.js';
import { quoteIdentifier } from '../sql-helpers.js';

/** PostgreSQL: create, drop and look up through the maintenance database `postgres`, as dbmate does. */
export function postgresAdmin(given: string): DatabaseAdmin {
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    throw new ConfigError(`malformed PostgreSQL URL "${redactUrl(given)}"`);
  }
  url.searchParams.delete('pooler');
  const name = databaseName(url, 'create');
  const maintenance = new URL(url.href);
  maintenance.pathname = '/postgres';
  const connect = async (target: URL): Promise<pg.Client> => {
    const { default: pgModule } = await import('pg');
    const client = new pgModule.Client({ connectionString: target.href, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw Object.assign(
        new ConnectFailedError(`cannot connect to ${redactUrl(target.href)}: ${(error as Error).message}`),
        { sqlState: (error as { code?: string }).code },
      );
    }
    return client;
  };
  const onMaintenance = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = await connect(maintenance);
    try {
      return await work(client);
    } finally {
      await client.end().catch(() => {});
    }
  };
  const exists = (client: pg.Client) =>
    client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]).then((r) => r.rowCount === 1);
  return {
    name,
    exists: () => onMaintenance(exists),
    create: ({ ifMissing }) =>
      onMaintenance(async (client) => {
        try {
          await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
        } catch (error) {
          const code = (error as { code?: string }).code;
          // 42P04, or 23505 when another runner creates it at the same moment.
          const already = code === '42P04' || (code === '23505' && (await exists(client)));
          if (already && ifMissing) return;
          throw new DatabaseCommandError({
            database: name,
            action: 'create',
            message: already
              ? `database "${name}" already exists: nothing was changed (\`lockstep up\` creates it only when missing)`
              : `cannot create database "${name}": ${(error as Error).message}`,
          });
        }
      }),
    drop: () =>
      onMaintenance(async (client) => {
        const existed = await exists(client);
        try {
          await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)}`);
        } catch (error) {
          throw new DatabaseCommandError({
            database: name,
            action: 'drop',
            message: `cannot drop database "${name}": ${(error as Error).message}. Nothing was changed`,
          });
        }
        return existed;
      }),
    async ping() {
      try {
        await (await connect(url)).end();
      } catch (error) {
        // The server answered that the database does not exist: it accepts connections.
        if ((error as { sqlState?: string }).sqlState === '3D000') return;
        throw error;
      }
    },
  };
}
