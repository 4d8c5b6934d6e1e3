import type { AsyncOptions } from './async/config.js';
import { AsyncMigrator } from './async/migrator.js';
import type { LockstepOptions } from './core/config.js';
import type { MigrationFunction, MigrationSettings } from './core/migration.js';
import { Migrator, type UpResult } from './core/runner.js';

export type { LockstepOptions } from './core/config.js';
export { DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL } from './core/config.js';
export * from './core/errors.js';
export type { EventHandler, LockstepEvent } from './core/events.js';
export type { MigrationContext, MigrationFunction } from './core/migration.js';
export type { MigrationStatus, StatusEntry } from './core/plan.js';
export type {
  AppliedElsewhere,
  AppliedMigration,
  DownResult,
  ResolveResult,
  StatusResult,
  UpResult,
} from './core/runner.js';
export { Migrator } from './core/runner.js';
export { redactUrl } from './drivers/registry.js';

/**
 * Applies every pending migration. Safe to call from every worker at boot: exactly one applies,
 * the others wait and return what was applied and by whom.
 */
export function migrate(options: LockstepOptions = {}): Promise<UpResult> {
  return new Migrator(options).up();
}

/** A runner for `up`, `down`, `status` and `resolve` with the same options. */
export function createMigrator(options: LockstepOptions = {}): Migrator {
  return new Migrator(options);
}

export interface MigrationDefinition {
  readonly up: MigrationFunction;
  readonly down?: MigrationFunction;
  /** Run in one transaction with the ledger row. Default is true. */
  readonly transaction?: MigrationSettings['transaction'];
  /** DDL lock wait limit (ms or "2s"), or null for none. Default is the run's `ddlLockTimeout`. */
  readonly lockTimeout?: number | string | null;
  readonly lockRetries?: number;
  /** Long-running migrations that must be completed first; `up` refuses until they are. */
  readonly requires?: readonly string[];
}

/** Types a TS/JS migration module: `export default defineMigration({ up, down })`. */
export function defineMigration(definition: MigrationDefinition): MigrationDefinition {
  return definition;
}

export type { AsyncOptions } from './async/config.js';
export { DEFAULT_ASYNC_DIR, DEFAULT_ASYNC_TABLE } from './async/config.js';
export type {
  AsyncBatchedOperation,
  AsyncCheck,
  AsyncContext,
  AsyncMigrationDefinition,
  AsyncOperation,
  AsyncParameter,
  AsyncSqlOperation,
} from './async/definition.js';
export { defineAsyncMigration } from './async/definition.js';
export { AsyncRefusedError, AsyncRunError, AsyncUnknownError, RunTakenOverError } from './async/errors.js';
export type { AsyncEvent, AsyncEventHandler } from './async/events.js';
export type { AsyncActionResult, AsyncStatusResult } from './async/migrator.js';
export { AsyncMigrator } from './async/migrator.js';
export type { AsyncAction, AsyncState } from './async/states.js';
export { ACTIVE_STATES, ASYNC_STATES, allowedActions } from './async/states.js';
export type { AsyncErrorRecord } from './async/store.js';
export type { AsyncRunView } from './async/view.js';

/** Long-running migrations of one database: status, trigger, stop, resume, rollback, and the worker. */
export function createAsyncMigrator(options: AsyncOptions = {}): AsyncMigrator {
  return new AsyncMigrator(options);
}
