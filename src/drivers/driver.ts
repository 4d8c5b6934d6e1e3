import type { LockHolder } from '../errors.js';
import type { SplitDialect } from '../sql/split.js';

/**
 * The boundary between the runner and a database. The runner knows nothing database-specific; a
 * driver knows nothing about planning. One Driver per (database, ledger table); one Session per run.
 */
export interface Driver {
  /** `postgres`, `sqlite`, ...: also what a migration module sees as `ctx.dialect`. */
  readonly dialect: string;
  /** How migration text splits into statements on this database. */
  readonly syntax: SplitDialect;
  /** The target as shown to users: URL without secrets, plus the ledger table. */
  readonly target: string;
  /**
   * Whether every statement can run in a transaction (Postgres, SQLite). When false (MySQL:
   * DDL commits implicitly), a migration runs in a transaction only if `isTransactionalStatement`
   * holds for all its statements; otherwise it follows the non-transactional protocol.
   */
  readonly transactionalDdl: boolean;
  isTransactionalStatement?(sql: string): boolean;
  /** How this database spells what generic SQL (the long-running migrations' store) needs. */
  readonly sql: SqlDialect;
  connect(): Promise<Session>;
}

/** Column types for tables lockstep creates, on one database. */
export interface ColumnTypes {
  /** A short text primary key. */
  readonly key: string;
  /** Short text: names, states, who ran it. */
  readonly text: string;
  /** Unbounded text: errors, statements, JSON. */
  readonly longText: string;
  readonly integer: string;
  /** 64-bit integers: batch cursors. */
  readonly bigint: string;
  readonly real: string;
  readonly timestamp: string;
  /** An auto-numbered primary key column, type and clause. */
  readonly autoId: string;
  /** After the closing parenthesis of CREATE TABLE, e.g. a storage engine. */
  readonly tableOptions?: string;
}

/** The few things generic SQL needs from a database: placeholders, quoting, names, types. */
export interface SqlDialect {
  /** Placeholder of the i-th parameter (1-based): `$1` or `?`. */
  param(index: number): string;
  /** Quotes one identifier, or a dotted `schema.table` part by part. */
  quote(identifier: string): string;
  /** A table beside the ledger (same schema or database), quoted and qualified. */
  table(name: string): string;
  readonly types: ColumnTypes;
  /** A timestamp (ISO 8601) as this database takes it as a parameter. */
  timestamp(iso: string): unknown;
  /** An expression read back as text: 64-bit integers arrive whole (SQLite returns JS numbers). */
  asText(expression: string): string;
  /** Whether a running statement can be cancelled or time-limited (SQLite: no, its API is synchronous). */
  readonly cancellable: boolean;
}

/** A statement running on the server, found by the marker comment it was tagged with. */
export interface RunningQuery {
  /** What `cancelQuery` takes: the Postgres backend pid, the MySQL connection id. */
  readonly id: string;
  readonly query: string;
  readonly runningMs: number;
}

export type LedgerState = 'applied' | 'running' | 'failed' | 'rolled_back';

/** One row of the ledger table. Timestamps are ISO 8601 strings. */
export interface LedgerRow {
  readonly version: string;
  readonly name: string;
  readonly checksum: string;
  /**
   * applied: done. running: a non-transactional migration in progress (or its runner died).
   * failed: a non-transactional migration stopped at a failing statement. rolled_back: a
   * transactional attempt failed and was rolled back; still pending, the error kept for the record.
   */
  readonly state: LedgerState;
  readonly direction: 'up' | 'down';
  readonly statementsDone: number;
  readonly statementCount: number | null;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly durationMs: number | null;
  /** `host:pid` of the runner. */
  readonly appliedBy: string;
  readonly error: string | null;
}

/** What the runner needs to know about a database error, whatever the database. */
export interface DbErrorInfo {
  readonly message: string;
  readonly code?: string;
  /** 0-based offset of the error in the statement text, when the database reports one. */
  readonly position?: number;
  /** 1-based line of the error in the statement text, when the database reports only that. */
  readonly line?: number;
  /** A DDL lock wait gave up (`lock_timeout`): the statement may be retried. */
  readonly lockTimeout: boolean;
  /** The session is gone: the database rolled back its transaction and released its lock. */
  readonly connectionLost: boolean;
  /** The statement names a table (or schema) that does not exist. */
  readonly undefinedTable?: boolean;
}

export interface TransactionOptions {
  /** Give up waiting for a table lock after this long (Postgres `lock_timeout`). */
  readonly lockTimeoutMs?: number | undefined;
  /**
   * Serialize with every other exclusive transaction on the same table's store, whatever session
   * runs it, until commit or rollback: the check-then-act of state transitions happens in one.
   * Postgres: a transaction advisory lock; MySQL: GET_LOCK until the end; SQLite: every write
   * transaction already is.
   */
  readonly exclusive?: boolean | undefined;
}

