/**
 * Every error lockstep raises is a LockstepError: the facts are fields (an error with more than
 * two takes them as one object), the message is built from them, `exitCode` is what the CLI exits
 * with, `httpStatus` what the status server answers with, and `toJSON()` is what `--json` prints.
 */
import { redactUrlsIn, scrubDeep } from './util/secrets.js';

export const ExitCode = {
  ok: 0,
  migrationFailed: 1,
  badInput: 2,
  lockTimeout: 3,
  dirtyState: 4,
  connection: 5,
  refused: 6,
} as const;

/** The HTTP status the status server answers an error with (src/server/handler.ts). */
export const HttpStatus = {
  badInput: 400,
  notFound: 404,
  refused: 409,
  internal: 500,
  unavailable: 503,
} as const;

export abstract class LockstepError extends Error {
  abstract readonly code: string;
  abstract readonly exitCode: number;
  /** Not part of the facts: `toJSON()` leaves it out. */
  abstract readonly httpStatus: number;
  // A subclass with more than two facts takes them as one object and declares each as a field
  // (`readonly version!: string`), in the order JSON shows them; its constructor Object.assigns them.

  /**
   * Every field, with the credentials of any URL in them hidden. (The runner has already scrubbed
   * the secrets of its own URL from an error it throws, wherever they were.)
   */
  toJSON(): Record<string, unknown> {
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(this)) {
      if (key !== 'cause' && key !== 'httpStatus') fields[key] = value;
    }
    return scrubDeep({ error: this.code, message: this.message, ...fields }, redactUrlsIn);
  }
}

/** A wrong option, URL or command line. Nothing was changed. */
export class ConfigError extends LockstepError {
  readonly code = 'CONFIG';
  readonly exitCode = ExitCode.badInput;
  readonly httpStatus = HttpStatus.badInput;
}

export interface SourceProblem {
  readonly file: string;
  readonly line?: number;
  readonly column?: number;
  readonly problem: string;
}

/** `file:line:column: problem`, as problems and warnings about migration files are shown. */
export function formatSourceProblem(p: SourceProblem): string {
  return `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}: ${p.problem}`;
}

/** Migration files that cannot be used as they are. Found before connecting; nothing was changed. */
export class SourceError extends LockstepError {
  readonly code = 'INVALID_SOURCES';
  readonly exitCode = ExitCode.badInput;
  readonly httpStatus = HttpStatus.badInput;
  constructor(readonly problems: readonly SourceProblem[]) {
    super(
      `invalid migration sources; nothing was changed:\n${problems.map((p) => `  ${formatSourceProblem(p)}`).join('\n')}`,
    );
  }
}

/** dbmate: applied in the ledger, absent from dbmate's table (which lockstep follows). */
export type HistoryProblemKind = 'changed' | 'missing' | 'out-of-order' | 'dbmate';

export interface HistoryProblem {
  readonly kind: HistoryProblemKind;
  readonly version: string;
  readonly name: string;
  readonly file?: string;
  readonly detail: string;
}

const historyFlag: Record<HistoryProblemKind, string> = {
  changed: '--allow-changed',
  missing: '--allow-missing',
  'out-of-order': '--allow-out-of-order',
  dbmate: "--dbmate off (dbmate's table is then neither read nor written)",
};

/** The files disagree with what the ledger says was applied. Nothing was changed. */
export class HistoryError extends LockstepError {
  readonly code = 'HISTORY_MISMATCH';
  readonly exitCode = ExitCode.badInput;
  readonly httpStatus = HttpStatus.badInput;
  constructor(readonly problems: readonly HistoryProblem[]) {
    const kinds = [...new Set(problems.map((p) => historyFlag[p.kind]))];
    super(
      `migration history check failed; nothing was changed:\n${problems
        .map((p) => `  ${p.file ?? p.version}: ${p.detail}`)
        .join('\n')}\nIf this is intended, rerun with ${kinds.join(' / ')}.`,
    );
  }
}

export interface LockHolder {
  /** `host:pid` of the process holding the lock, when the database can tell. */
  readonly who: string;
  /** When it took the lock (ISO 8601), when known. */
  readonly since?: string;
  /** Database-side detail, e.g. the Postgres backend pid and the query it runs. */
  readonly detail?: string;
}

export function describeHolder(holder: LockHolder | null): string {
  if (!holder) return 'an unknown holder (it may have just released it)';
  return `${holder.who}${holder.since ? ` since ${holder.since}` : ''}${holder.detail ? ` (${holder.detail})` : ''}`;
}

