import { AdoptRefusedError } from '../../errors.js';
import { compareVersions } from '../migration.js';
import { folderVersion, rowsIfThere, toolTable, truthy } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

/**
 * golang-migrate's `schema_migrations (version, dirty)`: one row, the newest version it applied.
 * Every migration of the folder up to it is applied; `dirty` says that newest one failed or was
 * interrupted part-way, which golang-migrate leaves for a person to fix (`migrate force`).
 */
export const golangMigrateHistory: ToolHistoryOf = (connection, dialect, named) => {
  const table = toolTable(dialect, named, 'schema_migrations');
  return {
    tool: 'golang-migrate',
    table: table.shown,
    async read(_dir, migrations) {
      const rows = await rowsIfThere(connection, dialect, `SELECT * FROM ${table.sql}`);
      if (rows === null) return null;
      if (rows.length === 0) return { applied: [], failed: [], unmapped: [] };
      // dbmate's table has the same name and no dirty column: not golang-migrate's history.
      if (rows.some((r) => !('dirty' in r))) return null;
      if (rows.length > 1) {
        throw new AdoptRefusedError(
          `${table.shown} has ${rows.length} rows; golang-migrate keeps exactly one (its current version). ` +
            'Leave the row golang-migrate would read, then adopt again. Nothing was changed.',
        );
      }
      const row = rows[0] as Record<string, unknown>;
      const current = folderVersion(String(row.version), migrations);
      const dirty = truthy(row.dirty);
      const applied = migrations
        .filter((m) => compareVersions(m.version, current) < 0)
        .map((m) => ({ version: m.version, at: null }));
      if (!dirty) applied.push({ version: current, at: null });
      const failed = dirty
        ? [
            {
              version: current,
              detail: `golang-migrate left it dirty (${table.shown}.dirty = true): it failed or was interrupted part-way`,
            },
          ]
        : [];
      return { applied, failed, unmapped: [] };
    },
  };
};
