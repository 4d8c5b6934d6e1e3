/** What every tool's history reader shares: reading a table that may not be there, and naming versions. */
import type { Connection, Dialect } from '../../drivers/driver.js';
import type { FolderMigration } from './tool.js';

/** The rows `sql` returns, or null when the table it reads is not there. */
export async function rowsIfThere(
  connection: Connection,
  dialect: Dialect,
  sql: string,
): Promise<readonly Record<string, unknown>[] | null> {
  try {
    return (await connection.query(sql)).rows;
  } catch (error) {
    if (dialect.isUndefinedTable(error)) return null;
    throw error;
  }
}

/** A tool's table as the user named it (`--from-table`, schema-qualified or not), or its default beside the ledger. */
export function toolTable(
  dialect: Dialect,
  named: string | undefined,
  fallback: string,
): { sql: string; shown: string } {
  if (named !== undefined) return { sql: dialect.quote(named), shown: named };
  return { sql: dialect.table(fallback), shown: fallback };
}

/** The version a file or folder name starts with (`20240101120000_add_users.js` → `20240101120000`). */
export function leadingVersion(name: string): string | null {
  return /^(\d+)/.exec(name)?.[1] ?? null;
}

/** `version` as the folder spells it (`1` and `0001` name one migration), or itself when no file has it. */
export function folderVersion(version: string, migrations: readonly FolderMigration[]): string {
  const digits = version.replace(/^0+(?=\d)/, '');
  return migrations.find((m) => m.version.replace(/^0+(?=\d)/, '') === digits)?.version ?? version;
}

/** A time as a tool stored it (a Date, ISO text, epoch seconds or milliseconds), as ISO 8601; null when unreadable. */
export function isoOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  let date: Date;
  if (value instanceof Date) date = value;
  else if (typeof value === 'number' || typeof value === 'bigint' || /^\d+(\.\d+)?$/.test(String(value))) {
    const n = Number(value);
    // Epoch milliseconds (Drizzle, knex on SQLite) or seconds.
    date = new Date(n > 1e11 ? n : n * 1000);
  } else {
    const text = String(value);
    // SQLite's CURRENT_TIMESTAMP has no zone: it is UTC.
    date = new Date(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$/.test(text) ? `${text.replace(' ', 'T')}Z` : text,
    );
  }
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** Whether a database value means true (booleans arrive as 1/0 from MySQL and SQLite). */
export function truthy(value: unknown): boolean {
  return value === true || value === 1 || value === '1' || value === 't' || value === 'true' || value === 1n;
}
