/**
 * Every option's default, owned here: the library's configs, the CLI's fallbacks and help, and
 * the status server read them from this module. (Option docs repeat them as "Default is …".)
 */

/** The database when no URL is given and DATABASE_URL is unset. */
export const DEFAULT_URL = 'sqlite:db/lockstep.sqlite3';
export const DEFAULT_DIR = 'db/migrations';
export const DEFAULT_TABLE = 'lockstep_migrations';
/** Long-running migrations (src/async): their definitions, and their state table, which `up` reads for `requires`. */
export const DEFAULT_ASYNC_DIR = 'db/async-migrations';
export const DEFAULT_ASYNC_TABLE = 'lockstep_async';
/** dbmate's ledger table, adopted from and kept up to date (README "Coming from dbmate"). */
export const DEFAULT_DBMATE_TABLE = 'schema_migrations';

/** How long a run waits for another runner's migration lock. */
export const DEFAULT_LOCK_TIMEOUT_MS = 15 * 60_000;
/** The table-lock wait limit of a transactional migration's statements, and retries after it. */
export const DEFAULT_DDL_LOCK_TIMEOUT_MS = 5_000;
export const DEFAULT_DDL_LOCK_RETRIES = 5;
/** Long enough for any migration that belongs in `up` (longer work belongs in `lockstep async`). */
export const DEFAULT_MIGRATION_TIMEOUT_MS = 60 * 60_000;
/** How many migrations `down` rolls back. */
export const DEFAULT_DOWN_STEPS = 1;
/** How often an idle long-running migrations worker looks for work. */
export const DEFAULT_POLL_MS = 1_000;

/** Where `lockstep serve` listens: this machine only. */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 4600;

/** The database URL in use: the one given, else $DATABASE_URL, else DEFAULT_URL. */
export function urlInUse(given: string | undefined): string {
  return given || process.env.DATABASE_URL || DEFAULT_URL;
}
