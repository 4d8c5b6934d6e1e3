/**
 * Every way a long-running migration's state changes, as one table (SPEC "Long-running
 * migrations", DEVELOPERS.md "refinements"): for each step, the states it may start from, the
 * state it leads to and the fields it changes. Pure: the migrator and the executor write what
 * `transit` returns, inside their exclusive (or fenced) transactions, and nothing else writes a
 * state.
 */
import type { RunPlan } from './definition.js';
import { ACTIVE_STATES, type AsyncState, isActive } from './states.js';
import type { AsyncRun } from './store.js';

/** What a person may do with a run: the CLI's commands, the API's routes, the status page's buttons. */
export const ASYNC_ACTIONS = ['trigger', 'stop', 'force-stop', 'resume', 'rollback'] as const;

export type AsyncAction = (typeof ASYNC_ACTIONS)[number];

/** Who asks (a person's runner id, or the worker's) and when. */
interface By {
  readonly by: string;
  readonly now: string;
}

/** The plan a trigger freezes, and its checksum. */
type Frozen = By & { readonly plan: RunPlan; readonly checksum: string };

/** What a step's changes are made of, per step. */
export interface StepFacts {
  /** Trigger: no other run is active. Queue: one is, so this one waits behind it. */
  readonly trigger: Frozen;
  readonly queue: Frozen;
  readonly stop: By;
  readonly 'force-stop': By;
  readonly resume: By;
  readonly rollback: By;
  /** The worker picks up an active run that waits for one. */
  readonly claim: By;
  /** The worker picks up an active run whose worker died (onDeadWorker: resume). */
  readonly 'take-over': By;
  /** The worker picks up the head of the queue. */
  readonly 'claim-queued': By;
  /** An active run whose worker died becomes errored (a person, or a worker, found it). */
  readonly reap: { readonly message: string };
  /** The worker shuts down (SIGTERM): the run stays active, with no worker, for the next. */
  readonly 'hand-over': By;
  /** Startup checks passed. */
  readonly start: { readonly now: string };
  /** isRequired said the database needs none of it. */
  readonly 'not-required': { readonly now: string };
  /** A dependency, precheck or healthcheck said no (or the definition is gone) before it started. */
  readonly 'startup-refused': { readonly reason: string; readonly now: string };
  readonly complete: { readonly now: string };
  readonly 'rolled-back': { readonly now: string };
  /** A stop request honoured between operations or batches. */
  readonly 'stop-reached': { readonly message: string };
  /** A statement or a check failed (a healthcheck on resume included). */
  readonly fail: { readonly message: string; readonly now: string };
}

export type Step = keyof StepFacts;

interface Rule<S extends Step> {
  readonly from: readonly AsyncState[];
  /** null: the state stays as it is (and is not written). */
  readonly to: AsyncState | null;
  readonly changes: (run: AsyncRun, facts: StepFacts[S]) => Partial<AsyncRun>;
}

/** A run may be triggered when it never ran, or ended in a way that allows a new run. */
const TRIGGERABLE: readonly AsyncState[] = ['not_started', 'rolled_back', 'failed_at_startup'];
/** A worker executes its operations (forward, or their rollbacks). */
const EXECUTING: readonly AsyncState[] = ['running', 'rolling_back'];

/** What a trigger freezes into the run: its plan, and a clean slate for it. */
const frozen = (f: Frozen): Partial<AsyncRun> => ({
  direction: 'forward',
  plan: f.plan,
  checksum: f.checksum,
  opIndex: 0,
  opCount: f.plan.operations.length,
  cursor: null,
  rangeMin: null,
  rangeMax: null,
  progress: 0,
  worker: null,
  queryTag: null,
  requestedBy: f.by,
  note: null,
  error: null,
  startedAt: f.now,
  finishedAt: null,
});

const claimed = (run: AsyncRun, f: By): Partial<AsyncRun> => ({ worker: f.by, attempt: run.attempt + 1 });

const askedToStop = (_run: AsyncRun, f: By): Partial<AsyncRun> => ({ note: `stop requested by ${f.by}` });

/** A run's batch position, cleared: the operation in flight starts over. */
const NO_BATCH = { cursor: null, rangeMin: null, rangeMax: null } as const;

