import {
  type DbErrorInfo,
  type Driver,
  type LedgerRow,
  longRunning,
  type QueryResult,
  type Session,
  type StatementTag,
} from '../drivers/driver.js';
import {
  ConnectionError,
  LedgerConflictError,
  LockstepError,
  MigrationError,
  type MigrationFailure,
  MigrationTimeoutError,
  type StateLeft,
} from '../errors.js';
import { fileLine, splitStatements } from '../sql/split.js';
import { transactionControl } from '../sql/transaction-control.js';
import { scrubSecrets } from '../util/secrets.js';
import type { ResolvedConfig } from './config.js';
import { guardProcessExit } from './exit-guard.js';
import { type AttemptEnd, finishedRow, rollingBackRow, startedRow, statementTag } from './ledger-rows.js';
import type { Migration, MigrationContext, Step } from './migration.js';
import { inTransaction, refusal, runsInTransaction, StatementFailed } from './statements.js';
import {
  type Deadline,
  fasterOrLonger,
  TIME_RAN_OUT,
  type TimeLimit,
  timeLimit,
  Watchdog,
} from './time-limits.js';

/** A statement that the database refused, with where it came from. */
class StatementFailure extends StatementFailed {
  constructor(
    info: DbErrorInfo,
    readonly sql: string,
    line: number | undefined,
    readonly index: number,
    /** Set when the migration ran out of time: the limit it exceeded. */
    readonly timedOut?: TimeLimit,
    /** Set when the migration ended inside a transaction it began. */
    readonly leftOpen = false,
  ) {
    super(info, line);
  }
}

export interface RunContext {
  readonly session: Session;
  readonly driver: Driver;
  readonly config: ResolvedConfig;
  /** When the whole run must end (`--run-timeout`), if it is limited. */
  readonly runDeadline?: Deadline | undefined;
}

/**
 * Applies (`up`) or rolls back (`down`) one migration on the locked session, following SPEC
 * guarantee 5: transactional → statements and ledger change commit together; otherwise a
 * `running` row first, progress after every statement, then `applied` (or the row removed).
 * Returns the duration in ms.
 */
export async function runMigration(
  run: RunContext,
  migration: Migration,
  step: Step,
  direction: 'up' | 'down',
  previous: LedgerRow | undefined,
): Promise<number> {
  const transactional = stepRunsInTransaction(run.driver, step);
  run.config.on({
    type: 'migrating',
    version: migration.version,
    name: migration.name,
    direction,
    transactional,
  });
  const started = new Date();
  const t0 = performance.now();
  const count = step.kind === 'sql' ? step.statements.length : null;
  const base = startedRow(migration, {
    direction,
    statementCount: count,
    startedAt: started.toISOString(),
    by: run.config.runnerId,
  });
  const finished = (): AttemptEnd => ({
    finishedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - t0),
  });
  const downBase = direction === 'down' && previous ? rollingBackRow(previous) : base;

  // Every ledger write states the row it expects (SPEC guarantee 1): what was read under the lock.
  const expected = previous ?? null;
  const limit = timeLimit(step.settings.timeoutMs, run.config.migrationTimeoutMs, run.runDeadline, t0);
  if (transactional) {
    await runTransactional(run, migration, step, direction, expected, limit, async (done) => {
      if (direction === 'up')
        await run.session.ledger.write(
          finishedRow(base, { state: 'applied', statementsDone: done, ...finished() }),
          expected,
        );
      else await run.session.ledger.delete(previous as LedgerRow);
    });
  } else {
    await runNonTransactional(
      run,
      migration,
      step,
      direction,
      limit,
      { ...downBase, statementCount: count },
      expected,
      finished,
    );
  }
  const durationMs = Math.round(performance.now() - t0);
  run.config.on({
    type: 'migrated',
    version: migration.version,
    name: migration.name,
    direction,
    durationMs,
  });
  return durationMs;
}

/** A transaction the migration's own statements opened (`BEGIN`), while it is open. */
interface OpenBlock {
  /** The statement (1-based) and line that opened it. */
  readonly first: number;
  readonly line: number | undefined;
}

