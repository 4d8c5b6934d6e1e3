import { ConfigError } from '../errors.js';
import { redactUrl } from '../util/secrets.js';
import { trimAutoIncrementValues, trimLeadingSqlComments } from './normalise.js';
import { onPath, runTool, type ToolRun } from './tools.js';
import type { SchemaTarget } from './types.js';

/**
 * MySQL and MariaDB: mariadb-dump where it is installed, else mysqldump, with dbmate 2.36's flags
 * (pkg/driver/mysql), then dbmate's versions between LOCK TABLES and UNLOCK TABLES, normalised and
 * without AUTO_INCREMENT counters. The password goes in MYSQL_PWD, never on the command line.
 * Loading runs the file with the client of the same family (mariadb, else mysql).
 */
export const mysql: SchemaTarget = {
  async dump(url, tables, base) {
    const conn = connection(url);
    const tool = await dumpTool(base);
    const run = { ...base, env: conn.env };
    const args = ['--opt', '--routines', '--no-data', '--skip-dump-date', '--skip-add-drop-table'];
    args.push(...connectionArgs(conn, tool.sslMode));
    for (const table of [tables.ledger, tables.async, `${tables.async}_errors`]) {
      args.push(`--ignore-table=${table.includes('.') ? table : `${conn.database}.${table}`}`);
    }
    args.push(...base.extraArgs, conn.database);
    const schema = await runTool(tool.command, args, { ...run, purpose: 'dump the schema' });
    const migrations = await versionsSection(conn, tables.dbmate, tool, run);
    return trimAutoIncrementValues(trimLeadingSqlComments(schema + migrations));
  },

  async load(url, file, base) {
    const conn = connection(url);
    const tool = await dumpTool(base);
    await runTool(tool.client, [...connectionArgs(conn, tool.sslMode), conn.database], {
      ...base,
      env: conn.env,
      stdinFile: file,
      purpose: `load ${file}`,
    });
  },
};

interface Tool {
  readonly command: 'mariadb-dump' | 'mysqldump';
  readonly client: 'mariadb' | 'mysql';
  /** MySQL ≥ 8 clients take --ssl-mode; MariaDB's and older ones --ssl. */
  readonly sslMode: boolean;
}

/** dbmate's getMysqldumpVersion: mariadb-dump if on PATH, else mysqldump; its --version says which family. */
async function dumpTool(base: Omit<ToolRun, 'purpose'>): Promise<Tool> {
  const mariadb = onPath('mariadb-dump');
  const command = mariadb ? 'mariadb-dump' : 'mysqldump';
  const client = mariadb ? 'mariadb' : 'mysql';
  let text: string;
  try {
    text = await runTool(command, ['--version'], { ...base, purpose: 'dump the schema' });
  } catch (error) {
    if (mariadb) return { command, client, sslMode: false };
    throw error;
  }
  if (text.includes('MariaDB')) return { command, client, sslMode: false };
  const m = /(?:Ver \d+\.\d+ Distrib |Ver |from )(\d+\.\d+)/.exec(text);
  return { command, client, sslMode: m ? Number(m[1]) >= 8 : false };
}

interface MysqlConnection {
  readonly host: string;
  readonly port: string;
  readonly socket: string | null;
  readonly user: string;
  readonly database: string;
  readonly tls: string;
  readonly env: Record<string, string>;
}

function connection(given: string): MysqlConnection {
  let u: URL;
  try {
    u = new URL(given);
  } catch {
    throw new ConfigError(`malformed MySQL URL ${redactUrl(given)}`);
  }
  const password = u.password === '' ? undefined : decodeURIComponent(u.password);
  return {
    host: u.hostname,
    port: u.port,
    socket: u.searchParams.get('socket') || null,
    user: decodeURIComponent(u.username),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')),
    tls: u.searchParams.get('tls') ?? '',
    env: password === undefined ? {} : { MYSQL_PWD: password },
  };
}

/** dbmate's mysqldumpArgs, but the password: TLS as `tls=` says, socket or host and port, user. */
function connectionArgs(conn: MysqlConnection, sslMode: boolean): string[] {
  const args: string[] = [];
  const tls = conn.tls.toLowerCase();
  if (tls === '' || tls === 'false') args.push(sslMode ? '--ssl-mode=DISABLED' : '--ssl=false');
  if (tls === 'skip-verify') args.push(sslMode ? '--ssl-mode=PREFERRED' : '--ssl-verify-server-cert=false');
  if (tls === 'true' && sslMode) args.push('--ssl-mode=REQUIRED');
  if (conn.socket) args.push(`--socket=${conn.socket}`);
  else {
    if (conn.host) args.push(`--host=${conn.host}`);
    if (conn.port) args.push(`--port=${conn.port}`);
  }
  if (conn.user) args.push(`--user=${conn.user}`);
  return args;
}

/** dbmate's quoteIdentifier (a backtick inside is backslashed, as dbmate does). */
function quote(name: string): string {
  return `\`${name.replaceAll('`', '\\`')}\``;
}

async function versionsSection(
  conn: MysqlConnection,
  dbmateTable: string,
  tool: Tool,
  run: Omit<ToolRun, 'purpose'>,
): Promise<string> {
  const query = (sql: string) =>
    runTool(
      tool.client,
      [...connectionArgs(conn, tool.sslMode), '-N', '-B', '--raw', '-e', sql, conn.database],
      {
        ...run,
        purpose: "read dbmate's schema_migrations for the schema file",
      },
    );
  const name = dbmateTable.replaceAll("'", "''");
  const exists = await query(
    `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '${name}'`,
  );
  if (exists.trim() === '0') return '';
  const table = quote(dbmateTable);
  const versions = (await query(`SELECT QUOTE(version) FROM ${table} ORDER BY version ASC`))
    .split('\n')
    .filter((v) => v !== '');
  let out = `\n--\n-- Dbmate schema migrations\n--\n\nLOCK TABLES ${table} WRITE;\n`;
  if (versions.length > 0) out += `INSERT INTO ${table} (version) VALUES\n  (${versions.join('),\n  (')});\n`;
  return `${out}UNLOCK TABLES;\n`;
}
