/**
 * The states of a long-running migration (SPEC "Long-running migrations"). What leads from one
 * to another, and what may be done in each, is transitions.ts.
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

export function isActive(state: AsyncState): boolean {
  return ACTIVE_STATES.includes(state);
}
