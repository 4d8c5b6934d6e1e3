/**
 * Long-running migrations: list, status, trigger, stop, resume, rollback, and the worker that
 * executes them (SPEC "Long-running migrations"); the CLI and the HTTP server are thin layers over
 * this class. Each method opens one session on the store; what it does there lives beside it:
 * requests.ts (a person's actions), worker.ts (claiming and executing), transitions.ts (the states).
 */

import { SessionScope } from '../core/scope.js';
import type { Driver } from '../drivers/driver.js';
import { ConnectionError, PoolerRefusedError } from '../errors.js';
import { formatDuration } from '../util/duration.js';
import { type AsyncConfig, type AsyncOptions, resolveAsyncConfig } from './config.js';
import { checkName, unknownName } from './messages.js';
import { ensureStore, type Opened } from './open.js';
import { planRun, resolveParameters } from './plan.js';
import { type AsyncActionResult, restartRun, stopRun, triggerRun } from './requests.js';
import { type DefinitionFile, readDefinitionFiles } from './sources.js';
import { isActive } from './states.js';
import { type AsyncErrorRecord, NEW_RUN, storeOf } from './store.js';
import { type AsyncRunView, describeRun } from './view.js';
import { sleepUnlessAborted, waitFor, workUntil } from './worker.js';

export type { AsyncActionResult } from './requests.js';

export interface AsyncStatusResult {
  readonly target: string;
  readonly runs: AsyncRunView[];
  /** Error rows, oldest first: of the named run, or of all. */
  readonly errors: AsyncErrorRecord[];
}

export class AsyncMigrator {
  readonly #config: AsyncConfig;
  readonly #scope: SessionScope;

  constructor(options: AsyncOptions = {}) {
    this.#config = resolveAsyncConfig(options);
    const { url, table, runnerId, caller, pooler, coordinatorUrl } = this.#config;
    this.#scope = new SessionScope({ url, table, runnerId, caller, pooler, coordinatorUrl });
  }

  /** The store's location, password hidden. */
  get target(): string {
    return `${this.#scope.target} (store ${this.#config.table})`;
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
          rows.some((r) => isActive(r.state) && r.worker) && (await o.session.lock.holder()) !== null;
        const runs: AsyncRunView[] = [];
        for (const n of names.filter((n) => name === undefined || n === name)) {
          const row = rows.find((r) => r.name === n) ?? { ...NEW_RUN, name: n };
          runs.push(
            await describeRun(
              row,
              files.find((f) => f.name === n),
              o.driver.dialect,
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
      const files = await this.#files();
      const file = files.find((f) => f.name === name);
      if (!file) throw unknownName(name, files, this.#config.dir);
      // Bad input stops here, before the database is touched.
      const driver = await this.#driver();
      const definition = await file.load(driver.dialect);
      const plan = planRun(definition, resolveParameters(definition, options.parameters), driver.dialect);
      return this.#withSession(async (o) => {
        await ensureStore(o, this.#config);
        return triggerRun(o, this.#config, files, name, definition, plan, options.queue);
      }, driver);
    });
  }

  /**
   * Graceful: the worker finishes its operation or batch, then the run is errored (resume goes
   * on from there). `force` also cancels its running statement on the server.
   */
  stop(name: string, options: { readonly force?: boolean } = {}): Promise<AsyncActionResult> {
    return this.#request(name, (o) => stopRun(o, this.#config, name, options.force));
  }

  /** An errored run goes on where it stopped, re-running the operation that was in flight. */
  resume(name: string): Promise<AsyncActionResult> {
    return this.#request(name, (o) => restartRun(o, this.#config, name, 'resume'));
  }

  /** Undoes a run (errored, or completed): the rollback SQL of its operations, newest first. */
  rollback(name: string): Promise<AsyncActionResult> {
    return this.#request(name, (o) => restartRun(o, this.#config, name, 'rollback'));
  }

  /**
   * Works in the foreground until `name` comes to rest (completed, errored, rolled back, ...):
   * executes whatever is claimable (it, or runs queued ahead of it), or follows the worker that
   * executes it. Throws AsyncRunError when it ends errored or failed_at_startup.
   */
  wait(name: string, options: { readonly signal?: AbortSignal } = {}): Promise<AsyncRunView> {
    return this.#guard(async () => {
      const files = await this.#files();
      return this.#withSession((o) => waitFor(o, this.#config, files, name, options.signal));
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
      const tally = { runs: 0 };
      // A worker that had its session outlives the database restarting (or the network dropping):
      // it reconnects with backoff, and the run it was executing is then a dead worker's, taken
      // over or marked errored per --on-dead. One that never reached the database says so at once.
      for (let failures = 0; ; ) {
        let connected = false;
        try {
          await this.#withSession(async (o) => {
            connected = true;
            await ensureStore(o, this.#config);
            await workUntil(o, this.#config, options, tally);
          });
          return { runs: tally.runs };
        } catch (error) {
          const lost = error instanceof ConnectionError && !options.once && !options.signal?.aborted;
          if (!lost || (!connected && failures === 0)) throw error;
          failures = connected ? 1 : failures + 1;
          const delayMs = reconnectDelayMs(failures);
          this.#config.on({
            type: 'async-log',
            name: '-',
            message: `${error.message} Reconnecting in ${formatDuration(delayMs)} (attempt ${failures}).`,
          });
          await sleepUnlessAborted(delayMs, options.signal);
          if (options.signal?.aborted) return { runs: tally.runs };
        }
      }
    });
  }

  /** Stop, resume, rollback: a name is enough (a run whose file is gone still has its frozen plan). */
  #request(name: string, act: (o: Opened) => Promise<AsyncActionResult>): Promise<AsyncActionResult> {
    return this.#guard(async () => {
      checkName(name);
      return this.#withSession(async (o) => {
        await ensureStore(o, this.#config);
        return act(o);
      });
    });
  }

  async #files(): Promise<DefinitionFile[]> {
    return readDefinitionFiles(this.#config.dir, this.#config.cwd);
  }

  #driver(): Promise<Driver> {
    return this.#scope.openDriver();
  }

  #withSession<T>(work: (o: Opened) => Promise<T>, opened?: Driver): Promise<T> {
    return this.#scope.withSession((session, driver) => {
      if (session.lock.heldUntil === 'commit') throw throughTransactionPooler(this.#scope.target);
      return work({ driver, session, store: storeOf(session, driver.dialect, this.#config.table) });
    }, opened);
  }

  #guard<T>(work: () => Promise<T>): Promise<T> {
    return this.#scope.command(work);
  }
}

/** A worker's liveness is its session's lock, and state transitions take session locks too. */
function throughTransactionPooler(target: string): PoolerRefusedError {
  return new PoolerRefusedError({
    reason: 'long-running',
    message:
      `long-running migrations need a database session of their own, which a transaction-mode pooler ` +
      `(pooler=transaction) does not keep: ${target}. Nothing was changed.\n` +
      '  fix: run lockstep async commands (and workers) with a URL that reaches PostgreSQL itself, or a ' +
      'session-mode pooler (pooler=session)',
  });
}

/** Backoff between a worker's attempts to reach its database again: 0.2 s doubling to 10 s, jittered. */
export function reconnectDelayMs(attempt: number): number {
  const base = Math.min(10_000, 200 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}
