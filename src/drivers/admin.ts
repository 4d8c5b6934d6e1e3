import { ConfigError } from '../errors.js';
import { redactUrl } from '../util/secrets.js';

/**
 * A database as a whole, from the server's side (dbmate's `create`, `drop`, `wait` and `up`'s
 * creation of a missing database): reached through the server's maintenance database (Postgres),
 * no database (MySQL) or the file system (SQLite), never through the migration session.
 */
export interface DatabaseAdmin {
  /** The database as shown: its name or file. */
  readonly name: string;
  exists(): Promise<boolean>;
  /** Creates it; `ifMissing`: one that exists already (another runner's, just now) is fine. */
  create(options: { readonly ifMissing: boolean }): Promise<void>;
  /** Drops it if it exists; says whether it did. */
  drop(): Promise<boolean>;
  /** Resolves once the server accepts a connection (the database itself need not exist); throws why not. */
  ping(): Promise<void>;
}

const admins: Record<string, () => Promise<(url: string) => DatabaseAdmin>> = {
  postgres: async () => (await import('./postgres/admin.js')).postgresAdmin,
  postgresql: async () => (await import('./postgres/admin.js')).postgresAdmin,
  mysql: async () => (await import('./mysql/admin.js')).mysqlAdmin,
  mariadb: async () => (await import('./mysql/admin.js')).mysqlAdmin,
  sqlite: async () => (await import('./sqlite/admin.js')).sqliteAdmin,
  sqlite3: async () => (await import('./sqlite/admin.js')).sqliteAdmin,
};

export async function openAdmin(url: string, command: string): Promise<DatabaseAdmin> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase() ?? '';
  const load = admins[scheme];
  if (!load) {
    throw new ConfigError(
      scheme.startsWith('clickhouse')
        ? `\`${command}\` is not available for ClickHouse yet: create or drop the database with ` +
            'clickhouse-client (CREATE DATABASE … / DROP DATABASE …), or wait with `lockstep status`'
        : `unsupported database URL "${redactUrl(url)}" for \`${command}\`: expected postgres://, mysql://, mariadb:// or sqlite:`,
    );
  }
  return (await load())(url);
}

/** The database name of a server URL's path, decoded; a URL without one is refused. */
export function databaseName(url: URL, command: string): string {
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (name === '' || name.includes('/')) {
    throw new ConfigError(
      `\`${command}\` needs a database name in the URL (${redactUrl(url.href)}): e.g. postgres://user@host:5432/app`,
    );
  }
  return name;
}
