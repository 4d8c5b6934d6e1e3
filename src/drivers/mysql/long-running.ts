import { ConfigError } from '../../errors.js';
import type { LongRunning, RunningQuery, SessionLimits } from '../driver.js';
import { likePrefix, settingName } from '../sql-helpers.js';
import type { MysqlLink } from './link.js';

export class MysqlLongRunning implements LongRunning {
  readonly #link: MysqlLink;
  #mariadb: boolean | undefined;

  constructor(link: MysqlLink) {
    this.#link = link;
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
      this.#mariadb ??= /mariadb/i.test(String((await this.#link.query('SELECT VERSION() AS v'))[0]?.v));
      entries.push(
        this.#mariadb
          ? ['max_statement_time', limits.statementTimeoutMs / 1000]
          : ['max_execution_time', Math.round(limits.statementTimeoutMs)],
      );
    }
    if (entries.length === 0) return async () => {};
    await this.#link.query(
      `SET ${entries.map(([name]) => `SESSION ${name} = ?`).join(', ')}`,
      entries.map(([, value]) => value),
    );
    return async () => {
      await this.#link.query(`SET ${entries.map(([name]) => `SESSION ${name} = DEFAULT`).join(', ')}`);
    };
  }

  async findRunning(marker: string): Promise<RunningQuery[]> {
    const rows = await this.#link.query(
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
    await this.#link.query(`KILL QUERY ${id}`);
  }
}
