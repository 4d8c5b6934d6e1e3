import type { MigrationLock } from '../drivers/driver.js';
import { LockTimeoutError } from '../errors.js';
import type { EventHandler } from './events.js';

/** How often a waiting runner names the holder. */
const REPORT_EVERY_MS = 5_000;

export interface LockOptions {
  readonly timeoutMs: number;
  readonly target: string;
  readonly on: EventHandler;
  /**
   * Called after each wait that did not get the lock: true when there is nothing left to do (the
   * holder did it all), so the waiter can stop without ever taking the lock. A lock-free read,
   * as SPEC guarantee 4 allows; it spares N waiters taking the lock one after the other.
   */
  readonly nothingLeft?: (() => Promise<boolean>) | undefined;
}

/**
 * Takes the migration `lock`, waiting as SPEC guarantee 6 says: never fail fast, hold
 * nothing while waiting, name the holder every few seconds and on timeout.
 * Returns how long it waited, and whether it holds the lock (false: `nothingLeft` said so).
 */
export async function acquireLock(
  lock: MigrationLock,
  options: LockOptions,
): Promise<{ readonly waitedMs: number; readonly locked: boolean }> {
  const started = performance.now();
  if (await lock.tryLock()) {
    options.on({ type: 'lock-acquired', waitedMs: 0 });
    return { waitedMs: 0, locked: true };
  }
  let nextReport = 0;
  for (;;) {
    const waited = performance.now() - started;
    if (waited >= options.timeoutMs) {
      throw new LockTimeoutError({
        lock: options.target,
        waitedMs: waited,
        holder: await lock.holder(),
      });
    }
    if (waited >= nextReport) {
      options.on({ type: 'lock-waiting', holder: await lock.holder(), waitedMs: waited });
      nextReport = waited + REPORT_EVERY_MS;
    }
    if (await lock.waitForLock(Math.max(1, Math.min(options.timeoutMs, nextReport) - waited))) {
      const waitedMs = performance.now() - started;
      options.on({ type: 'lock-acquired', waitedMs });
      return { waitedMs, locked: true };
    }
    if (await options.nothingLeft?.()) return { waitedMs: performance.now() - started, locked: false };
  }
}
