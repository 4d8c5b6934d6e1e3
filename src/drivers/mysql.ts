import { createHash } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ConfigError, ConnectionError, type LockHolder } from '../core/errors.js';
import type { SplitDialect } from '../sql/split.js';
import type {
  DbErrorInfo,
  Driver,
  DriverOptions,
  LedgerRow,
  QueryResult,
  Session,
  TransactionOptions,
} from './driver.js';
import { createLedgerSql, fromLedgerRecord, LEDGER_COLUMNS, ledgerValues } from './ledger-sql.js';
import { redactUrl } from './registry.js';

const syntax: SplitDialect = {
  dollarQuotes: false,
  backslashEscapes: 'always',
  hashComments: true,
  nestedBlockComments: false,
  backticks: true,
  brackets: false,
  bodies: 'mysql-routine',
  dashCommentNeedsSpace: true,
  versionedComments: true,
  delimiterCommand: true,
};

/** Statements that MySQL runs inside a transaction; anything else (DDL) commits implicitly. */
const TRANSACTIONAL = /^\s*(INSERT|UPDATE|DELETE|REPLACE|SELECT|WITH|VALUES)\b/i;

/** GET_LOCK names are server-wide and at most 64 characters. */
const MAX_LOCK_NAME = 64;

const LOST_CONNECTION_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'EPIPE',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_QUERY_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/** The GET_LOCK name of a ledger: readable when it fits in 64 characters, else hashed. */
export function mysqlLockName(database: string, table: string): string {
  const plain = `lockstep:${database}.${table}`;
  if (plain.length <= MAX_LOCK_NAME) return plain;
  const hash = createHash('sha256').update(plain).digest('hex');
  return `lockstep:${hash.slice(0, MAX_LOCK_NAME - 'lockstep:'.length)}`;
}

