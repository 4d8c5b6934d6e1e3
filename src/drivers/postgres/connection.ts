import type pg from 'pg';
import type { Lease } from '../caller.js';
import type {
  Connection,
  DbErrorInfo,
  Dialect,
  LedgerState,
  QueryResult,
  TransactionOptions,
} from '../driver.js';
import { quoteIdentifier } from '../sql-helpers.js';
import type { PostgresLink } from './link.js';
import type { PostgresLock } from './lock.js';

/**
 * Statements that leave the session as it was (after comments): no settings, role or transaction.
 * After any other (SET, SELECT set_config(...), BEGIN, DO, CALL, ...) the next ledger write
 * settles the session first.
 */
const LEAVES_SESSION_AS_IS =
  /^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(CREATE(?!\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP)|ALTER|DROP|INSERT|UPDATE|DELETE|COMMENT|GRANT|REVOKE|TRUNCATE|VACUUM|ANALYZE|REINDEX|CLUSTER|REFRESH)\b/i;

/**
 * DISCARD ALL but for `pg_advisory_unlock_all()` and `UNLISTEN *`: everything a migration can
 * leave on its session (settings, role, cursors, prepared statements, temporary tables that
 * would shadow real ones), keeping the migration lock.
 */
export const RESET_SESSION =
  'CLOSE ALL; RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; DEALLOCATE ALL; DISCARD TEMP; DISCARD SEQUENCES';

/** First key of the transaction locks of exclusive transactions ('LKSX'). */
const EXCLUSIVE_NAMESPACE = 0x4c4b5358;

const LOST_CONNECTION_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

export class PostgresConnection implements Connection {
  readonly #link: PostgresLink;
  /** How the pg client was obtained, and how it is given back (ended, or returned to the caller). */
  readonly #lease: Lease<pg.Client>;
  readonly #lock: PostgresLock;
  readonly #dialect: Dialect;
  readonly #lockKey: number;
  /** Migration statements ran since the session was last reset: they may have changed it. */
  #touched = false;
  /** Inside lockstep's own transaction (begin … commit/rollback). */
  #transaction = false;

