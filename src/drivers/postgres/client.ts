import type pg from 'pg';
import { ConfigError } from '../../errors.js';
import { CallerSlot, isLedgerRead, type Lease, withQuery } from '../caller.js';
import { quoteIdentifier } from '../sql-helpers.js';
import { transactionStatus } from './link.js';

/** Opens a new connection with lockstep's settings (keepalives, name) over these connection settings. */
export type OpenClient = (connection: pg.ClientConfig) => Promise<pg.Client>;

/** lockstep's own connection, ended with the session; not awaited: boot should not wait for the FIN. */
export function ownConnection(client: pg.Client): Lease<pg.Client> {
  return {
    connection: client,
    async release() {
      client.end().catch(() => {});
    },
  };
}

/**
 * The session as the caller had it: settings set in the session (what `RESET ALL` and lockstep's
 * own `set_config` would lose), channels it listens on.
 */
const SNAPSHOT = `SELECT (SELECT json_object_agg(name, setting) FROM pg_settings WHERE source = 'session') AS settings,
       ARRAY(SELECT pg_listening_channels()) AS channels`;

/**
 * Puts every session setting back as the snapshot ($1) had it, the others to their default; then
 * reports what the caller's client must know: the channels and prepared statements left.
 */
const RESTORE = `SELECT (SELECT count(set_config(s.name, coalesce(k.value, s.reset_val), false))
          FROM pg_settings s LEFT JOIN json_each_text($1::json) k ON k.key = s.name
         WHERE (s.source = 'session' OR k.key IS NOT NULL) AND s.name <> 'session_authorization') AS restored,
       ARRAY(SELECT pg_listening_channels()) AS channels,
       ARRAY(SELECT name FROM pg_prepared_statements) AS prepared`;

interface Snapshot {
  readonly settings: Record<string, string> | null;
  readonly channels: readonly string[];
}

/**
 * The caller's `pg.Pool` or `pg.Client`, lent to one session at a time (see CallerSlot). Its
 * session is given back as it was; through a transaction-mode pooler (`keepsSession` false)
 * there is no session to give back, and lockstep's statements leave none behind.
 */
export function callerConnections(
  caller: object,
  pool: boolean,
  keepsSession: boolean,
): (open: OpenClient) => Promise<Lease<pg.Client>> {
  const slot = new CallerSlot(caller, pool, () => {
    const { idleCount, totalCount, options } = caller as pg.Pool;
    return idleCount > 0 || totalCount < (options.max ?? 10);
  });
  const given = (
    pool
      ? (caller as pg.Pool).options
      : (caller as pg.Client & { connectionParameters: pg.ClientConfig }).connectionParameters
  ) as pg.ClientConfig;
  // pg keeps the password out of the enumerable properties (and so out of a spread).
  const settings: pg.ClientConfig = { ...given, password: given.password };
  return async (open) => {
    const giveBack = slot.take();
    if (!giveBack) return ownConnection(await open(settings));
    try {
      const client = pool
        ? ((await (caller as pg.Pool).connect()) as unknown as pg.Client)
        : (caller as pg.Client);
      return lend(client, pool, giveBack, keepsSession);
    } catch (error) {
      giveBack();
      throw error;
    }
  };
}

function lend(
  client: pg.Client,
  pool: boolean,
  giveBack: () => void,
  keepsSession: boolean,
): Lease<pg.Client> {
  if (!pool && transactionStatus(client) !== 'I') {
    throw new ConfigError(
      'the pg.Client given as client is inside a transaction (or not connected): migrations run on an idle connection, outside any transaction of the application',
    );
  }
  const listeners = { error: client.listeners('error'), notification: client.listeners('notification') };
  // Taken before the first statement that may change the session, so a boot with nothing
  // pending (one ledger read) costs no round trip more than on a connection of lockstep's own.
  let snapshot: Promise<Snapshot> | undefined;
  const query = (sql: string, values?: unknown[]) => {
    if (!keepsSession || (!snapshot && isLedgerRead(sql))) return client.query(sql, values);
    snapshot ??= client.query(SNAPSHOT).then((result) => result.rows[0] as Snapshot);
    return snapshot.then(() => client.query(sql, values));
  };
  return {
    connection: withQuery(client, query),
    async release(broken) {
      if (!broken && snapshot) {
        broken = !(await snapshot
          .then((taken) => restore(client, taken))
          .then(
            () => true,
            () => false,
          ));
      }
      for (const [event, before] of Object.entries(listeners)) {
        for (const listener of client.listeners(event)) {
          if (!before.includes(listener))
            client.removeListener(event, listener as (...args: unknown[]) => void);
        }
      }
      giveBack();
      // A broken pool connection is destroyed, not handed to the application's next query.
      if (pool) (client as unknown as pg.PoolClient).release(broken || undefined);
    },
  };
}

async function restore(client: pg.Client, snapshot: Snapshot): Promise<void> {
  if (transactionStatus(client) !== 'I') await client.query('ROLLBACK');
  const result = await client.query(RESTORE, [
    snapshot.settings === null ? null : JSON.stringify(snapshot.settings),
  ]);
  const left = result.rows[0] as { channels: string[]; prepared: string[] };
  const added = left.channels.filter((channel) => !snapshot.channels.includes(channel));
  if (added.length > 0) await client.query(added.map((c) => `UNLISTEN ${quoteIdentifier(c)}`).join('; '));
  // What a migration's DEALLOCATE ALL (or lockstep's session reset) removed, pg must prepare again.
  const parsed = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } })
    .connection?.parsedStatements;
  for (const name of Object.keys(parsed ?? {})) {
    if (!left.prepared.includes(name)) delete parsed?.[name];
  }
}
