import path from 'node:path';
import { AdoptRefusedError, formatSourceProblem } from '../../errors.js';
import { DRIZZLE_JOURNAL, readDrizzleJournal } from '../formats/drizzle.js';
import { compareVersions } from '../migration.js';
import { folderVersion, leadingVersion, rowsIfThere, toolTable } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

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
      const tagsByWhen = journalTags(dir);
      const applied: { version: string; at: string | null }[] = [];
      const unmapped: { key: string; why: string }[] = [];
      for (const row of rows) {
        const when = Number(row.created_at);
        const tag = tagsByWhen.get(when);
        const version = tag === undefined ? null : leadingVersion(tag);
        if (version === null) {
          unmapped.push({
            key: `hash ${String(row.hash).slice(0, 12)}…, created_at ${row.created_at}`,
            why:
              tag !== undefined
                ? `its journal tag ${tag} does not start with a version`
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

/** The folder's journal, as the folder reader reads it; a missing or broken one is refused. */
function journalTags(dir: string): ReadonlyMap<number, string> {
  const journal = readDrizzleJournal(dir, (fullPath) => fullPath);
  if (journal === undefined || journal.problems.length > 0) {
    const why = journal
      ? journal.problems.map(formatSourceProblem).join('; ')
      : `${path.join(dir, DRIZZLE_JOURNAL)}: not found`;
    throw new AdoptRefusedError(
      `${why}. Drizzle's history names migrations by the times in its journal: --dir must be Drizzle's out folder ` +
        '(the one holding meta/_journal.json). Nothing was changed.',
    );
  }
  return journal.tagsByWhen;
}
