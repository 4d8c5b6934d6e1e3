/**
 * Executes one claimed run of a long-running migration: startup checks, then its frozen
 * operations forward (or their rollbacks backward), committing progress after every operation
 * and batch. Every write names the run's attempt, so a worker that was taken over changes nothing.
 */

import { inTransaction, refusal, runsInTransaction, StatementFailed } from '../core/statements.js';
import { type DbErrorInfo, type Driver, longRunning, type Session } from '../drivers/driver.js';
import { sleep } from '../util/duration.js';
import type { AsyncContext, LoadedDefinition, PlannedOperation, PlannedStatement } from './definition.js';
import { RunTakenOverError } from './errors.js';
import type { AsyncEventHandler } from './events.js';
import { bindRange, progressPercent, queryTag, runMarker, tagged } from './plan.js';
import type { AsyncErrorRecord, AsyncRun, AsyncStore } from './store.js';
import { type Step, type StepFacts, transit } from './transitions.js';

/** How long to wait between looks at a statement a dead worker left running. */
const ORPHAN_POLL_MS = 250;
const ORPHAN_REPORT_MS = 5_000;

export interface Execution {
  /** The run as claimed: its `attempt` is this execution's. */
  readonly run: AsyncRun;
  /** The definition, for its checks; undefined when its file is gone or broken (`definitionProblem`). */
  readonly definition: LoadedDefinition | undefined;
  readonly definitionProblem?: string | undefined;
  readonly driver: Driver;
  /** Runs the operations and records progress (in the same transaction as each batch). */
  readonly work: Session;
  readonly workStore: AsyncStore;
  /** The store as the session holding the run lock reaches it: records the failure when the work session is lost. */
  readonly controlStore: AsyncStore;
  /** `host:pid` of this worker. */
  readonly runnerId: string;
  /** What to do with a statement a dead worker left running: wait for it, or cancel it. */
  readonly orphans: 'wait' | 'cancel';
  readonly on: AsyncEventHandler;
  /** The worker is shutting down: at the next batch or operation boundary, hand the run over. */
  readonly signal?: AbortSignal | undefined;
}

/** A statement (or a check) failed: where, and what the database said. */
class OperationFailure extends StatementFailed {
  constructor(
    /** 1-based operation, or null for a startup check. */
    readonly operation: number | null,
    readonly statement: PlannedStatement | null,
    info: DbErrorInfo,
    line: number | undefined,
  ) {
    super(info, line);
  }
}

/** A stop was requested (or the worker is shutting down) and honoured, as recorded. */
class Stopped extends Error {}

export async function executeRun(x: Execution): Promise<AsyncRun> {
  return new RunExecutor(x).execute();
}

class RunExecutor {
  readonly #x: Execution;
  #run: AsyncRun;
  #warnedTimeout = false;

  constructor(x: Execution) {
    this.#x = x;
    this.#run = x.run;
  }

