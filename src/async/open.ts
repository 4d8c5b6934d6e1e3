/**
 * A command's open session on the state store, and the store's creation the first time a command
 * needs it.
 */
import { acquireLock } from '../core/lock.js';
import type { Driver, Session } from '../drivers/driver.js';
import { openDriver } from '../drivers/registry.js';
import type { AsyncConfig } from './config.js';
import { AsyncStore } from './store.js';

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
  const ledger = await openDriver(config.url, { table: config.ledgerTable, runnerId: config.runnerId });
  const session = await ledger.connect();
  try {
    await acquireLock(session.lock, {
      timeoutMs: config.lockTimeoutMs,
      target: ledger.target,
      on: config.on,
    });
    try {
      await new AsyncStore(session.connection, o.driver.dialect, config.table).create();
    } finally {
      await session.lock.release().catch(() => {});
    }
  } finally {
    await session.connection.close();
  }
}
