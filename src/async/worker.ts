/**
 * The worker's side: the background loop, waiting for a run in the foreground, and between them
 * the claim: take the run lock, pick up the run that waits for a worker, execute it.
 */

import { ifLockFree } from '../core/scope.js';
import { longRunning } from '../drivers/driver.js';
import { ConfigError, ConnectionError, LockstepError } from '../errors.js';
import { sleep } from '../util/duration.js';
import type { AsyncConfig } from './config.js';
import { reap, recordDeath } from './dead-worker.js';
import type { LoadedDefinition } from './definition.js';
import { AsyncRunError, RunTakenOverError } from './errors.js';
import { executeRun } from './executor.js';
import { fixFor, unknownName } from './messages.js';
import type { Opened } from './open.js';
import { type DefinitionFile, readDefinitionFiles } from './sources.js';
import { isActive, SETTLED_STATES } from './states.js';
import { type AsyncRun, NEW_RUN, storeOf } from './store.js';
import { type Step, transit } from './transitions.js';
import { type AsyncRunView, describeRun } from './view.js';

/**
 * Executes runs until `signal` aborts (or, with `once`, until no run waits for a worker),
 * counting them in `tally` (kept across the sessions of a worker that reconnects).
 */
export async function workUntil(
  o: Opened,
  config: AsyncConfig,
  options: { readonly signal?: AbortSignal | undefined; readonly once?: boolean | undefined },
  tally: { runs: number },
): Promise<void> {
  while (!options.signal?.aborted) {
    let executed = false;
    try {
      const files = await readDefinitionFiles(config.dir, config.cwd);
      executed = await claimAndExecute(o, config, files, options.signal);
    } catch (error) {
      if (!(error instanceof LockstepError) && o.session.connection.describeError(error).connectionLost) {
        throw new ConnectionError(
          `the worker lost its database session: ${(error as Error).message}. A run it was executing is left to whichever worker takes it next (its lock went with the session).`,
        );
      }
      // A worker outlives what goes wrong in one run; the run's state says what happened.
      if (!(error instanceof LockstepError) || options.once) throw error;
      config.on({ type: 'async-log', name: '-', message: error.message });
    }
    if (executed) tally.runs++;
    else if (options.once && !(await waitingForWorker(o))) break;
    else await sleepUnlessAborted(config.pollMs, options.signal);
  }
}

/**
 * Until `name` comes to rest: executes whatever is claimable (it, or runs queued ahead of it), or
 * follows the worker that executes it. Throws AsyncRunError when it ends errored or failed_at_startup.
 */
export async function waitFor(
  o: Opened,
  config: AsyncConfig,
  files: DefinitionFile[],
  name: string,
  signal: AbortSignal | undefined,
): Promise<AsyncRunView> {
  let last = '';
  for (;;) {
    const run = await o.store.read(name);
    if (!run && !files.some((f) => f.name === name)) throw unknownName(name, files, config.dir);
    if (!run || SETTLED_STATES.includes(run.state)) {
      // Settled: no worker of its own, so the lock says nothing about it.
      const view = await describeRun(
        run ?? { ...NEW_RUN, name },
        files.find((f) => f.name === name),
        o.driver.dialect,
        false,
      );
      if (view.state === 'errored' || view.state === 'failed_at_startup') {
        throw new AsyncRunError({
          migration: name,
          state: view.state,
          recordedError: view.error ?? 'no error recorded',
          fix: fixFor(name, view.state),
        });
      }
      return view;
    }
    if (signal?.aborted) throw new ConfigError(`stopped waiting for ${name}: it is ${run.state}`);
    if (await claimAndExecute(o, config, files)) continue;
    const seen = `${run.state}:${run.progress}:${run.worker}`;
    if (seen !== last) {
      last = seen;
      config.on({
        type: 'async-log',
        name,
        message: `${run.state} ${run.progress}%${run.worker ? `, executed by ${run.worker}` : ', waiting for a worker'}`,
      });
    }
    await sleep(Math.min(config.pollMs, 200));
  }
}

/** Whether a run waits to be picked up: queued, or active with no worker (or a dead one). */
async function waitingForWorker(o: Opened): Promise<boolean> {
  const runs = (await o.store.readAll()) ?? [];
  const active = runs.find((r) => isActive(r.state));
  if (runs.some((r) => r.state === 'queued') || (active && !active.worker)) return true;
  return active !== undefined && (await o.session.lock.holder()) === null;
}

/**
 * Takes the run lock if free, claims the active run that waits for a worker (or whose worker
 * died), else the head of the queue, and executes it. False when there was nothing to do.
 */
async function claimAndExecute(
  o: Opened,
  config: AsyncConfig,
  files: DefinitionFile[],
  signal?: AbortSignal,
): Promise<boolean> {
  const executed = await ifLockFree(o.session.lock, async () => {
    const claimed = await o.store.exclusive(() => claimNext(o, config));
    if (!claimed) return false;
    const work = await o.driver.connect();
    try {
      await longRunning(work, o.driver.dialect).watchForDisconnect();
      const file = files.find((f) => f.name === claimed.name);
      let definition: LoadedDefinition | undefined;
      let definitionProblem = `no file for ${claimed.name} in ${config.dir}`;
      if (file) {
        try {
          definition = await file.load(o.driver.dialect);
        } catch (error) {
          definitionProblem = (error as Error).message;
        }
      }
      if (!definition && claimed.state !== 'starting') {
        config.on({
          type: 'async-log',
          name: claimed.name,
          message: `running its frozen plan without its definition (${definitionProblem}): no healthcheck`,
        });
      }
      await executeRun({
        run: claimed,
        definition,
        definitionProblem,
        driver: o.driver,
        work,
        workStore: storeOf(work, o.driver.dialect, config.table),
        controlStore: o.store,
        runnerId: config.runnerId,
        orphans: config.orphans,
        on: config.on,
        signal,
      });
    } catch (error) {
      if (!(error instanceof RunTakenOverError)) throw error;
      config.on({ type: 'async-log', name: claimed.name, message: error.message });
    } finally {
      await work.connection.close();
    }
    return true;
  });
  return executed ?? false;
}

/** In the exclusive transaction, with the run lock held: the run this worker executes next, if any. */
async function claimNext(o: Opened, config: AsyncConfig): Promise<AsyncRun | undefined> {
  const runs = (await o.store.readAll()) ?? [];
  const active = runs.find((r) => isActive(r.state));
  if (active?.worker) {
    // We hold the lock, so its worker does not: it is dead.
    if (config.onDeadWorker === 'resume') {
      await recordDeath(o, active, `resumed by ${config.runnerId}`);
      return claim(o, config, active, 'take-over');
    }
    await reap(o, config, active);
  } else if (active) {
    return claim(o, config, active, 'claim');
  }
  const head = runs
    .filter((r) => r.state === 'queued')
    .sort((a, b) => (a.queuedAt ?? '').localeCompare(b.queuedAt ?? '') || a.name.localeCompare(b.name))[0];
  return head ? claim(o, config, head, 'claim-queued') : undefined;
}

async function claim(
  o: Opened,
  config: AsyncConfig,
  run: AsyncRun,
  step: Extract<Step, 'claim' | 'take-over' | 'claim-queued'>,
): Promise<AsyncRun> {
  const changes = transit(step, run, { by: config.runnerId, now: new Date().toISOString() });
  if (!(await o.store.update(run.name, run.attempt, changes))) {
    throw new RunTakenOverError(run.name, run.attempt);
  }
  return { ...run, ...changes };
}

export async function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return sleep(ms);
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
