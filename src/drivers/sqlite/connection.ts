import type BetterSqlite3 from 'better-sqlite3';
import type { Lease } from '../caller.js';
import type { Connection, DbErrorInfo, Dialect, DriverOptions, LedgerState, QueryResult } from '../driver.js';
import type { SqliteLock } from './lock.js';

/**
 * Per-connection pragmas a migration may change (`PRAGMA foreign_keys = OFF` needs
 * `transaction:false`) that lockstep's writes and the next migration must not inherit.
 */
const SESSION_PRAGMAS = [
  'foreign_keys',
  'recursive_triggers',
  'defer_foreign_keys',
  'ignore_check_constraints',
  'legacy_alter_table',
  'query_only',
  'reverse_unordered_selects',
] as const;

/**
 * One writer at a time per database file within this process. better-sqlite3 waits for a busy
 * database synchronously: a second connection of the same process waiting for the write lock
 * would block the very event loop the first one needs to reach its COMMIT — a deadlock until
 * the busy timeout. So writes of this process queue here, asynchronously; other processes are
 * waited for by SQLite's busy timeout as before.
 */
const writers = new Map<string, { tail: Promise<void> }>();

function takeWriteTurn(file: string): Promise<() => void> {
  let queue = writers.get(file);
  if (!queue) {
    queue = { tail: Promise.resolve() };
    writers.set(file, queue);
  }
  let release = () => {};
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  const turn = queue.tail.then(() => release);
  queue.tail = queue.tail.then(() => done);
  return turn;
}

export class SqliteConnection implements Connection {
  /** How the database handle was obtained, and how it is given back (closed, or left to the caller). */
  readonly #lease: Lease<BetterSqlite3.Database>;
  readonly #db: BetterSqlite3.Database;
  readonly #file: string;
  readonly #lock: SqliteLock;
  readonly #dialect: Dialect;
  readonly #options: DriverOptions;
  /** The pragmas of SESSION_PRAGMAS before the first migration statement ran. */
  #baseline: Map<string, unknown> | undefined;
  /** Migration statements ran since the last ledger write. */
  #touched = false;
  /** Ends this session's write turn (see takeWriteTurn), while a transaction of lockstep's holds it. */
  #endTurn: (() => void) | undefined;
  /** A ledger write holds this session's write turn (see onCleanSession). */
  #inWrite = false;

  constructor(
    lease: Lease<BetterSqlite3.Database>,
    file: string,
    lock: SqliteLock,
    dialect: Dialect,
    options: DriverOptions,
  ) {
    this.#lease = lease;
    this.#db = lease.connection;
    this.#file = file;
    this.#lock = lock;
    this.#dialect = dialect;
    this.#options = options;
  }

  #prepare(sql: string): BetterSqlite3.Statement {
    this.#options.onQuery?.(sql);
    return this.#db.prepare(sql);
  }

  /** Runs a write in this process' write turn, unless this session holds one already. */
  async #write<T>(work: () => T | Promise<T>): Promise<T> {
    if (this.#endTurn || this.#inWrite) return work();
    const end = await takeWriteTurn(this.#file);
    this.#inWrite = true;
    try {
      return await work();
    } finally {
      this.#inWrite = false;
      end();
    }
  }

  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    const statement = this.#prepare(sql);
    if (statement.reader) {
      const rows = statement.all(...params) as Record<string, unknown>[];
      return { rows, rowCount: rows.length };
    }
    const result = await this.#write(() => statement.run(...params));
    return { rows: [], rowCount: result.changes };
  }

  /**
   * Runs a ledger write on a connection fit for it, whatever migration statements left on it
   * (SPEC guarantee 13), in one write turn: a transaction they left open ends first (committed;
   * rolled back before a `failed` row), and the pragmas of SESSION_PRAGMAS hold their values from
   * before the first migration for the write. A progress write gives the migration its own values
   * back; a final write leaves lockstep's for the next migration.
   */
  onCleanSession<T>(state: LedgerState | 'deleted', write: () => Promise<T>): Promise<T> {
    return this.#write(async () => {
      const baseline = this.#baseline;
      if (!this.#touched || !baseline) return write();
      // Not lockstep's own transaction (#endTurn): one the migration's statements left open.
      if (!this.#endTurn && this.#db.inTransaction) this.#db.exec(state === 'failed' ? 'ROLLBACK' : 'COMMIT');
      const current = this.#readPragmas();
      const changed = SESSION_PRAGMAS.filter((name) => current.get(name) !== baseline.get(name));
      for (const name of changed) this.#db.pragma(`${name} = ${Number(baseline.get(name))}`);
      const result = await write();
      if (state === 'running')
        for (const name of changed) this.#db.pragma(`${name} = ${Number(current.get(name))}`);
      this.#touched = state === 'running' && changed.length > 0;
      return result;
    });
  }

  #readPragmas(): Map<string, unknown> {
    return new Map(SESSION_PRAGMAS.map((name) => [name, this.#db.pragma(name, { simple: true })]));
  }

  async begin(): Promise<void> {
    const end = await takeWriteTurn(this.#file);
    try {
      // IMMEDIATE: take the write lock up front, so WAL readers never force a busy upgrade mid-way.
      this.#prepare('BEGIN IMMEDIATE').run();
    } catch (error) {
      end();
      throw error;
    }
    this.#endTurn = end;
  }

  async commit(): Promise<void> {
    this.#prepare('COMMIT').run();
    this.#finishTurn();
  }

  async rollback(): Promise<void> {
    try {
      if (this.#db.inTransaction) this.#prepare('ROLLBACK').run();
    } finally {
      this.#finishTurn();
    }
  }

  #finishTurn(): void {
    const end = this.#endTurn;
    this.#endTurn = undefined;
    end?.();
  }

  inMigrationTransaction(): boolean {
    return !this.#endTurn && this.#db.inTransaction;
  }

  async execute(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    this.#baseline ??= this.#readPragmas();
    this.#touched = true;
    return this.query(sql, params);
  }

  describeError(error: unknown): DbErrorInfo {
    const e = error as { message?: string; code?: string };
    return {
      message: e.message ?? String(error),
      ...(e.code ? { code: e.code } : {}),
      lockTimeout: false,
      connectionLost: false,
      undefinedTable: this.#dialect.isUndefinedTable(error),
    };
  }

  async close(): Promise<void> {
    await this.#lock.release().catch(() => {});
    this.#finishTurn();
    this.#lock.closeFile();
    await this.#lease.release(false);
  }
}
