import type { DbErrorInfo, Driver, LedgerRow, QueryResult, Session } from '../drivers/driver.js';
import { lineAt, splitStatements } from '../sql/split.js';
import { sleep } from '../util/duration.js';
import { scrubSecrets } from '../util/secrets.js';
import type { ResolvedConfig } from './config.js';
import { ConnectionError, LedgerConflictError, MigrationError, type StateLeft } from './errors.js';
import type { Migration, MigrationContext, Step } from './migration.js';

/** A statement that the database refused, with where it came from. */
class StatementFailure extends Error {
  constructor(
    readonly info: DbErrorInfo,
    readonly sql: string,
    readonly line: number | undefined,
    readonly index: number,
  ) {
    super(info.message);
  }
}

export interface RunContext {
  readonly session: Session;
  readonly driver: Driver;
  readonly config: ResolvedConfig;
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
  const transactional = runsInTransaction(run.driver, step);
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
  const base: LedgerRow = {
    version: migration.version,
    name: migration.name,
    checksum: migration.checksum,
    state: 'running',
    direction,
    statementsDone: 0,
    statementCount: count,
    startedAt: started.toISOString(),
    finishedAt: null,
    durationMs: null,
    appliedBy: run.config.runnerId,
    error: null,
  };
  const finished = (): Pick<LedgerRow, 'finishedAt' | 'durationMs'> => ({
    finishedAt: new Date().toISOString(),
    durationMs: Math.round(performance.now() - t0),
  });
  // `down` keeps the row's original record until the row is removed.
  const downBase =
    direction === 'down' && previous ? { ...previous, state: 'running' as const, direction } : base;

