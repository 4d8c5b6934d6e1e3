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
   * The versions dbmate recorded, or null when it has no table here. golang-migrate's table has
   * the same name and a `dirty` column: that is not dbmate's (`lockstep adopt --from
   * golang-migrate` reads it). One round trip; two when the table is empty. `known`: this table
   * was read as dbmate's before (under the lock, in a transaction, nothing may fail).
   */
  async versions(known = false): Promise<string[] | null> {
    try {
      const { rows } = await this.#connection.query(`SELECT ${known ? 'version' : '*'} FROM ${this.#table}`);
      if (!known && (rows.some((r) => 'dirty' in r) || (rows.length === 0 && (await this.#hasDirtyColumn()))))
        return null;
      return rows.map((r) => String(r.version));
    } catch (error) {
      if (this.#dialect.isUndefinedTable(error)) return null;
      throw error;
    }
  }

  async #hasDirtyColumn(): Promise<boolean> {
    try {
      await this.#connection.query(`SELECT dirty FROM ${this.#table} WHERE 1 = 0`);
      return true;
    } catch (error) {
      if (this.#dialect.isUndefinedColumn(error)) return false;
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
