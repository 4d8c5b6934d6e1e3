import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import type { LongRunning, RunningQuery, SessionLimits } from '../driver.js';
import type { ClickHouseConnection } from './connection.js';
import { literal } from './dialect.js';

/**
 * Long-running migrations on ClickHouse. A worker's statements carry their tag as query id: the
 * server finishes them whatever became of their client, so the next worker finds them by it in
 * system.processes (and KILL QUERY cancels them) rather than issuing them a second time.
 */
export class ClickHouseLongRunning implements LongRunning {
  readonly #client: ClickHouseClient;
  readonly #connection: Pick<ClickHouseConnection, 'useSettings'>;

  constructor(client: ClickHouseClient, connection: Pick<ClickHouseConnection, 'useSettings'>) {
    this.#client = client;
    this.#connection = connection;
  }

  /** Nothing to ask: a statement whose client vanished runs to its end (findRunning finds it). */
  async watchForDisconnect(): Promise<void> {}

  /** Sent with each statement: HTTP has no session. The timeout is max_execution_time, in whole seconds. */
  async applyLimits(limits: SessionLimits): Promise<() => Promise<void>> {
    const timeout = limits.statementTimeoutMs;
    const previous = this.#connection.useSettings({
      ...limits.settings,
      ...(timeout ? { max_execution_time: Math.max(1, Math.ceil(timeout / 1000)) } : {}),
    });
    return async () => {
      this.#connection.useSettings(previous);
    };
  }

  async findRunning(marker: string): Promise<RunningQuery[]> {
    const own = `lockstep-find-${randomUUID()}`;
    const result = await this.#client.query({
      query:
        'SELECT query_id, query, elapsed FROM system.processes ' +
        `WHERE substring(query_id, 1, ${Buffer.byteLength(marker)}) = ${literal(marker)} AND query_id != ${literal(own)}`,
      query_id: own,
      format: 'JSONEachRow',
    });
    const rows = (await result.json()) as { query_id: string; query: string; elapsed: number }[];
    return rows.map((r) => ({ id: r.query_id, query: r.query, runningMs: Math.round(r.elapsed * 1000) }));
  }

  async cancelRunning(id: string): Promise<void> {
    await this.#client.command({ query: `KILL QUERY WHERE query_id = ${literal(id)} SYNC` });
  }
}
