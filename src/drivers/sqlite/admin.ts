import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConnectionError, DatabaseCommandError } from '../../errors.js';
import type { DatabaseAdmin } from '../admin.js';
import { sqlitePath } from './index.js';

/** SQLite: the database is its file. */
export function sqliteAdmin(url: string): DatabaseAdmin {
  const file = sqlitePath(url);
  return {
    name: file,
    exists: async () => existsSync(file),
    async create() {
      // As dbmate: opening the file creates it; an existing one is left as it is.
      const { default: BetterSqlite } = await import('better-sqlite3');
      try {
        mkdirSync(path.dirname(file), { recursive: true });
        new BetterSqlite(file).close();
      } catch (error) {
        throw new DatabaseCommandError({
          database: file,
          action: 'create',
          message: `cannot create the SQLite database ${file}: ${(error as Error).message}`,
        });
      }
    },
    async drop() {
      if (!existsSync(file)) return false;
      // Its journal files go with it; the migration lock file beside it is lockstep's own.
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(`${file}${suffix}`, { force: true });
      return true;
    },
    async ping() {
      // Nothing to wait for but the directory the file is (or will be) in.
      const dir = path.dirname(file);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) {
        throw new ConnectionError(`the directory of the SQLite database ${file} does not exist`);
      }
    },
  };
}
