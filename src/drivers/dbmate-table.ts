import type { Connection, Dialect } from './driver.js';

/**
 * dbmate's ledger, `schema_migrations (version)`, over any SQL database: one row per applied
 * version, nothing else. lockstep reads it to adopt what dbmate applied and keeps it up to date so
 * that dbmate reads what lockstep applied.
 */
export class DbmateTable {
  readonly #connection: Connection;
  readonly #dialect: Dialect;
  /** As the user named it (`--migrations-table`), for messages. */
  readonly name: string;
  readonly #table: string;

  constructor(connection: Connection, dialect: Dialect, name: string) {
    this.#connection = connection;
    this.#dialect = dialect;
    this.name = name;
    this.#table = dialect.table(name);
  }

  /**
   * The versions dbmate recorded, or null when it has no table here. One round trip. A
   * `schema_migrations` with a `dirty` column is golang-migrate's (`lockstep adopt --from
   * golang-migrate`), not dbmate's: null too, neither adopted from nor written to.
   */
  async versions(): Promise<string[] | null> {
    try {
      const { rows } = await this.#connection.query(`SELECT * FROM ${this.#table}`);
      if (rows.some((r) => 'dirty' in r)) return null;
      return rows.map((r) => String(r.version));
    } catch (error) {
      if (this.#dialect.isUndefinedTable(error)) return null;
      throw error;
    }
  }

  /** The table as dbmate creates it (the same column on PostgreSQL, MySQL and SQLite). */
  async create(): Promise<void> {
    await this.#connection.query(
      `CREATE TABLE IF NOT EXISTS ${this.#table} (version varchar(128) NOT NULL PRIMARY KEY)`,
    );
  }

  /** Records `version`, with the ledger's final write: on a session fit for it, as that write is. */
  async add(version: string): Promise<void> {
    const sql = `INSERT INTO ${this.#table} (version) VALUES (${this.#dialect.param(1)})`;
    await this.#connection.onCleanSession('applied', () => this.#connection.query(sql, [version]));
  }

  async remove(version: string): Promise<void> {
    const sql = `DELETE FROM ${this.#table} WHERE version = ${this.#dialect.param(1)}`;
    await this.#connection.onCleanSession('deleted', () => this.#connection.query(sql, [version]));
  }
}
