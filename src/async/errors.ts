import { ExitCode, HttpStatus, LockstepError } from '../errors.js';
import type { AsyncState } from './states.js';
import type { AsyncAction } from './transitions.js';

/**
 * The state machine said no: another long-running migration is active, or the action does not
 * apply to the run's state. Nothing was changed.
 */
export class AsyncRefusedError extends LockstepError {
  readonly migration!: string;
  readonly action!: AsyncAction;
  readonly state!: AsyncState;
  /** The active run that blocks it, when that is the reason. */
  readonly active!: string | null;
  readonly reason!: string;
  readonly code = 'ASYNC_REFUSED';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.refused;
  constructor(facts: {
    readonly migration: string;
    readonly action: AsyncAction;
    readonly state: AsyncState;
    readonly active?: string | null | undefined;
    readonly reason: string;
  }) {
    const { migration, action, active = null, reason } = facts;
    super(`cannot ${action} ${migration}: ${reason}. Nothing was changed.`);
    Object.assign(this, facts, { active });
  }
}

/** No definition file and no state row has this name. */
export class AsyncUnknownError extends LockstepError {
  readonly code = 'ASYNC_UNKNOWN';
  readonly exitCode = ExitCode.badInput;
  readonly httpStatus = HttpStatus.notFound;
  constructor(
    readonly migration: string,
    message: string,
  ) {
    super(message);
  }
}

/** A run ended errored or failed_at_startup while this process waited for it. */
export class AsyncRunError extends LockstepError {
  readonly migration!: string;
  readonly state!: AsyncState;
  readonly recordedError!: string;
  readonly fix!: string;
  readonly code = 'ASYNC_FAILED';
  readonly exitCode = ExitCode.migrationFailed;
  readonly httpStatus = HttpStatus.internal;
  constructor(facts: {
    readonly migration: string;
    readonly state: AsyncState;
    readonly recordedError: string;
    readonly fix: string;
  }) {
    const { migration, state, recordedError, fix } = facts;
    super(`long-running migration ${migration} is ${state}: ${recordedError}\n  fix: ${fix}`);
    Object.assign(this, facts);
  }
}

/** Another process took the run over (it judged this worker dead): this one stops, writing nothing. */
export class RunTakenOverError extends LockstepError {
  readonly code = 'ASYNC_TAKEN_OVER';
  readonly exitCode = ExitCode.refused;
  readonly httpStatus = HttpStatus.internal;
  constructor(
    readonly migration: string,
    readonly attempt: number,
  ) {
    super(
      `long-running migration ${migration}: attempt ${attempt} was taken over by another process (it found this worker's lock free); this worker stopped without recording anything more`,
    );
  }
}
