import type { ClickHouseClient } from '@clickhouse/client';
import type { DbmateMirror, Ledger, LedgerRow, QueryResult } from '../driver.js';
import { CODES, literal, quote } from './dialect.js';
import { codeOf, serverMessage } from './errors.js';
import type { ClusterOptions } from './url.js';

/** dbmate's ClickHouse ledger: the table a `SELECT` in ClickHouse shows, and dbmate reads. */
export const MIRROR_TABLE = 'schema_migrations';

/**
 * The ledger of record is the coordinator's; after every change to it, ClickHouse's
 * `schema_migrations` (dbmate's shape: version, ts, applied) is brought in line with it: the
 * applied versions, nothing else. A mirror that cannot be written does not undo what was
 * recorded: it is said (`notice`) and set right by the next run that changes the ledger.
 */
export class MirroredLedger implements Ledger, DbmateMirror {
  readonly name = MIRROR_TABLE;
  readonly #ledger: Ledger;
  readonly #client: ClickHouseClient;
  readonly #table: string;
  readonly #cluster: ClusterOptions;
  readonly #notice: (message: string) => void;
  /** lockstep's own reads: through the connection (sent again when the server could not start them), else the client. */
  readonly #read: (sql: string) => Promise<QueryResult>;
  #created = false;

  constructor(
    ledger: Ledger,
    client: ClickHouseClient,
    database: string,
    cluster: ClusterOptions,
    notice: (message: string) => void,
    read?: (sql: string) => Promise<QueryResult>,
  ) {
    this.#ledger = ledger;
    this.#read =
      read ??
      (async (sql) => {
        const rows = (await (await client.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<
          string,
          unknown
        >[];
        return { rows, rowCount: rows.length };
      });
    this.#client = client;
    this.#table = `${quote(database)}.${quote(MIRROR_TABLE)}`;
    this.#cluster = cluster;
    this.#notice = notice;
  }

  read(): Promise<LedgerRow[] | null> {
    return this.#ledger.read();
  }

  create(): Promise<void> {
    return this.#ledger.create();
  }

  async write(row: LedgerRow, expected: LedgerRow | null): Promise<void> {
    await this.#ledger.write(row, expected);
    if (row.state !== 'running') await this.#sync();
  }

  async delete(expected: LedgerRow): Promise<void> {
    await this.#ledger.delete(expected);
    await this.#sync();
  }

  /** What the table says is applied (by dbmate, or mirrored from the ledger); null when it is not there. */
  async versions(): Promise<string[] | null> {
    try {
      return await this.#applied();
    } catch (error) {
      if (isUnknownTable(error)) return null;
      throw error;
    }
  }

  async #applied(): Promise<string[]> {
    const { rows } = await this.#read(`SELECT version FROM ${this.#table} FINAL WHERE applied`);
    return rows.map((r) => String(r.version));
  }

  async #sync(): Promise<void> {
    try {
      const rows = (await this.#ledger.read()) ?? [];
      const applied = new Set(rows.filter((r) => r.state === 'applied').map((r) => r.version));
      await this.#ensureTable();
      const mirrored = new Set(await this.#applied());
      const changes = [
        ...[...applied].filter((v) => !mirrored.has(v)).map((v) => `(${literal(v)}, 1)`),
        ...[...mirrored].filter((v) => !applied.has(v)).map((v) => `(${literal(v)}, 0)`),
      ];
      if (changes.length === 0) return;
      await this.#client.command({
        query: `INSERT INTO ${this.#table} (version, applied) VALUES ${changes.join(', ')}`,
      });
    } catch (error) {
      this.#notice(
        `the ledger is recorded in the coordinator, but ClickHouse's ${MIRROR_TABLE} could not be brought in ` +
          `line with it (${serverMessage(error)}); the next run that changes the ledger tries again`,
      );
    }
  }

  async #ensureTable(): Promise<void> {
    if (this.#created) return;
    const { onCluster, clusterMacro, replicaMacro, zooPath } = this.#cluster;
    const engine = onCluster
      ? `ReplicatedReplacingMergeTree(${literal(zooPath)}, ${literal(replicaMacro)}, ts)`
      : 'ReplacingMergeTree(ts)';
    await this.#client.command({
      query:
        `CREATE TABLE IF NOT EXISTS ${this.#table}${onCluster ? ` ON CLUSTER ${literal(clusterMacro)}` : ''} ` +
        `(version String, ts DateTime DEFAULT now(), applied UInt8 DEFAULT 1) ENGINE = ${engine} ` +
        'PRIMARY KEY version ORDER BY version',
    });
    this.#created = true;
  }
}

const isUnknownTable = (error: unknown) => codeOf(error) === CODES.UNKNOWN_TABLE;
