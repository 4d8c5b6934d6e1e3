import { type LockHolder, LockNotHeldError, PoolerRefusedError } from '../../errors.js';
import type { MigrationLock, PoolerMode } from '../driver.js';
import { quoteIdentifier } from '../sql-helpers.js';
import { applicationName, CONNECTION_CHECK_INTERVAL, type PostgresLink } from './link.js';

/** First key of every lockstep advisory lock ('LKST'), so other users of advisory locks never collide. */
export const LOCK_NAMESPACE = 0x4c4b5354;
/** The pg_locks row of a lockstep advisory lock ($1 namespace, $2 key; session or transaction; its columns are pg_locks' alone). */
const OUR_LOCK =
  "locktype = 'advisory' AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2";
/** How often a waiter re-tries when no NOTIFY came (the holder died, or its notification was lost). */
const FALLBACK_POLL_MS = 500;
/**
 * Names the lock holder in pg_stat_activity, sets the client check and (through a session-mode
 * pooler) the URL's search_path (parameters: name, interval, search path or null).
 */
const NAME_HOLDER = `set_config('application_name', $1, false) AS name,
       (SELECT set_config(name, $2, false) FROM pg_settings WHERE name = 'client_connection_check_interval') AS checks,
       CASE WHEN $3::text IS NOT NULL THEN set_config('search_path', $3::text, false) END AS search_path`;

/** A session advisory lock on the work connection: it lives and dies with the work (SPEC guarantee 3). */
export class PostgresLock implements MigrationLock {
  readonly heldUntil = 'release';
  readonly #link: PostgresLink;
  readonly #lockKey: number;
  readonly #channel: string;
  readonly #pooler: PoolerMode | undefined;
  /** The backend that took the lock: through a session-mode pooler not the pid the client was told. */
  #backend: number | undefined;
  #listening = false;
  #held = false;
  #since: string | undefined;
  #wake: (() => void) | undefined;

