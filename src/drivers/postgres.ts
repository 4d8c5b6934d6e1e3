import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ConfigError, ConnectionError, type LockHolder, LockNotHeldError } from '../errors.js';
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
  notALedger,
  quoteIdentifier,
  settingName,
  storableText,
} from './ledger-sql.js';
import { callerConnections, ownConnection } from './postgres/client.js';

const syntax: SplitDialect = {
  dollarQuotes: true,
  backslashEscapes: 'e-prefix',
  hashComments: false,
  nestedBlockComments: true,
  backticks: false,
  brackets: false,
  bodies: 'begin-atomic',
  parenthesesHoldSemicolons: true,
};

/**
 * Statements that leave the session as it was (after comments): no settings, role or transaction.
 * After any other (SET, SELECT set_config(...), BEGIN, DO, CALL, ...) the next ledger write
 * settles the session first.
 */
const LEAVES_SESSION_AS_IS =
  /^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(CREATE(?!\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP)|ALTER|DROP|INSERT|UPDATE|DELETE|COMMENT|GRANT|REVOKE|TRUNCATE|VACUUM|ANALYZE|REINDEX|CLUSTER|REFRESH)\b/i;

/**
 * DISCARD ALL but for `pg_advisory_unlock_all()` and `UNLISTEN *`: everything a migration can
 * leave on its session (settings, role, cursors, prepared statements, temporary tables that
 * would shadow real ones), keeping the migration lock.
 */
const RESET_SESSION =
  'CLOSE ALL; RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; DEALLOCATE ALL; DISCARD TEMP; DISCARD SEQUENCES';

/** First key of every lockstep advisory lock ('LKST'), so other users of advisory locks never collide. */
const LOCK_NAMESPACE = 0x4c4b5354;
/** First key of the transaction locks of exclusive transactions ('LKSX'). */
const EXCLUSIVE_NAMESPACE = 0x4c4b5358;

const types: ColumnTypes = {
  key: 'text',
  text: 'text',
  longText: 'text',
  integer: 'integer',
  bigint: 'bigint',
  real: 'double precision',
  timestamp: 'timestamptz',
  autoId: 'bigserial PRIMARY KEY',
};
/** How often a waiter re-tries when no NOTIFY came (the holder died, or its notification was lost). */
const FALLBACK_POLL_MS = 500;
/** Ask the server to notice a vanished client within ~25 s (SPEC guarantee 9). */
const KEEPALIVE_OPTIONS = '-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3';
/**
 * How often a backend busy with a statement checks that its client is still there (Postgres ≥ 14).
 * A killed holder's lock must be free within a second (SPEC guarantee 9), whatever the statement.
 */
const CONNECTION_CHECK_INTERVAL = '250ms';
/** Names the lock holder in pg_stat_activity and sets the client check (parameters: name, interval). */
const NAME_HOLDER = `set_config('application_name', $1, false) AS name,
       (SELECT set_config(name, $2, false) FROM pg_settings WHERE name = 'client_connection_check_interval') AS checks`;

const LOST_CONNECTION_CODES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

