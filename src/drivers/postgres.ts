import { createHash } from 'node:crypto';
import type pg from 'pg';
import { ConfigError, ConnectionError, type LockHolder, LockNotHeldError } from '../core/errors.js';
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
  quoteIdentifier,
  settingName,
} from './ledger-sql.js';
import { redactUrl } from './registry.js';

const syntax: SplitDialect = {
  dollarQuotes: true,
  backslashEscapes: 'e-prefix',
  hashComments: false,
  nestedBlockComments: true,
  backticks: false,
  brackets: false,
  bodies: 'begin-atomic',
};

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
const CONNECTION_CHECK_INTERVAL = '5s';

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

export function createPostgresDriver(url: string, options: DriverOptions): Driver {
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
      const client = new pgModule.Client({
        connectionString: url,
        application_name: applicationName(options.runnerId),
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        connectionTimeoutMillis: 10_000,
        options: KEEPALIVE_OPTIONS,
      });
      const session = new PostgresSession(client, options, qualified, schema, lockKey);
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => {});
        throw new ConnectionError(`cannot connect to ${redactUrl(url)}: ${(error as Error).message}`);
      }
      return session;
    },
  };
}

class PostgresSession implements Session {
  readonly #client: pg.Client;
  readonly #options: DriverOptions;
  readonly #table: string;
  readonly #schema: string;
  readonly #lockKey: number;
  readonly #channel: string;
  #listening = false;
  #held = false;
  #wake: (() => void) | undefined;
  #lost: Error | undefined;

  constructor(client: pg.Client, options: DriverOptions, table: string, schema: string, lockKey: number) {
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

  async writeLedger(row: LedgerRow): Promise<void> {
    const values = ledgerValues(row);
    const columns = LEDGER_COLUMNS.split(', ');
    await this.#query(
      `INSERT INTO ${this.#table} (${LEDGER_COLUMNS}) VALUES (${values.map((_, i) => `$${i + 1}`).join(', ')})
       ON CONFLICT (version) DO UPDATE SET ${columns
         .slice(1)
         .map((c) => `${c} = EXCLUDED.${c}`)
         .join(', ')}`,
      values,
    );
  }

  async deleteLedger(version: string): Promise<void> {
    await this.#query(`DELETE FROM ${this.#table} WHERE version = $1`, [version]);
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
    const since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const result = await this.#query(
      `SELECT EXISTS (
         SELECT 1 FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()
            AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2
       ) AS held,
       set_config('application_name', $3, false) AS name,
       (SELECT set_config(name, $4, false) FROM pg_settings WHERE name = 'client_connection_check_interval') AS checks`,
      [
        LOCK_NAMESPACE,
        this.#lockKey,
        applicationName(this.#options.runnerId, since),
        CONNECTION_CHECK_INTERVAL,
      ],
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
  }

  async commit(): Promise<void> {
    await this.#query('COMMIT');
  }

  async rollback(): Promise<void> {
    await this.#query('ROLLBACK');
  }

  async execute(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    const result = await this.#query(sql, params);
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
    // Not awaited: the server has nothing more to tell us, and boot should not wait for the FIN.
    this.#client.end().catch(() => {});
  }
}

/** What pg_stat_activity shows for a lockstep session; Postgres keeps 63 bytes of it. */
function applicationName(runnerId: string, since?: string): string {
  const suffix = since ? `@${since}` : '';
  const room = 63 - 'lockstep '.length - suffix.length;
  const id = runnerId.length > room ? `~${runnerId.slice(-(room - 1))}` : runnerId;
  return `lockstep ${id}${suffix}`;
}