/** Per-operation limits and settings, applied to the session until the returned function restores them. */
export interface SessionLimits {
  /** Cancel a statement that runs longer (Postgres statement_timeout, MariaDB max_statement_time). */
  readonly statementTimeoutMs?: number | undefined;
  /** Database settings by name (Postgres GUCs, MySQL session variables, SQLite pragmas). */
  readonly settings?: Readonly<Record<string, string | number>> | undefined;
}

export interface QueryResult {
  readonly rows: readonly Record<string, unknown>[];
  readonly rowCount: number;
}

/**
 * One database session. The lock, the ledger writes and the migration statements all go through
 * the same session, so that the lock lives and dies with the work (SPEC guarantee 3).
 */
export interface Session {
  /** The ledger rows, or null when the ledger table does not exist yet. One round trip. */
  readLedger(): Promise<LedgerRow[] | null>;
  /** Creates the ledger table. Called with the lock held. */
  createLedger(): Promise<void>;
  /**
   * Writes the row of `row.version` if the ledger still holds `expected` there (the row as this
   * runner read or last wrote it; null: no row), compared by state, applied_by and started_at.
   * Otherwise throws LedgerConflictError and changes nothing: a write never overwrites what
   * another runner committed. Whatever migration statements left on the session (table locks,
   * autocommit, an open transaction, settings), the write does not depend on it; a final write
   * (any state but `running`) also leaves the session as lockstep started it for the next
   * migration. Error text is stored as far as the column holds it, NUL bytes replaced.
   */
  writeLedger(row: LedgerRow, expected: LedgerRow | null): Promise<void>;
  /** Removes the row `expected`, under the same condition and session rules as `writeLedger`. */
  deleteLedger(expected: LedgerRow): Promise<void>;

  /** Takes the migration lock if it is free; never waits and holds no snapshot. */
  tryLock(): Promise<boolean>;
  /**
   * Waits up to `maxMs` for the lock, holding no transaction or snapshot while it waits, and
   * takes it if it came free. Returns whether it is now held.
   */
  waitForLock(maxMs: number): Promise<boolean>;
  /** Who holds the lock now, or null if nobody (or the database cannot tell). */
  lockHolder(): Promise<LockHolder | null>;
  /** Releases the lock and wakes waiters. */
  unlock(): Promise<void>;

  begin(options: TransactionOptions): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /**
   * Whether a transaction that migration statements opened (`BEGIN` in a non-transactional
   * migration) is open now, as the last reply from the server said: no ledger write can be made
   * then without committing it or being rolled back with it. Not lockstep's own (begin), and not
   * MySQL's `autocommit = 0`, whose work each ledger write commits.
   */
  inMigrationTransaction(): boolean;
  /** Runs one statement of a migration (or of a migration module's `ctx.query`). */
  execute(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  describeError(error: unknown): DbErrorInfo;
  /**
   * What a failed or interrupted non-transactional statement can leave behind, named for the
   * error message (Postgres: INVALID indexes of a concurrent build). Optional.
   */
  leftovers?(): Promise<string[]>;

  /**
   * This session will run long statements without holding the migration lock (a long-running
   * migration's work session): ask the server to notice soon when its client vanishes, so what
   * it runs is cancelled and rolled back (Postgres: client_connection_check_interval).
   */
  watchForDisconnect(): Promise<void>;
  /** Applies limits and settings for the statements that follow; the result undoes them. */
  applyLimits(limits: SessionLimits): Promise<() => Promise<void>>;
  /**
   * Statements of other sessions still running on the server whose text starts with the marker
   * comment `/* <marker>`: what a dead worker left running. SQLite: none (no server).
   */
  findRunning(marker: string): Promise<RunningQuery[]>;
  /** Cancels the statement a `findRunning` result names. */
  cancelRunning(id: string): Promise<void>;
  /**
   * This session's id on the server, as `cancelRunning` (called from another session) takes it:
   * how a migration that runs too long is cancelled. Absent where nothing can be cancelled (SQLite).
   */
  serverId?(): string | undefined;

  close(): Promise<void>;
}

export interface DriverOptions {
  /** Ledger table, e.g. `lockstep_migrations` or `schema.lockstep_migrations` on Postgres. */
  readonly table: string;
  /** `host:pid`, recorded in the ledger and shown as the lock holder. */
  readonly runnerId: string;
  /** Called with the text of every query the driver sends (counting round trips). */
  readonly onQuery?: ((sql: string) => void) | undefined;
}
