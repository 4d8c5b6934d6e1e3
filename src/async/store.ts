/**
 * The state of long-running migrations, in two tables of the target database: one row per
 * migration that ever ran (the frozen plan, state, progress) and one row per error. Generic SQL
 * over the driver's dialect; every transition happens in an exclusive transaction.
 */
import type { Connection, Dialect, SessionParts, TransactionOptions } from '../drivers/driver.js';
import type { RunPlan } from './definition.js';
import { ACTIVE_STATES, ASYNC_STATES, type AsyncState, isActive } from './states.js';

/** One row of the state table. Timestamps are ISO 8601. */
export interface AsyncRun {
  readonly name: string;
  readonly state: AsyncState;
  readonly direction: 'forward' | 'rollback';
  /** Frozen when the run was triggered; a resumed run executes exactly this. */
  readonly plan: RunPlan | null;
  readonly checksum: string | null;
  /**
   * Forward: operations [0, opIndex) are done, opIndex is next (or in flight). Rollback: opIndex
   * is being undone, those below it are still in effect.
   */
  readonly opIndex: number;
  readonly opCount: number;
  /** The batched operation in flight: next key to process, and the key range it walks. */
  readonly cursor: bigint | null;
  readonly rangeMin: bigint | null;
  readonly rangeMax: bigint | null;
  readonly progress: number;
  /**
   * Raised by every claim, resume, rollback and reap: a worker's writes name the attempt they
   * belong to and change nothing once another took the run over (a fencing token).
   */
  readonly attempt: number;
  /** `host:pid` of the worker executing (or that last executed) the run; null: waiting for one. */
  readonly worker: string | null;
  /** The tag of the statement in flight, as the server shows it. */
  readonly queryTag: string | null;
  readonly requestedBy: string | null;
  readonly note: string | null;
  readonly error: string | null;
  readonly queuedAt: string | null;
  readonly startedAt: string | null;
  readonly updatedAt: string | null;
  readonly finishedAt: string | null;
}

/** One row of the error table: every failure, never overwritten. */
export interface AsyncErrorRecord {
  readonly id?: number;
  readonly name: string;
  readonly attempt: number;
  readonly direction: 'forward' | 'rollback';
  /** 1-based operation, when the failure belongs to one. */
  readonly operation: number | null;
  readonly statement: string | null;
  readonly message: string;
  readonly at: string;
}

type Kind = 'text' | 'long' | 'int' | 'bigint' | 'real' | 'time' | 'json';

/** Field ↔ column, in table order. */
const COLUMNS: readonly (readonly [keyof AsyncRun, string, Kind])[] = [
  ['name', 'name', 'text'],
  ['state', 'state', 'text'],
  ['direction', 'direction', 'text'],
  ['plan', 'plan', 'json'],
  ['checksum', 'checksum', 'text'],
  ['opIndex', 'op_index', 'int'],
  ['opCount', 'op_count', 'int'],
  ['cursor', 'batch_cursor', 'bigint'],
  ['rangeMin', 'range_min', 'bigint'],
  ['rangeMax', 'range_max', 'bigint'],
  ['progress', 'progress', 'real'],
  ['attempt', 'attempt', 'int'],
  ['worker', 'worker', 'text'],
  ['queryTag', 'query_tag', 'text'],
  ['requestedBy', 'requested_by', 'text'],
  ['note', 'note', 'long'],
  ['error', 'error', 'long'],
  ['queuedAt', 'queued_at', 'time'],
  ['startedAt', 'started_at', 'time'],
  ['updatedAt', 'updated_at', 'time'],
  ['finishedAt', 'finished_at', 'time'],
];
const byField = new Map(COLUMNS.map((c) => [c[0], c]));

const ERROR_COLUMNS = 'id, name, attempt, direction, operation, statement, message, at';

export const NEW_RUN: Omit<AsyncRun, 'name'> = {
  state: 'not_started',
  direction: 'forward',
  plan: null,
  checksum: null,
  opIndex: 0,
  opCount: 0,
  cursor: null,
  rangeMin: null,
  rangeMax: null,
  progress: 0,
  attempt: 0,
  worker: null,
  queryTag: null,
  requestedBy: null,
  note: null,
  error: null,
  queuedAt: null,
  startedAt: null,
  updatedAt: null,
  finishedAt: null,
};

/**
 * The store as a session reaches it: beside the work, or where the database keeps lockstep's
 * tables (`ownTables`: ClickHouse's coordinator).
 */
