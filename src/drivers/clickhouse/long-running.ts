import { randomUUID } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { ConfigError } from '../../errors.js';
import type { LongRunning, RunningQuery } from '../driver.js';
import { literal } from './dialect.js';

const NOT_YET =
  'long-running migrations on ClickHouse are not supported yet: their state store would live in the ' +
  'coordinator, which this version does not do';

/** What cancelling a statement that ran out of time needs; long-running runs are refused for now. */
export class ClickHouseLongRunning implements LongRunning {
  readonly #client: ClickHouseClient;

  constructor(client: ClickHouseClient) {
    this.#client = client;
  }

  async watchForDisconnect(): Promise<void> {
    throw new ConfigError(NOT_YET);
  }

  async applyLimits(): Promise<() => Promise<void>> {
    throw new ConfigError(NOT_YET);
  }

  async findRunning(marker: string): Promise<RunningQuery[]> {
    // This query's own text holds the marker too.
    const own = `lockstep-find-${randomUUID()}`;
    const result = await this.#client.query({
      query:
        'SELECT query_id, query, elapsed FROM system.processes ' +
        `WHERE position(query, ${literal(`/* ${marker}`)}) = 1 AND query_id != ${literal(own)}`,
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
