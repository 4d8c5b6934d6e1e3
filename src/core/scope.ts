import type { CallerHandle } from '../drivers/caller.js';
import type { Driver, MigrationLock, PoolerMode, Session } from '../drivers/driver.js';
import { openDriver, redactUrl, withoutSecrets } from '../drivers/registry.js';
import { ConnectionError, LockstepError } from '../errors.js';
import { acquireLock, type LockOptions } from './lock.js';

/** The database one command works on, as the driver is opened for it. */
export interface ScopeOptions {
  readonly url: string;
  /** The ledger table: where the driver's lock and ledger live. */
  readonly table: string;
  readonly runnerId: string;
  /** Sees every statement sent (the `query` event); none when nobody listens. */
  readonly onQuery?: ((sql: string) => void) | undefined;
  /**
   * The application's own client or pool, when it was given instead of a URL (`url` is then its
   * settings). Required, even when undefined: a scope built without it would quietly open
   * connections of its own.
   */
  readonly caller: CallerHandle | undefined;
  /** What sits between lockstep and the database, as the user said (PostgreSQL). */
  readonly pooler?: PoolerMode | undefined;
  /** Where the lock and the ledger live for a database that has neither (ClickHouse). */
  readonly coordinatorUrl?: string | undefined;
  /** Told what the driver says that is not an error. */
  readonly onNotice?: ((message: string) => void) | undefined;
}

/**
 * One command against one database (`up`, `status`, `async trigger`, a worker's life): the
 * driver is opened and one session connected for it, and closed after; no error leaves it with
 * a secret of the URL in it.
 */
export class SessionScope {
  readonly #options: ScopeOptions;

  constructor(options: ScopeOptions) {
    this.#options = options;
  }

  /** The database URL with its password hidden. */
  get target(): string {
    return redactUrl(this.#options.url);
  }

  /** Runs a whole command: whatever it throws, the URL's secrets are scrubbed from it. */
  command<T>(work: () => Promise<T>): Promise<T> {
    const { url, coordinatorUrl } = this.#options;
    return withoutSecrets(url, () => (coordinatorUrl ? withoutSecrets(coordinatorUrl, work) : work()));
  }

  openDriver(): Promise<Driver> {
    const { url, table, runnerId, onQuery, caller, pooler, coordinatorUrl, onNotice } = this.#options;
    return openDriver(url, { table, runnerId, onQuery, pooler, coordinatorUrl, onNotice }, caller);
  }

  /**
   * Connects one session (on `opened`, or a driver opened now), runs `work` on it, and closes it.
   * A command opens one; a worker opens a second on the same driver for the statements of a run,
   * while its first, idle, holds the lock.
   */
  async withSession<T>(work: (session: Session, driver: Driver) => Promise<T>, opened?: Driver): Promise<T> {
    const driver = opened ?? (await this.openDriver());
    const session = await driver.connect();
    try {
      return await work(session, driver);
    } catch (error) {
      throw lostSession(session, error);
    } finally {
      await session.connection.close().catch(() => {});
    }
  }
}

/**
 * A database error that says the session is gone (killed by the server, the connection cut), from
 * a query of lockstep's own (the ledger, the lock) rather than a migration's statement (those are
 * reported where they ran): a ConnectionError (exit 5), not the driver's raw error.
 */
function lostSession(session: Session, error: unknown): unknown {
  if (error instanceof LockstepError || !(error instanceof Error)) return error;
  const info = session.connection.describeError(error);
  if (!info.connectionLost) return error;
  return new ConnectionError(
    `lost the database session: ${info.message.replace(/\.$/, '')}. The database released the lock with it; ` +
      'what this run applied before is recorded in the ledger (`lockstep status`).',
  );
}

/** The lock a scope's work runs under: as acquireLock waits for it, and what stands for the work when `nothingLeft` ends the wait. */
export interface ScopedLock<T> extends LockOptions {
  readonly doneElsewhere?: ((waitedMs: number) => T | Promise<T>) | undefined;
}

/**
 * Runs `work` holding `migrationLock` and releases the lock after, whatever
 * happens. When the wait ends because `nothingLeft` said so, `work` is not run: `doneElsewhere`
 * gives the result instead.
 */
export async function whileLocked<T>(
  migrationLock: MigrationLock,
  lock: ScopedLock<T>,
  work: (waitedMs: number) => Promise<T>,
): Promise<T> {
  const { waitedMs, locked } = await acquireLock(migrationLock, lock);
  if (!locked) {
    if (!lock.doneElsewhere) throw new Error('whileLocked: nothingLeft needs doneElsewhere');
    return lock.doneElsewhere(waitedMs);
  }
  let result: T;
  try {
    result = await work(waitedMs);
  } catch (error) {
    await migrationLock.release().catch(() => {});
    throw error;
  }
  // A transaction's lock commits what was written under it: the work is done only if that holds.
  if (migrationLock.heldUntil === 'commit') await migrationLock.release();
  else await migrationLock.release().catch(() => {});
  return result;
}

/**
 * Runs `work` holding the migration lock when it is free now, without waiting (a worker looking
 * for a run to claim), and releases it after; undefined, without running `work`, when it is held.
 */
export async function ifLockFree<T>(
  migrationLock: MigrationLock,
  work: () => Promise<T>,
): Promise<T | undefined> {
  if (!(await migrationLock.tryLock())) return undefined;
  try {
    return await work();
  } finally {
    await migrationLock.release().catch(() => {});
  }
}
