import { namedHistory } from './named.js';
import { isoOf, rowsIfThere, toolTable } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

/** node-pg-migrate's `pgmigrations (id, name, run_on)`: a row per applied file, named without its extension. */
export const nodePgMigrateHistory: ToolHistoryOf = (connection, dialect, named) => {
  const table = toolTable(dialect, named, 'pgmigrations');
  return {
    tool: 'node-pg-migrate',
    table: table.shown,
    async read(_dir, migrations) {
      const rows = await rowsIfThere(
        connection,
        dialect,
        `SELECT name, run_on FROM ${table.sql} ORDER BY id`,
      );
      if (rows === null) return null;
      return namedHistory(
        rows.map((r) => ({ name: String(r.name), at: isoOf(r.run_on) })),
        migrations,
      );
    },
  };
};