export class LockTimeoutError extends LockstepError {
  readonly lock!: string;
  readonly waitedMs!: number;
  readonly holder!: LockHolder | null;
  readonly code = 'LOCK_TIMEOUT';
  readonly exitCode = ExitCode.lockTimeout;
  readonly httpStatus = HttpStatus.unavailable;
  constructor(facts: {
    readonly lock: string;
    readonly waitedMs: number;
    readonly holder: LockHolder | null;
  }) {
    const { lock, waitedMs, holder } = facts;
    super(
      `gave up waiting for the migration lock on ${lock} after ${Math.round(waitedMs / 1000)}s; ` +
        `it is held by ${describeHolder(holder)}. Nothing was changed. ` +
        `Wait for that run to finish, or raise --lock-timeout.`,
    );
    Object.assign(this, facts);
  }
}

/** The lock could not be trusted: e.g. a transaction-pooling proxy between lockstep and Postgres. */
export class LockNotHeldError extends LockstepError {
  readonly code = 'LOCK_NOT_HELD';
  readonly exitCode = ExitCode.connection;
  readonly httpStatus = HttpStatus.unavailable;
}

export type StateLeft =
  | 'rolled back'
  | 'partially applied'
  | 'unknown: the connection was lost during a non-transactional migration';

/** What a failed migration statement leaves to report. */
export interface MigrationFailure {
  readonly version: string;
  readonly file: string;
  /** The line in `file` where it failed, when known. */
  readonly line?: number | undefined;
  /** Which statement (0-based) of how many, when the failure was a statement. */
  readonly statementIndex?: number | undefined;
  readonly statementCount?: number | undefined;
  readonly statement?: string | undefined;
  readonly dbMessage: string;
  readonly dbCode?: string | undefined;
  readonly stateLeft: StateLeft;
  readonly direction: 'up' | 'down';
  readonly fix?: string | undefined;
}

/** A migration's statement failed. */
export class MigrationError extends LockstepError implements MigrationFailure {
  readonly version!: string;
  readonly file!: string;
  readonly line!: number | undefined;
  readonly statementIndex!: number | undefined;
  readonly statementCount!: number | undefined;
  readonly statement!: string | undefined;
  readonly dbMessage!: string;
  readonly dbCode!: string | undefined;
  readonly stateLeft!: StateLeft;
  readonly direction!: 'up' | 'down';
  readonly fix!: string | undefined;
  readonly code: string = 'MIGRATION_FAILED';
  readonly exitCode = ExitCode.migrationFailed;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: MigrationFailure) {
    const { version, file, line, statementIndex, statementCount, statement, dbMessage, dbCode } = facts;
    const { stateLeft, direction, fix } = facts;
    const where = `${file}${line ? `:${line}` : ''}`;
    const which =
      statementIndex !== undefined && statementCount !== undefined
        ? ` (statement ${statementIndex + 1} of ${statementCount})`
        : '';
    super(
      `migration ${version} (${direction}) failed at ${where}${which}: ${dbMessage}` +
        `${dbCode ? ` [${dbCode}]` : ''}${statement ? `\n  statement: ${abbreviate(statement)}` : ''}` +
        `\n  state: ${stateLeft}${fix ? `\n  fix: ${fix}` : ''}`,
    );
    Object.assign(this, facts);
  }
}

/**
 * A migration ran past its time limit (`--migration-timeout`, its own `timeout`, `--run-timeout`):
 * its statement was cancelled, the migration rolled back (or recorded `failed` with the statements
 * done) and the lock released.
 */
export class MigrationTimeoutError extends MigrationError {
  /** The limit it ran past. */
  readonly limit: { readonly name: string; readonly ms: number; readonly scope: 'migration' | 'run' };
  override readonly code: string = 'MIGRATION_TIMEOUT';
  constructor(facts: MigrationFailure & { readonly limit: MigrationTimeoutError['limit'] }) {
    super(facts);
    this.limit = { name: facts.limit.name, ms: facts.limit.ms, scope: facts.limit.scope };
  }
}

/**
 * A runner of the same boot wave found that the migration it was about to run had just failed in
 * another runner (after this one started, or moments before). It does not retry it: twenty workers
 * must not run a broken migration twenty times.
 */
