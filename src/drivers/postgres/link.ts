import type pg from 'pg';
import type { DriverOptions, QueryResult } from '../driver.js';

/**
 * The one pg client a session's connection and lock share: what it sends (counted by `onQuery`),
 * and whether the server dropped it.
 */
export class PostgresLink {
  readonly client: pg.Client;
  readonly options: DriverOptions;
  /**
   * The URL's search_path where no startup parameter carries it (through a pooler): the lock sets
   * it with lockstep's own holder settings, after each reset of the session too.
   */
  readonly searchPath: string | undefined;
  /** The error the client reported when the server dropped it. */
  lost: Error | undefined;

  constructor(client: pg.Client, options: DriverOptions, searchPath?: string) {
    this.client = client;
    this.options = options;
    this.searchPath = searchPath;
    // Without a listener, a terminated backend would crash the process with an unhandled 'error'.
    client.on('error', (error) => {
      this.lost = error;
    });
  }

  async query(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    this.options.onQuery?.(sql);
    const result = await this.client.query(sql, params as unknown[] | undefined);
    return { rows: result.rows ?? [], rowCount: result.rowCount ?? 0 };
  }

  /**
   * The backend pid the server announced when the connection opened (BackendKeyData): the real one
   * on PostgreSQL itself, a pooler's own through a pooler.
   */
  get announcedPid(): number | undefined {
    return (this.client as { processID?: number | null }).processID ?? undefined;
  }

  /** Sends several statements in one round trip (the simple protocol: no parameters); one result each. */
  async script(sql: string): Promise<QueryResult[]> {
    this.options.onQuery?.(sql);
    const results = (await this.client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(results) ? results : [results]).map((r) => ({
      rows: r.rows ?? [],
      rowCount: r.rowCount ?? 0,
    }));
  }

  /** The server's last transaction status: I idle, T in a transaction, E in a failed one (pg ≥ 8.12). */
  transactionStatus(): string | null {
    return transactionStatus(this.client);
  }
}

/** A pg client's last transaction status from the server: I idle, T in a transaction, E in a failed one. */
export function transactionStatus(client: pg.Client): string | null {
  return (client as unknown as { getTransactionStatus?(): string | null }).getTransactionStatus?.() ?? null;
}

/** What pg_stat_activity shows for a lockstep session; Postgres keeps 63 bytes of it. */
export function applicationName(runnerId: string, since?: string): string {
  const suffix = since ? `@${since}` : '';
  const room = 63 - 'lockstep '.length - suffix.length;
  const id = runnerId.length > room ? `~${runnerId.slice(-(room - 1))}` : runnerId;
  return `lockstep ${id}${suffix}`;
}

/**
 * How often a backend busy with a statement checks that its client is still there (Postgres ≥ 14).
 * A killed holder's lock must be free within a second (SPEC guarantee 9), whatever the statement.
 */
export const CONNECTION_CHECK_INTERVAL = '250ms';