export const TRANSITIONS: { readonly [S in Step]: readonly Rule<S>[] } = {
  trigger: [{ from: TRIGGERABLE, to: 'starting', changes: (_run, f) => ({ queuedAt: null, ...frozen(f) }) }],
  queue: [{ from: TRIGGERABLE, to: 'queued', changes: (_run, f) => ({ queuedAt: f.now, ...frozen(f) }) }],
  stop: [
    {
      from: ['queued'],
      to: 'not_started',
      changes: (_run, f) => ({ queuedAt: null, note: `taken off the queue by ${f.by}` }),
    },
    {
      // A worker running its prechecks finds its attempt gone and stops.
      from: ['starting'],
      to: 'failed_at_startup',
      changes: (run, f) => ({
        attempt: run.attempt + 1,
        error: `stopped by ${f.by} before it started`,
        finishedAt: f.now,
      }),
    },
    { from: EXECUTING, to: 'stopping', changes: askedToStop },
  ],
  'force-stop': [
    { from: EXECUTING, to: 'stopping', changes: askedToStop },
    // Already stopping: the running statement is cancelled, the row stays.
    { from: ['stopping'], to: null, changes: () => ({}) },
  ],
  resume: [
    {
      from: ['errored'],
      to: 'running',
      changes: (run, f) => ({
        direction: 'forward',
        worker: null,
        error: null,
        note: `resumed by ${f.by}`,
        finishedAt: null,
        // A rollback undid part of the operation it stopped in: that one starts over.
        ...(run.direction === 'rollback' ? NO_BATCH : {}),
      }),
    },
  ],
  rollback: [
    {
      from: ['errored', 'completed'],
      to: 'rolling_back',
      changes: (run, f) => {
        const fromForward = run.direction === 'forward';
        return {
          direction: 'rollback',
          worker: null,
          error: null,
          note: `rollback requested by ${f.by}`,
          finishedAt: null,
          opIndex: fromForward ? Math.min(run.opIndex, run.opCount - 1) : run.opIndex,
          ...(fromForward ? NO_BATCH : {}),
        };
      },
    },
  ],
  claim: [{ from: ACTIVE_STATES, to: null, changes: claimed }],
  'take-over': [{ from: ACTIVE_STATES, to: null, changes: claimed }],
  'claim-queued': [
    { from: ['queued'], to: 'starting', changes: (run, f) => ({ startedAt: f.now, ...claimed(run, f) }) },
  ],
  reap: [
    {
      from: ACTIVE_STATES,
      to: 'errored',
      changes: (run, f) => ({ attempt: run.attempt + 1, error: f.message, queryTag: null }),
    },
  ],
  'hand-over': [
    {
      from: ['running', 'stopping', 'rolling_back'],
      to: null,
      changes: (_run, f) => ({
        worker: null,
        queryTag: null,
        note: `handed over by ${f.by} (shutting down)`,
      }),
    },
  ],
  start: [{ from: ['starting'], to: 'running', changes: (_run, f) => ({ startedAt: f.now }) }],
  'not-required': [
    {
      from: ['starting'],
      to: 'completed',
      changes: (_run, f) => ({
        progress: 100,
        note: 'not required: isRequired said this database needs none of it; nothing was run',
        finishedAt: f.now,
      }),
    },
  ],
  'startup-refused': [
    {
      from: ['starting'],
      to: 'failed_at_startup',
      changes: (_run, f) => ({ error: f.reason, finishedAt: f.now }),
    },
  ],
  // A stop requested during the last operation comes too late: the run completes.
  complete: [
    {
      from: ['running', 'stopping'],
      to: 'completed',
      changes: (_run, f) => ({ finishedAt: f.now, error: null, progress: 100 }),
    },
  ],
  'rolled-back': [
    {
      from: ['rolling_back', 'stopping'],
      to: 'rolled_back',
      changes: (_run, f) => ({ finishedAt: f.now, error: null, progress: 0 }),
    },
  ],
  'stop-reached': [
    { from: ['stopping'], to: 'errored', changes: (_run, f) => ({ error: f.message, queryTag: null }) },
  ],
  fail: [
    {
      from: ['starting'],
      to: 'failed_at_startup',
      changes: (_run, f) => ({ error: f.message, queryTag: null, finishedAt: f.now }),
    },
    {
      from: ['running', 'stopping', 'rolling_back'],
      to: 'errored',
      changes: (_run, f) => ({ error: f.message, queryTag: null }),
    },
  ],
};

/** What a run whose worker died becomes. */
const REAPED = TRANSITIONS.reap[0]?.to as AsyncState;

function ruleFor<S extends Step>(step: S, from: AsyncState): Rule<S> | undefined {
  return (TRANSITIONS[step] as readonly Rule<S>[]).find((r) => r.from.includes(from));
}

/** Whether `step` may happen to a run in `state`. */
export function allows(step: Step, state: AsyncState): boolean {
  return ruleFor(step, state) !== undefined;
}

/** The state `step` leads to from `state`; undefined when it may not happen there. */
export function outcome(step: Step, state: AsyncState): AsyncState | undefined {
  const rule = ruleFor(step, state);
  return rule ? (rule.to ?? state) : undefined;
}

/**
 * The row changes of `step` on `run` (whose state is `from`, when the caller knows it better than
 * the row it holds). Refusing is the caller's business: a step that may not happen here is a bug.
 */
export function transit<S extends Step>(
  step: S,
  run: AsyncRun,
  facts: StepFacts[S],
  from: AsyncState = run.state,
): Partial<AsyncRun> {
  const rule = ruleFor(step, from);
  if (!rule) throw new Error(`${run.name}: ${step} does not apply to a run that is ${from}`);
  const changes = rule.changes(run, facts);
  return rule.to === null ? changes : { state: rule.to, ...changes };
}

/**
 * What a person (CLI, API, status page) may do with a run in `state`. `alive` is false when the
 * run is active but its worker is gone (its lock is free): whoever acts first reaps it (it becomes
 * errored), so what an errored run allows is allowed, and stop, which the reap itself is: no state
 * is ever a dead end.
 */
export function allowedActions(state: AsyncState, alive = true): AsyncAction[] {
  if (isActive(state) && !alive) return [...allowedActions(REAPED), 'stop'];
  return ASYNC_ACTIONS.filter((action) => allows(action, state));
}
