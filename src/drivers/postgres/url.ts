/**
 * A PostgreSQL URL read as libpq and dbmate (lib/pq) read it: host, port, user and database,
 * `sslmode` and its files, `search_path`, Unix sockets (`?host=/dir`, dbmate's `?socket=/dir`, an
 * empty host), and every other parameter either used, passed to the server as a run-time
 * parameter (as lib/pq does), or refused by name. Pure: files are named here, read at connect.
 */
import { ConfigError } from '../../errors.js';
import { redactUrl } from '../../util/secrets.js';
import { splitUrl } from '../url-parts.js';

/** libpq's sslmode values, weakest first. */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What to ask of TLS: the mode, and the files that go with it (paths, read at connect). */
export interface TlsPlan {
  readonly mode: SslMode;
  /** Where the mode came from, for messages: the URL, PGSSLMODE, or the default. */
  readonly from: 'url' | 'PGSSLMODE' | 'default';
  /** `sslrootcert`: a file of CA certificates, or `system` (the system's CAs). */
  readonly rootCert?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly keyPassphrase?: string;
}

export interface PostgresTarget {
  /** A host name or address, or a Unix socket directory (starting with `/`). */
  readonly host: string;
  readonly port: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  /** Unset over a Unix socket, where libpq uses no TLS whatever sslmode says. */
  readonly tls?: TlsPlan;
  readonly connectTimeoutMs?: number;
  readonly clientEncoding?: string;
  /** The URL's `options` (server command-line options), as written. */
  readonly options?: string;
  /** `search_path`, as written (`myschema,public`). */
  readonly searchPath?: string;
  /** Parameters the server is given at startup as `-c name=value` (lib/pq sends unknown ones so). */
  readonly runtime: Readonly<Record<string, string>>;
  /** `pooler=`, lockstep's own parameter (the server never sees it). */
  readonly pooler?: string;
}

/** libpq parameters lockstep reads itself (beside the URL's host, port, user and path). */
const READ = new Set([
  'host',
  'socket',
  'port',
  'dbname',
  'user',
  'password',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslpassword',
  'connect_timeout',
  'client_encoding',
  'options',
  'search_path',
  'pooler',
  // Replaced by lockstep's own name: pg_stat_activity names the lock's holder by it.
  'application_name',
  'fallback_application_name',
  // lib/pq's switch for the binary protocol: no meaning for what lockstep sends.
  'binary_parameters',
  // Ignored by libpq itself since PostgreSQL 14.
  'sslcompression',
]);

/** libpq client parameters lockstep does not implement: refused, never dropped. */
const NOT_IMPLEMENTED = new Set([
  'hostaddr',
  'passfile',
  'require_auth',
  'channel_binding',
  'keepalives',
  'keepalives_idle',
  'keepalives_interval',
  'keepalives_count',
  'tcp_user_timeout',
  'replication',
  'gssencmode',
  'gssdelegation',
  'sslnegotiation',
  'sslcertmode',
  'sslcrl',
  'sslcrldir',
  'sslsni',
  'requirepeer',
  'ssl_min_protocol_version',
  'ssl_max_protocol_version',
  'krbsrvname',
  'gsslib',
  'service',
  'target_session_attrs',
  'load_balance_hosts',
  'requiressl',
  'sslkeylogfile',
]);

/** node-postgres's own parameters (pg-connection-string), not libpq's: what to write instead. */
const NODE_POSTGRES_ONLY: Readonly<Record<string, string>> = {
  ssl: 'sslmode=require (TLS) or sslmode=verify-full (TLS, certificate and name checked)',
  uselibpqcompat: 'nothing: lockstep reads sslmode as libpq does',
};

/** A run-time parameter's name, as the server spells them. */
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/;

/** The Unix socket directory libpq and dbmate use for an empty host, per platform. */
export function defaultSocketDir(platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'linux') return '/var/run/postgresql';
  if (['darwin', 'freebsd', 'openbsd', 'netbsd'].includes(platform)) return '/tmp';
  return undefined;
}

