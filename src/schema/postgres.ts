import { ConfigError } from '../errors.js';
import { redactUrl } from '../util/secrets.js';
import { trimLeadingSqlComments } from './normalise.js';
import { runTool, type ToolRun } from './tools.js';
import type { OwnTables, SchemaTarget } from './types.js';

/**
 * PostgreSQL: pg_dump's schema, then dbmate's versions as an INSERT, normalised, exactly as dbmate
 * 2.36 writes it (pkg/driver/postgres): the same flags, the same connection URL but for the
 * password, which goes in PGPASSWORD. Loading runs the file with psql.
 */
export const postgres: SchemaTarget = {
  async dump(url, tables, base) {
    const conn = connection(url);
    const run = { ...base, env: conn.env };
    const args = ['--format=plain', '--encoding=UTF8', '--schema-only', '--no-privileges', '--no-owner'];
    const version = await runTool('pg_dump', ['--version'], { ...run, purpose: 'dump the schema' });
    // From 15.14, 16.10, 17.6 pg_dump writes \restrict with a random key unless given one.
    if (supportsRestrictKey(version)) args.push('--restrict-key=dbmate');
    for (const schema of conn.schemas) args.push('--schema', schema);
    for (const table of ownTables(tables)) args.push(`--exclude-table=${table}`);
    args.push(...base.extraArgs, conn.url);
    const schema = await runTool('pg_dump', args, { ...run, purpose: 'dump the schema' });
    const migrations = await versionsSection(conn, tables.dbmate, run);
    return trimLeadingSqlComments(schema + migrations);
  },

  async load(url, file, base) {
    const conn = connection(url);
    // One transaction, as dbmate's single multi-statement Exec is; psql also obeys \restrict.
    const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-f', file, conn.url];
    await runTool('psql', args, { ...base, env: conn.env, purpose: `load ${file}` });
  },
};

/** `pg_dump (PostgreSQL) 15.20 (Debian …)` → whether it takes --restrict-key. */
export function supportsRestrictKey(versionText: string): boolean {
  const m = /\(PostgreSQL\) (\d+)\.(\d+)/.exec(versionText);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return (
    major > 17 ||
    (major === 17 && minor >= 6) ||
    (major === 16 && minor >= 10) ||
    (major === 15 && minor >= 14)
  );
}

interface PgConnection {
  /** The URL the tools connect with, as dbmate builds it, without the password. */
  readonly url: string;
  readonly env: Record<string, string>;
  /** search_path's schemas: pg_dump dumps only those, and dbmate's table is in the first. */
  readonly schemas: string[];
}

/**
 * dbmate's connectionString and connectionArgsForDump: `socket=` becomes `host=`, a missing host
 * is the local socket directory, the port is always given, search_path becomes --schema
 * arguments. lockstep's own `pooler=` parameter is dropped; the password moves to PGPASSWORD.
 */
export function connection(given: string): PgConnection {
  const u = authority(given);
  const query = new URLSearchParams(u.query);
  query.delete('pooler');
  const socket = query.get('socket');
  if (socket) {
    query.set('host', socket);
    query.delete('socket');
  }
  let hostname = u.hostname;
  if (hostname === '' && !query.get('host')) {
    query.set('host', process.platform === 'linux' ? '/var/run/postgresql' : '/tmp');
  }
  if (query.get('host')) hostname = '';
  let port = u.port;
  const portParam = query.get('port');
  if (portParam) {
    port = portParam;
    query.delete('port');
  }
  if (port === '') port = '5432';
  const schemas = (query.get('search_path') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  query.delete('search_path');
  query.delete('binary_parameters');
  query.sort();
  const user = u.user === '' ? '' : `${u.user}@`;
  const search = query.size > 0 ? `?${query.toString()}` : '';
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  return {
    url: `postgres://${user}${hostname}:${port}${u.path}${search}`,
    env: password === undefined ? {} : { PGPASSWORD: password },
    schemas,
  };
}

/** lockstep's tables as pg_dump patterns (quoted: no wildcard in a name can match another table). */
function ownTables(tables: OwnTables): string[] {
  const [schema, ledger] = tables.ledger.includes('.')
    ? (tables.ledger.split('.', 2) as [string, string])
    : ['public', tables.ledger];
  const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
  return [ledger, tables.async, `${tables.async}_errors`].map((t) => `${quote(schema)}.${quote(t)}`);
}

/**
 * dbmate's schemaMigrationsDump: its versions as one INSERT, names and values quoted by the
 * server. dbmate's table is in the schema its name gives, else the first of search_path, else
 * current_schema(). Where dbmate has no table, nothing (dbmate would have created one).
 */
async function versionsSection(
  conn: PgConnection,
  dbmateTable: string,
  run: Omit<ToolRun, 'purpose'>,
): Promise<string> {
  const parts = dbmateTable.split('.');
  let schema = parts.length > 1 ? literal(parts.shift() as string) : undefined;
  if (schema === undefined && conn.schemas[0] !== undefined) schema = literal(conn.schemas[0]);
  const schemaExpr = schema ?? `coalesce(nullif(current_schema(), ''), 'public')`;
  const name = `quote_ident(s) || ${parts.map((p) => `'.' || quote_ident(${literal(p)})`).join(' || ')}`;
  const found = await psql(
    conn,
    `SELECT ${name}, to_regclass(${name}) IS NOT NULL FROM (SELECT ${schemaExpr} AS s) AS t`,
    run,
  );
  const [table, exists] = (found.split('\n')[0] ?? '').split('|');
  if (exists !== 't' || !table) return '';
  const versions = (await psql(conn, `SELECT quote_literal(version) FROM ${table} ORDER BY version ASC`, run))
    .split('\n')
    .filter((v) => v !== '');
  let out = '\n--\n-- Dbmate schema migrations\n--\n\n';
  if (versions.length > 0)
    out += `INSERT INTO ${table} (version) VALUES\n    (${versions.join('),\n    (')});\n`;
  return out;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function psql(conn: PgConnection, sql: string, run: Omit<ToolRun, 'purpose'>): Promise<string> {
  return runTool('psql', ['-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql, conn.url], {
    ...run,
    env: conn.env,
    purpose: "read dbmate's schema_migrations for the schema file",
  });
}

/**
 * A PostgreSQL URL's parts, still percent-encoded. Not WHATWG's URL, which refuses what libpq and
 * dbmate take (`postgres://user@/db?host=/run/postgresql`: a user and no host).
 */
function authority(given: string): {
  user: string;
  password: string | undefined;
  hostname: string;
  port: string;
  path: string;
  query: string;
} {
  const m =
    /^[a-z][a-z0-9+.-]*:\/\/(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?([^?#]*)(?:\?([^#]*))?/i.exec(
      given,
    );
  if (!m)
    throw new ConfigError(
      `malformed PostgreSQL URL ${redactUrl(given)}: expected postgres://user@host:port/database`,
    );
  const [user = '', password] = (m[1] ?? '').split(/:(.*)/s);
  return { user, password, hostname: m[2] ?? '', port: m[3] ?? '', path: m[4] ?? '', query: m[5] ?? '' };
}
