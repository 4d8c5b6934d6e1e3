import { ConfigError, type LockHolder } from '../errors.js';
import type { SplitDialect } from '../sql/split.js';

/**
 * The boundary between the runner and a database. The runner knows nothing database-specific; a
 * driver knows nothing about planning. One Driver per (database, ledger table); one Session per run.
 *
 * A database implements a `Database` (one folder under src/drivers/): its Dialect, and `connect`
 * returning the parts of a session. openDriver (registry.ts) adds the generic ledger store and
 * scrubs the URL's secrets, giving the `Driver` the runner uses.
 */
export interface Database {
  readonly dialect: Dialect;
  /** The target as shown to users: URL without secrets, plus the ledger table. */
  readonly target: string;
  connect(): Promise<SessionParts>;
}

export interface Driver {
  readonly dialect: Dialect;
  readonly target: string;
  connect(): Promise<Session>;
}

/**
 * What one connect gives: the work connection and the lock that lives and dies with it (SPEC
 * guarantee 3). Today's drivers keep the lock on the work connection; a database whose lock lives
 * elsewhere composes a lock of its own here.
 */
export interface SessionParts {
  readonly connection: Connection;
  readonly lock: MigrationLock;
  /** What long-running migrations need beyond the connection; absent where a database has none. */
  readonly longRunning?: LongRunning | undefined;
  /**
   * What a failed or interrupted non-transactional statement can leave behind, named for the
   * error message (Postgres: INVALID indexes of a concurrent build). Optional.
   */
  leftovers?(): Promise<string[]>;
  /** Where the ledger lives elsewhere than the work connection (ClickHouse: in the coordinator). */
  readonly ledger?: Ledger | undefined;
  /**
   * dbmate's table where the driver keeps it in line with the ledger itself (ClickHouse mirrors
   * every change into it): read for what dbmate applied, never written by the runner.
   */
  readonly dbmateMirror?: DbmateMirror | undefined;
  /** Where statements go on running on the server after their client is gone (ClickHouse). */
  readonly inFlight?: InFlight | undefined;
  /**
   * Where lockstep's other tables (long-running migrations' state) live when the database has
   * no place for them (ClickHouse: in the coordinator, beside the ledger). Absent: beside the
   * work, on `connection`.
   */
  readonly ownTables?: OwnTables | undefined;
}

/** dbmate's table as a driver that mirrors the ledger into it reads it. */
export interface DbmateMirror {
  /** As messages name it. */
  readonly name: string;
  /** The versions applied there, or null when it is not there. */
  versions(): Promise<string[] | null>;
}

/** A connection and dialect that hold lockstep's own tables for a database elsewhere. */
export interface OwnTables {
  readonly connection: Connection;
  readonly dialect: Dialect;
  /** The name a table of lockstep's (as the user named it) has there. */
  name(table: string): string;
}

/**
 * Which statement of which attempt a migration statement is, derived from its ledger row: a
 * database whose statements outlive their client tags them with it (ClickHouse's query id), so
 * the runner after a dead one finds what it left running.
 */
export interface StatementTag {
  readonly id: string;
}

/** What became of a tagged statement that its runner did not see end. */
export interface StatementFate {
  /**
   * finished / failed: as the server's query log says. killed: cancelled on request.
   * still-running: it ran longer than the wait allowed. not-found: the server has no record of it
   * (never sent, or the log was cleared). unknown: the log cannot be read.
   */
  readonly outcome: 'finished' | 'failed' | 'killed' | 'still-running' | 'not-found' | 'unknown';
  readonly waitedMs: number;
  /** The server's error, when it failed; or why the outcome is unknown. */
  readonly error?: string | undefined;
}

/** The statements a runner left running on the server, found by their tag. */
export interface InFlight {
  /**
   * Waits while statements tagged `id` (or a retry of it) run on the server, up to `maxMs`, or
   * cancels them (`cancel`); then says how the last one ended. A finished `ALTER` counts only once
   * the mutations it started are done.
   */
  settle(
    id: string,
    options: {
      readonly cancel: boolean;
      readonly maxMs: number;
      readonly onWait?: (runningMs: number) => void;
    },
  ): Promise<StatementFate>;
}

/** A session as the runner uses it: the parts, plus the ledger stored over its connection. */
export interface Session extends SessionParts {
  readonly ledger: Ledger;
}