/**
 * The non-transactional protocol: a `running` row, progress after every statement, then
 * `applied` (or the row removed). While a transaction the migration opened itself is open, no
 * progress is written: the write would commit that transaction, or be rolled back with it. Once
 * the migration closes it, the next write counts its statements; if it fails or the migration
 * ends inside it, the block is rolled back and the row says what stays applied.
 */
async function runNonTransactional(
  run: RunContext,
  migration: Migration,
  step: Step,
  direction: 'up' | 'down',
  limit: TimeLimit | undefined,
  start: LedgerRow,
  expected: LedgerRow | null,
  finished: () => AttemptEnd,
): Promise<void> {
  const count = start.statementCount;
  const row = { ...start, statementsDone: 0, appliedBy: run.config.runnerId };
  const stateLeft = (n: number) =>
    n > 0
      ? `Statements 1..${n} of this runner's attempt were applied and stay applied.`
      : "Nothing of this runner's attempt was applied.";
  await inState(run, migration, run.session.ledger.write(row, expected), stateLeft(0));
  /** The statements recorded done: all of them but an open block's. */
  let recorded = 0;
  let block: OpenBlock | undefined;
  let done = 0;
  try {
    done = await runStatements(run, migration, step, {
      transactional: false,
      limit,
      tagOf: (index) => statementTag(run.driver.dialect.ledger.table, row, index),
      afterEach: async (n, line) => {
        if (run.session.connection.inMigrationTransaction()) {
          block ??= { first: n, line };
          return;
        }
        block = undefined;
        await inState(
          run,
          migration,
          run.session.ledger.write({ ...row, statementsDone: n }, row),
          stateLeft(n),
        );
        recorded = n;
      },
    });
    if (block) throw leftOpen(migration, block, done);
  } catch (error) {
    if (!(error instanceof StatementFailure)) throw error;
    const where = (line: number | undefined) => `${migration.file}${line ? `:${line}` : ''}`;
    const rolledBack = block
      ? `the transaction it began at ${where(block.line)} (statements ${block.first}..${error.index}) was rolled back, `
      : '';
    if (error.info.connectionLost) throw lostConnection(migration, error, false, recorded, rolledBack);
    const applied = recorded > 0 ? `statements 1..${recorded} applied, ` : '';
    const failed = error.leftOpen
      ? `it ended with that transaction still open`
      : error.timedOut
        ? `timed out at ${where(error.line)} (${step.kind === 'sql' ? `statement ${error.index + 1}` : 'module code'})`
        : `statement ${error.index + 1} failed at ${where(error.line)}`;
    const message = `${applied}${rolledBack}${failed}: ${error.info.message}`;
    // The driver rolls an open transaction back before it writes a `failed` row.
    const ended = finished();
    const unrecorded = await recordFailure(
      (text) =>
        run.session.ledger.write(
          finishedRow(row, { state: 'failed', statementsDone: recorded, ...ended, error: text }),
          row,
        ),
      message,
      stateLeft(recorded),
    );
    const leftovers = (await run.session.leftovers?.().catch(() => [])) ?? [];
    const kept = recorded > 0 ? `statements 1..${recorded}` : undefined;
    throw migrationError(migration, direction, error, count, 'partially applied', [
      ...unrecorded,
      kept
        ? `${kept} were applied and stay applied.`
        : block
          ? 'nothing of it stays applied.'
          : 'its first statement failed.',
      ...(block ? [`${capitalized(rolledBack.slice(0, -2))}.`] : []),
      ...(leftovers.length > 0 ? [`The database also has: ${leftovers.join('; ')}.`] : []),
      ...(error.timedOut ? [`The lock is released. ${fasterOrLonger(error.timedOut, migration)}.`] : []),
      `Fix the cause, then lockstep resolve ${migration.version} --applied (after finishing the change by hand)`,
      `or --rolled-back (${kept ? `after undoing ${kept}` : 'once nothing of it is left'})`,
    ]);
  }
  const recordedEnd =
    direction === 'up'
      ? run.session.ledger.write(
          finishedRow(row, { state: 'applied', statementsDone: done, ...finished() }),
          row,
        )
      : run.session.ledger.delete(row);
  await inState(run, migration, recordedEnd, stateLeft(done));
}

