/**
 * What the long-running migrations say when they refuse, or do not know a name: the messages,
 * built from the facts, in one place.
 */
import { ConfigError } from '../errors.js';
import { AsyncRefusedError, AsyncUnknownError } from './errors.js';
import { ASYNC_NAME, type DefinitionFile } from './sources.js';
import type { AsyncState } from './states.js';
import type { AsyncRun } from './store.js';
import { type AsyncAction, allowedActions } from './transitions.js';

/** Stop, resume and rollback also work on a run whose file is gone (its plan is frozen): a name is enough. */
export function checkName(name: string): void {
  if (!ASYNC_NAME.test(name)) {
    throw new ConfigError(`"${name}" is not a long-running migration name (letters, digits, _ and -)`);
  }
}

export function unknownName(name: string, files: DefinitionFile[], dir: string): AsyncUnknownError {
  const known = files.map((f) => f.name);
  return new AsyncUnknownError(
    name,
    `no long-running migration named "${name}" in ${dir}${known.length > 0 ? `; there are: ${known.join(', ')}` : ' (it has none)'}`,
  );
}

/** `action` does not apply to a run in `state`. */
export function refusedInState(name: string, action: AsyncAction, state: AsyncState): AsyncRefusedError {
  return new AsyncRefusedError({ migration: name, action, state, reason: stateReason(state, action) });
}

function stateReason(state: AsyncState, action: AsyncAction): string {
  if (state === 'stopping' && action === 'stop')
    return 'it is already stopping; add --force to cancel its running statement';
  const allowed = allowedActions(state);
  return `it is ${state}${allowed.length > 0 ? ` (possible now: ${allowed.join(', ')})` : ''}, so ${action} does not apply`;
}

/** A trigger of `run` waits for `dependency`, which is `state`. */
export function refusedForDependency(
  run: AsyncRun,
  dependency: string,
  state: AsyncState,
): AsyncRefusedError {
  return new AsyncRefusedError({
    migration: run.name,
    action: 'trigger',
    state: run.state,
    reason: `it depends on ${dependency}, which is ${state}; run that first${state === 'not_started' ? ` (lockstep async trigger ${dependency})` : ''}`,
  });
}

/** `active` runs, and one runs at a time: a trigger says how to go on, resume and rollback do not. */
export function refusedForActive(action: AsyncAction, run: AsyncRun, active: AsyncRun): AsyncRefusedError {
  const reason =
    action === 'trigger'
      ? `${active.name} is ${active.state}${active.worker ? ` (worker ${active.worker})` : ''}, and one long-running migration runs at a time. Wait for it, stop it (lockstep async stop ${active.name}), or queue this one with --queue`
      : `${active.name} is ${active.state}, and one long-running migration runs at a time`;
  return new AsyncRefusedError({
    migration: run.name,
    action,
    state: run.state,
    active: active.name,
    reason,
  });
}

/** What to do about a run that ended errored or failed_at_startup. */
export function fixFor(name: string, state: AsyncState): string {
  return state === 'failed_at_startup'
    ? `fix the cause, then lockstep async trigger ${name}`
    : `lockstep async resume ${name} (re-runs the operation that failed) or lockstep async rollback ${name}`;
}