export class FailedWhileWaitingError extends LockstepError {
  readonly version!: string;
  readonly file!: string;
  /** The runner that failed it, and when. */
  readonly by!: string;
  readonly at!: string;
  readonly recordedError!: string;
  readonly retryAfterMs!: number;
  readonly code = 'FAILED_WHILE_WAITING';
  readonly exitCode = ExitCode.migrationFailed;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: {
    readonly version: string;
    readonly file: string;
    readonly by: string;
    readonly at: string;
    readonly recordedError: string;
    readonly retryAfterMs: number;
  }) {
    const { version, file, by, at, recordedError, retryAfterMs } = facts;
    super(
      `migration ${version} (${file}) just failed in ${by} at ${at}, in this same wave of runners; ` +
        `not running it again. Recorded error: ${recordedError}\n` +
        `  state: rolled back; \`lockstep up\` retries it once the file has changed, or ` +
        `${Math.round(retryAfterMs / 1000)}s after the failure.`,
    );
    Object.assign(this, facts);
  }
}

/** What the ledger says of a migration that was interrupted or failed half-way. */
export interface DirtyState {
  readonly version: string;
  readonly file: string;
  readonly state: 'running' | 'failed';
  readonly direction: 'up' | 'down';
  readonly statementsDone: number;
  readonly statementCount?: number | undefined;
  /** The line in `file` of the statement it reached, when known. */
  readonly reachedLine?: number | undefined;
  /** The runner that ran it, and when it started. */
  readonly by: string;
  /** The tool it was adopted from, half-done (`lockstep adopt`): how far it got is that tool's knowledge. */
  readonly adoptedFrom?: string | undefined;
  readonly since: string;
  readonly recordedError?: string | undefined;
  /** What else the database holds of it (e.g. an invalid index). Default is none. */
  readonly leftovers?: readonly string[] | undefined;
  /** The statement its runner had reached, as the server says it ended (ClickHouse). */
  readonly inFlight?: InFlightStatement | undefined;
}

/** The statement a dead runner had sent, settled by the runner after it. */
export interface InFlightStatement {
  /** 1-based. */
  readonly statement: number;
  readonly queryId: string;
  readonly outcome: 'finished' | 'failed' | 'killed' | 'still-running' | 'not-found' | 'unknown';
  readonly waitedMs: number;
  readonly error?: string | undefined;
}

/** The reached statement's state, as the server told it. */
function inFlightReach(f: InFlightStatement): string {
  if (f.outcome === 'finished' || f.outcome === 'not-found') return 'was not started';
  if (f.outcome === 'failed' || f.outcome === 'killed') return 'did not complete';
  return f.outcome === 'still-running' ? 'is still running' : 'may or may not have completed';
}

/** What the server said of the statement a dead runner had reached, for the dirty-state message. */
function inFlightSentence(f: InFlightStatement): string {
  const waited = f.waitedMs >= 1000 ? `, after waiting ${(f.waitedMs / 1000).toFixed(1)} s for it` : '';
  const at = `statement ${f.statement} (query id ${f.queryId})`;
  switch (f.outcome) {
    case 'finished':
      return `${at} finished on the server after its runner was gone${waited}: it is recorded as done`;
    case 'failed':
      return `${at} failed on the server${waited}: ${f.error ?? 'no message'}`;
    case 'killed':
      return `${at} was still running; it was cancelled on the server, as asked (--cancel-orphans)`;
    case 'still-running':
      return (
        `${at} is still running on the server${waited}. Wait for it and run lockstep again, or cancel it ` +
        'with lockstep up --cancel-orphans'
      );
    case 'not-found':
      return `${at} never ran on the server (its query log has no record of it)`;
    case 'unknown':
      return `${at} may or may not have run: ${f.error ?? 'the server cannot tell'}`;
  }
}

