import type { LedgerRow, Session, StatementFate } from '../drivers/driver.js';
import type { InFlightStatement } from '../errors.js';
import type { EventHandler } from './events.js';
import { statementTag } from './ledger-rows.js';

/** How often a runner that waits for a dead runner's statement says so. */
const REPORT_EVERY_MS = 5_000;

/**
 * Before deciding about a `running` row (its runner is gone: this runner holds the lock), settles
 * the statement that runner had reached, where the database runs statements on after their
 * client died (ClickHouse): waits while it runs (up to `maxMs`), or cancels it (`cancel`), then
 * reads how it ended. One that finished counts as done: the row is brought up to date under the
 * lock, a fact the server gave. Nothing to settle elsewhere: undefined.
 */
export async function settleInFlight(
  session: Session,
  table: string,
  row: LedgerRow,
  options: { readonly cancel: boolean; readonly maxMs: number; readonly on: EventHandler },
): Promise<{ readonly row: LedgerRow; readonly inFlight: InFlightStatement } | undefined> {
  if (!session.inFlight || row.state !== 'running') return undefined;
  const statement = row.statementsDone + 1;
  const { id } = statementTag(table, row, statement);
  let reported = 0;
  const fate: StatementFate = await session.inFlight.settle(id, {
    cancel: options.cancel,
    maxMs: options.maxMs,
    onWait: (runningMs) => {
      if (runningMs - reported < REPORT_EVERY_MS && reported > 0) return;
      reported = runningMs;
      options.on({
        type: 'notice',
        message:
          `statement ${statement} of migration ${row.version}, left by ${row.appliedBy}, still runs on the ` +
          `server (query id ${id}, ${Math.round(runningMs / 1000)} s): waiting for it to end before deciding`,
      });
    },
  });
  const inFlight: InFlightStatement = {
    statement,
    queryId: id,
    outcome: fate.outcome,
    waitedMs: Math.round(fate.waitedMs),
    ...(fate.error ? { error: fate.error } : {}),
  };
  if (fate.outcome !== 'finished') return { row, inFlight };
  const updated: LedgerRow = { ...row, statementsDone: statement };
  await session.ledger.write(updated, row);
  return { row: updated, inFlight };
}
