import type { LockstepOptions } from './core/config.js';
import type { MigrationFunction, MigrationSettings } from './core/migration.js';
import { Migrator as CoreMigrator, type RequirementStates, type UpResult } from './core/runner.js';

export type { LockstepOptions } from './core/config.js';
export type { EventHandler, LockstepEvent } from './core/events.js';
export type { MigrationContext, MigrationFunction } from './core/migration.js';
export type { MigrationStatus, StatusEntry } from './core/plan.js';
export type {
  AdoptResult,
  AppliedElsewhere,
  AppliedMigration,
  DownResult,
  ResolveResult,
  StatusResult,
  UpResult,
} from './core/runner.js';
export type { ToolName } from './core/tools/tool.js';
export { DEFAULT_DIR, DEFAULT_TABLE, DEFAULT_URL } from './defaults.js';
export { redactUrl } from './drivers/registry.js';
export * from './errors.js';

/** A migration's `requires` is read from the long-running migrations' store, loaded only then. */
const longRunningRequirements: RequirementStates = {
  async read(session, sql, table) {
    const { readAsyncStates } = await import('./async/store.js');
    return readAsyncStates(session, sql, table);
  },
};

/** The runner: `up`, `down`, `status` and `resolve` against one ledger, `requires` included. */
export class Migrator extends CoreMigrator {
  constructor(options: LockstepOptions = {}) {
    super(options, longRunningRequirements);
  }
}

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
  /**
   * How long this migration may run (ms or "30m"), or null for no limit; then it is cancelled and
   * rolled back (or recorded failed) and the lock released. Default is the run's `migrationTimeout` (1h).
   */
  readonly timeout?: number | string | null;
  /** Long-running migrations that must be completed first; `up` refuses until they are. */
  readonly requires?: readonly string[];
}

/** Types a TS/JS migration module: `export default defineMigration({ up, down })`. */
export function defineMigration(definition: MigrationDefinition): MigrationDefinition {
  return definition;
}

// Long-running migrations and the status server have entry points of their own, 'lockstep/async'
// and 'lockstep/server', so that migrate() at boot loads neither. Their definition types are here.
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
