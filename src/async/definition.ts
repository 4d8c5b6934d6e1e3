import type { QueryResult } from '../drivers/driver.js';
import type { ParameterType, ParameterValue, ParameterValues } from './parameters.js';

/** What precheck, healthcheck and isRequired receive: a session on the target database. */
export interface AsyncContext {
  /** `postgres`, `mysql` or `sqlite`. */
  readonly dialect: string;
  /** Runs one statement (with `$1`/`?` parameters as the database expects) and returns its rows. */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  /** The run's parameters, typed: the definition's defaults, overridden by the trigger. */
  readonly parameters: ParameterValues;
  log(message: string): void;
}

/** true: go on. false or a string (the reason): stop. */
export type AsyncCheck = (ctx: AsyncContext) => boolean | string | Promise<boolean | string>;

interface OperationCommon {
  /**
   * SQL that undoes `sql`, run by `lockstep async rollback`. Required: write `''` when there is
   * nothing to undo. Like `sql`, it must be safe to run again (a resumed run repeats the operation
   * that was in flight).
   */
  readonly rollback: string;
  /** Cancel a statement that runs longer, in ms or as `30m`. Default is none. Not enforced on SQLite. */
  readonly timeout?: number | string | undefined;
  /** Database settings for the operation (Postgres GUCs, MySQL session variables, SQLite pragmas). */
  readonly settings?: Readonly<Record<string, string | number>> | undefined;
}

/** One step: one or more statements, split as a migration file is. */
export interface AsyncSqlOperation extends OperationCommon {
  readonly sql: string;
  /**
   * Run the statements and the progress record in one transaction. Default is true where the
   * database can (MySQL: only for DML); false for `CREATE INDEX CONCURRENTLY`.
   */
  readonly transaction?: boolean | undefined;
}

/**
 * A statement run over key ranges of a table, one transaction per batch with its progress record,
 * so a batch is applied exactly once whatever stops the run. `sql` and `rollback` use `:start`
 * (inclusive) and `:end` (exclusive) for the range.
 */
export interface AsyncBatchedOperation extends OperationCommon {
  readonly batched: {
    /** The table whose integer key is walked, `schema.table` allowed. */
    readonly table: string;
    /** An integer column, usually the primary key. */
    readonly key: string;
    /** Keys per batch. */
    readonly size: number;
    /** Pause between batches, in ms or as `100ms`. Default is 0. */
    readonly pause?: number | string | undefined;
  };
  readonly sql: string;
}

export type AsyncOperation = AsyncSqlOperation | AsyncBatchedOperation;

export interface AsyncParameter {
  /**
   * What a trigger may set it to: `text`, `integer`, `number`, `boolean` or `duration` (given as
   * `30s`, or a number of ms; its value is the ms). Default: from `default`, a whole number
   * `integer`, another number `number`, a string `text`.
   */
  readonly type?: ParameterType | undefined;
  /** A value of its type, used when the trigger does not set it. */
  readonly default: ParameterValue;
  readonly description?: string | undefined;
}

/** A parameter as loaded: its type known and its default a value of it. */
export interface DeclaredParameter extends AsyncParameter {
  readonly type: ParameterType;
}

/** A long-running migration, as a TS/JS module's default export. */
export interface AsyncMigrationDefinition {
  readonly description: string;
  /** Names of long-running migrations that must be completed before this one starts. */
  readonly dependsOn?: readonly string[] | undefined;
  /**
   * Parameters a trigger may set. SQL refers to one as `{{name}}` where a literal could go, and
   * gets its value as a literal. A function of `operations` receives the typed values: use them
   * for options (a batch size), never paste one into SQL text — write `{{name}}` there.
   */
  readonly parameters?: Readonly<Record<string, AsyncParameter>> | undefined;
  readonly operations:
    | readonly AsyncOperation[]
    | ((parameters: ParameterValues) => readonly AsyncOperation[]);
  /** Checked when the run starts; a failure ends it in `failed_at_startup`, nothing run. */
  readonly precheck?: AsyncCheck | undefined;
  /** Checked when the run starts and whenever it is resumed. */
  readonly healthcheck?: AsyncCheck | undefined;
  /** false: the database needs none of it (e.g. already done); the run completes at once. */
  readonly isRequired?: ((ctx: AsyncContext) => boolean | Promise<boolean>) | undefined;
}

/** Types a long-running migration module: `export default defineAsyncMigration({ ... })`. */
export function defineAsyncMigration(definition: AsyncMigrationDefinition): AsyncMigrationDefinition {
  return definition;
}

/** A statement of an operation, with its line in the definition file when known. */
export interface PlannedStatement {
  readonly sql: string;
  readonly line?: number | undefined;
}

/**
 * An operation as frozen into the state row when a run starts: parameters substituted, statements
 * split. A resumed or rolled-back run executes exactly this, whatever the file says by then.
 */
export interface PlannedOperation {
  readonly kind: 'sql' | 'batched';
  readonly statements: readonly PlannedStatement[];
  readonly rollback: readonly PlannedStatement[];
  readonly timeoutMs: number | null;
  readonly settings: Readonly<Record<string, string | number>>;
  /** Whether the operation asks for a transaction (the database may still not allow one). */
  readonly transaction: boolean;
  readonly batch?: {
    readonly table: string;
    readonly key: string;
    readonly size: number;
    readonly pauseMs: number;
  };
}

export interface RunPlan {
  readonly operations: readonly PlannedOperation[];
  readonly parameters: ParameterValues;
  /** Checked when the run starts: each must be completed. */
  readonly dependsOn: readonly string[];
}

/** A definition read from its file, ready to be planned. */
export interface LoadedDefinition {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  readonly dependsOn: readonly string[];
  readonly parameters: Readonly<Record<string, DeclaredParameter>>;
  /** The operations with `{{name}}` still in their SQL, for the given parameter values. */
  operations(parameters: ParameterValues): readonly SourceOperation[];
  readonly precheck?: AsyncCheck | undefined;
  readonly healthcheck?: AsyncCheck | undefined;
  readonly isRequired?: ((ctx: AsyncContext) => boolean | Promise<boolean>) | undefined;
}

/** An operation as its source gives it, before parameters are substituted and statements split. */
export interface SourceOperation {
  readonly sql: string;
  readonly rollback: string;
  /** Lines in the file where `sql` and `rollback` start (SQL files). */
  readonly line?: number | undefined;
  readonly rollbackLine?: number | undefined;
  readonly timeoutMs: number | null;
  readonly settings: Readonly<Record<string, string | number>>;
  readonly transaction: boolean;
  readonly batch?: PlannedOperation['batch'];
}
