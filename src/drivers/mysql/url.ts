/**
 * A MySQL/MariaDB URL read as dbmate reads it (its query is go-sql-driver/mysql's DSN parameters):
 * `tls=` (true, false, skip-verify, preferred), `?socket=` for a Unix socket, `charset`,
 * `collation`, `timeout`; mysql2's `ssl=` (a profile name or JSON options) as lockstep read it
 * before; any other parameter a session system variable, set at connect (go-sql-driver's meaning).
 * Pure: mysql2's options come from it at connect.
 */
import type { SslOptions } from 'mysql2';
import { ConfigError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import { splitUrl } from '../url-parts.js';

export type MysqlTls = 'none' | 'verify' | 'skip-verify' | 'preferred';

export interface MysqlTarget {
  readonly host?: string;
  readonly port?: number;
  readonly socketPath?: string;
  readonly user?: string;
  readonly password?: string;
  readonly database: string;
  readonly tls: MysqlTls;
  /** mysql2 `ssl=` options (verify unless `rejectUnauthorized: false`), or a profile's name. */
  readonly ssl?: string | SslOptions;
  readonly charset?: string;
  readonly connectTimeoutMs?: number;
  /** Session system variables, values as SQL text (as go-sql-driver splices them). */
  readonly variables: Readonly<Record<string, string>>;
}

/** go-sql-driver parameters about how it reads values back: no meaning for lockstep's statements. */
const CLIENT_SIDE = new Set([
  'parseTime',
  'loc',
  'interpolateParams',
  'multiStatements',
  'columnsWithAlias',
  'clientFoundRows',
  'allowNativePasswords',
  'checkConnLiveness',
  'maxAllowedPacket',
]);

/** go-sql-driver parameters lockstep does not implement: refused, never dropped. */
const NOT_IMPLEMENTED = new Set([
  'allowAllFiles',
  'allowCleartextPasswords',
  'allowFallbackToPlaintext',
  'allowOldPasswords',
  'readTimeout',
  'writeTimeout',
  'rejectReadOnly',
  'serverPubKey',
  'connectionAttributes',
  'compress',
  'timeTruncate',
  'net',
]);

const VARIABLE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseMysqlUrl(given: string): MysqlTarget {
  const shown = redactUrl(given);
  const url = splitUrl(given);
  if (!url) {
    throw new ConfigError(
      `malformed MySQL URL "${shown}": expected mysql://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const database = url.path;
  if (!database || database.includes('/')) {
    throw new ConfigError(`MySQL URL "${shown}" names no database: add /<database> (the ledger lives there)`);
  }
  const params = new Map<string, string>();
  for (const [name, value] of url.params) {
    if (params.has(name)) throw new ConfigError(`MySQL URL "${shown}" gives ${name} twice: give it once`);
    params.set(name, value);
  }
  const refused = [...params.keys()].filter((name) => NOT_IMPLEMENTED.has(name));
  if (refused.length > 0) {
    throw new ConfigError(
      `MySQL URL "${shown}": lockstep does not implement ${refused.join(', ')}; remove ${refused.length > 1 ? 'them' : 'it'} (lockstep drops no connection setting silently)`,
    );
  }
  const socketPath = params.get('socket');
  if (socketPath !== undefined && (url.host !== '' || url.port !== '')) {
    throw new ConfigError(
      `MySQL URL "${shown}" gives both a host and socket=: give one (mysql://user@/db?socket=/path)`,
    );
  }
  const port = url.port === '' ? undefined : Number(url.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ConfigError(`MySQL URL "${shown}": port "${url.port}" is not a port number`);
  }
  if (params.has('tls') && params.has('ssl')) {
    throw new ConfigError(`MySQL URL "${shown}" gives both tls= and ssl=: give one`);
  }
  const variables: Record<string, string> = {};
  const known = new Set([
    'socket',
    'tls',
    'ssl',
    'charset',
    'collation',
    'timeout',
    'user',
    'password',
    ...CLIENT_SIDE,
  ]);
  for (const [name, value] of params) {
    if (known.has(name)) continue;
    if (!VARIABLE.test(name)) {
      throw new ConfigError(
        `MySQL URL "${shown}": parameter "${name}" is neither a driver parameter nor a system variable`,
      );
    }
    variables[name] = value;
  }
  const charset = params.get('collation') ?? params.get('charset')?.split(',')[0];
  const timeout = params.get('timeout');
  return {
    ...(socketPath !== undefined ? { socketPath } : { host: url.host || 'localhost' }),
    ...(port !== undefined ? { port } : {}),
    // mysql2's reading, which lockstep kept: user= and password= in the query too.
    ...optional('user', params.get('user') ?? url.user),
    ...optional('password', params.get('password') ?? url.password),
    database,
    tls: tlsOf(params.get('tls'), shown),
    ...(params.has('ssl') ? { ssl: sslOf(params.get('ssl') as string, shown) } : {}),
    ...(charset ? { charset } : {}),
    ...(timeout !== undefined ? { connectTimeoutMs: goDuration(timeout, shown) } : {}),
    variables,
  };
}

/** go-sql-driver's tls values (its booleans as strconv.ParseBool reads them). */
function tlsOf(value: string | undefined, shown: string): MysqlTls {
  if (value === undefined) return 'none';
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return 'verify';
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return 'none';
  const lower = value.toLowerCase();
  if (lower === 'skip-verify' || lower === 'preferred') return lower;
  throw new ConfigError(
    `MySQL URL "${shown}": tls=${value} is not a TLS mode: use tls=true (verified), skip-verify, preferred (TLS when the server offers it) or false ` +
      '(a custom TLS config registered by name exists only in Go programs)',
  );
}

/** mysql2's own reading of `ssl=`: JSON options, a boolean, or a profile's name. */
function sslOf(value: string, shown: string): string | SslOptions | undefined {
  if (value === 'true') return {};
  if (value === 'false') return undefined;
  if (!value.startsWith('{')) return value;
  try {
    const options = JSON.parse(value) as unknown;
    if (options && typeof options === 'object' && !Array.isArray(options)) return options as SslOptions;
  } catch {}
  throw new ConfigError(
    `MySQL URL "${shown}": ssl= is neither JSON options ({"rejectUnauthorized":true}) nor a profile name`,
  );
}

/** A Go duration (`5s`, `1m30s`, `500ms`) in milliseconds. */
function goDuration(text: string, shown: string): number {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new ConfigError(`MySQL URL "${shown}": timeout=${text} is not a duration (e.g. 10s, 1m30s)`);
  }
  return Math.round(
    parts.reduce((sum, [, n, unit]) => sum + Number(n) * (units[unit as string] as number), 0),
  );
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