export function storeOf(session: SessionParts, dialect: Dialect, table: string): AsyncStore {
  const own = session.ownTables;
  return own
    ? new AsyncStore(own.connection, own.dialect, own.name(table))
    : new AsyncStore(session.connection, dialect, table);
}

export class AsyncStore {
  readonly #session: Connection;
  readonly #sql: Dialect;
  readonly #table: string;
  readonly #errors: string;
  /** The select list; 64-bit cursors read as text, so they arrive whole. */
  readonly #columns: string;

  constructor(session: Connection, sql: Dialect, table: string) {
    this.#session = session;
    this.#sql = sql;
    this.#table = sql.table(table);
    this.#errors = sql.table(`${table}_errors`);
    this.#columns = COLUMNS.map(([, column, kind]) =>
      kind === 'bigint' ? `${sql.asText(column)} AS ${column}` : column,
    ).join(', ');
  }

  /** Every run, or null when the store does not exist yet. One round trip. */
  async readAll(): Promise<AsyncRun[] | null> {
    try {
      const { rows } = await this.#session.execute(
        `SELECT ${COLUMNS.map((c) => c[1]).join(', ')} FROM ${this.#table}`,
      );
      return rows.map((r) => fromRecord(r, this.#sql));
    } catch (error) {
      if (this.#session.describeError(error).undefinedTable) return null;
      throw error;
    }
  }

  async read(name: string): Promise<AsyncRun | undefined> {
    const { rows } = await this.#session.execute(
      `SELECT ${this.#columns} FROM ${this.#table} WHERE name = ${this.#sql.param(1)}`,
      [name],
    );
    return rows[0] ? fromRecord(rows[0], this.#sql) : undefined;
  }

  /** Creates both tables. The caller holds the migration lock. */
  async create(): Promise<void> {
    const t = this.#sql.types;
    const states = (list: readonly AsyncState[]) => list.map((s) => `'${s}'`).join(', ');
    const type: Record<Kind, string> = {
      text: t.text,
      int: t.integer,
      bigint: t.bigint,
      real: t.real,
      time: t.timestamp,
      long: t.longText,
      json: t.longText,
    };
    const columns = COLUMNS.map(([field, column, kind]) => {
      if (field === 'name') return `name ${t.key} NOT NULL PRIMARY KEY`;
      const notNull = ['state', 'direction', 'opIndex', 'opCount', 'progress', 'attempt'].includes(field);
      return `${column} ${type[kind]}${notNull ? ' NOT NULL' : ' NULL'}`;
    });
    // At most one active run, whoever writes the rows: a unique column that a CHECK makes
    // non-null exactly for the active states (NULLs never collide in a unique index).
    await this.#session.execute(`CREATE TABLE IF NOT EXISTS ${this.#table} (
  ${columns.join(',\n  ')},
  active_slot ${t.integer} NULL UNIQUE CHECK (active_slot = 1),
  CHECK (state IN (${states(ASYNC_STATES)})),
  CHECK (direction IN ('forward', 'rollback')),
  CHECK ((state IN (${states(ACTIVE_STATES)})) = (active_slot IS NOT NULL))
)${t.tableOptions ?? ''}`);
    await this.#session.execute(`CREATE TABLE IF NOT EXISTS ${this.#errors} (
  id ${t.autoId},
  name ${t.text} NOT NULL,
  attempt ${t.integer} NOT NULL,
  direction ${t.text} NOT NULL,
  operation ${t.integer} NULL,
  statement ${t.longText} NULL,
  message ${t.longText} NOT NULL,
  at ${t.timestamp} NOT NULL
)${t.tableOptions ?? ''}`);
  }

  /** Runs `work` in an exclusive transaction: no other transition interleaves with it. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    return this.transaction(work, { exclusive: true, lockTimeoutMs: 30_000 });
  }

  /** Runs `work` in a transaction of the store's connection: its writes commit together. */
  async transaction<T>(work: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    await this.#session.begin(options);
    try {
      const result = await work();
      await this.#session.commit();
      return result;
    } catch (error) {
      await this.#session.rollback().catch(() => {});
      throw error;
    }
  }

  async insert(run: AsyncRun): Promise<void> {
    const fields = COLUMNS.map((c) => c[0]);
    const values = [...fields.map((f) => this.#value(f, run[f])), isActive(run.state) ? 1 : null];
    await this.#session.execute(
      `INSERT INTO ${this.#table} (${COLUMNS.map((c) => c[1]).join(', ')}, active_slot) VALUES (${values
        .map((_, i) => this.#sql.param(i + 1))
        .join(', ')})`,
      values,
    );
  }

  /**
   * Changes a run if it still belongs to `attempt` (and is in one of `states`, when given).
   * Returns false when it does not: another process took the run over, or its state moved on.
   */
  async update(
    name: string,
    attempt: number,
    changes: Partial<AsyncRun>,
    states?: readonly AsyncState[],
  ): Promise<boolean> {
    const set = Object.entries({ ...changes, updatedAt: new Date().toISOString() }).filter(([f]) =>
      byField.has(f as keyof AsyncRun),
    );
    const values = set.map(([f, v]) => this.#value(f as keyof AsyncRun, v));
    const assignments = set.map(
      ([f], i) => `${byField.get(f as keyof AsyncRun)?.[1]} = ${this.#sql.param(i + 1)}`,
    );
    if (changes.state !== undefined) {
      values.push(isActive(changes.state) ? 1 : null);
      assignments.push(`active_slot = ${this.#sql.param(values.length)}`);
    }
    values.push(name, attempt);
    let where = `name = ${this.#sql.param(values.length - 1)} AND attempt = ${this.#sql.param(values.length)}`;
    if (states) {
      where += ` AND state IN (${states.map((s) => `'${s}'`).join(', ')})`;
    }
    const result = await this.#session.execute(
      `UPDATE ${this.#table} SET ${assignments.join(', ')} WHERE ${where}`,
      values,
    );
    return result.rowCount === 1;
  }

  async addError(record: AsyncErrorRecord): Promise<void> {
    const values = [
      record.name,
      record.attempt,
      record.direction,
      record.operation,
      record.statement,
      record.message,
      this.#sql.timestamp(record.at),
    ];
    await this.#session.execute(
      `INSERT INTO ${this.#errors} (${ERROR_COLUMNS.slice('id, '.length)}) VALUES (${values.map((_, i) => this.#sql.param(i + 1)).join(', ')})`,
      values,
    );
  }

  /** The errors of one run (or of all), oldest first. */
  async errors(name?: string): Promise<AsyncErrorRecord[]> {
    try {
      const { rows } = await this.#session.execute(
        `SELECT ${ERROR_COLUMNS} FROM ${this.#errors}${name === undefined ? '' : ` WHERE name = ${this.#sql.param(1)}`} ORDER BY id`,
        name === undefined ? [] : [name],
      );
      return rows.map((r) => ({
        id: Number(r.id),
        name: String(r.name),
        attempt: Number(r.attempt),
        direction: r.direction === 'rollback' ? 'rollback' : 'forward',
        operation: r.operation === null ? null : Number(r.operation),
        statement: r.statement === null ? null : String(r.statement),
        message: String(r.message),
        at: this.#sql.readTimestamp(r.at) as string,
      }));
    } catch (error) {
      if (this.#session.describeError(error).undefinedTable) return [];
      throw error;
    }
  }

  #value(field: keyof AsyncRun, value: unknown): unknown {
    if (value === null || value === undefined) return null;
    switch (byField.get(field)?.[2]) {
      case 'bigint':
        return String(value);
      case 'time':
        return this.#sql.timestamp(String(value));
      case 'json':
        return JSON.stringify(value);
      default:
        return value;
    }
  }
}

function fromRecord(r: Record<string, unknown>, sql: Dialect): AsyncRun {
  const run: Record<string, unknown> = {};
  for (const [field, column, kind] of COLUMNS) {
    const value = r[column];
    if (value === null || value === undefined) {
      run[field] = null;
      continue;
    }
    switch (kind) {
      case 'int':
      case 'real':
        run[field] = Number(value);
        break;
      case 'bigint':
        run[field] = BigInt(String(value));
        break;
      case 'time':
        run[field] = sql.readTimestamp(value);
        break;
      case 'json':
        run[field] = JSON.parse(String(value)) as RunPlan;
        break;
      default:
        run[field] = String(value);
    }
  }
  return run as unknown as AsyncRun;
}

/** Name → state and progress of every long-running migration that ever ran (none: no store yet). */
export async function readAsyncStates(
  session: SessionParts,
  sql: Dialect,
  table: string,
): Promise<Map<string, { state: AsyncState; progress: number }>> {
  const runs = await storeOf(session, sql, table).readAll();
  return new Map((runs ?? []).map((r) => [r.name, { state: r.state, progress: r.progress }]));
}
