import path from 'node:path';
import { ConfigError } from '../errors.js';
import { LEDGER_COLUMNS } from './ledger-store.js';

/**
 * The application's own database handle, given to `migrate()` instead of a URL: a `pg.Pool` or
 * `pg.Client`, a mysql2 pool or connection (callback or promise API), a better-sqlite3
 * `Database`. Recognised by its shape, so that no driver module loads before one is needed.
 */
export type CallerClient = object;

export type CallerKind = 'postgres' | 'mysql' | 'sqlite';

/** What lockstep knows of a caller's handle before touching it. */
export interface CallerInfo {
  readonly kind: CallerKind;
  /** A pool hands out a connection per run; a single connection is used itself. */
  readonly pool: boolean;
  /**
   * The handle's settings as a URL, password included: the scrubber hides the password from every
   * message, and the target (the URL redacted) names the database in messages and status.
   */
  readonly url: string;
}

/** The caller's handle with what was recognised of it. */
export interface CallerHandle extends CallerInfo {
  readonly client: CallerClient;
}

type Fields = Record<string, unknown>;

export function describeCaller(client: unknown): CallerHandle {
  const handle = (client ?? {}) as Fields;
  const found = postgresCaller(handle) ?? mysqlCaller(handle) ?? sqliteCaller(handle);
  if (!found) {
    throw new ConfigError(
      'the client option takes a pg.Pool or pg.Client, a mysql2 pool or connection, or a better-sqlite3 Database; ' +
        `got ${client === null ? 'null' : typeof client === 'object' ? `an object (${client.constructor?.name ?? 'no class'})` : typeof client}`,
    );
  }
  return { ...found, client: client as CallerClient };
}

function postgresCaller(handle: Fields): CallerInfo | undefined {
  if (typeof handle.connect !== 'function' || typeof handle.query !== 'function') return undefined;
  if (isFields(handle.connectionParameters)) {
    return { kind: 'postgres', pool: false, url: postgresUrl(handle.connectionParameters) };
  }
  if ('totalCount' in handle && isFields(handle.options)) {
    return { kind: 'postgres', pool: true, url: postgresUrl(handle.options) };
  }
  return undefined;
}

function postgresUrl(config: Fields): string {
  if (typeof config.connectionString === 'string') return config.connectionString;
  return serverUrl('postgres', config, 5432);
}

/** mysql2: a pool (`getConnection`) or a connection (`threadId`), the promise API wrapping either. */
function mysqlCaller(handle: Fields): CallerInfo | undefined {
  const core = (
    isFields(handle.pool) ? handle.pool : isFields(handle.connection) ? handle.connection : handle
  ) as Fields;
  if (typeof core.query !== 'function' || !isFields(core.config)) return undefined;
  const pool = typeof core.getConnection === 'function' && isFields(core.config.connectionConfig);
  if (!pool && !('threadId' in core)) return undefined;
  const config = (pool ? core.config.connectionConfig : core.config) as Fields;
  if (typeof config.database !== 'string' || config.database === '') {
    throw new ConfigError(
      'the mysql2 client names no database: give it a `database` (the ledger lives there)',
    );
  }
  return { kind: 'mysql', pool, url: serverUrl('mysql', config, 3306) };
}

function sqliteCaller(handle: Fields): CallerInfo | undefined {
  if (typeof handle.prepare !== 'function' || typeof handle.pragma !== 'function') return undefined;
  if (typeof handle.name !== 'string' || !('inTransaction' in handle)) return undefined;
  if (handle.memory || handle.name === '' || handle.name === ':memory:') {
    throw new ConfigError(
      'the better-sqlite3 Database is in memory: migrations need a database file other processes can open',
    );
  }
  if (handle.open === false) throw new ConfigError('the better-sqlite3 Database is closed');
  const file = path.resolve(handle.name).replaceAll('%', '%25').replaceAll('?', '%3F').replaceAll('#', '%23');
  return { kind: 'sqlite', pool: false, url: `sqlite://${file}` };
}

/** `scheme://user:password@host:port/database` from a driver's connection settings. */
function serverUrl(scheme: string, config: Fields, defaultPort: number): string {
  const text = (value: unknown) =>
    typeof value === 'string' || typeof value === 'number' ? String(value) : '';
  const user = encodeURIComponent(text(config.user));
  const password = typeof config.password === 'string' ? `:${encodeURIComponent(config.password)}` : '';
  const host = text(config.host) || 'localhost';
  const port = text(config.port) || String(defaultPort);
  const at = user || password ? `${user}${password}@` : '';
  return `${scheme}://${at}${encodeURIComponent(host)}:${port}/${encodeURIComponent(text(config.database))}`;
}

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null;
}

/**
 * A connection a run holds for its session: `release` hands it back (pool), leaves it with the
 * caller (a single connection), or closes it (lockstep's own). `broken`: the session is not fit
 * for anyone else (it was lost, or could not be put back as it was found).
 */
export interface Lease<Connection> {
  readonly connection: Connection;
  release(broken: boolean): Promise<void>;
}

/**
 * Which sessions get the caller's connection: a single connection serves one session at a time
 * (whichever run asks first), a pool one session per driver at a time, while it has a connection
 * free or room for one. Any other session (a timed-out statement's cancel, a long-running
 * migration's work, a run that finds the pool exhausted) gets a new connection made from the
 * caller's settings: waiting for the pool could wait for itself.
 */
export class CallerSlot {
  static readonly #busy = new WeakSet<object>();
  readonly #client: object;
  readonly #pool: boolean;
  readonly #room: () => boolean;
  #taken = false;

  /** `room`: whether the pool would hand out a connection now without waiting. */
  constructor(client: object, pool: boolean, room: () => boolean = () => true) {
    this.#client = client;
    this.#pool = pool;
    this.#room = room;
  }

  /** Takes the caller's connection if it is free; the result gives it back. */
  take(): (() => void) | undefined {
    if (this.#pool ? this.#taken || !this.#room() : CallerSlot.#busy.has(this.#client)) return undefined;
    if (this.#pool) this.#taken = true;
    else CallerSlot.#busy.add(this.#client);
    return () => {
      if (this.#pool) this.#taken = false;
      else CallerSlot.#busy.delete(this.#client);
    };
  }
}

/** The ledger read, which changes nothing on a session: all that a boot with nothing pending sends. */
export function isLedgerRead(sql: string): boolean {
  return sql.startsWith(`SELECT ${LEDGER_COLUMNS} FROM `);
}

/** The connection with its `query` replaced, every other member its own (bound to it). */
export function withQuery<Connection extends object>(connection: Connection, query: unknown): Connection {
  return new Proxy(connection, {
    get(target, key) {
      if (key === 'query') return query;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