  get #plan() {
    const plan = this.#run.plan;
    if (!plan) throw new Error(`run ${this.#run.name} has no frozen plan`);
    return plan;
  }

  async execute(): Promise<AsyncRun> {
    try {
      await this.#settleOrphans();
      if (this.#run.state === 'stopping') await this.#stop('before it continued');
      if (this.#run.state === 'starting') {
        if (!(await this.#startup())) return this.#run;
      } else if (!(await this.#healthy())) {
        return this.#run;
      }
      if (this.#run.direction === 'forward') {
        for (let i = this.#run.opIndex; i < this.#plan.operations.length; i++) {
          await this.#stopIfRequested();
          await this.#operation(i, 'forward');
        }
      } else {
        for (let i = this.#run.opIndex; i >= 0; i--) {
          await this.#stopIfRequested();
          await this.#operation(i, 'rollback');
        }
      }
      return this.#run;
    } catch (error) {
      if (error instanceof Stopped) return this.#run;
      if (error instanceof OperationFailure) return this.#fail(error);
      throw error;
    }
  }

  /** Dependencies, isRequired, precheck, healthcheck: then running, or failed_at_startup. */
  async #startup(): Promise<boolean> {
    const runs = (await this.#x.workStore.readAll()) ?? [];
    for (const dependency of this.#plan.dependsOn) {
      const state = runs.find((r) => r.name === dependency)?.state ?? 'not_started';
      if (state !== 'completed') {
        return this.#failStartup(`depends on ${dependency}, which is ${state} (it must be completed first)`);
      }
    }
    const definition = this.#x.definition;
    if (!definition)
      return this.#failStartup(`its definition cannot be loaded: ${this.#x.definitionProblem}`);
    const ctx = this.#context();
    if (
      definition.isRequired &&
      (await this.#check('isRequired', () => definition.isRequired?.(ctx))) !== true
    ) {
      await this.#record(this.#step('not-required', { now: new Date().toISOString() }));
      return false;
    }
    for (const which of ['precheck', 'healthcheck'] as const) {
      const check = definition[which];
      if (!check) continue;
      const verdict = await this.#check(which, () => check(ctx));
      if (verdict !== true) return this.#failStartup(verdict);
    }
    await this.#record(this.#step('start', { now: new Date().toISOString() }));
    return true;
  }

  /** A resumed (or taken over) run checks its healthcheck again; a failure leaves it errored. */
  async #healthy(): Promise<boolean> {
    const check = this.#x.definition?.healthcheck;
    if (!check) return true;
    const verdict = await this.#check('healthcheck', () => check(this.#context()));
    if (verdict === true) return true;
    const message = `healthcheck failed on resume: ${verdict}`;
    await this.#record(this.#step('fail', { message, now: new Date().toISOString() }), {
      operation: null,
      statement: null,
      message,
    });
    return false;
  }

  /** Runs a check: true to go on, or why not. A check that throws fails the run at its start. */
  async #check(which: string, run: () => unknown): Promise<true | string> {
    let verdict: unknown;
    try {
      verdict = await run();
    } catch (error) {
      const info = this.#x.work.connection.describeError(error);
      throw new OperationFailure(
        null,
        null,
        { ...info, message: `${which} threw: ${info.message}` },
        undefined,
      );
    }
    if (verdict === false) return `${which} returned false`;
    return typeof verdict === 'string' ? verdict : true;
  }

  async #failStartup(reason: string): Promise<false> {
    await this.#record(this.#step('startup-refused', { reason, now: new Date().toISOString() }), {
      operation: null,
      statement: null,
      message: reason,
    });
    return false;
  }

  /** Runs operation `i` (or its rollback) and records it done, in one transaction where it can. */
  async #operation(i: number, direction: 'forward' | 'rollback'): Promise<void> {
    const operations = this.#plan.operations;
    const op = operations[i] as PlannedOperation;
    const statements = direction === 'forward' ? op.statements : op.rollback;
    // Each batch is a transaction (where the database has any); another operation is one unless
    // it says transaction:false (CREATE INDEX CONCURRENTLY) or the database cannot (DDL on MySQL).
    const dialect = this.#x.driver.dialect;
    const transactional =
      op.kind === 'batched'
        ? !dialect.noTransactions
        : runsInTransaction(dialect, op.transaction, statements);
    this.#x.on({
      type: 'async-operation',
      name: this.#run.name,
      direction,
      operation: i + 1,
      count: operations.length,
      kind: op.kind,
      transactional,
    });
    const next = direction === 'forward' ? i + 1 : i - 1;
    // The last operation's record also ends the run: no window between the two.
    const done = (): Partial<AsyncRun> => {
      const step = {
        opIndex: Math.max(next, 0),
        cursor: null,
        rangeMin: null,
        rangeMax: null,
        queryTag: null,
      };
      const end = { now: new Date().toISOString() };
      if (next === operations.length) return { ...step, ...this.#step('complete', end) };
      if (next < 0) return { ...step, ...this.#step('rolled-back', end) };
      return { ...step, progress: this.#percent({ opIndex: next, cursor: null, direction }) };
    };
    if (statements.length === 0) {
      await this.#record(done());
      return;
    }
    if (op.timeoutMs && !this.#x.driver.dialect.cancellable && !this.#warnedTimeout) {
      this.#warnedTimeout = true;
      this.#x.on({
        type: 'async-log',
        name: this.#run.name,
        message: `timeouts are not enforced on ${this.#x.driver.dialect}: a running statement cannot be interrupted`,
      });
    }
    const restore = await longRunning(this.#x.work, this.#x.driver.dialect).applyLimits({
      statementTimeoutMs: op.timeoutMs ?? undefined,
      settings: op.settings,
    });
    try {
      if (op.kind === 'batched') {
        await this.#batches(i, op, statements, direction, transactional);
        await this.#record(done());
      } else if (transactional) {
        await inTransaction(this.#x.work.connection, async () => {
          for (const [j, statement] of statements.entries()) {
            await this.#execute(i, statement, statement.sql, this.#tag(i, direction, `s${j + 1}`));
          }
          await this.#update(done());
        });
      } else {
        for (const [j, statement] of statements.entries()) {
          const tag = this.#tag(i, direction, `s${j + 1}`);
          // In flight, for status and for whoever takes over: and a fence before each statement.
          await this.#update({ queryTag: tag });
          await this.#execute(i, statement, statement.sql, tag);
        }
        await this.#record(done());
      }
    } finally {
      await restore().catch(() => {});
    }
  }

  /** Walks the key range, one transaction per batch with its progress record. */
  async #batches(
    i: number,
    op: PlannedOperation,
    statements: readonly PlannedStatement[],
    direction: 'forward' | 'rollback',
    transactional: boolean,
  ): Promise<void> {
    const batch = op.batch as NonNullable<PlannedOperation['batch']>;
    let { cursor, rangeMin: min, rangeMax: max } = this.#run;
    if (cursor === null || min === null || max === null) {
      const range = await this.#range(i, batch);
      if (!range) return;
      [min, max] = range;
      cursor = min;
      await this.#record({ cursor, rangeMin: min, rangeMax: max });
    }
    const size = BigInt(batch.size);
    while (cursor <= max) {
      const from: bigint = cursor;
      const to = from + size;
      const progress = this.#percent({ opIndex: i, cursor: to, direction, min, max });
      const batchTag = (k: number) =>
        this.#tag(i, direction, statements.length === 1 ? `b${from}` : `b${from}s${k + 1}`);
      if (transactional) {
        await inTransaction(this.#x.work.connection, async () => {
          for (const [k, statement] of statements.entries()) {
            await this.#execute(i, statement, bindRange(statement.sql, from, to), batchTag(k));
          }
          await this.#update({ cursor: to, progress });
        });
      } else {
        // No transaction: a batch that ends in between runs again on resume (SPEC: idempotent).
        for (const [k, statement] of statements.entries()) {
          await this.#update({ queryTag: batchTag(k) });
          await this.#execute(i, statement, bindRange(statement.sql, from, to), batchTag(k));
        }
        await this.#update({ cursor: to, progress, queryTag: null });
      }
      this.#run = { ...this.#run, cursor: to, progress };
      this.#x.on({
        type: 'async-progress',
        name: this.#run.name,
        progress,
        operation: i + 1,
        from: String(from),
        to: String(to),
        rangeMax: String(max),
      });
      cursor = to;
      if (cursor <= max) {
        await this.#stopIfRequested();
        if (batch.pauseMs > 0) await sleep(batch.pauseMs);
      }
    }
  }

  async #range(
    i: number,
    batch: NonNullable<PlannedOperation['batch']>,
  ): Promise<[bigint, bigint] | undefined> {
    const { quote, asText } = this.#x.driver.dialect;
    const key = quote(batch.key);
    const sql = `SELECT ${asText(`MIN(${key})`)} AS lo, ${asText(`MAX(${key})`)} AS hi FROM ${quote(batch.table)}`;
    const statement = { sql };
    const { rows } = await this.#execute(i, statement, sql, this.#tag(i, this.#run.direction, 'range'));
    const lo = rows[0]?.lo;
    const hi = rows[0]?.hi;
    if (lo === null || lo === undefined || hi === null || hi === undefined) return undefined;
    try {
      return [BigInt(String(lo)), BigInt(String(hi))];
    } catch {
      throw new OperationFailure(
        i + 1,
        statement,
        {
          message: `${batch.table}.${batch.key} holds ${JSON.stringify(lo)}: a batched operation walks an integer key`,
          lockTimeout: false,
          connectionLost: false,
        },
        undefined,
      );
    }
  }

  async #execute(i: number, statement: PlannedStatement, sql: string, tag: string) {
    const text = tagged(tag, sql);
    try {
      return await this.#x.work.connection.execute(text, undefined, { id: tag });
    } catch (error) {
      const { info, line } = refusal(this.#x.work.connection, error, text, statement.line);
      throw new OperationFailure(i + 1, statement, info, line);
    }
  }

  /** A fenced write in the current transaction (or autocommit). */
  async #update(changes: Partial<AsyncRun>, store = this.#x.workStore): Promise<void> {
    if (!(await store.update(this.#run.name, this.#run.attempt, changes))) {
      throw new RunTakenOverError(this.#run.name, this.#run.attempt);
    }
    const previous = this.#run.state;
    this.#run = { ...this.#run, ...changes };
    if (changes.state && changes.state !== previous) {
      this.#x.on({
        type: 'async-state',
        name: this.#run.name,
        state: changes.state,
        previous,
        detail: changes.error ?? changes.note ?? undefined,
      });
    }
  }

  /** A fenced state change, with its error row, in one transaction. */
  async #record(
    changes: Partial<AsyncRun>,
    error?: Pick<AsyncErrorRecord, 'operation' | 'statement' | 'message'>,
    store: AsyncStore = this.#x.workStore,
  ): Promise<void> {
    await store.transaction(async () => {
      if (error) {
        await store.addError({
          ...error,
          name: this.#run.name,
          attempt: this.#run.attempt,
          direction: this.#run.direction,
          at: new Date().toISOString(),
        });
      }
      await this.#update(changes, store);
    });
  }

  /** Graceful stop: between operations and batches, a `stopping` run becomes errored. */
  async #stopIfRequested(): Promise<void> {
    if (this.#x.signal?.aborted) {
      // Still active, with no worker: the next worker to look claims it and goes on from here.
      await this.#record(this.#step('hand-over', { by: this.#x.runnerId, now: new Date().toISOString() }));
      throw new Stopped();
    }
    const row = await this.#x.workStore.read(this.#run.name);
    if (!row || row.attempt !== this.#run.attempt)
      throw new RunTakenOverError(this.#run.name, this.#run.attempt);
    if (row.state === 'stopping') await this.#stop(this.#where(), row.state);
  }

  /** `stopping`: the state the stop request left, as read (the run this worker holds says less). */
  async #stop(where: string, stopping = this.#run.state): Promise<never> {
    // An operator's decision, not a failure: said in the run's error field, no error row.
    const message = `stopped on request ${where}; resume continues from there, rollback undoes it`;
    await this.#record(this.#step('stop-reached', { message }, stopping));
    throw new Stopped();
  }

  #where(): string {
    const { opIndex, opCount, cursor, rangeMin, rangeMax, direction } = this.#run;
    if (direction === 'rollback') return `with operations 1..${opIndex + 1} of ${opCount} still in effect`;
    if (cursor !== null) {
      return `in operation ${opIndex + 1} of ${opCount}, batched: keys ${rangeMin}..${cursor - 1n} of ${rangeMin}..${rangeMax} done`;
    }
    return opIndex === 0 ? `before operation 1 of ${opCount}` : `after operation ${opIndex} of ${opCount}`;
  }

  async #fail(failure: OperationFailure): Promise<AsyncRun> {
    const latest = await this.#x.controlStore.read(this.#run.name).catch(() => undefined);
    if (latest && latest.attempt !== this.#run.attempt)
      throw new RunTakenOverError(this.#run.name, this.#run.attempt);
    const op = failure.operation;
    const where = `${this.#x.definition?.file ?? this.#run.name}${failure.line ? `:${failure.line}` : ''}`;
    const forced = latest?.state === 'stopping' ? 'stopped by force: ' : '';
    const what =
      op === null
        ? failure.info.message
        : `${this.#run.direction === 'rollback' ? 'rollback of ' : ''}operation ${op} of ${this.#run.opCount} failed at ${where}: ${failure.info.message}`;
    const message = `${forced}${what}`;
    // Failed during its startup checks: failed_at_startup; later: errored.
    const changes = this.#step('fail', { message, now: new Date().toISOString() });
    const record = { operation: op, statement: failure.statement?.sql ?? null, message };
    // A lost work session: the database rolled back its transaction; the lock's session records it.
    const lost = failure.info.connectionLost;
    await this.#record(changes, record, lost ? this.#x.controlStore : this.#x.workStore);
    return this.#run;
  }

  /** Waits for (or cancels) statements of this run that a dead worker left running on the server. */
  async #settleOrphans(): Promise<void> {
    if (!this.#x.driver.dialect.cancellable) return;
    let nextReport = 0;
    for (;;) {
      const running = await longRunning(this.#x.work, this.#x.driver.dialect).findRunning(
        runMarker(this.#run.name),
      );
      if (running.length === 0) return;
      for (const query of running) {
        if (this.#x.orphans === 'cancel')
          await longRunning(this.#x.work, this.#x.driver.dialect)
            .cancelRunning(query.id)
            .catch(() => {});
        if (this.#x.orphans === 'cancel' || Date.now() >= nextReport) {
          this.#x.on({
            type: 'async-orphan',
            name: this.#run.name,
            id: query.id,
            query: query.query,
            runningMs: query.runningMs,
            action: this.#x.orphans === 'cancel' ? 'cancelled' : 'waiting',
          });
        }
      }
      if (Date.now() >= nextReport) nextReport = Date.now() + ORPHAN_REPORT_MS;
      await sleep(ORPHAN_POLL_MS);
    }
  }

  /** The changes of `step` on the run as this worker holds it (see transitions.ts). */
  #step<S extends Step>(step: S, facts: StepFacts[S], from = this.#run.state) {
    return transit(step, this.#run, facts, from);
  }

  #tag(i: number, direction: 'forward' | 'rollback', detail: string): string {
    return queryTag(this.#run.name, this.#run.attempt, direction, i, detail);
  }

  #percent(p: {
    opIndex: number;
    cursor: bigint | null;
    direction: 'forward' | 'rollback';
    min?: bigint | null;
    max?: bigint | null;
  }): number {
    return progressPercent({
      direction: p.direction,
      opIndex: p.opIndex,
      opCount: this.#plan.operations.length,
      cursor: p.cursor,
      min: p.min ?? null,
      max: p.max ?? null,
    });
  }

  #context(): AsyncContext {
    const { work, driver, on } = this.#x;
    const name = this.#run.name;
    return {
      dialect: driver.dialect.name,
      parameters: this.#plan.parameters,
      query: (sql, params) => work.connection.execute(sql, params),
      log: (message) => on({ type: 'async-log', name, message }),
    };
  }
}
