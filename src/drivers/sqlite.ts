import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError, ConnectionError, type LockHolder } from '../errors.js';
import type { SplitDialect } from '../sql/split.js';
import { sleep } from '../util/duration.js';
import type { CallerHandle, Lease } from './caller.js';
import type {
  ColumnTypes,
  DbErrorInfo,
  Driver,
  DriverOptions,
  LedgerRow,
  QueryResult,
  RunningQuery,
  Session,
  SessionLimits,
  SqlDialect,
} from './driver.js';
import {
  createLedgerSql,
  expectedValues,
  fromLedgerRecord,
  isDuplicateKey,
  LEDGER_COLUMNS,
  ledgerConflict,
  ledgerDeleteSql,
  ledgerInsertSql,
  ledgerUpdateSql,
  ledgerValues,
  notALedger,
  quoteIdentifier,
  settingName,
  storableText,
} from './ledger-sql.js';
import { callerConnections, ownConnection } from './sqlite/client.js';

const syntax: SplitDialect = {
  dollarQuotes: false,
  backslashEscapes: 'never',
  hashComments: false,
  nestedBlockComments: false,
  backticks: true,
  brackets: true,
  bodies: 'sqlite-trigger',
};

const types: ColumnTypes = {
  key: 'TEXT',
  text: 'TEXT',
  longText: 'TEXT',
  integer: 'INTEGER',
  bigint: 'INTEGER',
  real: 'REAL',
  timestamp: 'TEXT',
  autoId: 'INTEGER PRIMARY KEY',
};

const sql: SqlDialect = {
  param: () => '?',
  quote: (identifier) => quoteIdentifier(identifier),
  table: (name) => quoteIdentifier(name),
  types,
  timestamp: (iso) => iso,
  asText: (expression) => `CAST(${expression} AS TEXT)`,
  // better-sqlite3 runs a statement synchronously: nothing can interrupt or time-limit it.
  cancellable: false,
};

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

/** Busy timeout for the target database, where the application's own connections may write. */
const BUSY_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 40;

