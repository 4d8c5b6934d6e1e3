/**
 * The session parts for a transaction-mode pooler (`pooler=transaction`): every statement may
 * reach another backend, except within one transaction. So the lock is a transaction's
 * (pg_advisory_xact_lock), each migration runs in a savepoint of that transaction and commits
 * with it, and nothing relies on a session: no LISTEN, no session SET, no named statements.
 */
import type pg from 'pg';
import type { LockHolder } from '../../errors.js';
import type { Lease } from '../caller.js';
import type {
  Connection,
  DbErrorInfo,
  Dialect,
  LedgerState,
  MigrationLock,
  QueryResult,
  TransactionOptions,
} from '../driver.js';
import { describePostgresError, mayChangeSession, RESET_SESSION, withoutPsqlRestrict } from './connection.js';
import { applicationName, CONNECTION_CHECK_INTERVAL, type PostgresLink } from './link.js';
import { LOCK_NAMESPACE, lockHolder } from './lock.js';

/** First and longest pause between tries while another runner holds the lock (no NOTIFY here). */
const FIRST_POLL_MS = 20;
const LONGEST_POLL_MS = 250;

/**
 * Settings a pooler keeps per client (it sets them on whichever backend serves the client) and
 * the session's identity: every other setting another client left on the backend is put back to
 * its default for lockstep's transaction.
 */
const POOLER_TRACKED = [
  'application_name',
  'client_encoding',
  'DateStyle',
  'TimeZone',
  'IntervalStyle',
  'standard_conforming_strings',
  'session_authorization',
];

/**
 * A Postgres string literal, correct whatever `standard_conforming_strings` says (E'' form), for
 * the few values lockstep sends in a multi-statement script, which takes no parameters.
 */
