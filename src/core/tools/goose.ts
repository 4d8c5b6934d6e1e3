import { compareVersions } from '../migration.js';
import { folderVersion, isoOf, rowsIfThere, toolTable, truthy } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

/**
 * goose's `goose_db_version (id, version_id, is_applied, tstamp)`: a log. The newest row of a
 * version says whether it is applied (older goose wrote `is_applied = false` rows on down, newer
 * deletes the row); version 0 is the row goose starts its table with.
 */
export const gooseHistory: ToolHistoryOf = (connection, dialect, named) => {
  const table = toolTable(dialect, named, 'goose_db_version');
  return {
    tool: 'goose',
    table: table.shown,
    async read(_dir, migrations) {
      const rows = await rowsIfThere(
        connection,
        dialect,
        `SELECT ${dialect.asText('version_id')} AS version_id, is_applied, tstamp FROM ${table.sql} ORDER BY id`,
      );
      if (rows === null) return null;
      const newest = new Map<string, Record<string, unknown>>();
      for (const row of rows) newest.set(String(row.version_id), row);
      const applied = [...newest]
        .filter(([version, row]) => version !== '0' && truthy(row.is_applied))
        .map(([version, row]) => ({ version: folderVersion(version, migrations), at: isoOf(row.tstamp) }))
        .sort((a, b) => compareVersions(a.version, b.version));
      return { applied, failed: [], unmapped: [] };
    },
  };
};