/** The ledger says a migration was interrupted or failed half-way: a person must decide. */
export class DirtyStateError extends LockstepError implements DirtyState {
  readonly version!: string;
  readonly file!: string;
  readonly state!: 'running' | 'failed';
  readonly direction!: 'up' | 'down';
  readonly statementsDone!: number;
  readonly statementCount!: number | undefined;
  readonly reachedLine!: number | undefined;
  readonly by!: string;
  readonly adoptedFrom!: string | undefined;
  readonly since!: string;
  readonly recordedError!: string | undefined;
  readonly leftovers!: readonly string[];
  readonly code = 'DIRTY_STATE';
  readonly exitCode = ExitCode.dirtyState;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: DirtyState) {
    const { version, file, state, direction, statementsDone, statementCount, reachedLine } = facts;
    const { by, since, recordedError, leftovers = [], inFlight, adoptedFrom } = facts;
    if (adoptedFrom !== undefined) {
      super(
        `migration ${version} (${direction}) was left half-done by ${adoptedFrom}, and adopted so (${file}).\n` +
          `${recordedError ? `  recorded: ${recordedError}\n` : ''}` +
          `  How far it got is not recorded, so lockstep will not re-run or skip it. Inspect the database, ` +
          `finish or undo the change by hand, then run one of:\n` +
          `    lockstep resolve ${version} --applied       # its effects are in place\n` +
          `    lockstep resolve ${version} --rolled-back   # its effects are undone (lockstep runs it at the next up)`,
      );
      Object.assign(this, facts, { leftovers });
      return;
    }
    const what =
      state === 'running'
        ? `was interrupted (its runner ${by} died or lost its connection; started ${since})`
        : `failed (run by ${by}, started ${since})`;
    const total = statementCount !== undefined ? ` of ${statementCount}` : '';
    const allDone = statementCount !== undefined && statementCount > 0 && statementsDone >= statementCount;
    const reached = allDone
      ? `all ${statementCount} statements completed in ${file}; only the record of its end is missing`
      : `${
          statementsDone > 0
            ? `statements 1..${statementsDone}${total} completed; statement ${statementsDone + 1}`
            : `statement 1${total}`
        }${reachedLine ? ` at ${file}:${reachedLine}` : ` in ${file}`} ${
          state === 'running'
            ? inFlight
              ? inFlightReach(inFlight)
              : 'may or may not have completed'
            : 'failed'
        }`;
    super(
      `migration ${version} (${direction}) ${what}.\n` +
        `  reached: ${reached}` +
        `${inFlight ? `\n  on the server: ${inFlightSentence(inFlight)}` : ''}` +
        `${recordedError ? `\n  error: ${recordedError}` : ''}\n` +
        `${leftovers.length > 0 ? `  the database also has: ${leftovers.join('; ')}\n` : ''}` +
        `  It was not transactional, so lockstep will not re-run or skip it. Inspect the database, ` +
        `finish or undo the change by hand, then run one of:\n` +
        `    lockstep resolve ${version} --applied       # its effects are in place\n` +
        `    lockstep resolve ${version} --rolled-back   # its effects are undone`,
    );
    Object.assign(this, facts, { leftovers });
  }
}

/**
 * `resolve` was asked about a migration that is neither interrupted nor failed: it would have
 * written something untrue into the ledger. Nothing was changed; the message says what to do instead.
 */
export class ResolveRefusedError extends LockstepError {
  readonly version!: string;
  /** applied | changed (applied, file edited since) | rolled_back | pending */
  readonly state!: string;
  readonly requested!: 'applied' | 'rolled-back';
  readonly code = 'RESOLVE_REFUSED';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: {
    readonly version: string;
    readonly state: string;
    readonly requested: 'applied' | 'rolled-back';
    /** Why, and what to do instead. */
    readonly message: string;
  }) {
    const { message, ...fields } = facts;
    super(message);
    Object.assign(this, fields);
  }
}

/**
 * What sits between lockstep and PostgreSQL makes the command unsafe as asked: a pooler found
 * where none was declared, or work that needs a session of its own (a non-transactional
 * migration, long-running migrations) through a transaction-mode pooler. Nothing was changed;
 * the message says what to do instead.
 */
export class PoolerRefusedError extends LockstepError {
  readonly reason!: 'pooler-detected' | 'not-transactional' | 'long-running';
  /** The migration that cannot run through the pooler (not-transactional). */
  readonly version?: string;
  readonly file?: string;
  readonly code = 'POOLER_REFUSED';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.refused;
  constructor(facts: {
    readonly reason: 'pooler-detected' | 'not-transactional' | 'long-running';
    readonly version?: string;
    readonly file?: string;
    /** Why, and what to do instead. */
    readonly message: string;
  }) {
    const { message, ...fields } = facts;
    super(message);
    Object.assign(this, fields);
  }
}

/**
 * `adopt` cannot take another tool's history as it stands (its table is not that tool's, the
 * tool is migrating right now, its journal is missing): nothing was changed; the message says why.
 */
export class AdoptRefusedError extends LockstepError {
  readonly code = 'ADOPT_REFUSED';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.refused;
}

/**
 * Another tool's table records migrations lockstep's ledger lacks: `up` would run them a second
 * time. Nothing was changed; `lockstep adopt --from <tool>` records them first.
 */