  constructor(link: PostgresLink, lockKey: number, pooler: PoolerMode | undefined) {
    this.#link = link;
    this.#lockKey = lockKey;
    this.#pooler = pooler;
    this.#channel = `lockstep_${lockKey}`;
    link.client.on('error', () => this.#wake?.());
    link.client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#wake?.();
    });
  }

  get held(): boolean {
    return this.#held;
  }

  /** The backend holding the lock (and running the work), while it is held. */
  get backend(): number | undefined {
    return this.#held ? this.#backend : undefined;
  }

  async tryLock(): Promise<boolean> {
    // pg_try_advisory_lock, never pg_advisory_lock: a session blocked in the latter holds a
    // snapshot that a holder's CREATE INDEX CONCURRENTLY waits for, a deadlock (SPEC guarantee 6).
    // In the same statement, so on the same backend whatever sits in between: the lock is taken
    // only by a backend that does not hold it already (advisory locks nest within a session, and
    // a pooler may hand one backend to two runners), and, unless the user said a session-mode
    // pooler is in between, only when the backend is the one this connection was opened to.
    const result = await this.#link.query(
      `SELECT pg_backend_pid() AS backend,
              CASE WHEN ($3::int IS NULL OR pg_backend_pid() = $3::int)
                    AND NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND ${OUR_LOCK})
                   THEN pg_try_advisory_lock($1::int, $2::int) END AS locked`,
      [LOCK_NAMESPACE, this.#lockKey, this.#pooler === 'session' ? null : this.#connectedTo()],
    );
    const row = result.rows[0];
    if (row?.locked === null && this.#pooler !== 'session' && row.backend !== this.#connectedTo()) {
      throw poolerDetected(Number(row.backend), this.#connectedTo());
    }
    if (!row?.locked) return false;
    this.#held = true;
    this.#backend = Number(row.backend);
    await this.#afterLock();
    return true;
  }

  /** The backend pid the server gave this connection when it opened (BackendKeyData). */
  #connectedTo(): number | null {
    return this.#link.announcedPid ?? null;
  }

  /**
   * In one round trip: verify that the lock is held by this very backend (a transaction-pooling
   * proxy would have run the two queries on different backends), name ourselves as holder, and
   * ask the server to check for a vanished client during long statements (Postgres ≥ 14).
   */
  async #afterLock(): Promise<void> {
    this.#since = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const result = await this.#link.query(
      `SELECT EXISTS (
         SELECT 1 FROM pg_locks WHERE ${OUR_LOCK} AND granted AND pid = pg_backend_pid()
       ) AS held, ${NAME_HOLDER.replaceAll('$3', '$5').replaceAll('$2', '$4').replaceAll('$1', '$3')}`,
      [LOCK_NAMESPACE, this.#lockKey, ...this.#holderSettings()],
    );
    if (!result.rows[0]?.held) {
      this.#held = false;
      await this.#link
        .query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, this.#lockKey])
        .catch(() => {});
      throw new LockNotHeldError(
        "took the advisory lock, but it is not held by this session's backend: a transaction-mode pooler " +
          '(e.g. PgBouncer with pool_mode=transaction) is between lockstep and PostgreSQL, and session locks do not ' +
          'work through it. Nothing was changed. Use pooler=transaction in the URL (not pooler=session), or point ' +
          'lockstep at PostgreSQL directly.',
      );
    }
  }

  /** Lockstep's own session settings as holder, again after a reset of the session. */
  async nameHolder(): Promise<void> {
    if (this.#held) await this.#link.query(`SELECT ${NAME_HOLDER}`, this.#holderSettings());
  }

  #holderSettings(): (string | null)[] {
    return [
      applicationName(this.#link.options.runnerId, this.#since),
      CONNECTION_CHECK_INTERVAL,
      this.#link.searchPath ?? null,
    ];
  }

  async waitForLock(maxMs: number): Promise<boolean> {
    if (this.#link.lost) throw this.#link.lost;
    if (!this.#listening) {
      // Subscribe first, then try once more: a release between the failed try and this LISTEN
      // would otherwise be missed.
      await this.#link.query(`LISTEN ${quoteIdentifier(this.#channel)}`);
      this.#listening = true;
      return this.tryLock();
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(maxMs, FALLBACK_POLL_MS * (0.8 + Math.random() * 0.4)));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
    this.#wake = undefined;
    return this.tryLock();
  }

  holder(): Promise<LockHolder | null> {
    return lockHolder(this.#link, this.#lockKey);
  }

  async release(): Promise<void> {
    this.#held = false;
    // pg_notify in autocommit is delivered at once: waiters retry within milliseconds.
    await this.#link.query('SELECT pg_advisory_unlock($1, $2), pg_notify($3, $4)', [
      LOCK_NAMESPACE,
      this.#lockKey,
      this.#channel,
      'released',
    ]);
  }

  /** Stops a wait in progress: the connection is closing. */
  stopWaiting(): void {
    this.#wake?.();
  }
}

/** Who holds the lock of `lockKey` now (a session's or a transaction's advisory lock), or null. */
export async function lockHolder(link: PostgresLink, lockKey: number): Promise<LockHolder | null> {
  const result = await link.query(
    `SELECT a.pid, a.application_name, a.client_addr::text AS client, a.state
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE ${OUR_LOCK} AND l.granted
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [LOCK_NAMESPACE, lockKey],
  );
  const row = result.rows[0];
  if (!row) return null;
  const detail = `backend pid ${row.pid}${row.client ? ` from ${row.client}` : ''}, ${row.state}`;
  const match = /^lockstep (\S+?)(?:@(\S+))?$/.exec(String(row.application_name ?? ''));
  if (match) return { who: match[1] as string, ...(match[2] ? { since: match[2] } : {}), detail };
  return { who: `a non-lockstep session "${row.application_name ?? ''}"`, detail };
}

/** The lock statement ran on another backend than the one this connection was opened to. */
function poolerDetected(backend: number, connectedTo: number | null): PoolerRefusedError {
  return new PoolerRefusedError({
    reason: 'pooler-detected',
    message:
      `a connection pooler or proxy is between lockstep and PostgreSQL: the lock statement ran on backend ${backend}, ` +
      `but this connection was opened to ${connectedTo ?? 'an unknown backend'}. A session lock is not safe through a ` +
      'transaction-mode pooler, so none was taken and nothing was changed.\n' +
      '  fix: add pooler=transaction to the URL (?pooler=transaction, or --pooler transaction): each migration then ' +
      'commits under a transaction lock; if the pooler keeps each client on one server connection ' +
      '(PgBouncer pool_mode=session), add pooler=session instead; or point lockstep at PostgreSQL directly',
  });
}
