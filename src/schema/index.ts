/**
 * The schema file (README "Schema file"): the database's schema as dbmate writes `db/schema.sql`,
 * byte for byte where the database is the same, written by the dump tools dbmate runs (pg_dump,
 * mariadb-dump or mysqldump, sqlite3) and normalised as dbmate normalises it, so that a diff of
 * it in review shows what a migration changed. It ends with dbmate's applied versions, so that
 * loading it gives a database that dbmate, and lockstep (which adopts dbmate's versions), finds
 * up to date.
 *
 * lockstep's own tables (the ledger, the long-running migrations' tables) are left out: they are
 * bookkeeping, not schema; a database loaded from the file has dbmate's versions and no ledger,
 * which lockstep adopts as on a database dbmate migrated.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_ASYNC_TABLE, DEFAULT_DBMATE_TABLE, DEFAULT_TABLE } from '../defaults.js';
import { ConfigError } from '../errors.js';
import { redactUrl, secretScrubber } from '../util/secrets.js';
import { mysql } from './mysql.js';
import { postgres } from './postgres.js';
import { sqlite } from './sqlite.js';
import type { OwnTables, RunBase, SchemaTarget } from './types.js';

export { SchemaToolError } from './tools.js';

export interface SchemaOptions {
  /** Where relative paths (the file, a relative SQLite URL) start. */
  readonly cwd: string;
  /** dbmate's ledger, whose versions end the file. Default is `schema_migrations`. */
  readonly dbmateTable?: string | undefined;
  /** lockstep's ledger, left out of the file. Default is `lockstep_migrations`. */
  readonly ledgerTable?: string | undefined;
  /** The long-running migrations' state table (and `<table>_errors`), left out. Default is `lockstep_async`. */
  readonly asyncTable?: string | undefined;
  /** Extra arguments for pg_dump or mysqldump (`lockstep dump -- --flag`, as dbmate passes them). */
  readonly extraArgs?: readonly string[] | undefined;
}

/** The schema file's text for the database at `url`. */
export async function dumpSchema(url: string, options: SchemaOptions): Promise<string> {
  const target = targetOf(url);
  if (options.extraArgs?.length && target === sqlite) {
    throw new ConfigError('sqlite3 takes no extra arguments for the schema dump (dbmate passes none either)');
  }
  return target.dump(url, tablesOf(options), runBase(url, options));
}

/**
 * Dumps the schema into `file` (its folder created if missing); returns the path written. The
 * file is replaced whole (written beside it, then renamed): runners that finish at the same
 * moment never leave half a file, and a failed dump leaves the old one.
 */
export async function writeSchemaFile(url: string, file: string, options: SchemaOptions): Promise<string> {
  const text = await dumpSchema(url, options);
  const target = path.resolve(options.cwd, file);
  await mkdir(path.dirname(target), { recursive: true });
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, text, { mode: 0o644 });
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return target;
}

/** Runs the schema file `file` against the database at `url` (psql, mariadb or mysql, sqlite3). */
export async function loadSchema(url: string, file: string, options: SchemaOptions): Promise<void> {
  const target = targetOf(url);
  await target.load(url, path.resolve(options.cwd, file), { ...runBase(url, options), extraArgs: [] });
}

function targetOf(url: string): SchemaTarget {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'postgres':
    case 'postgresql':
      return postgres;
    case 'mysql':
    case 'mariadb':
      return mysql;
    case 'sqlite':
    case 'sqlite3':
      return sqlite;
    case 'clickhouse':
    case 'clickhouse+http':
    case 'clickhouse+https':
      throw new ConfigError(
        `no schema file for ClickHouse (${redactUrl(url)}): lockstep writes one for PostgreSQL, MySQL and SQLite; pass --no-dump-schema`,
      );
    default:
      throw new ConfigError(
        `unsupported database URL "${redactUrl(url)}": expected postgres://, postgresql://, mysql://, mariadb://, sqlite:path`,
      );
  }
}

function tablesOf(options: SchemaOptions): OwnTables {
  return {
    ledger: options.ledgerTable ?? DEFAULT_TABLE,
    async: options.asyncTable ?? DEFAULT_ASYNC_TABLE,
    dbmate: options.dbmateTable ?? DEFAULT_DBMATE_TABLE,
  };
}

function runBase(url: string, options: SchemaOptions): RunBase {
  return { cwd: options.cwd, scrub: secretScrubber(url), extraArgs: options.extraArgs ?? [] };
}
