import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { ConfigError } from '../../errors.js';
import type { Connection, DbErrorInfo, LedgerState, QueryResult, Session, StatementTag } from '../driver.js';
import { ClusterDdl, ON_CLUSTER } from './cluster.js';
import { CODES } from './dialect.js';
import { codeOf, isRetryable, isTransportFailure, serverMessage } from './errors.js';
import type { StatementTracker } from './tracker.js';

/** Statements whose answer is rows (a module's `ctx.query`); anything else is sent as a command. */
const READS_ROWS = /^\s*(?:\/\*[\s\S]*?\*\/\s*|--[^\n]*\n\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS)\b/i;

/** How often a statement the server could not start yet is sent again, and the longest pause. */
const RETRIES = 8;
const MAX_PAUSE_MS = 10_000;

/**
 * ClickHouse over HTTP: no transactions, no session. Every statement is sent with a query id
 * derived from the ledger row it belongs to (`tag`), so a runner that comes after a dead one
 * finds it on the server. The lock and the ledger live on the coordinator's session, which this
 * connection closes with itself.
 */
export class ClickHouseConnection implements Connection {
  readonly #client: ClickHouseClient;
  readonly #coordinator: Session;
  readonly #tracker: StatementTracker;
  readonly #cluster: ClusterDdl;
  /** The query id of the statement running now, for cancelling it from another session. */
  #running: string | undefined;
  /** Settings sent with every migration statement (a long-running operation's limits). */
  #settings: Readonly<Record<string, string | number>> = {};
  #closed = false;

  constructor(
    client: ClickHouseClient,
    coordinator: Session,
    tracker: StatementTracker,
    notice: (message: string) => void,
  ) {
    this.#client = client;
    this.#coordinator = coordinator;
    this.#tracker = tracker;
    this.#cluster = new ClusterDdl(client, () => this.#closed, notice);
  }

  async execute(sql: string, params?: readonly unknown[], tag?: StatementTag): Promise<QueryResult> {
    if (params && params.length > 0) {
      throw new ConfigError(
        'ClickHouse statements take no parameters here: ClickHouse 18-era servers have no positional ' +
          'parameters, so write the values into the statement',
      );
    }
    const base = tag?.id ?? `lockstep-${randomUUID()}`;
    for (let attempt = 0; ; attempt++) {
      const id = attempt === 0 ? base : `${base}-r${attempt}`;
      this.#running = id;
      try {
        const result = await this.#send(sql, id);
        await this.#tracker.afterStatement(sql);
        return result;
      } catch (error) {
        if (isTransportFailure(error) && !READS_ROWS.test(sql)) {
          // The answer was lost, not necessarily the statement: find out what became of it (a
          // finished ALTER's mutations included). One that never started is sent again.
          const fate = await this.#tracker.settle(id, { cancel: false, maxMs: Number.POSITIVE_INFINITY });
          if (fate.outcome === 'finished') return { rows: [], rowCount: 0 };
          if (fate.outcome === 'failed') throw new Error(fate.error ?? 'the statement failed on the server');
          if (fate.outcome !== 'not-found' || attempt >= RETRIES) throw error;
        } else if (!(isRetryable(error) || isTransportFailure(error)) || attempt >= RETRIES) {
          // A read whose answer was lost changed nothing: it is sent again, as is a statement
          // the server could not start yet.
          throw error;
        }
        await sleep(Math.min(250 * 2 ** attempt, MAX_PAUSE_MS) * (0.5 + Math.random()));
      } finally {
        this.#running = undefined;
      }
    }
  }

  /**
   * Sends `settings` with the migration statements that follow (HTTP has no session to set them
   * on); returns those they replace.
   */
  useSettings(
    settings: Readonly<Record<string, string | number>>,
  ): Readonly<Record<string, string | number>> {
    const previous = this.#settings;
    this.#settings = settings;
    return previous;
  }

  async #send(sql: string, queryId: string, own = false): Promise<QueryResult> {
    // Logged whatever the profile says: what became of a statement is read from the query log.
    const settings: Record<string, string | number> = { ...(own ? {} : this.#settings), log_queries: 1 };
    if (ON_CLUSTER.test(sql)) return this.#cluster.run(sql, queryId, settings);
    if (READS_ROWS.test(sql)) {
      const result = await this.#client.query({
        query: sql,
        query_id: queryId,
        format: 'JSONEachRow',
        clickhouse_settings: settings,
      });
      const rows = (await result.json()) as Record<string, unknown>[];
      return { rows, rowCount: rows.length };
    }
    await this.#client.command({ query: sql, query_id: queryId, clickhouse_settings: settings });
    return { rows: [], rowCount: 0 };
  }

  /**
   * One of lockstep's own statements. A read the server could not start yet, or whose answer was
   * lost, is sent again (it changed nothing), as a migration's statement would be.
   */
  async query(sql: string): Promise<QueryResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#send(sql, `lockstep-${randomUUID()}`, true);
      } catch (error) {
        const again = READS_ROWS.test(sql) && (isRetryable(error) || isTransportFailure(error));
        if (!again || attempt >= RETRIES) throw error;
        await sleep(Math.min(250 * 2 ** attempt, MAX_PAUSE_MS) * (0.5 + Math.random()));
      }
    }
  }

  /** The ledger is written on the coordinator's own session: nothing here to settle first. */
  onCleanSession<T>(_state: LedgerState | 'deleted', write: () => Promise<T>): Promise<T> {
    return write();
  }

  describeError(error: unknown): DbErrorInfo {
    const code = codeOf(error);
    const lost = isTransportFailure(error);
    return {
      message: lost ? `ClickHouse did not answer: ${(error as Error).message}` : serverMessage(error),
      ...(code ? { code } : {}),
      lockTimeout: false,
      connectionLost: lost,
      undefinedTable: code === CODES.UNKNOWN_TABLE || code === CODES.UNKNOWN_DATABASE,
    };
  }

  async begin(): Promise<void> {
    throw new ConfigError(
      'ClickHouse has no transactions: every ClickHouse migration runs statement by statement',
    );
  }

  async commit(): Promise<void> {}

  async rollback(): Promise<void> {}

  inMigrationTransaction(): boolean {
    return false;
  }

  serverId(): string | undefined {
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#client.close().catch(() => {});
    await this.#coordinator.connection.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
