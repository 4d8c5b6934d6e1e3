import type { QueryResult } from '../drivers/driver.js';
import type { ToolName } from './tools/tool.js';

/** Per-migration settings, from the marker line of a SQL file or the exports of a module. */
export interface MigrationSettings {
  /** Run in one transaction with its ledger row. Default is true. */
  readonly transaction: boolean;
  /** DDL lock wait limit for this migration, overriding the run's; null turns it off. */
  readonly lockTimeoutMs?: number | null | undefined;
  /** How often to retry after a DDL lock timeout, overriding the run's. */
  readonly lockRetries?: number | undefined;
  /** How long this migration may run, overriding the run's `migrationTimeout`; null: no limit. */
  readonly timeoutMs?: number | null | undefined;
  /** Long-running migrations that must be completed before this one may run. */
  readonly requires?: readonly string[] | undefined;
}

/** What a migration module's `up`/`down` receives: the runner's own session. */
export interface MigrationContext {
  /** `postgres`, `sqlite`, ... */
  readonly dialect: string;
  /** Runs one statement (with `$1`/`?` parameters as the database expects) and returns its rows. */
  query(sql: string, params?: readonly unknown[]): Promise<QueryResult>;
  /** Runs a script of one or more statements, split as a SQL migration file would be. */
  exec(sql: string): Promise<void>;
  /** Reports progress through the run's event hook. */
  log(message: string): void;
}

export type MigrationFunction = (ctx: MigrationContext) => Promise<void> | void;

/** One direction of a migration, ready to run. */
export type Step =
  | {
      readonly kind: 'sql';
      readonly settings: MigrationSettings;
      readonly statements: readonly SqlStatement[];
      /** The file the statements' lines are in, when not the migration's (golang-migrate's down file). */
      readonly file?: string;
    }
  | {
      readonly kind: 'module';
      readonly settings: MigrationSettings;
      readonly run: MigrationFunction;
    };

export interface SqlStatement {
  readonly sql: string;
  /** 1-based line in the migration file where the statement starts. */
  readonly line: number;
  /** Offset of the statement in the migration file. */
  readonly offset: number;
}

/** Whose format a migration file is written in: lockstep's (dbmate's), or a tool's whose SQL folders lockstep reads. */
export type MigrationFormat = 'lockstep' | Exclude<ToolName, 'knex'>;

/** A migration file, read and checked, not yet run. */
export interface Migration {
  readonly version: string;
  readonly name: string;
  /** Path as shown to users (relative to the working directory when inside it). */
  readonly file: string;
  readonly path: string;
  /** sha256 of the up section (SQL) or of the whole file (modules). */
  readonly checksum: string;
  readonly kind: 'sql' | 'module';
  /**
   * Whether it can be rolled back: always for SQL (an empty or absent down section is a no-op,
   * as in dbmate); for a module, whether it exports `down`.
   */
  readonly hasDown: boolean;
  /** Why it cannot be rolled back, where that is its format's rule (Prisma, Drizzle: no down). */
  readonly noDown?: string;
  /** Whose file format it is written in; lockstep's own (dbmate's) when absent. */
  readonly format?: MigrationFormat;
  /** Loads (modules: imports) and splits one direction for the given database syntax. */
  load(direction: 'up' | 'down', dialect: import('../sql/split.js').SplitDialect): Promise<Step>;
}

/**
 * The longest version (leading zeros aside) a ledger holds: MySQL's version column is
 * varchar(64). One limit on every database, checked with the files, so a project stays portable
 * and nothing is created before a version is found too long.
 */
export const MAX_VERSION_DIGITS = 64;

/** Versions are digit strings compared as numbers: `9` comes before `10`. */
export function compareVersions(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}
