/**
 * A run whose worker is gone (its lock is free: the process died or lost its database session):
 * an error row says where it was, then it is marked errored, or a worker takes it over.
 */
import type { AsyncConfig } from './config.js';
import type { Opened } from './open.js';
import type { AsyncRun } from './store.js';
import { transit } from './transitions.js';

/** Marks `run` errored, with an error row saying so: resume continues it, rollback undoes it. */
export async function reap(o: Opened, config: AsyncConfig, run: AsyncRun): Promise<void> {
  const message = await recordDeath(o, run, 'marked errored: resume continues it, rollback undoes it');
  const changes = transit('reap', run, { message });
  await o.store.update(run.name, run.attempt, changes);
  config.on({
    type: 'async-state',
    name: run.name,
    state: changes.state ?? run.state,
    previous: run.state,
    detail: message,
  });
}

/** Adds the error row for a dead worker's run; `outcome` says what is done about it. */
export async function recordDeath(o: Opened, run: AsyncRun, outcome: string): Promise<string> {
  const where =
    run.state === 'starting'
      ? 'during its startup checks'
      : `in operation ${Math.min(run.opIndex + 1, run.opCount)} of ${run.opCount}${run.queryTag ? ` (statement ${run.queryTag})` : ''}`;
  const message = `worker ${run.worker} is gone (its lock is free: the process died or lost its database session) ${where}; ${outcome}`;
  await o.store.addError({
    name: run.name,
    attempt: run.attempt,
    direction: run.direction,
    operation: run.state === 'starting' ? null : Math.min(run.opIndex + 1, run.opCount),
    statement: null,
    message,
    at: new Date().toISOString(),
  });
  return message;
}
