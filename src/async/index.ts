/** `lockstep/async`: long-running migrations as a library. */
import type { AsyncOptions } from './config.js';
import { AsyncMigrator } from './migrator.js';

export { DEFAULT_ASYNC_DIR, DEFAULT_ASYNC_TABLE } from '../defaults.js';
export type { AsyncOptions } from './config.js';
export type {
  AsyncBatchedOperation,
  AsyncCheck,
  AsyncContext,
  AsyncMigrationDefinition,
  AsyncOperation,
  AsyncParameter,
  AsyncSqlOperation,
} from './definition.js';
export { defineAsyncMigration } from './definition.js';
export { AsyncRefusedError, AsyncRunError, AsyncUnknownError, RunTakenOverError } from './errors.js';
export type { AsyncEvent, AsyncEventHandler } from './events.js';
export type { AsyncActionResult, AsyncStatusResult } from './migrator.js';
export { AsyncMigrator } from './migrator.js';
export type { ParameterType, ParameterValue, ParameterValues } from './parameters.js';
export type { AsyncState } from './states.js';
export { ACTIVE_STATES, ASYNC_STATES } from './states.js';
export type { AsyncErrorRecord } from './store.js';
export type { AsyncAction } from './transitions.js';
export { allowedActions } from './transitions.js';
export type { AsyncRunView } from './view.js';

/** Long-running migrations of one database: status, trigger, stop, resume, rollback, and the worker. */
export function createAsyncMigrator(options: AsyncOptions = {}): AsyncMigrator {
  return new AsyncMigrator(options);
}
