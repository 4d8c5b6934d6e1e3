import { hostname } from 'node:os';
import { databaseOption, durationOption, poolerOption, TABLE_NAME } from '../core/config.js';
import {
  DEFAULT_ASYNC_DIR,
  DEFAULT_ASYNC_TABLE,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_POLL_MS,
  DEFAULT_TABLE,
} from '../defaults.js';
import type { CallerClient, CallerHandle } from '../drivers/caller.js';
import type { PoolerMode } from '../drivers/driver.js';
import { ConfigError } from '../errors.js';
import { scrubbingHandler } from '../util/secrets.js';
import type { AsyncEventHandler } from './events.js';

export interface AsyncOptions {
  /** Database URL, as for `migrate()`. Default is `DATABASE_URL`, else `sqlite:db/lockstep.sqlite3`. */
  readonly url?: string | undefined;
  /**
   * The application's own client instead of a URL, as for `migrate()`. A pool is best: the worker
   * holds two sessions while a run works, the second (and any beyond) opened from its settings
   * when the client is a single connection.
   */
  readonly client?: CallerClient | undefined;
  /**
   * What sits between lockstep and PostgreSQL, as for `migrate()`. Long-running migrations need a
   * session of their own: through a transaction-mode pooler every command is refused.
   */
  readonly pooler?: PoolerMode | undefined;
  /** Where the lock and the ledger live for a database that has neither (ClickHouse), as for `migrate()`. */
  readonly coordinatorUrl?: string | undefined;
  /** Directory of long-running migration definitions. Default is `db/async-migrations`. */
  readonly dir?: string | undefined;
  /** State table (its errors go to `<table>_errors`). Default is `lockstep_async`. */
  readonly table?: string | undefined;
  /** The migration ledger, whose lock guards creating the state tables. Default is `lockstep_migrations`. */
  readonly ledgerTable?: string | undefined;
  /**
   * A run whose worker died (its lock is free), found by a worker: mark it errored (a person
   * decides), or resume it at once. Default is `error`.
   */
  readonly onDeadWorker?: 'error' | 'resume' | undefined;
  /**
   * A statement a dead worker left running on the server, found when the run is resumed: wait
   * for it to end, or cancel it. Default is `wait`.
   */
  readonly orphans?: 'wait' | 'cancel' | undefined;
  /** How often an idle worker looks for work, in ms or as `1s`. Default is 1s. */
  readonly pollInterval?: number | string | undefined;
  /** How long to wait for the migration lock when creating the state tables. Default is 15 minutes. */
  readonly lockTimeout?: number | string | undefined;
  readonly on?: AsyncEventHandler | undefined;
  /** Base for relative paths. Default is `process.cwd()`. */
  readonly cwd?: string | undefined;
}

export interface AsyncConfig {
  readonly url: string;
  readonly caller?: CallerHandle | undefined;
  readonly pooler: PoolerMode | undefined;
  readonly coordinatorUrl: string | undefined;
  readonly dir: string;
  readonly table: string;
  readonly ledgerTable: string;
  readonly onDeadWorker: 'error' | 'resume';
  readonly orphans: 'wait' | 'cancel';
  readonly pollMs: number;
  readonly lockTimeoutMs: number;
  readonly on: AsyncEventHandler;
  readonly cwd: string;
  readonly runnerId: string;
}

export function resolveAsyncConfig(options: AsyncOptions): AsyncConfig {
  const table = options.table ?? DEFAULT_ASYNC_TABLE;
  if (!TABLE_NAME.test(table) || table.length > 57) {
    throw new ConfigError(
      `invalid state table name "${table}": letters, digits and _ (at most 57, for <table>_errors)`,
    );
  }
  const choice = <T extends string>(what: string, value: T | undefined, allowed: readonly T[]): T => {
    if (value === undefined) return allowed[0] as T;
    if (!allowed.includes(value))
      throw new ConfigError(`${what} must be ${allowed.join(' or ')}, got "${value}"`);
    return value;
  };
  const { url, caller } = databaseOption(options);
  return {
    url,
    caller,
    pooler: poolerOption(options.pooler),
    coordinatorUrl: options.coordinatorUrl || undefined,
    dir: options.dir ?? DEFAULT_ASYNC_DIR,
    table,
    ledgerTable: options.ledgerTable ?? DEFAULT_TABLE,
    onDeadWorker: choice('onDeadWorker', options.onDeadWorker, ['error', 'resume'] as const),
    orphans: choice('orphans', options.orphans, ['wait', 'cancel'] as const),
    pollMs: durationOption('poll interval', options.pollInterval, DEFAULT_POLL_MS),
    lockTimeoutMs: durationOption('lock timeout', options.lockTimeout, DEFAULT_LOCK_TIMEOUT_MS),
    // Events leave the process: the handler sees them scrubbed.
    on: options.on ? scrubbingHandler(options.on, url) : () => {},
    cwd: options.cwd ?? process.cwd(),
    runnerId: `${hostname()}:${process.pid}`,
  };
}