  // Every ledger write states the row it expects (SPEC guarantee 1): what was read under the lock.
  const expected = previous ?? null;
  if (transactional) {
    await runTransactional(run, migration, step, direction, expected, async (done) => {
      if (direction === 'up')
        await run.session.writeLedger(
          { ...base, state: 'applied', statementsDone: done, ...finished() },
          expected,
        );
      else await run.session.deleteLedger(previous as LedgerRow);
    });
  } else {
    let done = 0;
    const row = { ...downBase, statementsDone: 0, statementCount: count, appliedBy: run.config.runnerId };
    const stateLeft = (n: number) =>
      n > 0
        ? `Statements 1..${n} of this runner's attempt were applied and stay applied.`
        : "Nothing of this runner's attempt was applied.";
    await inState(run.session.writeLedger(row, expected), stateLeft(0));
    try {
      done = await runStatements(run, migration, step, async (n) => {
        await inState(run.session.writeLedger({ ...row, statementsDone: n }, row), stateLeft(n));
      });
    } catch (error) {
      if (!(error instanceof StatementFailure)) throw error;
      if (error.info.connectionLost) throw lostConnection(migration, error, false);
      const applied = error.index > 0 ? `statements 1..${error.index} applied, ` : '';
      const where = `${migration.file}${error.line ? `:${error.line}` : ''}`;
      const message = `${applied}statement ${error.index + 1} failed at ${where}: ${error.info.message}`;
      const failedRow = { ...row, state: 'failed' as const, statementsDone: error.index, ...finished() };
      const unrecorded = await recordFailure(
        (text) => run.session.writeLedger({ ...failedRow, error: text }, row),
        message,
        stateLeft(error.index),
      );
      const leftovers = (await run.session.leftovers?.().catch(() => [])) ?? [];
      const done = error.index > 0 ? `statements 1..${error.index}` : undefined;
      throw migrationError(migration, direction, error, count, 'partially applied', [
        ...unrecorded,
        done ? `${done} were applied and stay applied.` : 'its first statement failed.',
        ...(leftovers.length > 0 ? [`The database also has: ${leftovers.join('; ')}.`] : []),
        `Fix the cause, then lockstep resolve ${migration.version} --applied (after finishing the change by hand)`,
        `or --rolled-back (${done ? `after undoing ${done}` : 'once nothing of it is left'})`,
      ]);
    }
    const recorded =
      direction === 'up'
        ? run.session.writeLedger({ ...row, state: 'applied', statementsDone: done, ...finished() }, row)
        : run.session.deleteLedger(row);
    await inState(recorded, stateLeft(done));
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

async function runTransactional(
  run: RunContext,
  migration: Migration,
  step: Step,
  direction: 'up' | 'down',
  expected: LedgerRow | null,
  record: (statementsDone: number) => Promise<void>,
): Promise<void> {
  const lockTimeoutMs =
    step.settings.lockTimeoutMs !== undefined ? step.settings.lockTimeoutMs : run.config.ddlLockTimeoutMs;
  const retries = lockTimeoutMs === null ? 0 : (step.settings.lockRetries ?? run.config.ddlLockRetries);
  const count = step.kind === 'sql' ? step.statements.length : null;
  for (let attempt = 0; ; attempt++) {
    try {
      await run.session.begin({ lockTimeoutMs: lockTimeoutMs ?? undefined });
      const done = await runStatements(run, migration, step, async () => {});
      await record(done);
      await run.session.commit();
      return;
    } catch (error) {
      if (error instanceof LedgerConflictError) {
        await run.session.rollback().catch(() => {});
        throw withState(error, ROLLED_BACK);
      }
      const failure = error instanceof StatementFailure ? error : asFailure(run.session, error);
      if (!failure.info.connectionLost) await run.session.rollback().catch(() => {});
      if (failure.info.connectionLost) throw lostConnection(migration, failure, true);
      if (failure.info.lockTimeout && attempt < retries) {
        // GitLab's with_lock_retries: let the queries queued behind us through, then try again.
        const delayMs = Math.min(100 * 2 ** attempt, 5_000) * (0.5 + Math.random());
        run.config.on({
          type: 'lock-retry',
          version: migration.version,
          attempt: attempt + 1,
          delayMs,
          message: failure.info.message,
        });
        await sleep(delayMs);
        continue;
      }
      const message = `${failure.line ? `line ${failure.line}: ` : ''}${failure.info.message}`;
      const unrecorded: string[] = [];
      if (direction === 'up') {
        const at = new Date().toISOString();
        const rolledBack: LedgerRow = {
          version: migration.version,
          name: migration.name,
          checksum: migration.checksum,
          state: 'rolled_back',
          direction,
          statementsDone: 0,
          statementCount: count,
          startedAt: at,
          finishedAt: at,
          durationMs: null,
          appliedBy: run.config.runnerId,
          error: message,
        };
        const record = (text: string) => run.session.writeLedger({ ...rolledBack, error: text }, expected);
        unrecorded.push(...(await recordFailure(record, message, ROLLED_BACK)));
      }
      const retried = attempt > 0 ? ` after ${attempt} DDL lock retries` : '';
      throw migrationError(migration, direction, failure, count, 'rolled back', [
        ...unrecorded,
        `nothing of this migration was applied${retried}; fix ${migration.file} and run lockstep ${direction} again`,
      ]);
    }
  }
}

/** Runs every statement of a step; calls `afterEach` with the count done. Returns the count. */
async function runStatements(
  run: RunContext,
  migration: Migration,
  step: Step,
  afterEach: (done: number) => Promise<void>,
): Promise<number> {
  let done = 0;
  const runOne = async (
    sql: string,
    line: number | undefined,
    params?: readonly unknown[],
  ): Promise<QueryResult> => {
    let result: QueryResult;
    try {
      result = await run.session.execute(sql, params);
    } catch (error) {
      const info = run.session.describeError(error);
      const lineInStatement = info.position !== undefined ? lineAt(sql, info.position) : info.line;
      const errorLine =
        line !== undefined && lineInStatement !== undefined ? line + lineInStatement - 1 : line;
      // Scrubbed before an error abbreviates it: a cut secret is no longer recognisable.
      throw new StatementFailure(info, scrubSecrets(sql, run.config.url), errorLine, done);
    }
    done++;
    await afterEach(done);
    return result;
  };

  if (step.kind === 'sql') {
    for (const statement of step.statements) await runOne(statement.sql, statement.line);
    return done;
  }
  const ctx: MigrationContext = {
    dialect: run.driver.dialect,
    query: (sql, params) => runOne(sql, callerLine(migration.path), params),
    async exec(script) {
      const line = callerLine(migration.path);
      for (const s of splitStatements(script, run.driver.syntax)) {
        await runOne(s.sql, line === undefined ? undefined : line + lineAt(script, s.offset) - 1);
      }
    },
    log: (message) => run.config.on({ type: 'log', version: migration.version, message }),
  };
  try {
    await step.run(ctx);
  } catch (error) {
    if (error instanceof StatementFailure) throw error;
    // The module's own code threw: report it like a failing statement at the line that threw.
    throw new StatementFailure(
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
  return done;
}

/**
 * A migration runs in one transaction with its ledger row when it asks to (the default) and the
 * database can: where DDL commits implicitly (MySQL), only migrations of DML statements can.
 */
function runsInTransaction(driver: Driver, step: Step): boolean {
  if (!step.settings.transaction) return false;
  if (driver.transactionalDdl) return true;
  const isTransactional = driver.isTransactionalStatement;
  return (
    step.kind === 'sql' &&
    isTransactional !== undefined &&
    step.statements.every((s) => isTransactional(s.sql))
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
      if (error instanceof LedgerConflictError) throw withState(error, stateLeft);
      trouble = (error as Error).message.slice(0, 500);
    }
  }
  return [`The failure could not be recorded in the ledger (${trouble}).`];
}

const ROLLED_BACK = "This runner's attempt was rolled back: nothing of it was applied.";

/** A ledger write whose lost-write error says what this runner's attempt left in the database. */
async function inState(write: Promise<void>, stateLeft: string): Promise<void> {
  try {
    await write;
  } catch (error) {
    throw error instanceof LedgerConflictError ? withState(error, stateLeft) : error;
  }
}

function withState(error: LedgerConflictError, stateLeft: string): LedgerConflictError {
  return new LedgerConflictError(error.version, error.expected, error.found, error.wanted, stateLeft);
}

function asFailure(session: Session, error: unknown): StatementFailure {
  return new StatementFailure(session.describeError(error), '', undefined, 0);
}

function migrationError(
  migration: Migration,
  direction: 'up' | 'down',
  failure: StatementFailure,
  count: number | null,
  stateLeft: StateLeft,
  fix: string[],
): MigrationError {
  return new MigrationError(
    migration.version,
    migration.file,
    failure.line,
    failure.sql ? failure.index : undefined,
    failure.sql ? (count ?? undefined) : undefined,
    failure.sql || undefined,
    failure.info.message,
    failure.info.code,
    stateLeft,
    direction,
    fix.join(' '),
  );
}

function lostConnection(
  migration: Migration,
  failure: StatementFailure,
  transactional: boolean,
): ConnectionError {
  const where = `${migration.file}${failure.line ? `:${failure.line}` : ''}`;
  return new ConnectionError(
    `lost the database session while running migration ${migration.version} at ${where}: ${failure.info.message}. ` +
      (transactional
        ? 'The database rolled the migration back and released the lock; the next `lockstep up` applies it.'
        : `The database released the lock. The migration is not transactional: ` +
          `${failure.index > 0 ? `statements 1..${failure.index} were applied, ` : ''}` +
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
