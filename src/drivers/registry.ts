import { ConfigError } from '../errors.js';
import { redactUrl, type Scrub, secretScrubber, urlParts } from '../util/secrets.js';
import type { CallerHandle } from './caller.js';
import type { Connection, Database, Driver, DriverOptions } from './driver.js';
import { LedgerStore } from './ledger-store.js';

// Scrubbing lives in util/secrets.ts; these names stay importable from here.
export { redactUrl, redactUrlsIn, scrubSecrets, withoutSecrets } from '../util/secrets.js';

/** Opens the driver of the coordinator's ledger `table` (for a database whose lock and ledger live there). */
type OpenCoordinator = (table: string) => Promise<Driver>;

type DriverFactory = (
  url: string,
  options: DriverOptions,
  caller: CallerHandle | undefined,
  openCoordinator: OpenCoordinator | undefined,
) => Database | Promise<Database>;

/** URL scheme → driver module, imported only when a URL asks for it (start-up stays lean). */
const drivers: Record<string, () => Promise<DriverFactory>> = {
  postgres: async () => (await import('./postgres/index.js')).createPostgresDriver,
  postgresql: async () => (await import('./postgres/index.js')).createPostgresDriver,
  sqlite: async () => (await import('./sqlite/index.js')).createSqliteDriver,
  sqlite3: async () => (await import('./sqlite/index.js')).createSqliteDriver,
  mysql: async () => (await import('./mysql/index.js')).createMysqlDriver,
  mariadb: async () => (await import('./mysql/index.js')).createMysqlDriver,
  clickhouse: async () => (await import('./clickhouse/index.js')).createClickHouseDriver,
  'clickhouse+http': async () => (await import('./clickhouse/index.js')).createClickHouseDriver,
  'clickhouse+https': async () => (await import('./clickhouse/index.js')).createClickHouseDriver,
};

/**
 * The driver for a URL, or for the caller's own client (`caller`; `url` is then its settings as
 * a URL, describeCaller's): its sessions run on the caller's connection.
 */
export async function openDriver(
  url: string,
  options: DriverOptions,
  caller?: CallerHandle,
): Promise<Driver> {
  const scheme = caller?.kind ?? schemeOf(url);
  const load = scheme ? drivers[scheme] : undefined;
  if (!load) {
    throw new ConfigError(
      `unsupported database URL "${redactUrl(url)}": expected postgres://, postgresql://, mysql://, mariadb://, clickhouse://, sqlite:path or sqlite:///absolute/path`,
    );
  }
  if (
    options.pooler !== undefined &&
    options.pooler !== 'none' &&
    scheme !== 'postgres' &&
    scheme !== 'postgresql'
  ) {
    throw new ConfigError(`the pooler option applies to PostgreSQL only, not to ${redactUrl(url)}`);
  }
  checkPercentEncoding(url);
  const { coordinatorUrl, ...own } = options;
  if (coordinatorUrl !== undefined && !scheme?.startsWith('clickhouse')) {
    throw new ConfigError(
      `--coordinator-url is for ClickHouse, which has no lock of its own; ${redactUrl(url)} keeps its lock and ledger itself`,
    );
  }
  const openCoordinator =
    coordinatorUrl === undefined
      ? undefined
      : async (table: string) => {
          if (!['postgres', 'postgresql', 'sqlite', 'sqlite3'].includes(schemeOf(coordinatorUrl) ?? '')) {
            throw new ConfigError(
              `the coordinator URL "${redactUrl(coordinatorUrl)}" must be a PostgreSQL or SQLite URL: the lock ` +
                'and the ledger need a database with both',
            );
          }
          return openDriver(coordinatorUrl, { ...own, table, pooler: undefined });
        };
  const database = await (await load())(url, own, caller, openCoordinator);
  return withLedger(database, secretScrubber(url));
}

/** A URL's scheme, lower case (`postgres`, `clickhouse+https`), or undefined. */
function schemeOf(url: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
}

/**
 * A percent-escape that does not decode (`p%ZZ`) is bad input, said without echoing the part:
 * otherwise a driver fails later with "URI malformed", or shows the password it could not decode.
 */
function checkPercentEncoding(url: string): void {
  const parts = urlParts(url);
  if (!parts) return;
  for (const [what, text] of [
    ['user name', parts.user],
    ['password', parts.password],
    ['database name', parts.path],
  ] as const) {
    if (text === undefined) continue;
    try {
      decodeURIComponent(text);
    } catch {
      throw new ConfigError(
        `the database URL's ${what} is not valid percent-encoding: "%" must start an escape such as %40 ` +
          `(write "%" itself as %25, "@" as %40, "#" as %23, "/" as %2F): ${redactUrl(url)}`,
      );
    }
  }
}

/**
 * The driver the runner uses: each session gets the generic ledger store, and the URL's secrets
 * are scrubbed from database messages (describeError) and from the error text the ledger stores.
 */
function withLedger(database: Database, scrub: Scrub): Driver {
  return {
    dialect: database.dialect,
    target: database.target,
    async connect() {
      const parts = await database.connect();
      const connection = scrubbingConnection(parts.connection, scrub);
      return {
        ...parts,
        connection,
        ledger: parts.ledger ?? new LedgerStore(connection, database.dialect, scrub),
      };
    },
  };
}

/** The connection, but for describeError, whose message is scrubbed. */
function scrubbingConnection(c: Connection, scrub: Scrub): Connection {
  return {
    execute: (sql, params, tag) => c.execute(sql, params, tag),
    query: (sql, params) => c.query(sql, params),
    onCleanSession: (state, write) => c.onCleanSession(state, write),
    ...(c.inFailedTransaction ? { inFailedTransaction: () => c.inFailedTransaction?.() ?? false } : {}),
    describeError(error) {
      const info = c.describeError(error);
      return { ...info, message: scrub(info.message) };
    },
    begin: (options) => c.begin(options),
    commit: () => c.commit(),
    rollback: () => c.rollback(),
    inMigrationTransaction: () => c.inMigrationTransaction(),
    ...(c.serverId ? { serverId: () => c.serverId?.() } : {}),
    close: () => c.close(),
  };
}
