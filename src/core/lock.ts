import type { Session } from '../drivers/driver.js';
import { LockTimeoutError } from './errors.js';
import type { EventHandler } from './events.js';

/** How often a waiting runner names the holder. */
const REPORT_EVERY_MS = 5_000;

/**
 * Takes the migration lock on `session`, waiting as SPEC guarantee 6 says: never fail fast, hold
 * nothing while waiting, name the holder every few seconds and on timeout.
 * Returns how long it waited.
 */
export async function acquireLock(
  session: Session,
  options: { readonly timeoutMs: number; readonly target: string; readonly on: EventHandler },
): Promise<number> {
  const started = performance.now();
  if (await session.tryLock()) {
    options.on({ type: 'lock-acquired', waitedMs: 0 });
    return 0;
  }
  let nextReport = 0;
  for (;;) {
    const waited = performance.now() - started;
    if (waited >= options.timeoutMs) {
      throw new LockTimeoutError(options.target, waited, await session.lockHolder());
    }
    if (waited >= nextReport) {
      options.on({ type: 'lock-waiting', holder: await session.lockHolder(), waitedMs: waited });
      nextReport = waited + REPORT_EVERY_MS;
    }
    if (await session.waitForLock(Math.max(1, Math.min(options.timeoutMs, nextReport) - waited))) {
      const waitedMs = performance.now() - started;
      options.on({ type: 'lock-acquired', waitedMs });
      return waitedMs;
    }
  }
}
