import { AdoptRefusedError } from '../../errors.js';
import { namedHistory } from './named.js';
import { isoOf, rowsIfThere, toolTable, truthy } from './rows.js';
import type { ToolHistoryOf } from './tool.js';

/**
 * knex's `knex_migrations (id, name, batch, migration_time)`, a row per applied file (`name` is
 * the file name), and `knex_migrations_lock`, held while knex migrates.
 */
export const knexHistory: ToolHistoryOf = (connection, dialect, named) => {
  const table = toolTable(dialect, named, 'knex_migrations');
  const lockTable = toolTable(
    dialect,
    named === undefined ? undefined : `${named}_lock`,
    'knex_migrations_lock',
  );
  return {
    tool: 'knex',
    table: table.shown,
    async read(_dir, migrations) {
      const rows = await rowsIfThere(
        connection,
        dialect,
        `SELECT name, migration_time FROM ${table.sql} ORDER BY id`,
      );
      if (rows === null) return null;
      // A held lock: knex is migrating right now, or died while it did (its migration may be half-done).
      const locks = (await rowsIfThere(connection, dialect, `SELECT is_locked FROM ${lockTable.sql}`)) ?? [];
      if (locks.some((r) => truthy(r.is_locked))) {
        throw new AdoptRefusedError(
          `knex's ${lockTable.shown} is held (is_locked = 1): knex is migrating now, or died while it did. ` +
            'Wait for it; if no knex runs, check the newest migration by hand and free it (npx knex migrate:unlock), ' +
            'then adopt again. Nothing was changed.',
        );
      }
      return namedHistory(
        rows.map((r) => ({ name: String(r.name), at: isoOf(r.migration_time) })),
        migrations,
      );
    },
  };
};