/** The ledger table, read and written over a session's connection. */
export interface Ledger {
  /** The ledger rows, or null when the ledger table does not exist yet. One round trip. */
  read(): Promise<LedgerRow[] | null>;
  /** Creates the ledger table. Called with the lock held. */
  create(): Promise<void>;
  /**
   * Writes the row of `row.version` if the ledger still holds `expected` there (the row as this
   * runner read or last wrote it; null: no row), compared by state, applied_by and started_at.
   * Otherwise throws LedgerConflictError and changes nothing: a write never overwrites what
   * another runner committed. Whatever migration statements left on the session (table locks,
   * autocommit, an open transaction, settings), the write does not depend on it; a final write
   * (any state but `running`) also leaves the session as lockstep started it for the next
   * migration. Error text is stored as far as the column holds it, NUL bytes replaced.
   */
  write(row: LedgerRow, expected: LedgerRow | null): Promise<void>;
  /** Removes the row `expected`, under the same condition and session rules as `write`. */
  delete(expected: LedgerRow): Promise<void>;
}

/** One database connection: migration statements, lockstep's own statements, transactions. */
export interface Connection {
  /** Runs one statement of a migration (or of a migration module's `ctx.query`), tagged where the database keeps tags. */
  execute(sql: string, params?: readonly unknown[], tag?: StatementTag): Promise<QueryResult>;
  /**
   * Runs one of lockstep's own statements (the ledger's): unlike `execute`, it is not counted as
   * something a migration may have changed the session with.
   */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  /**
   * Runs a ledger write on a session fit for it, whatever migration statements left on it
   * (SPEC guarantee 13); a final write (anything but `running`) leaves the session as lockstep
   * started it for the next migration.
   */
  onCleanSession<T>(state: LedgerState | 'deleted', write: () => Promise<T>): Promise<T>;
  /** Whether the open transaction failed, so nothing more can be read in it (Postgres). */
  inFailedTransaction?(): boolean;
  describeError(error: unknown): DbErrorInfo;
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
  /**
   * This session's id on the server, as `cancelRunning` (called from another session) takes it:
   * how a migration that runs too long is cancelled. Absent where nothing can be cancelled (SQLite).
   */
  serverId?(): string | undefined;
  /** Closes the connection, releasing the lock that lives on it. */
  close(): Promise<void>;
}

/** The migration lock: the primitive and nothing else. */
export interface MigrationLock {
  /**
   * `release`: held by the session until released, across transactions (a session advisory lock,
   * GET_LOCK, a file lock). `commit`: held by one transaction (pg_advisory_xact_lock, for a
   * transaction-mode pooler): `tryLock` opens that transaction, the commit of the one migration
   * run under it ends it (and so the lock), and `release` commits whatever else was written
   * under it. The runner then re-takes the lock, and decides again, for each migration, and
   * runs no migration under it that cannot run in a transaction.
   */
  readonly heldUntil: 'release' | 'commit';
  /** Takes the migration lock if it is free; never waits and holds no snapshot. */
  tryLock(): Promise<boolean>;
  /**
   * Waits up to `maxMs` for the lock, holding no transaction or snapshot while it waits, and
   * takes it if it came free. Returns whether it is now held.
   */
  waitForLock(maxMs: number): Promise<boolean>;
  /** Who holds the lock now, or null if nobody (or the database cannot tell). */
  holder(): Promise<LockHolder | null>;
  /** Releases the lock and wakes waiters. */
  release(): Promise<void>;
}

/** What only long-running migrations use: an optional extension of a session. */
export interface LongRunning {
  /**
   * This session will run long statements without holding the migration lock (a long-running
   * migration's work session): ask the server to notice soon when its client vanishes, so what
   * it runs is cancelled and rolled back (Postgres: client_connection_check_interval). Where a
   * server finishes statements whatever became of their client (ClickHouse), nothing: the next
   * worker finds them by their tag and waits for them.
   */
  watchForDisconnect(): Promise<void>;
  /** Applies limits and settings for the statements that follow; the result undoes them. */
  applyLimits(limits: SessionLimits): Promise<() => Promise<void>>;
  /**
   * Statements of other sessions still running on the server whose text starts with the marker
   * comment `/* <marker>` (ClickHouse: whose query id starts with it): what a dead worker left
   * running. SQLite: none (no server).
   */
  findRunning(marker: string): Promise<RunningQuery[]>;
  /** Cancels the statement a `findRunning` result names. */
  cancelRunning(id: string): Promise<void>;
}

