/** The transition table of long-running migrations against every (state, step) pair. Pure. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RunPlan } from '../../src/async/definition.js';
import { ACTIVE_STATES, ASYNC_STATES, type AsyncState } from '../../src/async/states.js';
import { type AsyncRun, NEW_RUN } from '../../src/async/store.js';
import {
  ASYNC_ACTIONS,
  type AsyncAction,
  allowedActions,
  outcome,
  type Step,
  TRANSITIONS,
  transit,
} from '../../src/async/transitions.js';

const ACTIVE = ['starting', 'running', 'stopping', 'rolling_back'] as const;
const same = (states: readonly AsyncState[]) => Object.fromEntries(states.map((s) => [s, s]));

/** Step → from-state → the state it leads to. A state not listed refuses the step. */
const EXPECTED: Readonly<Record<Step, Partial<Record<AsyncState, AsyncState>>>> = {
  trigger: { not_started: 'starting', rolled_back: 'starting', failed_at_startup: 'starting' },
  queue: { not_started: 'queued', rolled_back: 'queued', failed_at_startup: 'queued' },
  stop: {
    queued: 'not_started',
    starting: 'failed_at_startup',
    running: 'stopping',
    rolling_back: 'stopping',
  },
  'force-stop': { running: 'stopping', rolling_back: 'stopping', stopping: 'stopping' },
  resume: { errored: 'running' },
  rollback: { errored: 'rolling_back', completed: 'rolling_back' },
  claim: same(ACTIVE),
  'take-over': same(ACTIVE),
  'claim-queued': { queued: 'starting' },
  reap: { starting: 'errored', running: 'errored', stopping: 'errored', rolling_back: 'errored' },
  'hand-over': same(['running', 'stopping', 'rolling_back']),
  start: { starting: 'running' },
  'not-required': { starting: 'completed' },
  'startup-refused': { starting: 'failed_at_startup' },
  complete: { running: 'completed', stopping: 'completed' },
  'rolled-back': { rolling_back: 'rolled_back', stopping: 'rolled_back' },
  'stop-reached': { stopping: 'errored' },
  fail: { starting: 'failed_at_startup', running: 'errored', stopping: 'errored', rolling_back: 'errored' },
};

