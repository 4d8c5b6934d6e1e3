import { hostname } from 'node:os';
import {
  DEFAULT_ASYNC_TABLE,
  DEFAULT_DDL_LOCK_RETRIES,
  DEFAULT_DDL_LOCK_TIMEOUT_MS,
  DEFAULT_DIR,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_MIGRATION_TIMEOUT_MS,
  DEFAULT_TABLE,
  urlInUse,
} from '../defaults.js';
import { type CallerClient, type CallerHandle, describeCaller } from '../drivers/caller.js';
import { type PoolerMode, poolerMode } from '../drivers/driver.js';
import { ConfigError } from '../errors.js';
import { durationMs } from '../util/duration.js';
import { scrubbingHandler } from '../util/secrets.js';
import type { EventHandler } from './events.js';
import type { HistoryPolicy } from './plan.js';

/** Options of `migrate()` and `createMigrator()`; the CLI flags map onto them one to one. */
export interface LockstepOptions extends HistoryPolicy {
  /**
   * Database URL: `postgres://…`, `postgresql://…`, `sqlite:relative/path.db`, `sqlite:///abs/path.db`.
   * Default is `DATABASE_URL`, else `sqlite:db/lockstep.sqlite3`.
   */
  readonly url?: string | undefined;
  /**
   * The application's own client instead of a URL: a `pg.Pool` or `pg.Client`, a mysql2 pool or
   * connection (callback or promise API), a better-sqlite3 `Database`. A run checks out one
   * connection for the lock and the work and gives it back as it found it; lockstep never ends it.
   */
  readonly client?: CallerClient | undefined;
  /**
   * What sits between lockstep and PostgreSQL (also the URL's `pooler=` parameter):
   * `transaction` for a transaction-mode pooler such as PgBouncer's pool_mode=transaction or a
   * managed "pooled" URL (each migration commits under a transaction lock; migrations that cannot
   * run in a transaction are refused, or run through `directUrl`), `session` for a session-mode
   * one, `none` for PostgreSQL itself. Default: none, checked: a pooler found there is refused.
   */
  readonly pooler?: PoolerMode | undefined;
  /**
   * A URL to the same database that reaches PostgreSQL itself (or a session-mode pooler), for what
   * a transaction-mode pooler cannot carry: a run that has a migration to apply (or roll back)
   * outside a transaction runs through it instead, as a whole.
   */
  readonly directUrl?: string | undefined;
  /**
   * ClickHouse: the database that holds the migration lock and the ledger (ClickHouse has
   * neither): a PostgreSQL URL that every runner reaches, or a SQLite path for runners on one host.
   */
  readonly coordinatorUrl?: string | undefined;
  /**
   * ClickHouse: a statement that a dead runner left running on the server is cancelled
   * (`KILL QUERY`) instead of waited for, before the runner decides. Default is false: wait.
   */
  readonly cancelOrphans?: boolean | undefined;
  /** Migrations directory. Default is `db/migrations`. */
  readonly dir?: string | undefined;
  /** Ledger table; `schema.table` on Postgres. Default is `lockstep_migrations` (Postgres: in `public`). */
  readonly table?: string | undefined;
  /** dbmate's ledger table to adopt and keep updated; default schema_migrations. */
  readonly dbmateTable?: string | undefined;
  /** How long to wait for another runner's lock, in ms or as `15m`/`30s`. Default is 15 minutes. */
  readonly lockTimeout?: number | string | undefined;
  /** Postgres `lock_timeout` for migration statements, in ms or as `5s`; null turns it off. Default is 5s. */
  readonly ddlLockTimeout?: number | string | null | undefined;
  /** Retries after a DDL lock timeout, with backoff. Default is 5. */
  readonly ddlLockRetries?: number | undefined;
  /**
   * How long one migration may run (ms, `30m`, or null/`off` for no limit) before it is cancelled,
   * rolled back or recorded `failed`, and the lock released. A migration's own `timeout` overrides
   * it. Default is 1 hour.
   */
  readonly migrationTimeout?: number | string | null | undefined;
  /**
   * How long a run may hold the lock applying migrations (ms, `2h`, or null/`off`), whatever each
   * one's own limit. Default is no limit (each migration is still bounded by `migrationTimeout`).
   */
  readonly runTimeout?: number | string | null | undefined;
  /** The state table of long-running migrations, read when a migration `requires` one. Default is `lockstep_async`. */
  readonly asyncTable?: string | undefined;
  /** Called with every event of the run. */
  readonly on?: EventHandler | undefined;
  /** Base for relative paths. Default is `process.cwd()`. */
  readonly cwd?: string | undefined;
}

