import { createHash } from 'node:crypto';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { ConfigError, ConnectionError, type LockHolder } from '../core/errors.js';
import type { SplitDialect } from '../sql/split.js';
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
  TransactionOptions,
} from './driver.js';
import {
  createLedgerSql,
  fromLedgerRecord,
  LEDGER_COLUMNS,
  ledgerValues,
  likePrefix,
  settingName,
} from './ledger-sql.js';
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

const types: ColumnTypes = {
  key: 'varchar(64)',
  text: 'varchar(255)',
  longText: 'text',
  integer: 'int',
  bigint: 'bigint',
  real: 'double',
  timestamp: 'datetime(3)',
  autoId: 'bigint NOT NULL AUTO_INCREMENT PRIMARY KEY',
  tableOptions: ' ENGINE=InnoDB DEFAULT CHARSET=utf8mb4',
};

const LOST_CONNECTION_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'EPIPE',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_QUERY_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

/**
 * The GET_LOCK name of a ledger (or, with prefix `lockstep-x`, of its exclusive transactions):
 * readable when it fits in 64 characters, else hashed.
 */
export function mysqlLockName(database: string, table: string, prefix = 'lockstep'): string {
  const plain = `${prefix}:${database}.${table}`;
  if (plain.length <= MAX_LOCK_NAME) return plain;
  const hash = createHash('sha256').update(plain).digest('hex');
  return `${prefix}:${hash.slice(0, MAX_LOCK_NAME - prefix.length - 1)}`;
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
  const exclusiveLockName = mysqlLockName(database, options.table, 'lockstep-x');
  const sql: SqlDialect = {
    param: () => '?',
    quote: (identifier) => identifier.split('.').map(quote).join('.'),
    table: (name) => `${quote(database)}.${quote(name)}`,
    types,
    timestamp: (iso) => toDatetime(iso),
    asText: (expression) => `CAST(${expression} AS CHAR)`,
    cancellable: true,
  };
  return {
    dialect: 'mysql',
    syntax,
    target: `${redactUrl(url)} (ledger ${database}.${options.table})`,
    transactionalDdl: false,
    sql,
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
      return new MysqlSession(connection, options, table, lockName, exclusiveLockName);
    },
  };
}

class MysqlSession implements Session {
  readonly #connection: Connection;
  readonly #options: DriverOptions;
  readonly #table: string;
  readonly #lockName: string;
  readonly #exclusiveLockName: string;
  #held = false;
  #exclusive = false;
  #lockTimeoutSet = false;
  #mariadb: boolean | undefined;
  #lost: Error | undefined;

  constructor(
    connection: Connection,
    options: DriverOptions,
    table: string,
    lockName: string,
    exclusiveLockName: string,
  ) {
    this.#connection = connection;
    this.#options = options;
    this.#table = table;
    this.#lockName = lockName;
    this.#exclusiveLockName = exclusiveLockName;
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
    await this.#query(createLedgerSql(this.#table, types));
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
    if (options.exclusive) {
      // Taken before the transaction starts, so its first read already sees every earlier commit.
      const seconds = Math.max(1, Math.ceil((options.lockTimeoutMs ?? 30_000) / 1000));
      const [row] = await this.#query('SELECT GET_LOCK(?, ?) AS got', [this.#exclusiveLockName, seconds]);
      if (Number(row?.got) !== 1) {
        throw new ConnectionError(
          `gave up after ${seconds}s waiting for GET_LOCK('${this.#exclusiveLockName}'), held by another lockstep transaction`,
        );
      }
      this.#exclusive = true;
      await this.#query('START TRANSACTION');
      return;
    }
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
    if (this.#exclusive) {
      this.#exclusive = false;
      await this.#query('SELECT RELEASE_LOCK(?)', [this.#exclusiveLockName]);
    }
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
      undefinedTable: e.code === 'ER_NO_SUCH_TABLE',
      connectionLost:
        this.#lost !== undefined ||
        e.fatal === true ||
        (e.code !== undefined && LOST_CONNECTION_CODES.has(e.code)),
    };
  }

  async watchForDisconnect(): Promise<void> {
    // MySQL has no such check: a statement whose client died runs to its end (findRunning sees it).
  }

  async applyLimits(limits: SessionLimits): Promise<() => Promise<void>> {
    const entries: [string, string | number][] = Object.entries(limits.settings ?? {}).map(
      ([name, value]) => [settingName(name), value],
    );
    if (limits.statementTimeoutMs) {
      // MariaDB limits every statement (seconds); MySQL 8 only SELECTs (milliseconds).
      this.#mariadb ??= /mariadb/i.test(String((await this.#query('SELECT VERSION() AS v'))[0]?.v));
      entries.push(
        this.#mariadb
          ? ['max_statement_time', limits.statementTimeoutMs / 1000]
          : ['max_execution_time', Math.round(limits.statementTimeoutMs)],
      );
    }
    if (entries.length === 0) return async () => {};
    await this.#query(
      `SET ${entries.map(([name]) => `SESSION ${name} = ?`).join(', ')}`,
      entries.map(([, value]) => value),
    );
    return async () => {
      await this.#query(`SET ${entries.map(([name]) => `SESSION ${name} = DEFAULT`).join(', ')}`);
    };
  }

  async findRunning(marker: string): Promise<RunningQuery[]> {
    const rows = await this.#query(
      `SELECT ID AS id, INFO AS query, TIME AS seconds FROM information_schema.PROCESSLIST
        WHERE ID <> CONNECTION_ID() AND DB = DATABASE() AND INFO LIKE ?`,
      [likePrefix(`/* ${marker}`)],
    );
    return rows.map((r) => ({
      id: String(r.id),
      query: String(r.query),
      runningMs: Number(r.seconds) * 1000,
    }));
  }

  async cancelRunning(id: string): Promise<void> {
    if (!/^\d+$/.test(id)) throw new ConfigError(`not a MySQL connection id: "${id}"`);
    await this.#query(`KILL QUERY ${id}`);
  }

  serverId(): string | undefined {
    return this.#connection.threadId ? String(this.#connection.threadId) : undefined;
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