/** What allowedActions returned before the table (a copy of the old switch). */
function allowedBefore(state: AsyncState, alive: boolean): AsyncAction[] {
  if (ACTIVE.includes(state as (typeof ACTIVE)[number]) && !alive) return ['resume', 'rollback', 'stop'];
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

const PLAN: RunPlan = { operations: [], parameters: {}, dependsOn: [] };
const FACTS = {
  by: 'host:1',
  now: '2026-01-01T00:00:00.000Z',
  plan: PLAN,
  checksum: 'c',
  message: 'm',
  reason: 'r',
};
const run = (state: AsyncState, more: Partial<AsyncRun> = {}): AsyncRun => ({
  ...NEW_RUN,
  name: 'backfill',
  state,
  attempt: 3,
  opIndex: 2,
  opCount: 4,
  cursor: 10n,
  rangeMin: 1n,
  rangeMax: 99n,
  ...more,
});

describe('transition table', () => {
  it('lists every step', () =>
    assert.deepEqual(Object.keys(TRANSITIONS).sort(), Object.keys(EXPECTED).sort()));

  for (const step of Object.keys(EXPECTED) as Step[]) {
    it(`${step}: from every state`, () => {
      for (const state of ASYNC_STATES) {
        const expected = EXPECTED[step][state];
        assert.equal(outcome(step, state), expected, `${step} from ${state}`);
        if (expected === undefined) {
          assert.throws(() => transit(step, run(state), FACTS as never), /does not apply/);
        } else {
          const changes = transit(step, run(state), FACTS as never);
          // A step that keeps the state does not write it.
          assert.equal(changes.state, expected === state ? undefined : expected, `${step} from ${state}`);
        }
      }
    });
  }

  it('has no rule that names a from-state twice for one step', () => {
    for (const [step, rules] of Object.entries(TRANSITIONS)) {
      const from = rules.flatMap((r) => r.from);
      assert.equal(new Set(from).size, from.length, step);
    }
  });

  it('allows what allowedActions allowed before, for every state, alive or not', () => {
    for (const state of ASYNC_STATES) {
      for (const alive of [true, false]) {
        assert.deepEqual(
          allowedActions(state, alive),
          allowedBefore(state, alive),
          `${state} alive=${alive}`,
        );
      }
    }
    assert.deepEqual([...ASYNC_ACTIONS], ['trigger', 'stop', 'force-stop', 'resume', 'rollback']);
    assert.deepEqual([...ACTIVE_STATES].sort(), [...ACTIVE].sort());
  });
});

describe('transition changes', () => {
  const t = (step: Step, r: AsyncRun) => transit(step, r, FACTS as never);

  it('trigger freezes the plan and clears the last run; queue also notes when it queued', () => {
    const triggered = t('trigger', run('rolled_back', { error: 'old', worker: 'w', direction: 'rollback' }));
    assert.equal(triggered.state, 'starting');
    assert.equal(triggered.queuedAt, null);
    assert.equal(triggered.plan, PLAN);
    assert.deepEqual(
      [triggered.direction, triggered.opIndex, triggered.cursor, triggered.worker, triggered.error],
      ['forward', 0, null, null, null],
    );
    assert.equal(triggered.requestedBy, 'host:1');
    assert.equal(t('queue', run('not_started')).queuedAt, FACTS.now);
  });

  it('stop of a starting run raises the attempt (its worker finds it gone); of a queued one, takes it off', () => {
    assert.equal(t('stop', run('starting')).attempt, 4);
    assert.match(String(t('stop', run('starting')).error), /^stopped by host:1 before it started/);
    assert.deepEqual(t('stop', run('queued')), {
      state: 'not_started',
      queuedAt: null,
      note: 'taken off the queue by host:1',
    });
    assert.deepEqual(t('force-stop', run('stopping')), {});
  });

  it('resume keeps the batch position unless a rollback undid part of it', () => {
    assert.equal(t('resume', run('errored')).cursor, undefined);
    assert.equal(t('resume', run('errored', { direction: 'rollback' })).cursor, null);
    assert.equal(t('resume', run('errored')).worker, null);
  });

  it('rollback of a forward run starts with the operation in flight, from its beginning', () => {
    const rb = t('rollback', run('errored'));
    assert.deepEqual([rb.direction, rb.opIndex, rb.cursor], ['rollback', 2, null]);
    assert.equal(t('rollback', run('completed', { opIndex: 4 })).opIndex, 3);
    assert.equal(t('rollback', run('errored', { direction: 'rollback' })).cursor, undefined);
  });

  it('claims, reaps and hand-overs move the attempt and the worker, not the state', () => {
    assert.deepEqual(t('claim', run('running')), { worker: 'host:1', attempt: 4 });
    assert.deepEqual(t('claim-queued', run('queued')), {
      state: 'starting',
      startedAt: FACTS.now,
      worker: 'host:1',
      attempt: 4,
    });
    assert.deepEqual(t('reap', run('running')), { state: 'errored', attempt: 4, error: 'm', queryTag: null });
    assert.deepEqual(t('hand-over', run('running')), {
      worker: null,
      queryTag: null,
      note: 'handed over by host:1 (shutting down)',
    });
  });

  it('a failure at startup is failed_at_startup and finished; later, errored and resumable', () => {
    assert.deepEqual(t('fail', run('starting')), {
      state: 'failed_at_startup',
      error: 'm',
      queryTag: null,
      finishedAt: FACTS.now,
    });
    assert.deepEqual(t('fail', run('running')), { state: 'errored', error: 'm', queryTag: null });
    assert.deepEqual(t('stop-reached', run('stopping')), { state: 'errored', error: 'm', queryTag: null });
  });

  it('a step may be checked against the state read, not the one held', () => {
    assert.equal(transit('stop-reached', run('running'), FACTS, 'stopping').state, 'errored');
  });
});