export class UnadoptedHistoryError extends LockstepError {
  readonly tool!: string;
  readonly table!: string;
  readonly versions!: readonly string[];
  readonly code = 'UNADOPTED_HISTORY';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.refused;
  constructor(facts: {
    readonly tool: string;
    readonly table: string;
    readonly versions: readonly string[];
  }) {
    const { tool, table, versions } = facts;
    const shown =
      versions.length > 5
        ? `${versions.slice(0, 5).join(', ')} and ${versions.length - 5} more`
        : versions.join(', ');
    super(
      `${tool}'s ${table} records migrations lockstep's ledger does not have (${shown}): running them would apply them ` +
        `a second time. Nothing was changed.\n  fix: lockstep adopt --from ${tool}   # records them as applied, runs nothing`,
    );
    Object.assign(this, facts);
  }
}

/** A pending migration requires long-running migrations that are not completed. Nothing was changed. */
export class AsyncRequiredError extends LockstepError {
  readonly version!: string;
  readonly file!: string;
  /** The long-running migrations it requires that are not completed. */
  readonly required!: readonly RequiredRun[];
  readonly code = 'ASYNC_REQUIRED';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: {
    readonly version: string;
    readonly file: string;
    readonly required: readonly RequiredRun[];
  }) {
    const { version, file, required } = facts;
    super(
      `migration ${version} (${file}) requires long-running migration${required.length === 1 ? '' : 's'} ` +
        `${required.map((r) => `${r.name} (${r.state}${r.state === 'not_started' ? '' : `, ${r.progress}%`})`).join(', ')} ` +
        `to be completed first. Nothing was changed.\n` +
        `  fix: ${required.map((r) => (r.state === 'not_started' || r.state === 'rolled_back' || r.state === 'failed_at_startup' ? `lockstep async trigger ${r.name}` : `lockstep async status ${r.name}`)).join('; ')}, then lockstep up again`,
    );
    Object.assign(this, facts);
  }
}

export interface RequiredRun {
  readonly name: string;
  readonly state: string;
  readonly progress: number;
}

/** The database could not be reached, or the session died during the run. */
export class ConnectionError extends LockstepError {
  readonly code = 'CONNECTION';
  readonly exitCode = ExitCode.connection;
  readonly httpStatus = HttpStatus.unavailable;
}

/** The connection could not be opened at all (as opposed to a session lost while it worked). */
export class ConnectFailedError extends ConnectionError {}

function abbreviate(sql: string): string {
  const oneLine = sql.replace(/\s+/g, ' ').trim();
  return oneLine.length > 200 ? `${oneLine.slice(0, 197)}...` : oneLine;
}

/**
 * A ledger write found the row changed by someone else since this runner read or wrote it: the
 * migration lock was not exclusive. Nothing was overwritten.
 */
export class LedgerConflictError extends LockstepError {
  readonly version!: string;
  /** The row as described: what this runner expected, what it found, what it was about to write. */
  readonly expected!: string;
  readonly found!: string;
  readonly wanted!: string;
  /** What this runner's own attempt left in the database, when known. */
  readonly stateLeft!: string | undefined;
  readonly code = 'LEDGER_CONFLICT';
  readonly exitCode = ExitCode.connection;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: {
    readonly version: string;
    readonly expected: string;
    readonly found: string;
    readonly wanted: string;
    readonly stateLeft?: string | undefined;
  }) {
    const { version, expected, found, wanted, stateLeft } = facts;
    super(
      `the ledger row of migration ${version} changed under this runner: it expected ${expected}, ` +
        `found ${found}, and did not overwrite it (it was about to record ${wanted}). ` +
        `${stateLeft ? `${stateLeft} ` : ''}Another runner wrote ` +
        'the ledger while this one held the migration lock, so the lock was not exclusive (e.g. a ' +
        'transaction-pooling proxy between lockstep and the database). Stop other runners, point lockstep at ' +
        'the database directly, and check `lockstep status` before running again.',
    );
    Object.assign(this, facts);
  }

  /** The same conflict, saying what this runner's attempt left in the database. */
  withStateLeft(stateLeft: string): LedgerConflictError {
    const { version, expected, found, wanted } = this;
    return new LedgerConflictError({ version, expected, found, wanted, stateLeft });
  }
}

/**
 * `create` or `drop` (dbmate's) could not do it: the database already exists, is in use, or the
 * server refused. Nothing was changed; the message says which database and why.
 */
export class DatabaseCommandError extends LockstepError {
  readonly database!: string;
  readonly action!: 'create' | 'drop';
  readonly code = 'DATABASE_COMMAND';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.refused;
  constructor(facts: {
    readonly database: string;
    readonly action: 'create' | 'drop';
    readonly message: string;
  }) {
    const { message, ...fields } = facts;
    super(message);
    Object.assign(this, fields);
  }
}