function postgresLiteral(text: string): string {
  return `E'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

const SAVEPOINT = 'lockstep_migration';
/** Around one of lockstep's own statements under the lock. */
const OWN = 'lockstep_own';

/**
 * The migration lock as a transaction's advisory lock. `tryLock` opens the transaction (on
 * whichever backend the pooler gives) and takes the lock in it; it ends when that transaction
 * does, so a vanished client (the pooler closes its backend) frees it like a session lock.
 */
export class TransactionLock implements MigrationLock {
  readonly heldUntil = 'commit';
  readonly #link: PostgresLink;
  readonly #lockKey: number;
  #held = false;
  #since: string | undefined;
  /** The backend the lock's transaction runs on, while it is open. */
  #backend: number | undefined;
  #polls = 0;

  constructor(link: PostgresLink, lockKey: number) {
    this.#link = link;
    this.#lockKey = lockKey;
  }

  get held(): boolean {
    return this.#held;
  }

  get backend(): number | undefined {
    return this.#held ? this.#backend : undefined;
  }

  /**
   * One round trip: begin, put back what other clients left set on this backend, take the lock,
   * name the holder and ask for client checks, all local to the transaction. A second to end the
   * transaction when the lock was not free (or the statements failed).
   */
  async tryLock(): Promise<boolean> {
    this.#since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    let row: Record<string, unknown> | undefined;
    try {
      const results = await this.#link.script(
        `BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
       SELECT count(set_config(name, reset_val, true)) FROM pg_settings
        WHERE source = 'session' AND name NOT IN (${POOLER_TRACKED.map(postgresLiteral).join(', ')});
       SELECT pg_try_advisory_xact_lock(${LOCK_NAMESPACE}, ${this.#lockKey}) AS locked,
              pg_backend_pid() AS backend, ${this.#holderSettings()}`,
      );
      row = results[2]?.rows[0];
    } finally {
      if (!row?.locked) await this.#link.query('ROLLBACK').catch(() => {});
    }
    if (!row?.locked) return false;
    this.#held = true;
    this.#backend = Number(row.backend);
    this.#polls = 0;
    return true;
  }

  /** Lockstep's own settings as holder, local to the transaction: again after a reset of the session. */
  async nameHolder(): Promise<void> {
    if (this.#held) await this.#link.query(`SELECT ${this.#holderSettings()}`);
  }

  #holderSettings(): string {
    const name = postgresLiteral(applicationName(this.#link.options.runnerId, this.#since));
    const searchPath = this.#link.searchPath;
    // The URL's search_path, local to the transaction: never a session SET another client would get.
    const path =
      searchPath === undefined
        ? ''
        : `, set_config('search_path', ${postgresLiteral(searchPath)}, true) AS search_path`;
    return `set_config('application_name', ${name}, true) AS name,
       (SELECT set_config(name, '${CONNECTION_CHECK_INTERVAL}', true) FROM pg_settings
         WHERE name = 'client_connection_check_interval') AS checks${path}`;
  }

  /** Polls, with a growing pause: a pooler passes no notifications. Holds nothing between tries. */
  async waitForLock(maxMs: number): Promise<boolean> {
    if (this.#link.lost) throw this.#link.lost;
    const pause = Math.min(LONGEST_POLL_MS, FIRST_POLL_MS * 2 ** this.#polls++);
    await new Promise((resolve) => setTimeout(resolve, Math.min(maxMs, pause * (0.5 + Math.random()))));
    return this.tryLock();
  }

  holder(): Promise<LockHolder | null> {
    return lockHolder(this.#link, this.#lockKey);
  }

  /** Commits what was written under the lock (a failure's record, a resolve), ending the lock. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.#link.query(this.#link.transactionStatus() === 'E' ? 'ROLLBACK' : 'COMMIT');
  }

  /** The lock's transaction ended (committed with a migration, or rolled back). */
  ended(): void {
    this.#held = false;
  }
}

/**
 * The work connection through a transaction-mode pooler. A migration's transaction is a
 * savepoint in the lock's transaction, and its commit is that transaction's commit: the
 * statements, the ledger row and the end of the lock are one.
 */
export class PooledConnection implements Connection {
  readonly #link: PostgresLink;
  readonly #lease: Lease<pg.Client>;
  readonly #lock: TransactionLock;
  readonly #dialect: Dialect;
  /** Migration statements ran since the session was last reset: they may have changed it. */
  #touched = false;
  /** Inside a migration's savepoint (begin … commit or rollback). */
  #inMigration = false;

  constructor(link: PostgresLink, lock: TransactionLock, dialect: Dialect, lease: Lease<pg.Client>) {
    this.#link = link;
    this.#lock = lock;
    this.#dialect = dialect;
    this.#lease = lease;
  }

  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.#guarded(sql, params);
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (mayChangeSession(sql)) this.#touched = true;
    return this.#guarded(withoutPsqlRestrict(sql), params);
  }

  /**
   * Under the lock but outside a migration's savepoint (the ledger read, its creation, the record
   * of a failure, what a migration requires), a statement runs in a savepoint of its own: one that
   * fails, such as the read of a ledger not created yet, must not end the lock's transaction.
   * Without parameters that is one round trip.
   */
  async #guarded(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (!this.#lock.held || this.#inMigration) return this.#link.query(sql, params);
    try {
      if (!params?.length) {
        const results = await this.#link.script(`SAVEPOINT ${OWN}; ${sql}; RELEASE SAVEPOINT ${OWN}`);
        return results[1] as QueryResult;
      }
      await this.#link.query(`SAVEPOINT ${OWN}`);
      const result = await this.#link.query(sql, params);
      await this.#link.query(`RELEASE SAVEPOINT ${OWN}`);
      return result;
    } catch (error) {
      if (this.#link.lost === undefined) {
        await this.#link.script(`ROLLBACK TO SAVEPOINT ${OWN}; RELEASE SAVEPOINT ${OWN}`).catch(() => {});
      }
      throw error;
    }
  }

  inFailedTransaction(): boolean {
    return this.#link.transactionStatus() === 'E';
  }

  /**
   * A final write first undoes what the migration did to the session (a SET would outlive the
   * commit on a backend that other clients get next), then names lockstep as holder again.
   */
  async onCleanSession<T>(state: LedgerState | 'deleted', write: () => Promise<T>): Promise<T> {
    if (state === 'running') {
      throw new Error('a transaction-mode pooler runs no migration outside a transaction');
    }
    if (this.#touched) {
      await this.#link.query(RESET_SESSION);
      await this.#lock.nameHolder();
      this.#touched = false;
    }
    return write();
  }

  async begin(options: TransactionOptions): Promise<void> {
    if (!this.#lock.held) throw new Error('a migration runs in the transaction of the lock: take it first');
    if (options.exclusive) throw new Error('exclusive transactions need a session: not through a pooler');
    const timeout = options.lockTimeoutMs;
    // Numbers only: nothing user-supplied is spliced here. DEFAULT: not what another client set.
    await this.#link.script(
      `SAVEPOINT ${SAVEPOINT}; SET LOCAL lock_timeout ${timeout ? `= '${Math.round(timeout)}ms'` : 'TO DEFAULT'}`,
    );
    this.#inMigration = true;
  }

  async commit(): Promise<void> {
    this.#inMigration = false;
    this.#lock.ended();
    await this.#link.query('COMMIT');
  }

  /** Undoes the migration only: the lock, and its transaction, stay for the record of the failure. */
  async rollback(): Promise<void> {
    this.#inMigration = false;
    await this.#link.script(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
  }

  inMigrationTransaction(): boolean {
    return false;
  }

  describeError(error: unknown): DbErrorInfo {
    return describePostgresError(this.#link, this.#dialect, error);
  }

  /** The backend of the lock's transaction, where the migration runs: what a timeout cancels. */
  serverId(): string | undefined {
    const backend = this.#lock.backend;
    return backend === undefined ? undefined : String(backend);
  }

  async close(): Promise<void> {
    if (this.#lock.held) {
      this.#lock.ended();
      await this.#link.query('ROLLBACK').catch(() => {});
    }
    await this.#lease.release(this.#link.lost !== undefined);
  }
}
