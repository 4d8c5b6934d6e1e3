/**
 * A command's open session on the state store, and the store's creation the first time a command
 * needs it.
 */
import { SessionScope, whileLocked } from '../core/scope.js';
import type { Driver, Session } from '../drivers/driver.js';
import type { AsyncConfig } from './config.js';
import { type AsyncStore, storeOf } from './store.js';

export interface Opened {
  readonly driver: Driver;
  readonly session: Session;
  readonly store: AsyncStore;
}

/**
 * Creates the state tables under the migration lock, unless they exist. The lock is the ledger's,
 * so it is taken through a driver opened for the ledger table (only this once, when they do not).
 */
export async function ensureStore(o: Opened, config: AsyncConfig): Promise<void> {
  if ((await o.store.readAll()) !== null) return;
  const ledger = new SessionScope({
    url: config.url,
    table: config.ledgerTable,
    runnerId: config.runnerId,
    caller: config.caller,
    pooler: config.pooler,
    coordinatorUrl: config.coordinatorUrl,
  });
  await ledger.withSession((session, driver) =>
    whileLocked(session.lock, { timeoutMs: config.lockTimeoutMs, target: driver.target, on: config.on }, () =>
      storeOf(session, driver.dialect, config.table).create(),
    ),
  );
}
