import { compareVersions } from '../migration.js';
import { namedHistory } from './named.js';
import { folderVersion, isoOf, leadingVersion, rowsIfThere, toolTable } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

/**
 * Prisma Migrate's `_prisma_migrations`, a row per attempt, named by its folder
 * (`20240101120000_init`): finished and not rolled back is applied; neither finished nor rolled
 * back is a failed migration Prisma waits for a person to resolve (`prisma migrate resolve`);
 * rolled back is not applied (Prisma runs it again).
 */
export const prismaHistory: ToolHistoryOf = (connection, dialect, named) => {
  const table = toolTable(dialect, named, '_prisma_migrations');
  return {
    tool: 'prisma',
    table: table.shown,
    async read(_dir, migrations) {
      const rows = await rowsIfThere(
        connection,
        dialect,
        `SELECT migration_name, started_at, finished_at, rolled_back_at, logs FROM ${table.sql} ORDER BY started_at`,
      );
      if (rows === null) return null;
      const live = rows.filter((r) => r.rolled_back_at === null || r.rolled_back_at === undefined);
      const finished = live.filter((r) => r.finished_at !== null && r.finished_at !== undefined);
      const history = namedHistory(
        finished.map((r) => ({ name: String(r.migration_name), at: isoOf(r.finished_at) })),
        migrations,
      );
      const applied = new Set(history.applied.map((a) => a.version));
      const failed = live
        .filter((r) => r.finished_at === null || r.finished_at === undefined)
        .flatMap((r) => {
          const version = leadingVersion(String(r.migration_name));
          if (version === null) return [];
          const inFolder = folderVersion(version, migrations);
          if (applied.has(inFolder)) return [];
          const log = String(r.logs ?? '')
            .trim()
            .split('\n')[0];
          return [
            {
              version: inFolder,
              detail:
                `Prisma recorded it as failed (${table.shown}: started ${isoOf(r.started_at) ?? '?'}, never finished)` +
                (log ? `: ${log}` : ''),
            },
          ];
        })
        .sort((a, b) => compareVersions(a.version, b.version));
      return { applied: history.applied, failed, unmapped: history.unmapped };
    },
  };
};