export function createPostgresDriver(url: string, options: DriverOptions, caller?: CallerHandle): Driver {
  try {
    new URL(url);
  } catch {
    throw new ConfigError(
      `malformed PostgreSQL URL "${redactUrl(url)}": expected postgres://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const [schema, table] = options.table.includes('.')
    ? (options.table.split('.') as [string, string])
    : ['public', options.table];
  const qualified = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
  const lockKey = createHash('sha256').update(`${schema}.${table}`).digest().readInt32BE(0) & 0x7fffffff;
  const target = `${redactUrl(url)} (ledger ${schema}.${table})`;
  const lendCaller = caller && callerConnections(caller.client, caller.pool);
  const sql: SqlDialect = {
    param: (index) => `$${index}`,
    quote: (identifier) => identifier.split('.').map(quoteIdentifier).join('.'),
    table: (name) => `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`,
    types,
    timestamp: (iso) => iso,
    asText: (expression) => `(${expression})::text`,
    cancellable: true,
  };
  return {
    dialect: 'postgres',
    syntax,
    transactionalDdl: true,
    target,
    sql,
    async connect() {
      const { default: pgModule } = await import('pg');
      const open = async (connection: pg.ClientConfig) => {
        const client = new pgModule.Client({
          ...connection,
          application_name: applicationName(options.runnerId),
          keepAlive: true,
          keepAliveInitialDelayMillis: 10_000,
          connectionTimeoutMillis: 10_000,
          options: KEEPALIVE_OPTIONS,
        });
        try {
          await client.connect();
        } catch (error) {
          await client.end().catch(() => {});
          throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${(error as Error).message}`);
        }
        return client;
      };
      const lease = lendCaller
        ? await lendCaller(open)
        : ownConnection(await open({ connectionString: url }));
      return new PostgresSession(lease, options, qualified, schema, lockKey);
    },
  };
}

class PostgresSession implements Session {
  readonly #lease: Lease<pg.Client>;
  readonly #client: pg.Client;
  readonly #options: DriverOptions;
  readonly #table: string;
  readonly #schema: string;
  readonly #lockKey: number;
  readonly #channel: string;
  #listening = false;
  #held = false;
  #since: string | undefined;
  /** Migration statements ran since the session was last reset: they may have changed it. */
  #touched = false;
  /** Inside lockstep's own transaction (begin … commit/rollback). */
  #transaction = false;
  #wake: (() => void) | undefined;
  #lost: Error | undefined;

