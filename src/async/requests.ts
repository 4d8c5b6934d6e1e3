/**
 * What a person asks of a run (trigger, stop, resume, rollback): each is one exclusive transaction
 * that reaps a dead worker's run on the way, checks the request against the transition table and
 * the other runs, and writes the step's changes.
 */
import { longRunning } from '../drivers/driver.js';
import type { AsyncConfig } from './config.js';
import { reap } from './dead-worker.js';
import type { LoadedDefinition, RunPlan } from './definition.js';
import { RunTakenOverError } from './errors.js';
import { refusedForActive, refusedForDependency, refusedInState, unknownName } from './messages.js';
import type { Opened } from './open.js';
import { planChecksum, runMarker } from './plan.js';
import { type DefinitionFile, readDefinitionFiles } from './sources.js';
import { type AsyncState, isActive } from './states.js';
import { type AsyncRun, NEW_RUN } from './store.js';
import { type AsyncAction, allows, transit } from './transitions.js';

export interface AsyncActionResult {
  readonly name: string;
  readonly action: AsyncAction | 'queue';
  readonly previous: AsyncState;
  readonly state: AsyncState;
  /** A run whose worker was found dead (and marked errored) on the way. */
  readonly reaped?: string | undefined;
  /** Statements cancelled on the server (stop --force). */
  readonly cancelled?: number | undefined;
  readonly note?: string | undefined;
}

/** Freezes `plan` into the run and moves it to `starting`, or to `queued` behind the active run. */
export function triggerRun(
  o: Opened,
  config: AsyncConfig,
  files: DefinitionFile[],
  name: string,
  definition: LoadedDefinition,
  plan: RunPlan,
  queue: boolean | undefined,
): Promise<AsyncActionResult> {
  return request(
    o,
    config,
    name,
    'trigger',
    (run, runs) => {
      const active = runs.find((r) => isActive(r.state) && r.name !== name);
      const queuedAhead = new Set(runs.filter((r) => r.state === 'queued').map((r) => r.name));
      for (const dependency of definition.dependsOn) {
        const state = runs.find((r) => r.name === dependency)?.state ?? 'not_started';
        const coming = queue && (queuedAhead.has(dependency) || active?.name === dependency);
        if (state !== 'completed' && !coming) throw refusedForDependency(run, dependency, state);
      }
      if (active && !queue) throw refusedForActive('trigger', run, active);
      const facts = {
        by: config.runnerId,
        now: new Date().toISOString(),
        plan,
        checksum: planChecksum(plan),
      };
      return transit(active ? 'queue' : 'trigger', run, facts);
    },
    files,
  );
}

/** Stop (or, with `force`, also cancel its running statement on the server). */
export async function stopRun(
  o: Opened,
  config: AsyncConfig,
  name: string,
  force: boolean | undefined,
): Promise<AsyncActionResult> {
  const action = force ? 'force-stop' : 'stop';
  const result = await request(o, config, name, action, (run) =>
    transit(action, run, { by: config.runnerId, now: new Date().toISOString() }),
  );
  if (!force) return result;
  if (!o.driver.dialect.cancellable) {
    return {
      ...result,
      cancelled: 0,
      note: `${o.driver.dialect} cannot cancel a running statement: the worker stops after the current one`,
    };
  }
  let cancelled = 0;
  for (const query of await longRunning(o.session, o.driver.dialect).findRunning(runMarker(name))) {
    await longRunning(o.session, o.driver.dialect).cancelRunning(query.id);
    cancelled++;
  }
  return { ...result, cancelled };
}

/** Resume or rollback: when no other run is active. */
export function restartRun(
  o: Opened,
  config: AsyncConfig,
  name: string,
  action: 'resume' | 'rollback',
): Promise<AsyncActionResult> {
  return request(o, config, name, action, (run, runs) => {
    const active = runs.find((r) => isActive(r.state) && r.name !== name);
    if (active) throw refusedForActive(action, run, active);
    return transit(action, run, { by: config.runnerId, now: new Date().toISOString() });
  });
}

/**
 * Runs `decide` on the run's row in an exclusive transaction, after marking a dead worker's run
 * errored, and writes what it returns. `decide` throws AsyncRefusedError to refuse. `files`: the
 * definition files when the caller has read them (a name without a row must be one of them).
 */
async function request(
  o: Opened,
  config: AsyncConfig,
  name: string,
  action: AsyncAction,
  decide: (run: AsyncRun, runs: AsyncRun[]) => Partial<AsyncRun>,
  files?: DefinitionFile[],
): Promise<AsyncActionResult> {
  return o.store.exclusive(async () => {
    let runs = (await o.store.readAll()) ?? [];
    const previous = runs.find((r) => r.name === name)?.state ?? 'not_started';
    let reaped: string | undefined;
    const active = runs.find((r) => isActive(r.state) && r.worker);
    if (active && (await o.session.lock.holder()) === null) {
      await reap(o, config, active);
      reaped = active.name;
      runs = (await o.store.readAll()) ?? [];
    }
    const existing = runs.find((r) => r.name === name);
    if (!existing) {
      const known = files ?? (await readDefinitionFiles(config.dir, config.cwd));
      if (!known.some((f) => f.name === name)) throw unknownName(name, known, config.dir);
    }
    const run = existing ?? { ...NEW_RUN, name };
    // A run found dead on the way to a stop is stopped: marking it errored was the stop.
    const stopped = reaped === name && (action === 'stop' || action === 'force-stop');
    if (!stopped && !allows(action, run.state)) throw refusedInState(name, action, run.state);
    const changes = stopped ? {} : decide(run, runs);
    const state = changes.state ?? run.state;
    if (existing) {
      if (!(await o.store.update(name, run.attempt, changes))) throw new RunTakenOverError(name, run.attempt);
    } else {
      await o.store.insert({ ...run, ...changes });
    }
    return {
      name,
      action: state === 'queued' ? 'queue' : action,
      previous,
      state,
      ...(reaped ? { reaped } : {}),
    };
  });
}
