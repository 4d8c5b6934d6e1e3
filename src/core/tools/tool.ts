/**
 * Other migration tools whose history lockstep adopts (`lockstep adopt --from <tool>`, README
 * "Coming from golang-migrate / goose / knex / node-pg-migrate / Prisma / Drizzle"). dbmate's is
 * followed on its own (core/dbmate.ts): lockstep keeps dbmate's table too.
 */
import type { Connection, Dialect } from '../../drivers/driver.js';

export const TOOL_NAMES = [
  'golang-migrate',
  'goose',
  'knex',
  'node-pg-migrate',
  'prisma',
  'drizzle',
] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** A migration file as the histories map to it: its version, and the name its file gives. */
export interface FolderMigration {
  readonly version: string;
  readonly name: string;
  /** As shown to users. */
  readonly file: string;
}

/** What another tool's table says, in lockstep's versions. */
export interface ToolState {
  /** Versions the tool applied, each with when it says it did (ISO 8601), or null. */
  readonly applied: readonly { readonly version: string; readonly at: string | null }[];
  /**
   * Versions the tool left half-done (golang-migrate's dirty flag, a Prisma migration that
   * failed): lockstep's dirty state, for a person to resolve. `detail` is what the tool recorded.
   */
  readonly failed: readonly { readonly version: string; readonly detail: string }[];
  /** What the tool recorded that maps to no migration of the folder, as the tool names it, and why. */
  readonly unmapped: readonly { readonly key: string; readonly why: string }[];
}

/** One tool's history table(s) on one database. */
export interface ToolHistory {
  readonly tool: ToolName;
  /** The table, as messages name it (schema-qualified where it is not in the default one). */
  readonly table: string;
  /**
   * Reads what the tool recorded and maps it to the folder's migrations (`dir`: the migrations
   * directory, for tools that keep more there, as Drizzle's journal); null when the tool has no
   * table here. Reads only; outside a transaction it may fail on a missing table.
   */
  read(dir: string, migrations: readonly FolderMigration[]): Promise<ToolState | null>;
}

/**
 * The constructor each tool's module exports: its history on this connection, in the table the
 * user named (`--from-table`) or the tool's default.
 */
export type ToolHistoryOf = (connection: Connection, dialect: Dialect, table?: string) => ToolHistory;

export function isToolName(name: string): name is ToolName {
  return (TOOL_NAMES as readonly string[]).includes(name);
}
