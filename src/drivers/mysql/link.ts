import type { Connection as MysqlClient, RowDataPacket } from 'mysql2/promise';
import type { DriverOptions, QueryResult } from '../driver.js';

/** Server status flags of the MySQL protocol's OK packet. */
export const SERVER_STATUS_IN_TRANS = 0x0001;
export const SERVER_STATUS_AUTOCOMMIT = 0x0002;

/**
 * The one mysql2 connection a session's connection and lock share: what it sends (counted by
 * `onQuery`), the server's last status flags, and whether the server dropped it.
 */
export class MysqlLink {
  readonly client: MysqlClient;
  readonly #options: DriverOptions;
  /** The status flags of the server's last OK packet (SERVER_STATUS_IN_TRANS, _AUTOCOMMIT, ...). */
  serverStatus = 0;
  lost: Error | undefined;

  constructor(client: MysqlClient, options: DriverOptions) {
    this.client = client;
    this.#options = options;
    client.on('error', (error: Error) => {
      this.lost = error;
    });
  }

  async query<T = RowDataPacket[]>(sql: string, params?: readonly unknown[]): Promise<T> {
    this.#options.onQuery?.(sql);
    const [result] = await this.client.query(sql, params as unknown[] | undefined);
    // An OK packet carries the server's status flags; a result set leaves the transaction as it was.
    const status = (result as { serverStatus?: unknown }).serverStatus;
    if (typeof status === 'number') this.serverStatus = status;
    return result as T;
  }

  /** A statement's result as rows (a result set) or a count of affected rows (an OK packet). */
  async result(sql: string, params?: readonly unknown[]): Promise<QueryResult> {
    const result = await this.query<unknown>(sql, params);
    if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], rowCount: result.length };
    return { rows: [], rowCount: Number((result as { affectedRows?: number }).affectedRows ?? 0) };
  }
}