/** A session's long-running extension; a clear error where its driver has none. */
export function longRunning(session: SessionParts, dialect: Dialect): LongRunning {
  if (session.longRunning) return session.longRunning;
  throw new ConfigError(`the ${dialect.name} driver does not support long-running migrations`);
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

/** How one database spells SQL: names, placeholders, types, capabilities, how text splits. */
export interface Dialect {
  /** `postgres`, `sqlite`, ...: also what a migration module sees as `ctx.dialect`. */
  readonly name: string;
  /** How migration text splits into statements on this database. */
  readonly syntax: SplitDialect;
  /**
   * Whether every statement can run in a transaction (Postgres, SQLite). When false (MySQL:
   * DDL commits implicitly), a migration runs in a transaction only if `isTransactionalStatement`
   * holds for all its statements; otherwise it follows the non-transactional protocol.
   */
  readonly transactionalDdl: boolean;
  isTransactionalStatement?(sql: string): boolean;
  /** Placeholder of the i-th parameter (1-based): `$1` or `?`. */
  param(index: number): string;
  /** Quotes one identifier, or a dotted `schema.table` part by part. */
  quote(identifier: string): string;
  /** A table beside the ledger (same schema or database), quoted and qualified. */
  table(name: string): string;
  readonly types: ColumnTypes;
  /** A timestamp (ISO 8601) as this database takes it as a parameter. */
  timestamp(iso: string): unknown;
  /** A timestamp column as read back, as ISO 8601 (null stays null). */
  readTimestamp(value: unknown): string | null;
  /** An expression read back as text: 64-bit integers arrive whole (SQLite returns JS numbers). */
  asText(expression: string): string;
  /**
   * The database has no transactions at all (ClickHouse): every statement stands alone, a
   * long-running migration's batches included, and lockstep's tables live elsewhere (`ownTables`).
   */
  readonly noTransactions?: true | undefined;
  /** Whether a running statement can be cancelled or time-limited (SQLite: no, its API is synchronous). */
  readonly cancellable: boolean;
  /** The statement names a table (or schema) that does not exist. */
  isUndefinedTable(error: unknown): boolean;
  /** The statement names a column the table lacks. */
  isUndefinedColumn(error: unknown): boolean;
  /** An INSERT found the primary key it expected absent. */
  isDuplicateKey(error: unknown): boolean;
  readonly ledger: LedgerSpelling;
}

/** How the generic ledger store spells the ledger where databases differ. */
export interface LedgerSpelling {
  /** The ledger table, quoted and qualified. */
  readonly table: string;
  /** The ledger table as the user named it (`--table`), for messages. */
  readonly name: string;
  /** started_at as the conditional write compares it with the row as read back. Default: the column. */
  readonly startedAt?: string;
  /** Most bytes of error text the column holds. Default: unbounded. */
  readonly errorBytes?: number;
  /** Before CREATE TABLE, with lockstep's own statements (Postgres: the schema). */
  prepare?(query: Connection['query']): Promise<void>;
}

/** A statement running on the server, found by the marker comment it was tagged with. */
export interface RunningQuery {
  /** What `cancelRunning` takes: the Postgres backend pid, the MySQL connection id, the ClickHouse query id. */
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
  /** Cancel a statement that runs longer (Postgres statement_timeout, MariaDB max_statement_time, ClickHouse max_execution_time). */
  readonly statementTimeoutMs?: number | undefined;
  /** Database settings by name (Postgres GUCs, MySQL session variables, SQLite pragmas). */
  readonly settings?: Readonly<Record<string, string | number>> | undefined;
}

export interface QueryResult {
  readonly rows: readonly Record<string, unknown>[];
  readonly rowCount: number;
}

export interface DriverOptions {
  /** Ledger table, e.g. `lockstep_migrations` or `schema.lockstep_migrations` on Postgres. */
  readonly table: string;
  /** `host:pid`, recorded in the ledger and shown as the lock holder. */
  readonly runnerId: string;
  /** Called with the text of every query the driver sends (counting round trips). */
  readonly onQuery?: ((sql: string) => void) | undefined;
  /**
   * What sits between lockstep and a PostgreSQL server, as the user said (else the URL's
   * `pooler=` parameter; else nothing, which is checked): `transaction` for a transaction-mode
   * pooler (the lock is a transaction's), `session` for a session-mode one.
   */
  readonly pooler?: PoolerMode | undefined;
  /**
   * The database that holds the lock and the ledger for a database that has neither (ClickHouse):
   * a PostgreSQL or SQLite URL.
   */
  readonly coordinatorUrl?: string | undefined;
  /** Told what the user should know that is not an error (a mirror that could not be written). */
  readonly onNotice?: ((message: string) => void) | undefined;
}

export type PoolerMode = 'transaction' | 'session' | 'none';
const POOLER_MODES: readonly string[] = ['transaction', 'session', 'none'];

/** A pooler mode as the user wrote it, checked; `refusal` starts the message when it is none. */
export function poolerMode(value: string, refusal: string): PoolerMode {
  if (POOLER_MODES.includes(value)) return value as PoolerMode;
  throw new ConfigError(
    `${refusal}: use transaction (a transaction-mode pooler such as PgBouncer ` +
      'pool_mode=transaction, a managed "pooled" URL), session (a session-mode pooler) or none (PostgreSQL itself)',
  );
}