/** `sqlite:relative/path.db`, `sqlite:///absolute/path.db` → a file path. */
export function sqlitePath(url: string, cwd = process.cwd()): string {
  let rest = url.replace(/^sqlite3?:/i, '');
  if (rest.startsWith('//')) {
    rest = rest.slice(2);
    if (!rest.startsWith('/')) {
      throw new ConfigError(
        `malformed SQLite URL "${url}": use sqlite:relative/path.db or sqlite:///absolute/path.db (three slashes)`,
      );
    }
  }
  rest = rest.replace(/[?#].*$/, '');
  if (rest === '' || rest === ':memory:') {
    throw new ConfigError(
      `SQLite URL "${url}" names no file: migrations need a database file other processes can open`,
    );
  }
  try {
    rest = decodeURIComponent(rest);
  } catch {
    throw new ConfigError(`malformed SQLite URL "${url}": bad %-escape`);
  }
  return path.resolve(cwd, rest);
}

export function createSqliteDriver(url: string, options: DriverOptions, caller?: CallerHandle): Driver {
  if (options.table.includes('.')) {
    throw new ConfigError(`SQLite ledger table "${options.table}" cannot have a schema: use a plain name`);
  }
  const file = sqlitePath(url);
  // Beside the target: a file whose SQLite write lock is the migration lock. The OS drops it when
  // the holder dies, so there is never a stale lock to clean up.
  const lockFile = `${file}-${options.table}.lock`;
  const lendCaller = caller && callerConnections(caller.client, BUSY_TIMEOUT_MS);
  return {
    dialect: 'sqlite',
    syntax,
    transactionalDdl: true,
    target: `sqlite:${file} (ledger ${options.table})`,
    sql,
    async connect() {
      const { default: Database } = await import('better-sqlite3');
      try {
        mkdirSync(path.dirname(file), { recursive: true });
        const open = () => new Database(file, { timeout: BUSY_TIMEOUT_MS });
        const lease = lendCaller ? lendCaller(open) : ownConnection(open());
        return new SqliteSession(Database, lease, file, lockFile, options);
      } catch (error) {
        throw new ConnectionError(`cannot open SQLite database ${file}: ${(error as Error).message}`);
      }
    },
  };
}

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

interface HolderRecord {
  readonly who: string;
  readonly host: string;
  readonly pid: number;
  readonly since: string;
}

class SqliteSession implements Session {
  readonly #Database: typeof BetterSqlite3;
  readonly #lease: Lease<BetterSqlite3.Database>;
  readonly #db: BetterSqlite3.Database;
  readonly #file: string;
  readonly #lockFile: string;
  readonly #holderFile: string;
  readonly #options: DriverOptions;
  readonly #table: string;
  #lockDb: BetterSqlite3.Database | undefined;
  #holding = false;
  #backoff = 2;
  /** The pragmas of SESSION_PRAGMAS before the first migration statement ran. */
  #baseline: Map<string, unknown> | undefined;
  /** Migration statements ran since the last ledger write. */
  #touched = false;
  /** Ends this session's write turn (see takeWriteTurn), while it holds one. */
  #endTurn: (() => void) | undefined;

  constructor(
    Database: typeof BetterSqlite3,
    lease: Lease<BetterSqlite3.Database>,
    file: string,
    lockFile: string,
    options: DriverOptions,
  ) {
    this.#Database = Database;
    this.#lease = lease;
    this.#db = lease.connection;
    this.#file = file;
    this.#lockFile = lockFile;
    this.#holderFile = `${lockFile}.holder`;
    this.#options = options;
    this.#table = quoteIdentifier(options.table);
  }

  #prepare(sql: string): BetterSqlite3.Statement {
    this.#options.onQuery?.(sql);
    return this.#db.prepare(sql);
  }

  async readLedger(): Promise<LedgerRow[] | null> {
    try {
      return this.#prepare(`SELECT ${LEDGER_COLUMNS} FROM ${this.#table}`)
        .all()
        .map((r) => fromLedgerRecord(r as Record<string, unknown>));
    } catch (error) {
      if (/no such table/.test((error as Error).message)) return null;
      if (/no such column/.test((error as Error).message))
        throw notALedger(this.#options.table, (error as Error).message);
      throw error;
    }
  }

  /** Runs a write in this process' write turn, unless a transaction of this session holds it. */
  async #write<T>(work: () => T): Promise<T> {
    if (this.#endTurn) return work();
    const end = await takeWriteTurn(this.#file);
    try {
      return work();
    } finally {
      end();
    }
  }

  async createLedger(): Promise<void> {
    this.#options.onQuery?.('CREATE TABLE');
    await this.#write(() => this.#db.exec(createLedgerSql(this.#table, types)));
  }

  async writeLedger(row: LedgerRow, expected: LedgerRow | null): Promise<void> {
    const values = ledgerValues({ ...row, error: storableText(row.error) });
    const statement = expected
      ? this.#prepare(ledgerUpdateSql(this.#table, () => '?'))
      : this.#prepare(ledgerInsertSql(this.#table, () => '?'));
    const params = expected ? [...values.slice(1), ...expectedValues(expected)] : values;
    let changes = 0;
    try {
      changes = await this.#write(() => this.#onCleanSession(row.state, () => statement.run(params)).changes);
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    if (changes === 1) return;
    throw ledgerConflict(row, expected, await this.#currentRow(row.version));
  }

  async deleteLedger(expected: LedgerRow): Promise<void> {
    const statement = this.#prepare(ledgerDeleteSql(this.#table, () => '?'));
    const result = await this.#write(() =>
      this.#onCleanSession('deleted', () => statement.run(expectedValues(expected))),
    );
    if (result.changes === 1) return;
    const found = await this.#currentRow(expected.version);
    throw ledgerConflict({ version: expected.version, state: 'deleted' }, expected, found);
  }

  async #currentRow(version: string): Promise<LedgerRow | null | undefined> {
    const rows = await this.readLedger().catch(() => undefined);
    return rows === undefined ? undefined : (rows?.find((r) => r.version === version) ?? null);
  }

  /**
   * Runs a ledger write on a connection fit for it, whatever migration statements left on it
   * (SPEC guarantee 13): a transaction they left open ends first (committed; rolled back before
   * a `failed` row), and the pragmas of SESSION_PRAGMAS hold their values from before the first
   * migration for the write. A progress write gives the migration its own values back; a final
   * write leaves lockstep's for the next migration.
   */
  #onCleanSession<T>(state: LedgerRow['state'] | 'deleted', write: () => T): T {
    const baseline = this.#baseline;
    if (!this.#touched || !baseline) return write();
    // Not lockstep's own transaction (#endTurn): one the migration's statements left open.
    if (!this.#endTurn && this.#db.inTransaction) this.#db.exec(state === 'failed' ? 'ROLLBACK' : 'COMMIT');
    const current = this.#readPragmas();
    const changed = SESSION_PRAGMAS.filter((name) => current.get(name) !== baseline.get(name));
    for (const name of changed) this.#db.pragma(`${name} = ${Number(baseline.get(name))}`);
    const result = write();
    if (state === 'running')
      for (const name of changed) this.#db.pragma(`${name} = ${Number(current.get(name))}`);
    this.#touched = state === 'running' && changed.length > 0;
    return result;
  }

  #readPragmas(): Map<string, unknown> {
    return new Map(SESSION_PRAGMAS.map((name) => [name, this.#db.pragma(name, { simple: true })]));
  }

  #openLockDb(): BetterSqlite3.Database {
    // Busy timeout 0: the lock is tried, never waited for inside SQLite (that would block the
    // event loop of an application calling migrate()); waitForUnlock backs off asynchronously.
    this.#lockDb ??= new this.#Database(this.#lockFile, { timeout: 0 });
    return this.#lockDb;
  }

  async tryLock(): Promise<boolean> {
    if (!this.#tryBegin()) return false;
    this.#holding = true;
    this.#backoff = 2;
    const record: HolderRecord = {
      who: this.#options.runnerId,
      host: hostname(),
      pid: process.pid,
      since: new Date().toISOString(),
    };
    const temporary = `${this.#holderFile}.${process.pid}`;
    writeFileSync(temporary, JSON.stringify(record));
    renameSync(temporary, this.#holderFile);
    return true;
  }

  #tryBegin(): boolean {
    try {
      this.#options.onQuery?.('BEGIN IMMEDIATE (lock)');
      this.#openLockDb().exec('BEGIN IMMEDIATE');
      return true;
    } catch (error) {
      if (/^SQLITE_(BUSY|LOCKED)/.test((error as { code?: string }).code ?? '')) return false;
      throw error;
    }
  }

  async waitForLock(maxMs: number): Promise<boolean> {
    await sleep(Math.min(maxMs, this.#backoff * (0.5 + Math.random())));
    this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    return this.tryLock();
  }

  async lockHolder(): Promise<LockHolder | null> {
    if (this.#holding) return { who: this.#options.runnerId };
    if (this.#tryBegin()) {
      this.#openLockDb().exec('ROLLBACK');
      return null;
    }
    let record: HolderRecord;
    try {
      record = JSON.parse(readFileSync(this.#holderFile, 'utf8')) as HolderRecord;
    } catch {
      return { who: 'another process (not yet named)' };
    }
    return { who: record.who, since: record.since, detail: `lock file ${this.#lockFile}` };
  }

  async unlock(): Promise<void> {
    if (!this.#holding) return;
    try {
      unlinkSync(this.#holderFile);
    } catch {}
    this.#lockDb?.exec('ROLLBACK');
    this.#holding = false;
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
    const statement = this.#prepare(sql);
    if (statement.reader) {
      const rows = statement.all(...params) as Record<string, unknown>[];
      return { rows, rowCount: rows.length };
    }
    const result = await this.#write(() => statement.run(...params));
    return { rows: [], rowCount: result.changes };
  }

  describeError(error: unknown): DbErrorInfo {
    const e = error as { message?: string; code?: string };
    return {
      message: e.message ?? String(error),
      ...(e.code ? { code: e.code } : {}),
      lockTimeout: false,
      connectionLost: false,
      undefinedTable: /no such table/.test(e.message ?? ''),
    };
  }

  async watchForDisconnect(): Promise<void> {
    // In-process: a statement dies with the process that runs it.
  }

  async applyLimits(limits: SessionLimits): Promise<() => Promise<void>> {
    // No statement timeout: see `cancellable`. Settings are pragmas, restored to what they were.
    const previous: [string, unknown][] = [];
    for (const [name, value] of Object.entries(limits.settings ?? {})) {
      const pragma = settingName(name);
      if (!/^[A-Za-z0-9_.+-]+$/.test(String(value))) {
        throw new ConfigError(`invalid value "${value}" for PRAGMA ${pragma}: use a number or a word`);
      }
      previous.push([pragma, this.#db.pragma(pragma, { simple: true })]);
      this.#options.onQuery?.(`PRAGMA ${pragma} = ${value}`);
      this.#db.pragma(`${pragma} = ${value}`);
    }
    return async () => {
      for (const [pragma, value] of previous.reverse()) this.#db.pragma(`${pragma} = ${value}`);
    };
  }

  async findRunning(): Promise<RunningQuery[]> {
    // No server: a statement never outlives the process that ran it.
    return [];
  }

  async cancelRunning(): Promise<void> {}

  async close(): Promise<void> {
    await this.unlock().catch(() => {});
    this.#finishTurn();
    this.#lockDb?.close();
    await this.#lease.release(false);
  }
}