export interface ResolvedConfig extends HistoryPolicy {
  /** The database URL; with `caller`, the caller's client settings as one (for target and scrubbing). */
  readonly url: string;
  readonly caller?: CallerHandle | undefined;
  readonly pooler: PoolerMode | undefined;
  readonly directUrl: string | undefined;
  readonly coordinatorUrl: string | undefined;
  readonly cancelOrphans: boolean;
  readonly dir: string;
  readonly table: string;
  readonly lockTimeoutMs: number;
  readonly ddlLockTimeoutMs: number | null;
  readonly ddlLockRetries: number;
  /** null: no limit. */
  readonly migrationTimeoutMs: number | null;
  readonly runTimeoutMs: number | null;
  readonly asyncTable: string;
  readonly on: EventHandler;
  readonly cwd: string;
  readonly runnerId: string;
}

/** A table name, optionally `schema.table`: letters, digits, _ and $. */
export const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

export function resolveConfig(options: LockstepOptions): ResolvedConfig {
  const table = options.table ?? DEFAULT_TABLE;
  if (!TABLE_NAME.test(table) || table.length > 127) {
    throw new ConfigError(
      `invalid ledger table name "${table}": use letters, digits and _ (optionally schema.table)`,
    );
  }
  const ddlLockRetries = options.ddlLockRetries ?? DEFAULT_DDL_LOCK_RETRIES;
  if (!Number.isInteger(ddlLockRetries) || ddlLockRetries < 0) {
    throw new ConfigError(`invalid DDL lock retries "${options.ddlLockRetries}": expected a whole number`);
  }
  const { url, caller } = databaseOption(options);
  return {
    url,
    caller,
    pooler: poolerOption(options.pooler),
    directUrl: options.directUrl || undefined,
    coordinatorUrl: options.coordinatorUrl || undefined,
    cancelOrphans: options.cancelOrphans ?? false,
    dir: options.dir ?? DEFAULT_DIR,
    table,
    lockTimeoutMs: durationOption('lock timeout', options.lockTimeout, DEFAULT_LOCK_TIMEOUT_MS),
    ddlLockTimeoutMs:
      options.ddlLockTimeout === null
        ? null
        : durationOption('DDL lock timeout', options.ddlLockTimeout, DEFAULT_DDL_LOCK_TIMEOUT_MS),
    ddlLockRetries,
    migrationTimeoutMs: timeLimitOption(
      'migration timeout',
      options.migrationTimeout,
      DEFAULT_MIGRATION_TIMEOUT_MS,
    ),
    runTimeoutMs: timeLimitOption('run timeout', options.runTimeout, null),
    asyncTable: options.asyncTable ?? DEFAULT_ASYNC_TABLE,
    allowOutOfOrder: options.allowOutOfOrder ?? false,
    allowChanged: options.allowChanged ?? false,
    allowMissing: options.allowMissing ?? false,
    // Events (and ctx.log lines) leave the process: the handler sees them scrubbed.
    on: options.on ? scrubbingHandler(options.on, url) : () => {},
    cwd: options.cwd ?? process.cwd(),
    runnerId: `${hostname()}:${process.pid}`,
  };
}

/** The database: the caller's client, else the URL, `DATABASE_URL` or the default. */
export function databaseOption(options: {
  readonly url?: string | undefined;
  readonly client?: CallerClient | undefined;
}): { url: string; caller?: CallerHandle } {
  if (options.client === undefined) return { url: urlInUse(options.url) };
  if (options.url) throw new ConfigError('give either url or client, not both');
  const caller = describeCaller(options.client);
  return { url: caller.url, caller };
}

/** The pooler option, checked (the driver reads the URL's and compares). */
export function poolerOption(value: string | undefined): PoolerMode | undefined {
  return value === undefined ? undefined : poolerMode(value, `invalid pooler "${value}"`);
}

/** An option given in ms or as `30s`/`15m`, checked. */
export function durationOption(what: string, value: number | string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = durationMs(value);
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) {
    throw new ConfigError(`invalid ${what} "${value}": use a duration such as 30s, 15m or 500ms`);
  }
  return ms;
}

/** A time limit: a duration above zero, or null / `off` for none. */
export function timeLimitOption(
  what: string,
  value: number | string | null | undefined,
  fallback: number | null,
): number | null {
  if (value === undefined) return fallback;
  if (value === null || value === 'off') return null;
  const ms = durationOption(what, value, 0);
  if (ms <= 0) throw new ConfigError(`invalid ${what} "${value}": use a duration above zero, or off`);
  return ms;
}
