/**
 * Long-running migrations: list, status, trigger, stop, resume, rollback, and the worker that
 * executes them. Every transition is one exclusive transaction that checks and changes the state
 * (SPEC "Long-running migrations"); the CLI and the HTTP server are thin layers over this class.
 */

import { acquireLock } from '../core/lock.js';
import type { Driver, Session } from '../drivers/driver.js';
import { openDriver, redactUrl, withoutSecrets } from '../drivers/registry.js';
import { ConfigError, ConnectionError, LockstepError } from '../errors.js';
import { sleep } from '../util/duration.js';
import { type AsyncConfig, type AsyncOptions, resolveAsyncConfig } from './config.js';
import type { LoadedDefinition } from './definition.js';
import { AsyncRefusedError, AsyncRunError, AsyncUnknownError, RunTakenOverError } from './errors.js';
import { executeRun } from './executor.js';
import { planChecksum, planRun, resolveParameters, runMarker } from './plan.js';
import { ASYNC_NAME, type DefinitionFile, readDefinitionFiles } from './sources.js';
import { type AsyncAction, type AsyncState, allowedActions, isActive, SETTLED_STATES } from './states.js';
import { type AsyncErrorRecord, type AsyncRun, AsyncStore, NEW_RUN } from './store.js';
import { type AsyncRunView, describeRun } from './view.js';

export interface AsyncStatusResult {
  readonly target: string;
  readonly runs: AsyncRunView[];
  /** Error rows, oldest first: of the named run, or of all. */
  readonly errors: AsyncErrorRecord[];
}

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

interface Opened {
  readonly driver: Driver;
  readonly session: Session;
  readonly store: AsyncStore;
}

export class AsyncMigrator {
  readonly #config: AsyncConfig;

  constructor(options: AsyncOptions = {}) {
    this.#config = resolveAsyncConfig(options);
  }

  /** The store's location, password hidden. */
  get target(): string {
    return `${redactUrl(this.#config.url)} (store ${this.#config.table})`;
  }

