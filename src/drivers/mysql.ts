import { createHash } from 'node:crypto';
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ConfigError, ConnectionError, type LockHolder } from '../errors.js';
import type { SplitDialect } from '../sql/split.js';
import { redactUrl } from '../util/secrets.js';
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
  TransactionOptions,
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
  likePrefix,
  MYSQL_TEXT_BYTES,
  notALedger,
  settingName,
  storableText,
} from './ledger-sql.js';
import { callerConnections, ownConnection } from './mysql/client.js';

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

/**
 * Statements that leave the session as it was: no table locks, transaction or settings (after
 * plain comments; a versioned comment is code). After any other (SET, LOCK TABLES, CALL, ...) the
 * next ledger write settles the session first.
 */
const LEAVES_SESSION_AS_IS =
  /^(?:\s|(?:--\s|#)[^\n]*(?:\n|$)|\/\*(?![!M])[\s\S]*?\*\/)*(INSERT|UPDATE|DELETE|REPLACE|SELECT|WITH|VALUES|CREATE|ALTER|DROP|RENAME|TRUNCATE)\b/i;

/**
 * What a migration may change on its session that lockstep's own writes and the next migration
 * must not inherit; restored to the values the session had before the first migration ran.
 */
const SESSION_SETTINGS = [
  'autocommit',
  'sql_mode',
  'time_zone',
  'foreign_key_checks',
  'unique_checks',
  'character_set_client',
  'character_set_connection',
  'character_set_results',
  'collation_connection',
  'sql_notes',
] as const;

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

export function createMysqlDriver(url: string, options: DriverOptions, caller?: CallerHandle): Driver {
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
  const lendCaller = caller && callerConnections(caller.client, caller.pool);
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
      const open = async () => {
        try {
          return await mysql.createConnection({
            uri: parsed.href,
            dateStrings: true,
            timezone: 'Z',
            supportBigNumbers: true,
            bigNumberStrings: true,
            enableKeepAlive: true,
            keepAliveInitialDelay: 10_000,
            connectTimeout: 10_000,
            multipleStatements: false,
            // mysql2 asks for IGNORE_SPACE by default, which makes function names reserved words
            // (`CREATE TABLE count` fails): parse SQL as the server's own client does.
            flags: ['-IGNORE_SPACE'],
          });
        } catch (error) {
          throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${(error as Error).message}`);
        }
      };
      const lease = lendCaller ? await lendCaller(open) : ownConnection(await open());
      return new MysqlSession(lease, options, table, lockName, exclusiveLockName);
    },
  };
}

class MysqlSession implements Session {
  readonly #lease: Lease<Connection>;
  readonly #connection: Connection;
  readonly #options: DriverOptions;
  readonly #table: string;
  readonly #lockName: string;
  readonly #exclusiveLockName: string;
  #held = false;
  #exclusive = false;
  #lockTimeoutSet = false;
  #mariadb: boolean | undefined;
  /** The session settings (and database) before the first migration statement ran. */
  #baseline: Map<string, string | null> | undefined;
  /** A statement that may change the session ran since the last ledger write. */
  #touched = false;
  /** The session as a migration set it and keeps it for its next statements, if not the baseline. */
  #kept: Map<string, string | null> | undefined;
  /** Inside lockstep's own transaction (begin … commit/rollback). */
  #transaction = false;
  /** The status flags of the server's last OK packet (SERVER_STATUS_IN_TRANS, _AUTOCOMMIT, ...). */
  #serverStatus = 0;
  #lost: Error | undefined;

  constructor(
    lease: Lease<Connection>,
    options: DriverOptions,
    table: string,
    lockName: string,
    exclusiveLockName: string,
  ) {
    const connection = lease.connection;
    this.#lease = lease;
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
    // An OK packet carries the server's status flags; a result set leaves the transaction as it was.
    const status = (result as { serverStatus?: unknown }).serverStatus;
    if (typeof status === 'number') this.#serverStatus = status;
    return result as T;
  }

  async readLedger(): Promise<LedgerRow[] | null> {
    try {
      const rows = await this.#query(`SELECT ${LEDGER_COLUMNS} FROM ${this.#table}`);
      return rows.map((r) =>
        fromLedgerRecord({ ...r, started_at: toIso(r.started_at), finished_at: toIso(r.finished_at) }),
      );
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ER_NO_SUCH_TABLE') return null;
      if (code === 'ER_BAD_FIELD_ERROR') throw notALedger(this.#options.table, (error as Error).message);
      throw error;
    }
  }

  async createLedger(): Promise<void> {
    await this.#query(createLedgerSql(this.#table, types));
  }

  async writeLedger(row: LedgerRow, expected: LedgerRow | null): Promise<void> {
    const values = ledgerValues({
      ...row,
      startedAt: toDatetime(row.startedAt),
      finishedAt: toDatetime(row.finishedAt),
      error: storableText(row.error, MYSQL_TEXT_BYTES),
    });
    let affected = 0;
    try {
      const result = await this.#onCleanSession(row.state, () =>
        expected
          ? this.#query<ResultSetHeader>(
              ledgerUpdateSql(this.#table, () => '?'),
              [...values.slice(1), ...this.#expectedValues(expected)],
            )
          : this.#query<ResultSetHeader>(
              ledgerInsertSql(this.#table, () => '?'),
              values,
            ),
      );
      affected = result.affectedRows;
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    if (affected === 1) return;
    throw ledgerConflict(row, expected, await this.#currentRow(row.version));
  }

  async deleteLedger(expected: LedgerRow): Promise<void> {
    const result = await this.#onCleanSession('deleted', () =>
      this.#query<ResultSetHeader>(
        ledgerDeleteSql(this.#table, () => '?'),
        this.#expectedValues(expected),
      ),
    );
    if (result.affectedRows === 1) return;
    const found = await this.#currentRow(expected.version);
    throw ledgerConflict({ version: expected.version, state: 'deleted' }, expected, found);
  }

  #expectedValues(expected: LedgerRow): unknown[] {
    return expectedValues({ ...expected, startedAt: toDatetime(expected.startedAt) });
  }

  /** The row as the ledger holds it now, for a conflict's message; undefined if it cannot be read. */
  async #currentRow(version: string): Promise<LedgerRow | null | undefined> {
    const rows = await this.readLedger().catch(() => undefined);
    return rows === undefined ? undefined : (rows?.find((r) => r.version === version) ?? null);
  }

  /**
   * Runs a ledger write on a session fit for it, whatever migration statements left on it (SPEC
   * guarantee 13). Table locks (LOCK TABLES) are released and an open transaction ended first:
   * committed (a statement is recorded done only once it is durable), rolled back before a
   * `failed` row; autocommit is back on from then. The settings lockstep started with
   * (SESSION_SETTINGS) hold for the write itself. A progress write then gives the migration its
   * own settings back for its next statements (a dump's sql_mode holds for its INSERTs); a final
   * write leaves lockstep's, and its database, for the next migration.
   */
  async #onCleanSession<T>(state: LedgerRow['state'] | 'deleted', write: () => Promise<T>): Promise<T> {
    const baseline = this.#baseline;
    if ((!this.#touched && !this.#kept) || this.#transaction || !baseline) return write();
    let session = this.#kept ?? baseline;
    if (this.#touched) {
      await this.#query('UNLOCK TABLES');
      await this.#query(state === 'failed' ? 'ROLLBACK' : 'COMMIT');
      session = await this.#readSettings();
    }
    const changed = SESSION_SETTINGS.filter((name) => session.get(name) !== baseline.get(name));
    await this.#setSettings(changed, baseline);
    const result = await write();
    this.#touched = false;
    this.#kept = undefined;
    const otherDatabase = session.get('database') !== baseline.get('database');
    if (state !== 'running') {
      if (otherDatabase) await this.#query(`USE ${quote(String(baseline.get('database')))}`);
      return result;
    }
    const restore = changed.filter((name) => name !== 'autocommit');
    await this.#setSettings(restore, session);
    if (restore.length > 0 || otherDatabase) {
      this.#kept = new Map(session).set('autocommit', baseline.get('autocommit') ?? null);
    }
    return result;
  }

  async #readSettings(): Promise<Map<string, string | null>> {
    const [row] = await this.#query(
      `SELECT ${SESSION_SETTINGS.map((name) => `@@SESSION.${name} AS ${name}`).join(', ')}, DATABASE() AS \`database\``,
    );
    return new Map(
      Object.entries(row ?? {}).map(([name, value]) => [name, value === null ? null : String(value)]),
    );
  }

  async #setSettings(names: readonly string[], values: Map<string, string | null>): Promise<void> {
    if (names.length === 0) return;
    await this.#query(
      `SET ${names.map((name) => `SESSION ${name} = ?`).join(', ')}`,
      // Flags (autocommit, foreign_key_checks, ...) take numbers, not '1'.
      names.map((name) => {
        const value = values.get(name) ?? null;
        return value !== null && /^\d+$/.test(value) ? Number(value) : value;
      }),
    );
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
      this.#transaction = true;
      return;
    }
    if (options.lockTimeoutMs) {
      // Session-wide in MySQL: set for this transaction only, restored when it ends.
      const seconds = Math.max(1, Math.ceil(options.lockTimeoutMs / 1000));
      await this.#query(`SET SESSION lock_wait_timeout = ${seconds}`);
      this.#lockTimeoutSet = true;
    }
    await this.#query('START TRANSACTION');
    this.#transaction = true;
  }

  async commit(): Promise<void> {
    this.#transaction = false;
    await this.#query('COMMIT');
    await this.#restoreLockTimeout();
  }

  async rollback(): Promise<void> {
    this.#transaction = false;
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

  inMigrationTransaction(): boolean {
    // With autocommit off every statement opens a transaction; lockstep commits it (see #onCleanSession).
    const explicit = SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT;
    return !this.#transaction && (this.#serverStatus & explicit) === explicit;
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (!this.#transaction) {
      this.#baseline ??= await this.#readSettings();
      if (!LEAVES_SESSION_AS_IS.test(sql)) this.#touched = true;
    }
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
    await this.#lease.release(this.#lost !== undefined);
  }
}

/** Server status flags of the MySQL protocol's OK packet. */
const SERVER_STATUS_IN_TRANS = 0x0001;
const SERVER_STATUS_AUTOCOMMIT = 0x0002;

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
