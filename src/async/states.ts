/**
 * The states of a long-running migration and what may be done in each (SPEC "Long-running
 * migrations"). Pure: the store applies these rules inside its exclusive transactions.
 */

export const ASYNC_STATES = [
  'not_started',
  'queued',
  'starting',
  'running',
  'stopping',
  'errored',
  'rolling_back',
  'rolled_back',
  'completed',
  'failed_at_startup',
] as const;

export type AsyncState = (typeof ASYNC_STATES)[number];

/**
 * At most one run per store is in one of these: the database enforces it (a unique slot column
 * that a CHECK ties to these states) as well as the exclusive transaction around every transition.
 */
export const ACTIVE_STATES: readonly AsyncState[] = ['starting', 'running', 'stopping', 'rolling_back'];

/** A run in one of these is finished for now: nothing executes it, and nothing will by itself. */
export const SETTLED_STATES: readonly AsyncState[] = [
  'not_started',
  'errored',
  'rolled_back',
  'completed',
  'failed_at_startup',
];

export type AsyncAction = 'trigger' | 'stop' | 'force-stop' | 'resume' | 'rollback';

export function isActive(state: AsyncState): boolean {
  return ACTIVE_STATES.includes(state);
}

/**
 * What a person (CLI, API, status page) may do with a run in `state`. `alive` is false when the
 * run is active but its worker is gone (its lock is free): then it can be resumed, rolled back or
 * stopped, so no state is ever a dead end.
 */
export function allowedActions(state: AsyncState, alive = true): AsyncAction[] {
  if (isActive(state) && !alive) return ['resume', 'rollback', 'stop'];
  switch (state) {
    case 'not_started':
    case 'rolled_back':
    case 'failed_at_startup':
      return ['trigger'];
    case 'queued':
    case 'starting':
      return ['stop'];
    case 'running':
    case 'rolling_back':
      return ['stop', 'force-stop'];
    case 'stopping':
      return ['force-stop'];
    case 'errored':
      return ['resume', 'rollback'];
    case 'completed':
      return ['rollback'];
  }
}