  constructor(
    link: PostgresLink,
    lock: PostgresLock,
    dialect: Dialect,
    lockKey: number,
    lease: Lease<pg.Client>,
  ) {
    this.#lease = lease;
    this.#link = link;
    this.#lock = lock;
    this.#dialect = dialect;
    this.#lockKey = lockKey;
  }

  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.#link.query(sql, params);
  }

  inFailedTransaction(): boolean {
    return this.#link.transactionStatus() === 'E';
  }

  /**
   * Runs a ledger write on a session fit for it, whatever migration statements left on it
   * (SPEC guarantee 13). A transaction they left open ends first: committed (a statement is
   * recorded done only once it is durable), rolled back before a `failed` row. A final write
   * (anything but `running`) resets the session for the next migration (RESET_SESSION), then
   * sets lockstep's own settings again. A progress write keeps the migration's settings for its next statements and
   * overrides them only for itself, in a transaction of its own.
   */
  async onCleanSession<T>(state: LedgerState | 'deleted', write: () => Promise<T>): Promise<T> {
    if (!this.#touched) return write();
    const status = this.#link.transactionStatus();
    if (!this.#transaction && (status === 'T' || status === 'E')) {
      await this.#link.query(state !== 'failed' && status === 'T' ? 'COMMIT' : 'ROLLBACK');
    }
    if (state !== 'running') {
      await this.#link.query(RESET_SESSION);
      await this.#lock.nameHolder();
      this.#touched = false;
      return write();
    }
    const changed = await this.#link.query(
      "SELECT name FROM pg_settings WHERE source = 'session' AND name NOT IN ('application_name', 'client_connection_check_interval')",
    );
    const defaults = changed.rows.map((r) => `; SET LOCAL ${quoteName(String(r.name))} TO DEFAULT`).join('');
    if (this.#transaction) {
      await this.#link.query(`SET LOCAL ROLE NONE${defaults}`);
      return write();
    }
    await this.#link.query(`BEGIN READ WRITE; SET LOCAL ROLE NONE${defaults}`);
    try {
      const result = await write();
      await this.#link.query('COMMIT');
      return result;
    } catch (error) {
      await this.#link.query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  async begin(options: TransactionOptions): Promise<void> {
    const timeout = options.lockTimeoutMs;
    // Numbers only: nothing user-supplied is spliced here.
    let sql = timeout ? `BEGIN; SET LOCAL lock_timeout = '${Math.round(timeout)}ms'` : 'BEGIN';
    if (options.exclusive) sql += `; SELECT pg_advisory_xact_lock(${EXCLUSIVE_NAMESPACE}, ${this.#lockKey})`;
    await this.#link.query(sql);
    this.#transaction = true;
  }

  async commit(): Promise<void> {
    this.#transaction = false;
    await this.#link.query('COMMIT');
  }

  async rollback(): Promise<void> {
    this.#transaction = false;
    await this.#link.query('ROLLBACK');
  }

  inMigrationTransaction(): boolean {
    const status = this.#link.transactionStatus();
    return !this.#transaction && (status === 'T' || status === 'E');
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (mayChangeSession(sql)) this.#touched = true;
    return this.#link.query(withoutPsqlRestrict(sql), params);
  }

  describeError(error: unknown): DbErrorInfo {
    return describePostgresError(this.#link, this.#dialect, error);
  }

  serverId(): string | undefined {
    const pid = this.#lock.backend ?? this.#link.announcedPid;
    return pid ? String(pid) : undefined;
  }

  async close(): Promise<void> {
    this.#lock.stopWaiting();
    // Release explicitly: the server frees it only once it has processed our disconnect.
    if (this.#lock.held) await this.#lock.release().catch(() => {});
    await this.#lease.release(this.#link.lost !== undefined);
  }
}

/** What the runner needs to know of an error of this link's server. */
export function describePostgresError(link: PostgresLink, dialect: Dialect, error: unknown): DbErrorInfo {
  const e = error as { message?: string; code?: string; position?: string };
  const message = e.message ?? String(error);
  const lost =
    link.lost !== undefined ||
    (e.code !== undefined && LOST_CONNECTION_CODES.has(e.code)) ||
    /Connection terminated|not queryable|ECONNRESET|EPIPE/.test(message);
  return {
    message,
    ...(e.code && /^[0-9A-Z]{5}$/.test(e.code) ? { code: e.code } : {}),
    ...(e.position ? { position: Number(e.position) - 1 } : {}),
    lockTimeout: e.code === '55P03',
    connectionLost: lost,
    undefinedTable: dialect.isUndefinedTable(error),
  };
}

/** Whether a migration statement may have changed the session (settings, role, a transaction). */
export function mayChangeSession(sql: string): boolean {
  return !LEAVES_SESSION_AS_IS.test(sql);
}

/** psql's `\restrict <key>` / `\unrestrict <key>` at the start of a statement (after comments). */
const PSQL_RESTRICT =
  /^((?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*)(\\(?:un)?restrict[ \t]+[A-Za-z0-9]+[ \t]*)(?=\n|$)/;

/**
 * pg_dump (15.14, 16.10, 17.6 and later) wraps a plain dump in `\restrict` … `\unrestrict`: psql
 * commands that only stop psql from running other backslash commands, which lockstep never runs.
 * They are blanked (same length, so error positions still map to the file); any other backslash
 * command still reaches the server and fails there.
 */
export function withoutPsqlRestrict(sql: string): string {
  return sql.replace(
    PSQL_RESTRICT,
    (_, before: string, command: string) => before + ' '.repeat(command.length),
  );
}

/** A setting's name from pg_settings, quoted part by part (`a.b` custom settings). */
function quoteName(name: string): string {
  return name.split('.').map(quoteIdentifier).join('.');
}
