import type { Connection as MysqlClient } from 'mysql2/promise';
import { ConnectionError } from '../../errors.js';
import type { Lease } from '../caller.js';
import type {
  Connection,
  DbErrorInfo,
  Dialect,
  LedgerState,
  QueryResult,
  TransactionOptions,
} from '../driver.js';
import { quote } from './dialect.js';
import { type MysqlLink, SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS } from './link.js';
import type { MysqlLock } from './lock.js';

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

const LOST_CONNECTION_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'EPIPE',
  'ER_CONNECTION_KILLED',
  'ER_SERVER_SHUTDOWN',
  'ER_QUERY_INTERRUPTED',
  'ER_CLIENT_INTERACTION_TIMEOUT',
]);

export class MysqlConnection implements Connection {
  /** How the mysql2 connection was obtained, and how it is given back (ended, or returned to the caller). */
  readonly #lease: Lease<MysqlClient>;
  readonly #link: MysqlLink;
  readonly #lock: MysqlLock;
  readonly #dialect: Dialect;
  readonly #exclusiveLockName: string;
  #exclusive = false;
  #lockTimeoutSet = false;
  /** The session settings (and database) before the first migration statement ran. */
  #baseline: Map<string, string | null> | undefined;
  /** A statement that may change the session ran since the last ledger write. */
  #touched = false;
  /** The session as a migration set it and keeps it for its next statements, if not the baseline. */
  #kept: Map<string, string | null> | undefined;
  /** Inside lockstep's own transaction (begin … commit/rollback). */
  #transaction = false;

  constructor(
    link: MysqlLink,
    lock: MysqlLock,
    dialect: Dialect,
    exclusiveLockName: string,
    lease: Lease<MysqlClient>,
  ) {
    this.#lease = lease;
    this.#link = link;
    this.#lock = lock;
    this.#dialect = dialect;
    this.#exclusiveLockName = exclusiveLockName;
  }

  query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    return this.#link.result(sql, params);
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
  async onCleanSession<T>(state: LedgerState | 'deleted', write: () => Promise<T>): Promise<T> {
    const baseline = this.#baseline;
    if ((!this.#touched && !this.#kept) || this.#transaction || !baseline) return write();
    let session = this.#kept ?? baseline;
    if (this.#touched) {
      await this.#link.query('UNLOCK TABLES');
      await this.#link.query(state === 'failed' ? 'ROLLBACK' : 'COMMIT');
      session = await this.#readSettings();
    }
    const changed = SESSION_SETTINGS.filter((name) => session.get(name) !== baseline.get(name));
    await this.#setSettings(changed, baseline);
    const result = await write();
    this.#touched = false;
    this.#kept = undefined;
    const otherDatabase = session.get('database') !== baseline.get('database');
    if (state !== 'running') {
      if (otherDatabase) await this.#link.query(`USE ${quote(String(baseline.get('database')))}`);
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
    const [row] = await this.#link.query(
      `SELECT ${SESSION_SETTINGS.map((name) => `@@SESSION.${name} AS ${name}`).join(', ')}, DATABASE() AS \`database\``,
    );
    return new Map(
      Object.entries(row ?? {}).map(([name, value]) => [name, value === null ? null : String(value)]),
    );
  }

  async #setSettings(names: readonly string[], values: Map<string, string | null>): Promise<void> {
    if (names.length === 0) return;
    await this.#link.query(
      `SET ${names.map((name) => `SESSION ${name} = ?`).join(', ')}`,
      // Flags (autocommit, foreign_key_checks, ...) take numbers, not '1'.
      names.map((name) => {
        const value = values.get(name) ?? null;
        return value !== null && /^\d+$/.test(value) ? Number(value) : value;
      }),
    );
  }

  async begin(options: TransactionOptions): Promise<void> {
    if (options.exclusive) {
      // Taken before the transaction starts, so its first read already sees every earlier commit.
      const seconds = Math.max(1, Math.ceil((options.lockTimeoutMs ?? 30_000) / 1000));
      const [row] = await this.#link.query('SELECT GET_LOCK(?, ?) AS got', [
        this.#exclusiveLockName,
        seconds,
      ]);
      if (Number(row?.got) !== 1) {
        throw new ConnectionError(
          `gave up after ${seconds}s waiting for GET_LOCK('${this.#exclusiveLockName}'), held by another lockstep transaction`,
        );
      }
      this.#exclusive = true;
      await this.#link.query('START TRANSACTION');
      this.#transaction = true;
      return;
    }
    if (options.lockTimeoutMs) {
      // Session-wide in MySQL: set for this transaction only, restored when it ends.
      const seconds = Math.max(1, Math.ceil(options.lockTimeoutMs / 1000));
      await this.#link.query(`SET SESSION lock_wait_timeout = ${seconds}`);
      this.#lockTimeoutSet = true;
    }
    await this.#link.query('START TRANSACTION');
    this.#transaction = true;
  }

  async commit(): Promise<void> {
    this.#transaction = false;
    await this.#link.query('COMMIT');
    await this.#restoreLockTimeout();
  }

  async rollback(): Promise<void> {
    this.#transaction = false;
    await this.#link.query('ROLLBACK');
    await this.#restoreLockTimeout();
  }

  async #restoreLockTimeout(): Promise<void> {
    if (this.#exclusive) {
      this.#exclusive = false;
      await this.#link.query('SELECT RELEASE_LOCK(?)', [this.#exclusiveLockName]);
    }
    if (!this.#lockTimeoutSet) return;
    this.#lockTimeoutSet = false;
    await this.#link.query('SET SESSION lock_wait_timeout = DEFAULT');
  }

  inMigrationTransaction(): boolean {
    // With autocommit off every statement opens a transaction; lockstep commits it (see onCleanSession).
    const explicit = SERVER_STATUS_IN_TRANS | SERVER_STATUS_AUTOCOMMIT;
    return !this.#transaction && (this.#link.serverStatus & explicit) === explicit;
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (!this.#transaction) {
      this.#baseline ??= await this.#readSettings();
      if (!LEAVES_SESSION_AS_IS.test(sql)) this.#touched = true;
    }
    return this.#link.result(sql, params);
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
      undefinedTable: this.#dialect.isUndefinedTable(error),
      connectionLost:
        this.#link.lost !== undefined ||
        e.fatal === true ||
        (e.code !== undefined && LOST_CONNECTION_CODES.has(e.code)),
    };
  }

  serverId(): string | undefined {
    return this.#link.client.threadId ? String(this.#link.client.threadId) : undefined;
  }

  async close(): Promise<void> {
    // Release explicitly: the server frees it only once it has processed our disconnect.
    await this.#lock.release().catch(() => {});
    await this.#lease.release(this.#link.lost !== undefined);
  }
}