export function parsePostgresUrl(
  given: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
  platform: NodeJS.Platform = process.platform,
): PostgresTarget {
  const shown = redactUrl(given);
  const url = splitUrl(given);
  if (!url) {
    throw new ConfigError(
      `malformed PostgreSQL URL "${shown}": expected postgres://user@host:port/database (password after the user, as user:password)`,
    );
  }
  const params = new Map<string, string>();
  for (const [name, value] of url.params) {
    if (params.has(name))
      throw new ConfigError(`PostgreSQL URL "${shown}" gives ${name} twice: give it once`);
    params.set(name, value);
  }
  const refused = [...params.keys()].filter((name) => NOT_IMPLEMENTED.has(name));
  if (refused.length > 0) {
    throw new ConfigError(
      `PostgreSQL URL "${shown}": lockstep does not implement the libpq parameter${refused.length > 1 ? 's' : ''} ` +
        `${refused.join(', ')}; remove ${refused.length > 1 ? 'them' : 'it'} (lockstep drops no connection setting silently)`,
    );
  }
  for (const [name, instead] of Object.entries(NODE_POSTGRES_ONLY)) {
    if (params.has(name)) {
      throw new ConfigError(
        `PostgreSQL URL "${shown}": ${name}= is node-postgres's parameter, not libpq's: write ${instead}`,
      );
    }
  }
  if (params.get('sslmode') === 'no-verify') {
    throw new ConfigError(
      `PostgreSQL URL "${shown}": sslmode=no-verify is node-postgres's, not libpq's: sslmode=require is TLS without a certificate check`,
    );
  }
  const runtime: Record<string, string> = {};
  for (const [name, value] of params) {
    if (READ.has(name)) continue;
    if (!SETTING_NAME.test(name)) {
      throw new ConfigError(
        `PostgreSQL URL "${shown}": parameter "${name}" is neither a libpq parameter nor a server setting`,
      );
    }
    runtime[name] = value;
  }

  const socket = params.get('socket') ?? params.get('host');
  if (params.has('socket') && params.has('host')) {
    throw new ConfigError(`PostgreSQL URL "${shown}" gives both socket= and host=: give one`);
  }
  const urlHost = url.host;
  if (urlHost.includes(',') || socket?.includes(',')) {
    throw new ConfigError(`PostgreSQL URL "${shown}" names several hosts: lockstep connects to one`);
  }
  const host = socket || urlHost || defaultSocketDir(platform) || 'localhost';
  const portText = params.get('port') ?? url.port;
  const port = portText === '' ? 5432 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ConfigError(`PostgreSQL URL "${shown}": port "${portText}" is not a port number`);
  }
  const user = params.get('user') ?? url.user;
  const password = params.get('password') ?? url.password;
  const database = params.get('dbname') ?? (url.path || undefined);

  const timeout = params.get('connect_timeout');
  let connectTimeoutMs: number | undefined;
  if (timeout !== undefined) {
    const seconds = Number(timeout);
    if (!Number.isInteger(seconds) || seconds < 0) {
      throw new ConfigError(
        `PostgreSQL URL "${shown}": connect_timeout=${timeout} is not a number of seconds`,
      );
    }
    // libpq: 0 waits forever; values under 2 s count as 2 s.
    connectTimeoutMs = seconds === 0 ? 0 : Math.max(2, seconds) * 1000;
  }

  return {
    host,
    port,
    ...(user !== undefined ? { user } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(database !== undefined ? { database } : {}),
    ...(host.startsWith('/') ? {} : { tls: tlsPlan(params, env, shown) }),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...optional('clientEncoding', params.get('client_encoding')),
    ...optional('options', params.get('options')),
    ...optional('searchPath', params.get('search_path')),
    ...optional('pooler', params.get('pooler')),
    runtime,
  };
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

/**
 * sslmode from the URL, else PGSSLMODE, else `prefer` (libpq's default: TLS when the server
 * offers it, so a dbmate URL without sslmode, which lib/pq reads as `require`, still gets TLS
 * from a server that has it, and still connects to one that has none).
 */
function tlsPlan(
  params: Map<string, string>,
  env: Readonly<Record<string, string | undefined>>,
  shown: string,
): TlsPlan {
  const written = params.get('sslmode');
  const fromEnv = written === undefined ? env.PGSSLMODE || undefined : undefined;
  const value = written ?? fromEnv ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(value)) {
    const where = written !== undefined ? `the URL's sslmode=${value}` : `PGSSLMODE=${value}`;
    throw new ConfigError(
      `PostgreSQL URL "${shown}": ${where} is not an sslmode: use one of ${SSL_MODES.join(', ')}`,
    );
  }
  const mode = value as SslMode;
  const rootCert = params.get('sslrootcert');
  if (rootCert === 'system' && mode !== 'verify-full') {
    throw new ConfigError(
      `PostgreSQL URL "${shown}": sslrootcert=system needs sslmode=verify-full (as in libpq: any certificate a public CA signed would do otherwise)`,
    );
  }
  if (mode === 'disable' && (rootCert || params.has('sslcert') || params.has('sslkey'))) {
    throw new ConfigError(
      `PostgreSQL URL "${shown}": sslmode=disable, yet TLS files are given (sslrootcert, sslcert, sslkey): remove one or the other`,
    );
  }
  return {
    mode,
    from: written !== undefined ? 'url' : fromEnv !== undefined ? 'PGSSLMODE' : 'default',
    ...optional('rootCert', rootCert),
    ...optional('cert', params.get('sslcert')),
    ...optional('key', params.get('sslkey')),
    ...optional('keyPassphrase', params.get('sslpassword')),
  };
}

/**
 * The schemas of a search_path as the server reads them (`"My Schema", Public` → My Schema,
 * public). `$user` stays as written: it names no schema of its own.
 */
export function searchPathSchemas(searchPath: string): string[] {
  const schemas: string[] = [];
  let i = 0;
  while (i <= searchPath.length) {
    while (searchPath[i] === ' ' || searchPath[i] === '\t') i++;
    let name = '';
    if (searchPath[i] === '"') {
      for (i++; i < searchPath.length; i++) {
        if (searchPath[i] === '"' && searchPath[i + 1] === '"') name += searchPath[i++];
        else if (searchPath[i] === '"') break;
        else name += searchPath[i];
      }
      const comma = searchPath.indexOf(',', i);
      i = comma === -1 ? searchPath.length + 1 : comma + 1;
    } else {
      const comma = searchPath.indexOf(',', i);
      // Unquoted, the server folds a name to lower case.
      name = searchPath
        .slice(i, comma === -1 ? undefined : comma)
        .trim()
        .toLowerCase();
      i = comma === -1 ? searchPath.length + 1 : comma + 1;
    }
    if (name !== '') schemas.push(name);
  }
  return schemas;
}

/**
 * The server's command-line options that carry a run-time setting (`-c name=value`), escaped as
 * libpq's `options` are: a backslash before each space and backslash of the value.
 */
export function runtimeOption(name: string, value: string): string {
  return `-c ${name}=${value.replace(/[\\ ]/g, (c) => `\\${c}`)}`;
}
