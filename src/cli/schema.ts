/**
 * The schema file on the command line, as dbmate has it: `dump`, `load`, and the dump after every
 * `up` and `down` (skipped with --no-dump-schema). The file is `-s/--schema-file`, else
 * $DBMATE_SCHEMA_FILE, else db/schema.sql.
 */
import { DEFAULT_ASYNC_TABLE, DEFAULT_DBMATE_TABLE, DEFAULT_TABLE, urlInUse } from '../defaults.js';
import { ConfigError, ExitCode, LockstepError } from '../errors.js';
import { loadSchema, type SchemaOptions, writeSchemaFile } from '../schema/index.js';
import { databaseUrl, envVar, writeResult, writeStderr } from './common.js';

export const DEFAULT_SCHEMA_FILE = 'db/schema.sql';

/** The options the schema commands read (a subset of the CLI's parsed values). */
export interface SchemaValues {
  readonly url?: string | undefined;
  readonly table?: string | undefined;
  readonly 'async-table'?: string | undefined;
  readonly 'migrations-table'?: string | undefined;
  readonly 'schema-file'?: string | undefined;
  readonly 'no-dump-schema'?: boolean | undefined;
  readonly json?: boolean | undefined;
  readonly quiet?: boolean | undefined;
}

/** What `dump` and `load` print with --json, and what `dumpAfterChange` says happened. */
export type SchemaResult =
  | { readonly schemaFile: string; readonly written: true }
  | { readonly schemaFile: string; readonly loaded: true }
  | { readonly schemaFile: string; readonly skipped: true }
  | { readonly schemaFile: string; readonly failed: string };

/** `lockstep dump [-- <pg_dump or mysqldump arguments>]`: writes the schema file. Throws what fails. */
export async function dumpCommand(values: SchemaValues, extraArgs: readonly string[] = []): Promise<number> {
  const file = schemaFile(values);
  await writeSchemaFile(urlInUse(databaseUrl(values.url)), file, { ...schemaOptions(values), extraArgs });
  print(values, { schemaFile: file, written: true }, `wrote ${file}`);
  return ExitCode.ok;
}

/** `lockstep load`: runs the schema file against the database (psql, mariadb/mysql, sqlite3). */
export async function loadCommand(values: SchemaValues): Promise<number> {
  const file = schemaFile(values);
  await loadSchema(urlInUse(databaseUrl(values.url)), file, schemaOptions(values));
  print(values, { schemaFile: file, loaded: true }, `loaded ${file}`);
  return ExitCode.ok;
}

/**
 * After a successful `up` or `down`: writes the schema file unless --no-dump-schema (or
 * $DBMATE_NO_DUMP_SCHEMA) says not to. Never changes the command's outcome (dbmate ignores a
 * failed dump too): the migrations are applied whether or not the file could be written, so a
 * failure (pg_dump not installed, say) is one warning line on stderr, and the result says it.
 */
export async function dumpAfterChange(values: SchemaValues): Promise<SchemaResult> {
  const file = schemaFile(values);
  if (noDumpSchema(values)) return { schemaFile: file, skipped: true };
  try {
    await writeSchemaFile(urlInUse(databaseUrl(values.url)), file, schemaOptions(values));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    writeStderr(
      `lockstep: warning: ${file} was not written (the run itself succeeded): ${message}. ` +
        'Pass --no-dump-schema to skip the schema file.\n',
    );
    if (!(error instanceof LockstepError)) throw error;
    return { schemaFile: file, failed: message };
  }
  if (!values.quiet) writeStderr(`wrote ${file}\n`);
  return { schemaFile: file, written: true };
}

/** `--schema-file`, else $DBMATE_SCHEMA_FILE, else db/schema.sql. */
export function schemaFile(values: SchemaValues): string {
  const file = values['schema-file'] ?? envVar('DBMATE_SCHEMA_FILE') ?? DEFAULT_SCHEMA_FILE;
  if (file.trim() === '')
    throw new ConfigError('--schema-file is empty: pass a file, or leave it out for db/schema.sql');
  return file;
}

/** --no-dump-schema, else $DBMATE_NO_DUMP_SCHEMA read as dbmate reads a boolean (Go's ParseBool). */
export function noDumpSchema(values: SchemaValues): boolean {
  if (values['no-dump-schema']) return true;
  const env = envVar('DBMATE_NO_DUMP_SCHEMA');
  if (env === undefined || env === '') return false;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(env)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(env)) return false;
  throw new ConfigError(`DBMATE_NO_DUMP_SCHEMA="${env}" is not a boolean: use true or false (or 1, 0)`);
}

function schemaOptions(values: SchemaValues): SchemaOptions {
  return {
    cwd: process.cwd(),
    ledgerTable: values.table ?? DEFAULT_TABLE,
    asyncTable: values['async-table'] ?? DEFAULT_ASYNC_TABLE,
    dbmateTable: values['migrations-table'] ?? DEFAULT_DBMATE_TABLE,
  };
}

function print(values: SchemaValues, result: SchemaResult, text: string): void {
  const json = values.json ?? false;
  writeResult(json ? JSON.stringify(result, null, 2) : text, { json, quiet: values.quiet ?? false });
}
