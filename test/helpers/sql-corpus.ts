/**
 * Real SQL for the fuzz tests' seed corpus: the scripts that PostgreSQL and MariaDB ship, read from
 * where Debian installs them with the servers the tests need anyway. Missing files fail loudly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { COMMON, MYSQL, POSTGRES, SQLITE } from '../unit/split-cases.js';

export interface SqlScript {
  readonly file: string;
  readonly text: string;
}

const POSTGRES_SHARE = process.env.LOCKSTEP_TEST_PG_SHARE ?? '/usr/share/postgresql/15';
const MARIADB_SHARE = process.env.LOCKSTEP_TEST_MYSQL_SHARE ?? '/usr/share/mysql';

function sqlFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.sql'));
  } catch (error) {
    throw new Error(`the seed corpus needs the scripts the database server ships, in ${dir}: ${error}`);
  }
  if (names.length === 0) throw new Error(`no .sql files in ${dir}: is the database server installed?`);
  return names.sort().map((n) => path.join(dir, n));
}

function read(files: string[]): SqlScript[] {
  return files.map((file) => ({ file, text: readFileSync(file, 'utf8') }));
}

/** information_schema.sql, system_views.sql, ... and every extension's scripts. */
export function postgresScripts(): SqlScript[] {
  return read([...sqlFiles(POSTGRES_SHARE), ...sqlFiles(path.join(POSTGRES_SHARE, 'extension'))]);
}

/** mysql_sys_schema.sql, mysql_system_tables*.sql, fill_help_tables.sql, ... */
export function mariadbScripts(): SqlScript[] {
  return read(sqlFiles(MARIADB_SHARE));
}

/** The splitter's own table-driven cases. */
export function splitCaseScripts(): SqlScript[] {
  return [...COMMON, ...POSTGRES, ...SQLITE, ...MYSQL].map((c) => ({
    file: `case: ${c.name}`,
    text: c.text,
  }));
}

export const POSTGRES_INFORMATION_SCHEMA = path.join(POSTGRES_SHARE, 'information_schema.sql');
