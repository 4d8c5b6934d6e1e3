import type BetterSqlite3 from 'better-sqlite3';
import { ConfigError } from '../../errors.js';
import type { DriverOptions, LongRunning, RunningQuery, SessionLimits } from '../driver.js';
import { settingName } from '../sql-helpers.js';

export class SqliteLongRunning implements LongRunning {
  readonly #db: BetterSqlite3.Database;
  readonly #options: DriverOptions;

  constructor(db: BetterSqlite3.Database, options: DriverOptions) {
    this.#db = db;
    this.#options = options;
  }

  async watchForDisconnect(): Promise<void> {
    // In-process: a statement dies with the process that runs it.
  }

  async applyLimits(limits: SessionLimits): Promise<() => Promise<void>> {
    // No statement timeout: see `cancellable`. Settings are pragmas, restored to what they were.
    const previous: [string, unknown][] = [];
    for (const [name, value] of Object.entries(limits.settings ?? {})) {
      const pragma = settingName(name);
      if (!/^[A-Za-z0-9_.+-]+$/.test(String(value))) {
        throw new ConfigError(`invalid value "${value}" for PRAGMA ${pragma}: use a number or a word`);
      }
      previous.push([pragma, this.#db.pragma(pragma, { simple: true })]);
      this.#options.onQuery?.(`PRAGMA ${pragma} = ${value}`);
      this.#db.pragma(`${pragma} = ${value}`);
    }
    return async () => {
      for (const [pragma, value] of previous.reverse()) this.#db.pragma(`${pragma} = ${value}`);
    };
  }

  async findRunning(): Promise<RunningQuery[]> {
    // No server: a statement never outlives the process that ran it.
    return [];
  }

  async cancelRunning(): Promise<void> {}
}