  constructor(
    lease: Lease<pg.Client>,
    options: DriverOptions,
    table: string,
    schema: string,
    lockKey: number,
  ) {
    const client = lease.connection;
    this.#lease = lease;
    this.#client = client;
    this.#options = options;
    this.#table = table;
    this.#schema = schema;
    this.#lockKey = lockKey;
    this.#channel = `lockstep_${lockKey}`;
    // Without a listener, a terminated backend would crash the process with an unhandled 'error'.
    client.on('error', (error) => {
      this.#lost = error;
      this.#wake?.();
    });
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#wake?.();
    });
  }

  async #query(sql: string, params?: readonly unknown[]): Promise<pg.QueryResult> {
    this.#options.onQuery?.(sql);
    return this.#client.query(sql, params as unknown[] | undefined);
  }

  async readLedger(): Promise<LedgerRow[] | null> {
    try {
      const result = await this.#query(`SELECT ${LEDGER_COLUMNS} FROM ${this.#table}`);
      return result.rows.map((r) => fromLedgerRecord(r));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '42P01' || code === '3F000') return null; // undefined table / schema
      if (code === '42703') throw notALedger(this.#options.table, (error as Error).message); // undefined column
      throw error;
    }
  }

  async createLedger(): Promise<void> {
    const schema = await this.#query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.#schema]);
    if (schema.rowCount === 0) {
      await this.#query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(this.#schema)}`);
    }
    await this.#query(createLedgerSql(this.#table, types));
  }

  async writeLedger(row: LedgerRow, expected: LedgerRow | null): Promise<void> {
    const values = ledgerValues({ ...row, error: storableText(row.error) });
    let result: pg.QueryResult | undefined;
    try {
      result = await this.#onCleanSession(row.state, () =>
        expected
          ? this.#query(ledgerUpdateSql(this.#table, pgParam, STARTED_AT), [
              ...values.slice(1),
              ...expectedValues(expected),
            ])
          : this.#query(ledgerInsertSql(this.#table, pgParam), values),
      );
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
    }
    if (result?.rowCount === 1) return;
    throw ledgerConflict(row, expected, await this.#currentRow(row.version));
  }

  async deleteLedger(expected: LedgerRow): Promise<void> {
    const result = await this.#onCleanSession('deleted', () =>
      this.#query(ledgerDeleteSql(this.#table, pgParam, STARTED_AT), expectedValues(expected)),
    );
    if (result.rowCount === 1) return;
    const found = await this.#currentRow(expected.version);
    throw ledgerConflict({ version: expected.version, state: 'deleted' }, expected, found);
  }

  /** The row as the ledger holds it now, for a conflict's message; undefined if it cannot be read. */
  async #currentRow(version: string): Promise<LedgerRow | null | undefined> {
    if (transactionStatus(this.#client) === 'E') return undefined;
    const rows = await this.readLedger().catch(() => undefined);
    return rows === undefined ? undefined : (rows?.find((r) => r.version === version) ?? null);
  }

  /**
   * Runs a ledger write on a session fit for it, whatever migration statements left on it
   * (SPEC guarantee 13). A transaction they left open ends first: committed (a statement is
   * recorded done only once it is durable), rolled back before a `failed` row. A final write
   * (anything but `running`) resets the session for the next migration (RESET_SESSION), then
   * sets lockstep's own settings again. A progress write keeps the migration's settings for its next statements and
   * overrides them only for itself, in a transaction of its own.
   */
  async #onCleanSession<T>(state: LedgerRow['state'] | 'deleted', write: () => Promise<T>): Promise<T> {
    if (!this.#touched) return write();
    const status = transactionStatus(this.#client);
    if (!this.#transaction && (status === 'T' || status === 'E')) {
      await this.#query(state !== 'failed' && status === 'T' ? 'COMMIT' : 'ROLLBACK');
    }
    if (state !== 'running') {
      await this.#query(RESET_SESSION);
      if (this.#held) await this.#nameHolder();
      this.#touched = false;
      return write();
    }
    const changed = await this.#query(
      "SELECT name FROM pg_settings WHERE source = 'session' AND name NOT IN ('application_name', 'client_connection_check_interval')",
    );
    const defaults = changed.rows.map((r) => `; SET LOCAL ${quoteName(String(r.name))} TO DEFAULT`).join('');
    if (this.#transaction) {
      await this.#query(`SET LOCAL ROLE NONE${defaults}`);
      return write();
    }
    await this.#query(`BEGIN READ WRITE; SET LOCAL ROLE NONE${defaults}`);
    try {
      const result = await write();
      await this.#query('COMMIT');
      return result;
    } catch (error) {
      await this.#query('ROLLBACK').catch(() => {});
      throw error;
    }
  }

  async tryLock(): Promise<boolean> {
    // pg_try_advisory_lock, never pg_advisory_lock: a session blocked in the latter holds a
    // snapshot that a holder's CREATE INDEX CONCURRENTLY waits for, a deadlock (SPEC guarantee 6).
    const result = await this.#query('SELECT pg_try_advisory_lock($1, $2) AS locked', [
      LOCK_NAMESPACE,
      this.#lockKey,
    ]);
    if (!result.rows[0]?.locked) return false;
    this.#held = true;
    await this.#afterLock();
    return true;
  }

  /**
   * In one round trip: verify that the lock is held by this very backend (a transaction-pooling
   * proxy would have run the two queries on different backends), name ourselves as holder, and
   * ask the server to check for a vanished client during long statements (Postgres ≥ 14).
   */
  async #afterLock(): Promise<void> {
    this.#since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const result = await this.#query(
      `SELECT EXISTS (
         SELECT 1 FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
            AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2
       ) AS held, ${NAME_HOLDER.replaceAll('$1', '$3').replaceAll('$2', '$4')}`,
      [LOCK_NAMESPACE, this.#lockKey, ...this.#holderSettings()],
    );
    if (!result.rows[0]?.held) {
      this.#held = false;
      await this.#query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, this.#lockKey]).catch(() => {});
      throw new LockNotHeldError(
        "took the advisory lock, but it is not held by this session's backend: a transaction-pooling proxy " +
          '(e.g. PgBouncer with pool_mode=transaction) is between lockstep and PostgreSQL, and session locks do not ' +
          'work through it. Nothing was changed. Point lockstep at PostgreSQL directly or at a session-pooling port.',
      );
    }
  }

  /** Lockstep's own session settings, again after a reset. */
  async #nameHolder(): Promise<void> {
    await this.#query(`SELECT ${NAME_HOLDER}`, this.#holderSettings());
  }

  #holderSettings(): string[] {
    return [applicationName(this.#options.runnerId, this.#since), CONNECTION_CHECK_INTERVAL];
  }

  async waitForLock(maxMs: number): Promise<boolean> {
    if (this.#lost) throw this.#lost;
    if (!this.#listening) {
      // Subscribe first, then try once more: a release between the failed try and this LISTEN
      // would otherwise be missed.
      await this.#query(`LISTEN ${quoteIdentifier(this.#channel)}`);
      this.#listening = true;
      return this.tryLock();
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(maxMs, FALLBACK_POLL_MS * (0.8 + Math.random() * 0.4)));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
    return this.tryLock();
  }

  async lockHolder(): Promise<LockHolder | null> {
    const result = await this.#query(
      `SELECT a.pid, a.application_name, a.client_addr::text AS client, a.state
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2`,
      [LOCK_NAMESPACE, this.#lockKey],
    );
    const row = result.rows[0];
    if (!row) return null;
    const detail = `backend pid ${row.pid}${row.client ? ` from ${row.client}` : ''}, ${row.state}`;
    const match = /^lockstep (\S+?)(?:@(\S+))?$/.exec(row.application_name ?? '');
    if (match) return { who: match[1] as string, ...(match[2] ? { since: match[2] } : {}), detail };
    return { who: `a non-lockstep session "${row.application_name ?? ''}"`, detail };
  }

  async unlock(): Promise<void> {
    this.#held = false;
    // pg_notify in autocommit is delivered at once: waiters retry within milliseconds.
    await this.#query('SELECT pg_advisory_unlock($1, $2), pg_notify($3, $4)', [
      LOCK_NAMESPACE,
      this.#lockKey,
      this.#channel,
      'released',
    ]);
  }

  async begin(options: TransactionOptions): Promise<void> {
    const timeout = options.lockTimeoutMs;
    // Numbers only: nothing user-supplied is spliced here.
    let sql = timeout ? `BEGIN; SET LOCAL lock_timeout = '${Math.round(timeout)}ms'` : 'BEGIN';
    if (options.exclusive) sql += `; SELECT pg_advisory_xact_lock(${EXCLUSIVE_NAMESPACE}, ${this.#lockKey})`;
    await this.#query(sql);
    this.#transaction = true;
  }

  async commit(): Promise<void> {
    this.#transaction = false;
    await this.#query('COMMIT');
  }

  async rollback(): Promise<void> {
    this.#transaction = false;
    await this.#query('ROLLBACK');
  }

  inMigrationTransaction(): boolean {
    const status = transactionStatus(this.#client);
    return !this.#transaction && (status === 'T' || status === 'E');
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    if (!LEAVES_SESSION_AS_IS.test(sql)) this.#touched = true;
    const result = await this.#query(withoutPsqlRestrict(sql), params);
    return { rows: result.rows ?? [], rowCount: result.rowCount ?? 0 };
  }

  describeError(error: unknown): DbErrorInfo {
    const e = error as { message?: string; code?: string; position?: string };
    const message = e.message ?? String(error);
    const lost =
      this.#lost !== undefined ||
      (e.code !== undefined && LOST_CONNECTION_CODES.has(e.code)) ||
      /Connection terminated|not queryable|ECONNRESET|EPIPE/.test(message);
    return {
      message,
      ...(e.code && /^[0-9A-Z]{5}$/.test(e.code) ? { code: e.code } : {}),
      ...(e.position ? { position: Number(e.position) - 1 } : {}),
      lockTimeout: e.code === '55P03',
      connectionLost: lost,
      undefinedTable: e.code === '42P01' || e.code === '3F000',
    };
  }

  async leftovers(): Promise<string[]> {
    const result = await this.#query(
      `SELECT i.indexrelid::regclass::text AS name FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
    );
    return result.rows.map((r) => `INVALID index ${r.name} (drop it with DROP INDEX CONCURRENTLY ${r.name})`);
  }

  async watchForDisconnect(): Promise<void> {
    await this.#query(
      "SELECT set_config(name, $1, false) FROM pg_settings WHERE name = 'client_connection_check_interval'",
      [CONNECTION_CHECK_INTERVAL],
    );
  }

  async applyLimits(limits: SessionLimits): Promise<() => Promise<void>> {
    const entries = Object.entries(limits.settings ?? {}).map(([name, value]) => [
      settingName(name),
      String(value),
    ]);
    if (limits.statementTimeoutMs)
      entries.push(['statement_timeout', `${Math.round(limits.statementTimeoutMs)}ms`]);
    if (entries.length === 0) return async () => {};
    await this.#query(
      `SELECT ${entries.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
      entries.flat(),
    );
    // RESET returns each to the session's default; names are checked identifiers.
    return async () => {
      await this.#query(entries.map(([name]) => `RESET ${name}`).join('; '));
    };
  }

  async findRunning(marker: string): Promise<RunningQuery[]> {
    const result = await this.#query(
      `SELECT pid::text AS id, query,
              (EXTRACT(EPOCH FROM clock_timestamp() - query_start) * 1000)::bigint AS ms
         FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND datname = current_database() AND state <> 'idle' AND query LIKE $1`,
      [likePrefix(`/* ${marker}`)],
    );
    return result.rows.map((r) => ({ id: String(r.id), query: String(r.query), runningMs: Number(r.ms) }));
  }

  async cancelRunning(id: string): Promise<void> {
    await this.#query('SELECT pg_cancel_backend($1::int)', [id]);
  }

  serverId(): string | undefined {
    const pid = (this.#client as { processID?: number | null }).processID;
    return pid ? String(pid) : undefined;
  }

  async close(): Promise<void> {
    this.#wake?.();
    // Release explicitly: the server frees it only once it has processed our disconnect.
    if (this.#held) await this.unlock().catch(() => {});
    await this.#lease.release(this.#lost !== undefined);
  }
}

/** The server's last transaction status: I idle, T in a transaction, E in a failed one (pg ≥ 8.12). */
function transactionStatus(client: pg.Client): string | null {
  return (client as unknown as { getTransactionStatus?(): string | null }).getTransactionStatus?.() ?? null;
}

/** psql's `\restrict <key>` / `\unrestrict <key>` at the start of a statement (after comments). */
const PSQL_RESTRICT =
  /^((?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*)(\\(?:un)?restrict[ \t]+[A-Za-z0-9]+[ \t]*)(?=\n|$)/;

/**
 * pg_dump (15.14, 16.10, 17.6 and later) wraps a plain dump in `\restrict` … `\unrestrict`: psql
 * commands that only stop psql from running other backslash commands, which lockstep never runs.
 * They are blanked (same length, so error positions still map to the file); any other backslash
 * command still reaches the server and fails there.
 */
function withoutPsqlRestrict(sql: string): string {
  return sql.replace(
    PSQL_RESTRICT,
    (_, before: string, command: string) => before + ' '.repeat(command.length),
  );
}

/** started_at as a JS Date reads it back: a row written with microseconds still matches. */
const STARTED_AT = "date_trunc('milliseconds', started_at)";

function pgParam(index: number): string {
  return `$${index}`;
}

/** A setting's name from pg_settings, quoted part by part (`a.b` custom settings). */
function quoteName(name: string): string {
  return name.split('.').map(quoteIdentifier).join('.');
}

/** What pg_stat_activity shows for a lockstep session; Postgres keeps 63 bytes of it. */
function applicationName(runnerId: string, since?: string): string {
  const suffix = since ? `@${since}` : '';
  const room = 63 - 'lockstep '.length - suffix.length;
  const id = runnerId.length > room ? `~${runnerId.slice(-(room - 1))}` : runnerId;
  return `lockstep ${id}${suffix}`;
}
