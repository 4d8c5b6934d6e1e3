import { existsSync } from 'node:fs';
import { sqlitePath } from '../drivers/sqlite/index.js';
import { ConfigError } from '../errors.js';
import { trimLeadingSqlComments, withoutStatements } from './normalise.js';
import { runTool } from './tools.js';
import type { SchemaTarget } from './types.js';

/**
 * SQLite: `sqlite3 <file> ".schema --nosys"`, then dbmate's versions as an INSERT, normalised, as
 * dbmate 2.36 writes it (pkg/driver/sqlite). lockstep's own tables (and their indexes) are taken
 * out statement by statement, by their stored text. Loading runs the file with sqlite3 -bail.
 */
export const sqlite: SchemaTarget = {
  async dump(url, tables, base) {
    const file = existing(url, base.cwd);
    const schema = await runTool('sqlite3', [file, '.schema --nosys'], {
      ...base,
      purpose: 'dump the schema',
    });
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const own = [tables.ledger, tables.async, `${tables.async}_errors`];
      const statements = db
        .prepare(`SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN (?, ?, ?)`)
        .pluck()
        .all(...own) as string[];
      let migrations = '';
      const dbmate = db
        .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`)
        .get(tables.dbmate);
      if (dbmate) {
        const table = `"${tables.dbmate.replaceAll('"', '""')}"`;
        const versions = db.prepare(`SELECT quote(version) FROM ${table} ORDER BY version ASC`).pluck().all();
        migrations = '-- Dbmate schema migrations\n';
        if (versions.length > 0) {
          migrations += `INSERT INTO ${table} (version) VALUES\n  (${versions.join('),\n  (')});\n`;
        }
      }
      return trimLeadingSqlComments(withoutStatements(schema, statements) + migrations);
    } finally {
      db.close();
    }
  },

  async load(url, file, base) {
    const target = sqlitePath(url, base.cwd);
    await runTool('sqlite3', ['-bail', target], { ...base, stdinFile: file, purpose: `load ${file}` });
  },
};

function existing(url: string, cwd: string): string {
  const file = sqlitePath(url, cwd);
  if (!existsSync(file)) throw new ConfigError(`no SQLite database at ${file}: nothing to dump`);
  return file;
}
