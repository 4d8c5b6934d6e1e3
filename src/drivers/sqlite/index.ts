import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, ConnectionError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import type { CallerHandle } from '../caller.js';
import type { Database, DriverOptions } from '../driver.js';
import { callerConnections, ownConnection } from './client.js';
import { SqliteConnection } from './connection.js';
import { sqliteDialect } from './dialect.js';
import { SqliteLock } from './lock.js';
import { SqliteLongRunning } from './long-running.js';

/** Busy timeout for the target database, where the application's own connections may write. */
const BUSY_TIMEOUT_MS = 5_000;

/**
 * go-sqlite3 parameters (dbmate passes the query to it) that ask for what lockstep does anyway:
 * `mode=rwc` (read, write, create: how better-sqlite3 opens a file).
 */
const SAME_AS_LOCKSTEP: Readonly<Record<string, string>> = { mode: 'rwc' };

/**
 * The file a SQLite URL names, read as dbmate reads it: `sqlite:relative/path.db`,
 * `sqlite:/absolute/path.db`, `sqlite:///absolute/path.db`, `sqlite://dir/path.db` (dbmate: the
 * absolute `/dir/path.db`); `sqlite3:` the same. A query parameter is refused by name (but
 * `mode=rwc`, what lockstep does anyway): lockstep drops no setting silently.
 */
export function sqlitePath(url: string, cwd = process.cwd()): string {
  let rest = url.replace(/^sqlite3?:/i, '').replace(/#.*$/, '');
  const question = rest.indexOf('?');
  const query = question === -1 ? '' : rest.slice(question + 1);
  if (question !== -1) rest = rest.slice(0, question);
  const refused = [...new URLSearchParams(query)]
    .filter(([name, value]) => SAME_AS_LOCKSTEP[name] !== value)
    // Names only: a value may be a secret (SQLCipher's key).
    .map(([name]) => (name === 'mode' ? 'mode (but mode=rwc)' : name));
  if (refused.length > 0) {
    throw new ConfigError(
      `SQLite URL "${redactUrl(url)}": lockstep does not implement the parameter${refused.length > 1 ? 's' : ''} ${refused.join(', ')} (go-sqlite3's): remove ${refused.length > 1 ? 'them' : 'it'}, and set PRAGMAs in a migration (transaction:false for journal_mode)`,
    );
  }
  // dbmate: `sqlite://dir/file` is the absolute `/dir/file`, and leading slashes collapse into one.
  if (rest.startsWith('//')) rest = `/${rest.replace(/^\/+/, '')}`;
  if (rest === '' || rest === '/' || rest === ':memory:') {
    throw new ConfigError(
      `SQLite URL "${redactUrl(url)}" names no file: migrations need a database file other processes can open`,
    );
  }
  try {
    rest = decodeURIComponent(rest);
  } catch {
    throw new ConfigError(`malformed SQLite URL "${redactUrl(url)}": bad %-escape`);
  }
  return path.resolve(cwd, rest);
}

export function createSqliteDriver(url: string, options: DriverOptions, caller?: CallerHandle): Database {
  if (options.table.includes('.')) {
    throw new ConfigError(`SQLite ledger table "${options.table}" cannot have a schema: use a plain name`);
  }
  const file = sqlitePath(url);
  // Beside the target: a file whose SQLite write lock is the migration lock. The OS drops it when
  // the holder dies, so there is never a stale lock to clean up.
  const lockFile = `${file}-${options.table}.lock`;
  const dialect = sqliteDialect(options.table);
  const lendCaller = caller && callerConnections(caller.client, BUSY_TIMEOUT_MS);
  return {
    dialect,
    target: `sqlite:${file} (ledger ${options.table})`,
    async connect() {
      const { default: BetterSqlite } = await import('better-sqlite3');
      try {
        mkdirSync(path.dirname(file), { recursive: true });
        const open = () => new BetterSqlite(file, { timeout: BUSY_TIMEOUT_MS });
        const lease = lendCaller ? lendCaller(open) : ownConnection(open());
        const db = lease.connection;
        const lock = new SqliteLock(BetterSqlite, lockFile, options);
        return {
          connection: new SqliteConnection(lease, file, lock, dialect, options),
          lock,
          longRunning: new SqliteLongRunning(db, options),
        };
      } catch (error) {
        throw new ConnectionError(`cannot open SQLite database ${file}: ${(error as Error).message}`);
      }
    },
  };
}
