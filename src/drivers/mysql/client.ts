import type { Connection } from 'mysql2/promise';
import { CallerSlot, isLedgerRead, type Lease, withQuery } from '../caller.js';

/** lockstep's own connection, ended with the session; not awaited: boot should not wait for the FIN. */
export function ownConnection(connection: Connection): Lease<Connection> {
  return {
    connection,
    async release() {
      connection.end().catch(() => connection.destroy());
    },
  };
}

/**
 * How lockstep reads results, whatever the caller's connection was configured with: dates as
 * text in UTC, 64-bit integers whole. Its own connections are opened with them; on the caller's,
 * mysql2 takes them per query.
 */
export const READ_AS = {
  dateStrings: true,
  timezone: 'Z',
  supportBigNumbers: true,
  bigNumberStrings: true,
} as const;

/**
 * Session variables lockstep's own statements set, put back as the caller had them. What a
 * migration changes (sql_mode, time_zone, autocommit, the database…) the session already puts
 * back to how it found it, at its next ledger write.
 */
const CALLER_SETTINGS = ['lock_wait_timeout'] as const;

/** mysql2's callback objects, which the promise API wraps (`.pool`, `.connection`). */
interface CoreConnection {
  promise(): Connection;
  release?(): void;
  destroy(): void;
}
interface MysqlPoolState {
  readonly _freeConnections?: { readonly length: number };
  readonly _allConnections?: { readonly length: number };
  readonly config?: { readonly connectionLimit?: number };
}
interface CorePool {
  getConnection(callback: (error: Error | null, connection: CoreConnection) => void): void;
}

/**
 * The caller's mysql2 pool or connection, callback or promise API, lent to one session at a time
 * (see CallerSlot). Other sessions open their own connection (`open`) from the same settings.
 */
export function callerConnections(
  caller: object,
  pool: boolean,
): (open: () => Promise<Connection>) => Promise<Lease<Connection>> {
  const wrapped = caller as { pool?: CorePool; connection?: CoreConnection };
  const core = (wrapped.pool ?? wrapped.connection ?? caller) as CorePool & CoreConnection;
  const slot = new CallerSlot(core, pool, () => {
    // mysql2 keeps no public count: its queues, where they are (else assume room).
    const { _freeConnections: free, _allConnections: all, config } = core as unknown as MysqlPoolState;
    if (!free || !all) return true;
    return free.length > 0 || all.length < (config?.connectionLimit ?? 10);
  });
  return async (open) => {
    const giveBack = slot.take();
    if (!giveBack) return ownConnection(await open());
    try {
      const connection = pool
        ? await new Promise<CoreConnection>((resolve, reject) =>
            core.getConnection((error, c) => (error ? reject(error) : resolve(c))),
          )
        : core;
      return lend(connection, pool, giveBack);
    } catch (error) {
      giveBack();
      throw error;
    }
  };
}

function lend(core: CoreConnection, pool: boolean, giveBack: () => void): Lease<Connection> {
  // A wrapper of our own: the session's listeners go on it, and leave with it.
  const promised = core.promise();
  const send = (sql: string, values?: unknown[]) =>
    promised.query({ sql, ...(values ? { values } : {}), ...READ_AS });
  // Taken before the first statement that may change the session (see the Postgres lease).
  let before: Promise<Record<string, unknown>> | undefined;
  const query = (sql: string, values?: unknown[]) => {
    if (!before && isLedgerRead(sql)) return send(sql, values);
    before ??= send(
      `SELECT ${CALLER_SETTINGS.map((name) => `@@SESSION.${name} AS ${name}`).join(', ')}`,
    ).then(([rows]) => (rows as Record<string, unknown>[])[0] ?? {});
    return before.then(() => send(sql, values));
  };
  const connection = withQuery(promised, query);
  return {
    connection,
    async release(broken) {
      if (!broken && before) {
        broken = !(await before
          .then((settings) =>
            send(
              `SET ${CALLER_SETTINGS.map((name) => `SESSION ${name} = ?`).join(', ')}`,
              CALLER_SETTINGS.map((name) => asSetting(settings[name])),
            ),
          )
          .then(
            () => true,
            () => false,
          ));
      }
      promised.removeAllListeners();
      giveBack();
      // A broken pool connection is destroyed, not handed to the application's next query.
      if (pool) broken ? core.destroy() : core.release?.();
    },
  };
}

/** Flags (autocommit, foreign_key_checks, ...) and limits take numbers, not '1'. */
function asSetting(value: unknown): unknown {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : (value ?? null);
}
