import { ConfigError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import type { CallerHandle } from '../caller.js';
import type { Database, Driver, DriverOptions } from '../driver.js';
import { ClickHouseConnection } from './connection.js';
import { clickhouseDialect } from './dialect.js';
import { ClickHouseLongRunning } from './long-running.js';
import { MirroredLedger } from './mirror.js';
import { StatementTracker } from './tracker.js';
import { parseClickHouseUrl } from './url.js';

/** Opens the coordinator's driver for a ledger table (the registry does: drivers do not import it). */
export type OpenCoordinator = (table: string) => Promise<Driver>;

/** Long statements are bounded by the migration timeout (cancelled with KILL QUERY), not by HTTP. */
const REQUEST_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/**
 * The coordinator's table for one of lockstep's tables (the ledger, `--table`) of a ClickHouse
 * database: prefixed with the database, so that one coordinator database (often the
 * application's own PostgreSQL) serves several ClickHouse databases and never meets lockstep's
 * own tables there. `schema.table` keeps its schema.
 */
export function coordinatorTable(database: string, table: string): string {
  const dot = table.lastIndexOf('.');
  const prefix = `clickhouse_${database.replace(/[^A-Za-z0-9_]/g, '_')}_`;
  return `${table.slice(0, dot + 1)}${prefix}${table.slice(dot + 1)}`;
}

export async function createClickHouseDriver(
  url: string,
  options: DriverOptions,
  caller: CallerHandle | undefined,
  openCoordinator: OpenCoordinator | undefined,
): Promise<Database> {
  if (caller) throw new ConfigError("a ClickHouse target takes a URL, not the application's client");
  const target = parseClickHouseUrl(url);
  if (!openCoordinator) {
    throw new ConfigError(
      `ClickHouse has no locks and no transactions, so lockstep keeps the migration lock and the ledger in a ` +
        `coordinator database: give --coordinator-url (coordinatorUrl) with a PostgreSQL URL (one all your ` +
        `runners reach, e.g. the application's own) or a SQLite path (runners on this host only). ${redactUrl(url)} ` +
        `is left untouched`,
    );
  }
  const coordinator = await openCoordinator(coordinatorTable(target.database, options.table));
  const dialect = clickhouseDialect(target.database, coordinator.dialect.ledger);
  const notice = options.onNotice ?? (() => {});
  return {
    dialect,
    target: `${redactUrl(url)} (ledger ${coordinator.dialect.ledger.name} in the coordinator ${coordinator.target.replace(/ \(ledger [^)]*\)$/, '')})`,
    async connect() {
      const { createClient, ClickHouseLogLevel } = await import('@clickhouse/client');
      const session = await coordinator.connect();
      const client = createClient({
        url: target.endpoint,
        username: target.username,
        password: target.password,
        database: target.database,
        clickhouse_settings: target.settings,
        request_timeout: REQUEST_TIMEOUT_MS,
        application: `lockstep ${options.runnerId}`,
        log: { level: ClickHouseLogLevel.OFF },
      });
      const tracker = new StatementTracker(client, target.database);
      const connection = new ClickHouseConnection(client, session, tracker, notice);
      const ledger = new MirroredLedger(
        session.ledger,
        client,
        target.database,
        target.cluster,
        notice,
        (sql) => connection.query(sql),
      );
      return {
        connection,
        lock: session.lock,
        ledger,
        dbmateMirror: ledger,
        inFlight: tracker,
        longRunning: new ClickHouseLongRunning(client, connection),
        ownTables: {
          connection: session.connection,
          dialect: coordinator.dialect,
          name: (table) => coordinatorTable(target.database, table),
        },
      };
    },
  };
}
