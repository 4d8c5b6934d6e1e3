import type { LockHolder } from '../core/errors.js';
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
  connect(): Promise<Session>;
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
}

export interface TransactionOptions {
  /** Give up waiting for a table lock after this long (Postgres `lock_timeout`). */
  readonly lockTimeoutMs?: number | undefined;
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
  /** Inserts or replaces the row of `row.version`. */
  writeLedger(row: LedgerRow): Promise<void>;
  deleteLedger(version: string): Promise<void>;

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
  /** Runs one statement of a migration (or of a migration module's `ctx.query`). */
  execute(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  describeError(error: unknown): DbErrorInfo;
  /**
   * What a failed or interrupted non-transactional statement can leave behind, named for the
   * error message (Postgres: INVALID indexes of a concurrent build). Optional.
   */
  leftovers?(): Promise<string[]>;

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