  /** Every definition and every run, with state, progress and liveness. Changes nothing. */
  status(name?: string): Promise<AsyncStatusResult> {
    return this.#guard(async () => {
      const files = await this.#files();
      return this.#withSession(async (o) => {
        const rows = (await o.store.readAll()) ?? [];
        // A run whose file is gone is still shown: its frozen plan still works.
        const names = [...new Set([...files.map((f) => f.name), ...rows.map((r) => r.name)])].sort();
        if (name !== undefined && !names.includes(name)) throw unknownName(name, files, this.#config.dir);
        const lockHeld =
          rows.some((r) => isActive(r.state) && r.worker) && (await o.session.lockHolder()) !== null;
        const runs: AsyncRunView[] = [];
        for (const n of names.filter((n) => name === undefined || n === name)) {
          const row = rows.find((r) => r.name === n) ?? { ...NEW_RUN, name: n };
          runs.push(
            await describeRun(
              row,
              files.find((f) => f.name === n),
              o.driver,
              lockHeld,
            ),
          );
        }
        return { target: this.target, runs, errors: await o.store.errors(name) };
      });
    });
  }

  /**
   * Starts a run: freezes its plan and moves it to `starting`, atomically refusing when another
   * run is active (or queueing it, with `queue`). A worker (or `wait`) executes it.
   */
  trigger(
    name: string,
    options: { readonly parameters?: Readonly<Record<string, unknown>>; readonly queue?: boolean } = {},
  ): Promise<AsyncActionResult> {
    return this.#guard(async () => {
      const file = await this.#file(name);
      // Bad input stops here, before the database is touched.
      const driver = await this.#driver();
      const definition = await file.load(driver);
      const values = resolveParameters(definition, options.parameters);
      const plan = planRun(definition, values, driver);
      return this.#withSession(async (o) => {
        await this.#ensureStore(o);
        return this.#transition(o, name, 'trigger', async (run, runs) => {
          const active = runs.find((r) => isActive(r.state) && r.name !== name);
          const queuedAhead = new Set(runs.filter((r) => r.state === 'queued').map((r) => r.name));
          for (const dependency of definition.dependsOn) {
            const state = runs.find((r) => r.name === dependency)?.state ?? 'not_started';
            const coming = options.queue && (queuedAhead.has(dependency) || active?.name === dependency);
            if (state !== 'completed' && !coming) {
              throw new AsyncRefusedError({
                migration: name,
                action: 'trigger',
                state: run.state,
                reason: `it depends on ${dependency}, which is ${state}; run that first${state === 'not_started' ? ` (lockstep async trigger ${dependency})` : ''}`,
              });
            }
          }
          if (active && !options.queue) {
            throw new AsyncRefusedError({
              migration: name,
              action: 'trigger',
              state: run.state,
              active: active.name,
              reason: `${active.name} is ${active.state}${active.worker ? ` (worker ${active.worker})` : ''}, and one long-running migration runs at a time. Wait for it, stop it (lockstep async stop ${active.name}), or queue this one with --queue`,
            });
          }
          const now = new Date().toISOString();
          return {
            ...(active ? { state: 'queued', queuedAt: now } : { state: 'starting', queuedAt: null }),
            direction: 'forward',
            plan,
            checksum: planChecksum(plan),
            opIndex: 0,
            opCount: plan.operations.length,
            cursor: null,
            rangeMin: null,
            rangeMax: null,
            progress: 0,
            worker: null,
            queryTag: null,
            requestedBy: this.#config.runnerId,
            note: null,
            error: null,
            startedAt: now,
            finishedAt: null,
          };
        });
      });
    });
  }

  /**
   * Graceful: the worker finishes its operation or batch, then the run is errored (resume goes
   * on from there). `force` also cancels its running statement on the server.
   */
  stop(name: string, options: { readonly force?: boolean } = {}): Promise<AsyncActionResult> {
    return this.#guard(async () => {
      checkName(name);
      return this.#withSession(async (o) => {
        await this.#ensureStore(o);
        const action = options.force ? 'force-stop' : 'stop';
        const result = await this.#transition(o, name, action, async (run) => {
          switch (run.state) {
            case 'queued':
              return {
                state: 'not_started',
                queuedAt: null,
                note: `taken off the queue by ${this.#config.runnerId}`,
              };
            case 'starting':
              // A worker running its prechecks finds its attempt gone and stops.
              return {
                state: 'failed_at_startup',
                attempt: run.attempt + 1,
                error: `stopped by ${this.#config.runnerId} before it started`,
                finishedAt: new Date().toISOString(),
              };
            case 'stopping':
              return {}; // --force: the statement is cancelled below
            default:
              return { state: 'stopping', note: `stop requested by ${this.#config.runnerId}` };
          }
        });
        if (!options.force) return result;
        if (!o.driver.sql.cancellable) {
          return {
            ...result,
            cancelled: 0,
            note: `${o.driver.dialect} cannot cancel a running statement: the worker stops after the current one`,
          };
        }
        let cancelled = 0;
        for (const query of await o.session.findRunning(runMarker(name))) {
          await o.session.cancelRunning(query.id);
          cancelled++;
        }
        return { ...result, cancelled };
      });
    });
  }

  /** An errored run goes on where it stopped, re-running the operation that was in flight. */
  resume(name: string): Promise<AsyncActionResult> {
    return this.#guard(async () => {
      checkName(name);
      return this.#withSession(async (o) => {
        await this.#ensureStore(o);
        return this.#transition(o, name, 'resume', async (run, runs) => {
          refuseIfOtherActive(name, 'resume', run, runs);
          return {
            state: 'running',
            direction: 'forward',
            worker: null,
            error: null,
            note: `resumed by ${this.#config.runnerId}`,
            finishedAt: null,
            // A rollback undid part of the operation it stopped in: that one starts over.
            ...(run.direction === 'rollback' ? { cursor: null, rangeMin: null, rangeMax: null } : {}),
          };
        });
      });
    });
  }

  /** Undoes a run (errored, or completed): the rollback SQL of its operations, newest first. */
  rollback(name: string): Promise<AsyncActionResult> {
    return this.#guard(async () => {
      checkName(name);
      return this.#withSession(async (o) => {
        await this.#ensureStore(o);
        return this.#transition(o, name, 'rollback', async (run, runs) => {
          refuseIfOtherActive(name, 'rollback', run, runs);
          const fromForward = run.direction === 'forward';
          return {
            state: 'rolling_back',
            direction: 'rollback',
            worker: null,
            error: null,
            note: `rollback requested by ${this.#config.runnerId}`,
            finishedAt: null,
            opIndex: fromForward ? Math.min(run.opIndex, run.opCount - 1) : run.opIndex,
            ...(fromForward ? { cursor: null, rangeMin: null, rangeMax: null } : {}),
          };
        });
      });
    });
  }

  /**
   * Works in the foreground until `name` comes to rest (completed, errored, rolled back, ...):
   * executes whatever is claimable (it, or runs queued ahead of it), or follows the worker that
   * executes it. Throws AsyncRunError when it ends errored or failed_at_startup.
   */
  wait(name: string, options: { readonly signal?: AbortSignal } = {}): Promise<AsyncRunView> {
    return this.#guard(async () => {
      const files = await this.#files();
      return this.#withSession(async (o) => {
        let last = '';
        for (;;) {
          const run = await o.store.read(name);
          if (!run && !files.some((f) => f.name === name)) throw unknownName(name, files, this.#config.dir);
          if (!run || SETTLED_STATES.includes(run.state)) {
            // Settled: no worker of its own, so the lock says nothing about it.
            const view = await describeRun(
              run ?? { ...NEW_RUN, name },
              files.find((f) => f.name === name),
              o.driver,
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
          if (options.signal?.aborted)
            throw new ConfigError(`stopped waiting for ${name}: it is ${run.state}`);
          if (await this.#claimAndExecute(o, files)) continue;
          const seen = `${run.state}:${run.progress}:${run.worker}`;
          if (seen !== last) {
            last = seen;
            this.#config.on({
              type: 'async-log',
              name,
              message: `${run.state} ${run.progress}%${run.worker ? `, executed by ${run.worker}` : ', waiting for a worker'}`,
            });
          }
          await sleep(Math.min(this.#config.pollMs, 200));
        }
      });
    });
  }

  /**
   * The background worker: executes triggered runs one at a time until `signal` aborts (or, with
   * `once`, until no run waits for a worker). Several may run: exactly one executes each run.
   */
  work(
    options: { readonly signal?: AbortSignal; readonly once?: boolean } = {},
  ): Promise<{ readonly runs: number }> {
    return this.#guard(async () => {
      return this.#withSession(async (o) => {
        await this.#ensureStore(o);
        let runs = 0;
        while (!options.signal?.aborted) {
          let executed = false;
          try {
            executed = await this.#claimAndExecute(o, await this.#files(), options.signal);
          } catch (error) {
            if (!(error instanceof LockstepError) && o.session.describeError(error).connectionLost) {
              throw new ConnectionError(
                `the worker lost its database session: ${(error as Error).message}. A run it was executing is left to the next worker (its lock is free).`,
              );
            }
            // A worker outlives what goes wrong in one run; the run's state says what happened.
            if (!(error instanceof LockstepError) || options.once) throw error;
            this.#config.on({ type: 'async-log', name: '-', message: error.message });
          }
          if (executed) runs++;
          else if (options.once && !(await this.#waitingForWorker(o))) break;
          else await sleepUnlessAborted(this.#config.pollMs, options.signal);
        }
        return { runs };
      });
    });
  }

  /** Whether a run waits to be picked up: queued, or active with no worker (or a dead one). */
  async #waitingForWorker(o: Opened): Promise<boolean> {
    const runs = (await o.store.readAll()) ?? [];
    const active = runs.find((r) => isActive(r.state));
    if (runs.some((r) => r.state === 'queued') || (active && !active.worker)) return true;
    return active !== undefined && (await o.session.lockHolder()) === null;
  }

  /**
   * Takes the run lock if free, claims the active run that waits for a worker (or whose worker
   * died), else the head of the queue, and executes it. False when there was nothing to do.
   */
  async #claimAndExecute(o: Opened, files: DefinitionFile[], signal?: AbortSignal): Promise<boolean> {
    if (!(await o.session.tryLock())) return false;
    let claimed: AsyncRun | undefined;
    try {
      claimed = await o.store.exclusive(async () => {
        const runs = (await o.store.readAll()) ?? [];
        const active = runs.find((r) => isActive(r.state));
        if (active?.worker) {
          // We hold the lock, so its worker does not: it is dead.
          if (this.#config.onDeadWorker === 'resume') {
            await this.#deathRecord(o, active, `resumed by ${this.#config.runnerId}`);
            return this.#claim(o, active, {});
          }
          await this.#reap(o, active);
        } else if (active) {
          return this.#claim(o, active, {});
        }
        const head = runs
          .filter((r) => r.state === 'queued')
          .sort(
            (a, b) => (a.queuedAt ?? '').localeCompare(b.queuedAt ?? '') || a.name.localeCompare(b.name),
          )[0];
        return head
          ? this.#claim(o, head, { state: 'starting', startedAt: new Date().toISOString() })
          : undefined;
      });
      if (!claimed) return false;
      const work = await o.driver.connect();
      try {
        await work.watchForDisconnect();
        const file = files.find((f) => f.name === claimed?.name);
        let definition: LoadedDefinition | undefined;
        let definitionProblem = `no file for ${claimed.name} in ${this.#config.dir}`;
        if (file) {
          try {
            definition = await file.load(o.driver);
          } catch (error) {
            definitionProblem = (error as Error).message;
          }
        }
        if (!definition && claimed.state !== 'starting') {
          this.#config.on({
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
          workStore: new AsyncStore(work, o.driver.sql, this.#config.table),
          control: o.session,
          controlStore: o.store,
          runnerId: this.#config.runnerId,
          orphans: this.#config.orphans,
          on: this.#config.on,
          signal,
        });
      } catch (error) {
        if (!(error instanceof RunTakenOverError)) throw error;
        this.#config.on({ type: 'async-log', name: claimed.name, message: error.message });
      } finally {
        await work.close();
      }
      return true;
    } finally {
      await o.session.unlock().catch(() => {});
    }
  }

  async #claim(o: Opened, run: AsyncRun, changes: Partial<AsyncRun>): Promise<AsyncRun> {
    const claim = { ...changes, worker: this.#config.runnerId, attempt: run.attempt + 1 };
    if (!(await o.store.update(run.name, run.attempt, claim))) {
      throw new RunTakenOverError(run.name, run.attempt);
    }
    return { ...run, ...claim };
  }

  /**
   * Runs `decide` on the run's row in an exclusive transaction, after marking a dead worker's run
   * errored, and writes what it returns. `decide` throws AsyncRefusedError to refuse.
   */
  async #transition(
    o: Opened,
    name: string,
    action: AsyncAction,
    decide: (run: AsyncRun, runs: AsyncRun[]) => Promise<Partial<AsyncRun>>,
  ): Promise<AsyncActionResult> {
    return o.store.exclusive(async () => {
      let runs = (await o.store.readAll()) ?? [];
      const previous = runs.find((r) => r.name === name)?.state ?? 'not_started';
      let reaped: string | undefined;
      const active = runs.find((r) => isActive(r.state) && r.worker);
      if (active && (await o.session.lockHolder()) === null) {
        await this.#reap(o, active);
        reaped = active.name;
        runs = (await o.store.readAll()) ?? [];
      }
      const existing = runs.find((r) => r.name === name);
      if (!existing) {
        const files = await this.#files();
        if (!files.some((f) => f.name === name)) throw unknownName(name, files, this.#config.dir);
      }
      const run = existing ?? { ...NEW_RUN, name };
      // A run found dead on the way to a stop is stopped: marking it errored was the stop.
      const stopped = reaped === name && (action === 'stop' || action === 'force-stop');
      if (!stopped && !allowedActions(run.state).includes(action)) {
        throw new AsyncRefusedError({
          migration: name,
          action,
          state: run.state,
          reason: stateReason(run.state, action),
        });
      }
      const changes = stopped ? {} : await decide(run, runs);
      const state = changes.state ?? run.state;
      if (existing) {
        if (!(await o.store.update(name, run.attempt, changes)))
          throw new RunTakenOverError(name, run.attempt);
      } else {
        await o.store.insert({ ...run, ...changes });
      }
      const result: AsyncActionResult = {
        name,
        action: state === 'queued' ? 'queue' : action,
        previous,
        state,
        ...(reaped ? { reaped } : {}),
      };
      return result;
    });
  }

  /** A run whose worker is gone becomes errored, with an error row saying so. */
  async #reap(o: Opened, run: AsyncRun): Promise<void> {
    const message = await this.#deathRecord(
      o,
      run,
      'marked errored: resume continues it, rollback undoes it',
    );
    await o.store.update(run.name, run.attempt, {
      state: 'errored',
      attempt: run.attempt + 1,
      error: message,
      queryTag: null,
    });
    this.#config.on({
      type: 'async-state',
      name: run.name,
      state: 'errored',
      previous: run.state,
      detail: message,
    });
  }

  async #deathRecord(o: Opened, run: AsyncRun, outcome: string): Promise<string> {
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

  /** The state tables, created under the migration lock the first time they are needed. */
  async #ensureStore(o: Opened): Promise<void> {
    if ((await o.store.readAll()) !== null) return;
    const config = this.#config;
    const ledger = await openDriver(config.url, { table: config.ledgerTable, runnerId: config.runnerId });
    const session = await ledger.connect();
    try {
      await acquireLock(session, { timeoutMs: config.lockTimeoutMs, target: ledger.target, on: config.on });
      try {
        await new AsyncStore(session, o.driver.sql, config.table).create();
      } finally {
        await session.unlock().catch(() => {});
      }
    } finally {
      await session.close();
    }
  }

  async #files(): Promise<DefinitionFile[]> {
    return readDefinitionFiles(this.#config.dir, this.#config.cwd);
  }

  async #file(name: string): Promise<DefinitionFile> {
    const files = await this.#files();
    const file = files.find((f) => f.name === name);
    if (!file) throw unknownName(name, files, this.#config.dir);
    return file;
  }

  #driver(): Promise<Driver> {
    return openDriver(this.#config.url, { table: this.#config.table, runnerId: this.#config.runnerId });
  }

  async #withSession<T>(work: (o: Opened) => Promise<T>, opened?: Driver): Promise<T> {
    const driver = opened ?? (await this.#driver());
    const session = await driver.connect();
    try {
      return await work({ driver, session, store: new AsyncStore(session, driver.sql, this.#config.table) });
    } finally {
      await session.close().catch(() => {});
    }
  }

  #guard<T>(work: () => Promise<T>): Promise<T> {
    return withoutSecrets(this.#config.url, work);
  }
}

/** Stop, resume and rollback also work on a run whose file is gone (its plan is frozen): a name is enough. */
function checkName(name: string): void {
  if (!ASYNC_NAME.test(name)) {
    throw new ConfigError(`"${name}" is not a long-running migration name (letters, digits, _ and -)`);
  }
}

function refuseIfOtherActive(name: string, action: AsyncAction, run: AsyncRun, runs: AsyncRun[]): void {
  const active = runs.find((r) => isActive(r.state) && r.name !== name);
  if (active) {
    throw new AsyncRefusedError({
      migration: name,
      action,
      state: run.state,
      active: active.name,
      reason: `${active.name} is ${active.state}, and one long-running migration runs at a time`,
    });
  }
}

function stateReason(state: AsyncState, action: AsyncAction): string {
  if (state === 'stopping' && action === 'stop')
    return 'it is already stopping; add --force to cancel its running statement';
  const allowed = allowedActions(state);
  return `it is ${state}${allowed.length > 0 ? ` (possible now: ${allowed.join(', ')})` : ''}, so ${action} does not apply`;
}

function fixFor(name: string, state: AsyncState): string {
  return state === 'failed_at_startup'
    ? `fix the cause, then lockstep async trigger ${name}`
    : `lockstep async resume ${name} (re-runs the operation that failed) or lockstep async rollback ${name}`;
}

function unknownName(name: string, files: DefinitionFile[], dir: string): AsyncUnknownError {
  const known = files.map((f) => f.name);
  return new AsyncUnknownError(
    name,
    `no long-running migration named "${name}" in ${dir}${known.length > 0 ? `; there are: ${known.join(', ')}` : ' (it has none)'}`,
  );
}

async function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
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