/** A migration that ended inside a transaction it began: lockstep neither commits nor keeps it. */
function leftOpen(migration: Migration, block: OpenBlock, done: number): StatementFailure {
  return new StatementFailure(
    {
      message: `a transaction it began (at ${migration.file}${block.line ? `:${block.line}` : ''}) was never committed; end it with COMMIT`,
      lockTimeout: false,
      connectionLost: false,
    },
    '',
    block.line,
    done,
    undefined,
    true,
  );
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

async function runTransactional(
  run: RunContext,
  migration: Migration,
  step: Step,
  direction: 'up' | 'down',
  expected: LedgerRow | null,
  limit: TimeLimit | undefined,
  record: (statementsDone: number) => Promise<void>,
): Promise<void> {
  const lockTimeoutMs =
    step.settings.lockTimeoutMs !== undefined ? step.settings.lockTimeoutMs : run.config.ddlLockTimeoutMs;
  const retries = lockTimeoutMs === null ? 0 : (step.settings.lockRetries ?? run.config.ddlLockRetries);
  const count = step.kind === 'sql' ? step.statements.length : null;
  let attempt = 0;
  try {
    await inTransaction(
      run.session.connection,
      async () => {
        const done = await runStatements(run, migration, step, {
          transactional: true,
          limit,
          afterEach: async () => {},
        });
        await record(done);
      },
      {
        lockTimeoutMs: lockTimeoutMs ?? undefined,
        lockRetries: retries,
        onRetry: (retry, delayMs, message) => {
          attempt = retry;
          run.config.on({ type: 'lock-retry', version: migration.version, attempt: retry, delayMs, message });
        },
      },
    );
  } catch (error) {
    if (error instanceof LedgerConflictError) throw error.withStateLeft(ROLLED_BACK);
    const failure = error instanceof StatementFailure ? error : asFailure(run.session, error);
    if (failure.info.connectionLost) throw lostConnection(migration, failure, true);
    const message = `${failure.line ? `line ${failure.line}: ` : ''}${failure.info.message}`;
    const unrecorded: string[] = [];
    if (direction === 'up') {
      const at = new Date().toISOString();
      const started = startedRow(migration, {
        direction,
        statementCount: count,
        startedAt: at,
        by: run.config.runnerId,
      });
      const record = (text: string) =>
        run.session.ledger.write(
          finishedRow(started, {
            state: 'rolled_back',
            statementsDone: 0,
            finishedAt: at,
            durationMs: null,
            error: text,
          }),
          expected,
        );
      unrecorded.push(...(await recordFailure(record, message, ROLLED_BACK)));
    }
    const retried = attempt > 0 ? ` after ${attempt} DDL lock retries` : '';
    throw migrationError(migration, direction, failure, count, 'rolled back', [
      ...unrecorded,
      failure.timedOut
        ? `nothing of this migration was applied${retried}, and the lock is released. ${fasterOrLonger(failure.timedOut, migration)}`
        : `nothing of this migration was applied${retried}; fix ${migration.file} and run lockstep ${direction} again`,
    ]);
  }
}

interface StatementOptions {
  /** Whether the step runs in lockstep's transaction: then it must not end that transaction itself. */
  readonly transactional: boolean;
  readonly limit: TimeLimit | undefined;
  /** Called with the count done after each statement, and the line of that statement. */
  readonly afterEach: (done: number, line: number | undefined) => Promise<void>;
  /** The tag of the statement `index` (1-based), where statements are tagged. */
  readonly tagOf?: ((index: number) => StatementTag) | undefined;
}

/** Runs every statement of a step within its time limit. Returns the count done. */
async function runStatements(
  run: RunContext,
  migration: Migration,
  step: Step,
  options: StatementOptions,
): Promise<number> {
  const watchdog = new Watchdog(options.limit, () => cancelRunningStatement(run));
  try {
    return await runWatched(run, migration, step, options, watchdog);
  } finally {
    watchdog.stop();
  }
}

async function runWatched(
  run: RunContext,
  migration: Migration,
  step: Step,
  options: StatementOptions,
  watchdog: Watchdog,
): Promise<number> {
  let done = 0;
  const timedOut = (sql: string, line: number | undefined, detail: string) =>
    new StatementFailure(
      {
        message: `ran longer than ${watchdog.limit?.name}; ${detail}`,
        lockTimeout: false,
        connectionLost: false,
      },
      sql,
      line,
      done,
      watchdog.limit,
    );
  const runOne = async (
    sql: string,
    line: number | undefined,
    params?: readonly unknown[],
  ): Promise<QueryResult> => {
    if (watchdog.fired) throw timedOut(sql, line, 'this statement was not sent');
    let result: QueryResult;
    try {
      result = await watchdog.watch(run.session.connection.execute(sql, params, options.tagOf?.(done + 1)));
    } catch (error) {
      if (watchdog.fired) throw timedOut(sql, line, 'the statement was cancelled');
      const refused = refusal(run.session.connection, error, sql, line);
      // Scrubbed before an error abbreviates it: a cut secret is no longer recognisable.
      throw new StatementFailure(refused.info, scrubSecrets(sql, run.config.url), refused.line, done);
    }
    done++;
    await options.afterEach(done, line);
    // A statement may complete just as the time runs out: it counts as done; nothing after it runs.
    if (watchdog.fired) throw timedOut('', line, `the time ran out at statement ${done}`);
    return result;
  };

  if (step.kind === 'sql') {
    for (const statement of step.statements) await runOne(statement.sql, statement.line);
    return done;
  }
  // A module's statements are checked as they come; a SQL file's were checked before the run.
  const refuseTransactionControl = (sql: string, line: number | undefined) => {
    if (!options.transactional) return;
    const found = splitStatements(sql, run.driver.dialect.syntax).find((s) => transactionControl(s.sql));
    const verb = found && transactionControl(found.sql);
    if (!found || !verb) return;
    throw new StatementFailure(
      {
        message:
          `${verb} would end the transaction lockstep runs this migration in, so it was not sent. ` +
          'Remove it (lockstep commits the migration together with its ledger row), ' +
          'or export const transaction = false to run the statements as written',
        lockTimeout: false,
        connectionLost: false,
      },
      found.sql,
      line,
      done,
    );
  };
  const ctx: MigrationContext = {
    dialect: run.driver.dialect.name,
    query(sql, params) {
      const line = callerLine(migration.path);
      refuseTransactionControl(sql, line);
      return runOne(sql, line, params);
    },
    async exec(script) {
      const line = callerLine(migration.path);
      for (const s of splitStatements(script, run.driver.dialect.syntax)) {
        const at = line === undefined ? undefined : fileLine(line, script, s.offset);
        refuseTransactionControl(s.sql, at);
        await runOne(s.sql, at);
      }
    },
    log: (message) => run.config.on({ type: 'log', version: migration.version, message }),
  };
  const exits = guardProcessExit();
  try {
    await Promise.race([step.run(ctx), watchdog.expired]);
  } catch (error) {
    if (error instanceof StatementFailure) throw error;
    if (error === TIME_RAN_OUT) throw timedOut('', undefined, 'its code was still running and was abandoned');
    // The module's own code threw: report it like a failing statement at the line that threw.
    throw moduleFailure(error, migration, done);
  } finally {
    exits.release();
  }
  // It called process.exit() and caught what that threw: still a failure.
  if (exits.attempt) throw moduleFailure(exits.attempt, migration, done);
  return done;
}

function moduleFailure(error: unknown, migration: Migration, done: number): StatementFailure {
  return new StatementFailure(
    {
      message: error instanceof Error ? error.message : String(error),
      lockTimeout: false,
      connectionLost: false,
    },
    '',
    error instanceof Error ? callerLine(migration.path, error.stack) : undefined,
    done,
  );
}

/** Cancels what the session runs now, from a second session: the statement that ran out of time. */
async function cancelRunningStatement(run: RunContext): Promise<void> {
  const id = run.session.connection.serverId?.();
  if (!id || !run.driver.dialect.cancellable) return;
  const side = await run.driver.connect();
  try {
    await longRunning(side, run.driver.dialect).cancelRunning(id);
  } finally {
    await side.connection.close().catch(() => {});
  }
}

/**
 * A migration runs in one transaction with its ledger row when it asks to (the default) and the
 * database can: where DDL commits implicitly (MySQL), only migrations of DML statements can.
 */
export function stepRunsInTransaction(driver: Driver, step: Step): boolean {
  return runsInTransaction(
    driver.dialect,
    step.settings.transaction,
    step.kind === 'sql' ? step.statements : undefined,
  );
}

/**
 * Writes a failure's ledger row with its error text. A lost write (another runner changed the
 * row) is an error of its own, thrown. If the row cannot be written with the whole text, it is
 * written with the start of it and why, so the row never stays `running`; if not even that
 * works, the trouble is returned as a sentence for the migration's own error, never hiding it.
 */
async function recordFailure(
  write: (error: string) => Promise<void>,
  message: string,
  stateLeft: string,
): Promise<string[]> {
  let trouble = '';
  for (const text of [message, undefined]) {
    try {
      await write(text ?? `${message.slice(0, 1000)} … [the full error could not be stored: ${trouble}]`);
      return [];
    } catch (error) {
      if (error instanceof LedgerConflictError) throw error.withStateLeft(stateLeft);
      trouble = (error as Error).message.slice(0, 500);
    }
  }
  return [`The failure could not be recorded in the ledger (${trouble}).`];
}

const ROLLED_BACK = "This runner's attempt was rolled back: nothing of it was applied.";

/**
 * A ledger write of the non-transactional protocol whose error says what this runner's attempt
 * left in the database: a lost-write conflict, or the session lost during the write (exit 5, as a
 * session lost during a statement is).
 */
async function inState(
  run: RunContext,
  migration: Migration,
  write: Promise<void>,
  stateLeft: string,
): Promise<void> {
  try {
    await write;
  } catch (error) {
    if (error instanceof LedgerConflictError) throw error.withStateLeft(stateLeft);
    if (error instanceof LockstepError || !run.session.connection.describeError(error).connectionLost)
      throw error;
    throw new ConnectionError(
      `lost the database session while recording migration ${migration.version} (${migration.file}) in the ledger: ` +
        `${run.session.connection.describeError(error).message.replace(/\.$/, '')}. ${stateLeft} The migration is not transactional ` +
        'and the write may or may not have reached the database: `lockstep status` shows its row; while it is ' +
        `\`running\` the next runner refuses until \`lockstep resolve ${migration.version} --applied|--rolled-back\`.`,
    );
  }
}

function asFailure(session: Session, error: unknown): StatementFailure {
  return new StatementFailure(session.connection.describeError(error), '', undefined, 0);
}

function migrationError(
  migration: Migration,
  direction: 'up' | 'down',
  failure: StatementFailure,
  count: number | null,
  stateLeft: StateLeft,
  fix: string[],
): MigrationError {
  const facts: MigrationFailure = {
    version: migration.version,
    file: migration.file,
    line: failure.line,
    statementIndex: failure.sql ? failure.index : undefined,
    statementCount: failure.sql ? (count ?? undefined) : undefined,
    statement: failure.sql || undefined,
    dbMessage: failure.info.message,
    dbCode: failure.info.code,
    stateLeft,
    direction,
    fix: fix.join(' '),
  };
  const limit = failure.timedOut;
  return limit ? new MigrationTimeoutError({ ...facts, limit }) : new MigrationError(facts);
}

function lostConnection(
  migration: Migration,
  failure: StatementFailure,
  transactional: boolean,
  recorded = failure.index,
  rolledBack = '',
): ConnectionError {
  const where = `${migration.file}${failure.line ? `:${failure.line}` : ''}`;
  return new ConnectionError(
    `lost the database session while running migration ${migration.version} at ${where}: ${failure.info.message}. ` +
      (transactional
        ? 'The database rolled the migration back and released the lock; the next `lockstep up` applies it.'
        : `The database released the lock. The migration is not transactional: ` +
          `${recorded > 0 ? `statements 1..${recorded} were applied, ` : ''}${rolledBack}` +
          `statement ${failure.index + 1} may or may not have been; the next runner refuses until \`lockstep resolve ${migration.version} --applied|--rolled-back\`.`),
  );
}

/** The line in `file` of the innermost stack frame inside it: where a module migration called us. */
function callerLine(file: string, stack = new Error().stack): number | undefined {
  if (!stack) return undefined;
  for (const frame of stack.split('\n')) {
    const index = frame.indexOf(file);
    if (index >= 0) {
      const match = /:(\d+):\d+\)?\s*$/.exec(frame.slice(index + file.length));
      if (match) return Number(match[1]);
    }
  }
  return undefined;
}