export function createMysqlDriver(url: string, options: DriverOptions): Driver {
  let parsed: URL;
  try {
    parsed = new URL(url.replace(/^mariadb:/i, 'mysql:'));
  } catch {
    throw new ConfigError(
      `malformed MySQL URL "${redactUrl(url)}": expected mysql://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database || database.includes('/')) {
    throw new ConfigError(
      `MySQL URL "${redactUrl(url)}" names no database: add /<database> (the ledger lives there)`,
    );
  }
  if (options.table.includes('.')) {
    throw new ConfigError(
      `MySQL ledger table "${options.table}" cannot be qualified: the URL's database holds it`,
    );
  }
  // Qualified, so a migration's `USE other_db` never redirects the ledger writes.
  const table = `${quote(database)}.${quote(options.table)}`;
  const lockName = mysqlLockName(database, options.table);
  return {
    dialect: 'mysql',
    syntax,
    target: `${redactUrl(url)} (ledger ${database}.${options.table})`,
    transactionalDdl: false,
    isTransactionalStatement: (sql) => TRANSACTIONAL.test(sql),
    async connect() {
      const mysql = await import('mysql2/promise');
      let connection: Connection;
      try {
        connection = await mysql.createConnection({
          uri: parsed.href,
          dateStrings: true,
          timezone: 'Z',
          supportBigNumbers: true,
          bigNumberStrings: true,
          enableKeepAlive: true,
          keepAliveInitialDelay: 10_000,
          connectTimeout: 10_000,
          multipleStatements: false,
        });
      } catch (error) {
        throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${(error as Error).message}`);
      }
      return new MysqlSession(connection, options, table, lockName);
    },
  };
}

class MysqlSession implements Session {
  readonly #connection: Connection;
  readonly #options: DriverOptions;
  readonly #table: string;
  readonly #lockName: string;
  #held = false;
  #lockTimeoutSet = false;
  #lost: Error | undefined;

  constructor(connection: Connection, options: DriverOptions, table: string, lockName: string) {
    this.#connection = connection;
    this.#options = options;
    this.#table = table;
    this.#lockName = lockName;
    connection.on('error', (error: Error) => {
      this.#lost = error;
    });
  }

  async #query<T = RowDataPacket[]>(sql: string, params?: readonly unknown[]): Promise<T> {
    this.#options.onQuery?.(sql);
    const [result] = await this.#connection.query(sql, params as unknown[] | undefined);
    return result as T;
  }

  async readLedger(): Promise<LedgerRow[] | null> {
    try {
      const rows = await this.#query(`SELECT ${LEDGER_COLUMNS} FROM ${this.#table}`);
      return rows.map((r) =>
        fromLedgerRecord({ ...r, started_at: toIso(r.started_at), finished_at: toIso(r.finished_at) }),
      );
    } catch (error) {
      if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') return null;
      throw error;
    }
  }

  async createLedger(): Promise<void> {
    await this.#query(
      createLedgerSql(this.#table, {
        key: 'varchar(64)',
        text: 'varchar(255)',
        longText: 'text',
        integer: 'int',
        timestamp: 'datetime(3)',
        options: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
      }),
    );
  }

  async writeLedger(row: LedgerRow): Promise<void> {
    const values = ledgerValues({
      ...row,
      startedAt: toDatetime(row.startedAt),
      finishedAt: toDatetime(row.finishedAt),
    });
    await this.#query(
      `REPLACE INTO ${this.#table} (${LEDGER_COLUMNS}) VALUES (${values.map(() => '?').join(', ')})`,
      values,
    );
  }

  async deleteLedger(version: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.#table} WHERE version = ?`, [version]);
  }

  async tryLock(): Promise<boolean> {
    return this.#getLock(0);
  }

  async waitForLock(maxMs: number): Promise<boolean> {
    // The server wakes a blocked GET_LOCK the moment the holder releases: handoff is immediate.
    // The wait holds no transaction and no snapshot. MySQL takes whole seconds.
    return this.#getLock(Math.max(1, Math.round(maxMs / 1000)));
  }

  async #getLock(seconds: number): Promise<boolean> {
    // GET_LOCK is re-entrant on MariaDB: never take it twice, or one release would not free it.
    if (this.#held) return true;
    const [row] = await this.#query('SELECT GET_LOCK(?, ?) AS got', [this.#lockName, seconds]);
    const got = row?.got;
    if (got === null || got === undefined) {
      throw new ConnectionError(
        `GET_LOCK('${this.#lockName}') returned NULL: the session was killed or the server failed while waiting`,
      );
    }
    this.#held = Number(got) === 1;
    return this.#held;
  }

  async lockHolder(): Promise<LockHolder | null> {
    const [row] = await this.#query(
      `SELECT l.id, p.USER AS user, p.HOST AS host, p.TIME AS time, p.COMMAND AS command, LEFT(p.INFO, 120) AS info
         FROM (SELECT IS_USED_LOCK(?) AS id) l
         LEFT JOIN information_schema.PROCESSLIST p ON p.ID = l.id`,
      [this.#lockName],
    );
    if (!row || row.id === null) return null;
    if (!row.host)
      return {
        who: `connection ${row.id}`,
        detail: 'not visible in the processlist (needs PROCESS privilege)',
      };
    const doing = row.info ? `running ${String(row.info).replace(/\s+/g, ' ')}` : `${row.command}`;
    return { who: `connection ${row.id} (${row.user}@${row.host})`, detail: `${doing} for ${row.time}s` };
  }

  async unlock(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await this.#query('SELECT RELEASE_LOCK(?)', [this.#lockName]);
  }

  async begin(options: TransactionOptions): Promise<void> {
    if (options.lockTimeoutMs) {
      // Session-wide in MySQL: set for this transaction only, restored when it ends.
      const seconds = Math.max(1, Math.ceil(options.lockTimeoutMs / 1000));
      await this.#query(`SET SESSION lock_wait_timeout = ${seconds}`);
      this.#lockTimeoutSet = true;
    }
    await this.#query('START TRANSACTION');
  }

  async commit(): Promise<void> {
    await this.#query('COMMIT');
    await this.#restoreLockTimeout();
  }

  async rollback(): Promise<void> {
    await this.#query('ROLLBACK');
    await this.#restoreLockTimeout();
  }

  async #restoreLockTimeout(): Promise<void> {
    if (!this.#lockTimeoutSet) return;
    this.#lockTimeoutSet = false;
    await this.#query('SET SESSION lock_wait_timeout = DEFAULT');
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    const result = await this.#query<unknown>(sql, params);
    if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], rowCount: result.length };
    return { rows: [], rowCount: Number((result as { affectedRows?: number }).affectedRows ?? 0) };
  }

  describeError(error: unknown): DbErrorInfo {
    const e = error as {
      message?: string;
      code?: string;
      errno?: number;
      sqlMessage?: string;
      fatal?: boolean;
    };
    const message = e.sqlMessage ?? e.message ?? String(error);
    const line = /at line (\d+)\s*$/.exec(message)?.[1];
    return {
      message,
      ...(e.code ? { code: e.code } : {}),
      ...(line ? { line: Number(line) } : {}),
      lockTimeout: e.code === 'ER_LOCK_WAIT_TIMEOUT',
      connectionLost:
        this.#lost !== undefined ||
        e.fatal === true ||
        (e.code !== undefined && LOST_CONNECTION_CODES.has(e.code)),
    };
  }

  async close(): Promise<void> {
    // Release explicitly: the server frees it only once it has processed our disconnect.
    await this.unlock().catch(() => {});
    // Not awaited: the server has nothing more to tell us, and boot should not wait for the FIN.
    this.#connection.end().catch(() => this.#connection.destroy());
  }
}

function quote(identifier: string): string {
  return `\`${identifier.replaceAll('`', '``')}\``;
}

/** ISO 8601 ↔ MySQL DATETIME(3) in UTC. */
function toDatetime(iso: string): string;
function toDatetime(iso: string | null): string | null;
function toDatetime(iso: string | null): string | null {
  return iso === null ? null : iso.replace('T', ' ').replace(/Z$/, '');
}

function toIso(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return `${String(value).replace(' ', 'T')}Z`;
}
