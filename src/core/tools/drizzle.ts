import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { AdoptRefusedError } from '../../errors.js';
import { compareVersions } from '../migration.js';
import { folderVersion, leadingVersion, rowsIfThere, toolTable } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

interface JournalEntry {
  readonly tag: string;
  readonly when: number;
}

/**
 * Drizzle's `__drizzle_migrations (id, hash, created_at)` (in the `drizzle` schema on
 * PostgreSQL): a row per applied migration, naming it by the time its journal
 * (`meta/_journal.json`) gives it. A row matches the journal entry with that time.
 */
export const drizzleHistory: ToolHistoryOf = (connection, dialect, named) => {
  const fallback = dialect.name === 'postgres' ? 'drizzle.__drizzle_migrations' : '__drizzle_migrations';
  const table =
    named !== undefined || dialect.name === 'postgres'
      ? { sql: dialect.quote(named ?? fallback), shown: named ?? fallback }
      : toolTable(dialect, undefined, fallback);
  return {
    tool: 'drizzle',
    table: table.shown,
    async read(dir, migrations) {
      const rows = await rowsIfThere(
        connection,
        dialect,
        `SELECT hash, ${dialect.asText('created_at')} AS created_at FROM ${table.sql} ORDER BY id`,
      );
      if (rows === null) return null;
      if (rows.length === 0) return { applied: [], failed: [], unmapped: [] };
      const journal = await readJournal(dir);
      const byTime = new Map(journal.map((e) => [e.when, e]));
      const applied: { version: string; at: string | null }[] = [];
      const unmapped: { key: string; why: string }[] = [];
      for (const row of rows) {
        const when = Number(row.created_at);
        const entry = byTime.get(when);
        const version = entry && leadingVersion(entry.tag);
        if (!entry || version === null || version === undefined) {
          unmapped.push({
            key: `hash ${String(row.hash).slice(0, 12)}…, created_at ${row.created_at}`,
            why: entry
              ? `its journal tag ${entry.tag} does not start with a version`
              : 'no journal entry has this time',
          });
          continue;
        }
        // created_at is the journal's `when` (drizzle-orm's migrator inserts the migration's
        // folderMillis): when drizzle-kit generated the migration, not when it was applied.
        applied.push({ version: folderVersion(version, migrations), at: null });
      }
      applied.sort((a, b) => compareVersions(a.version, b.version));
      return { applied, failed: [], unmapped };
    },
  };
};

async function readJournal(dir: string): Promise<JournalEntry[]> {
  const file = path.join(dir, 'meta', '_journal.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new AdoptRefusedError(
      `${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message}. ` +
        "Drizzle's history names migrations by the times in its journal: --dir must be Drizzle's out folder " +
        '(the one holding meta/_journal.json). Nothing was changed.',
    );
  }
  const entries = (parsed as { entries?: unknown }).entries;
  if (
    !Array.isArray(entries) ||
    !entries.every((e) => typeof e?.tag === 'string' && typeof e?.when === 'number')
  ) {
    throw new AdoptRefusedError(
      `${file}: not a Drizzle journal (entries of {tag, when}). Nothing was changed.`,
    );
  }
  return entries as JournalEntry[];
}
