import type { LongRunning, RunningQuery, SessionLimits } from '../driver.js';
import { likePrefix, settingName } from '../sql-helpers.js';
import { CONNECTION_CHECK_INTERVAL, type PostgresLink } from './link.js';

export class PostgresLongRunning implements LongRunning {
  readonly #link: PostgresLink;

  constructor(link: PostgresLink) {
    this.#link = link;
  }

  async watchForDisconnect(): Promise<void> {
    await this.#link.query(
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
    await this.#link.query(
      `SELECT ${entries.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
      entries.flat(),
    );
    // RESET returns each to the session's default; names are checked identifiers.
    return async () => {
      await this.#link.query(entries.map(([name]) => `RESET ${name}`).join('; '));
    };
  }

  async findRunning(marker: string): Promise<RunningQuery[]> {
    const result = await this.#link.query(
      `SELECT pid::text AS id, query,
              (EXTRACT(EPOCH FROM clock_timestamp() - query_start) * 1000)::bigint AS ms
         FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND datname = current_database() AND state <> 'idle' AND query LIKE $1`,
      [likePrefix(`/* ${marker}`)],
    );
    return result.rows.map((r) => ({ id: String(r.id), query: String(r.query), runningMs: Number(r.ms) }));
  }

  async cancelRunning(id: string): Promise<void> {
    await this.#link.query('SELECT pg_cancel_backend($1::int)', [id]);
  }
}
